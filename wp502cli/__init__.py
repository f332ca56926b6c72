"""The wp502 command: the project's playbooks through ansible-runner, for people who prefer one command."""
