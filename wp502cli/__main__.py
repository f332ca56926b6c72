import sys

from wp502cli.main import main

sys.exit(main())
