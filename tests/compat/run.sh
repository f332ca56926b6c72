#!/bin/bash
# Inside wp502-compat:trixie (tests/compat/compat.py starts it): copy the read-only checkout at /src,
# then run the Makefile's own `lint` and `unit` targets with this image's venv (ansible-core 2.21,
# Python 3.13) as .venv. Any deprecation warning in their output fails the run: what 2.21
# deprecates is fixed, not silenced. Logs go to /out (artifacts/compat/ on the host).
set -euo pipefail
work=/tmp/wp502
mkdir -p "$work"
tar -C /src --exclude=./.venv --exclude=./.venv-2.21 --exclude=./.bench --exclude=./.lab \
  --exclude=./artifacts --exclude=./reports --exclude=./.cache --exclude='__pycache__' -cf - . | tar -C "$work" -xf -
cd "$work"
ln -s /opt/venv .venv
export ANSIBLE_DEPRECATION_WARNINGS=true ANSIBLE_FORCE_COLOR=false PY_COLORS=0 NO_COLOR=1
trap 'chown -R "${WP502_OWNER:-0:0}" /out 2>/dev/null || true' EXIT
rm -f /out/*.log

python3 --version
.venv/bin/ansible --version | head -1
.venv/bin/pip install --quiet --no-deps --no-build-isolation -e . >/out/install.log 2>&1 || { cat /out/install.log; exit 1; }

rc=0
for target in lint unit; do
  echo "== make $target (ansible-core 2.21, Python 3.13)"
  # .venv is this image's: make must not rebuild it from requirements.txt (2.19).
  if ! make -o .venv/bin/ansible-playbook "$target" 2>&1 | tee "/out/$target.log"; then
    echo "== make $target: FAILED"
    rc=1
  fi
done

if grep -n -i -E '\[DEPRECATION WARNING\]|DeprecationWarning|is deprecated|will be removed' /out/lint.log /out/unit.log; then
  echo "== deprecation warnings above: fix them (ansible-core 2.21 deprecates them)"
  rc=1
fi
if [ "$rc" = 0 ]; then echo "== make compat: passed"; fi
exit "$rc"
