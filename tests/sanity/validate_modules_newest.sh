#!/bin/bash
# validate-modules and ansible-doc on the newest supported ansible-core (2.21), which needs Python
# 3.12+ on the controller: finds such a Python (on PATH, or one pyenv holds), keeps a virtualenv
# for it in .venv-2.21, and runs tests/sanity/validate_modules.py against its ansible-test.
# In CI, a machine without Python 3.12+ is an error; elsewhere the check is skipped, saying so.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORE="ansible-core>=2.21,<2.22"
VENV=.venv-2.21

# On a controller whose .venv is already 2.21 (make compat's container), validate_modules.py ran on it.
if .venv/bin/python -c 'import sys, ansible.release as r; sys.exit(not r.__version__.startswith("2.21."))' 2>/dev/null; then
  echo "validate-modules on $CORE: .venv is ansible-core 2.21 already (checked above)"
  exit 0
fi

usable() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
  local c v
  for c in python3.14 python3.13 python3.12; do
    if command -v "$c" >/dev/null 2>&1 && usable "$c"; then command -v "$c"; return 0; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9](\.|$)' | sort -rV); do
      c="$(pyenv root)/versions/$v/bin/python3"
      if [ -x "$c" ] && usable "$c"; then echo "$c"; return 0; fi
    done
  fi
  return 1
}

if [ ! -x "$VENV/bin/ansible-test" ]; then
  if ! PY=$(find_python); then
    if [ -n "${CI:-}" ]; then echo "validate-modules on $CORE: no Python 3.12+ on this machine" >&2; exit 1; fi
    echo "validate-modules on $CORE: skipped (no Python 3.12+ here)"
    exit 0
  fi
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "$CORE"
fi
WP502_ANSIBLE_TEST="$PWD/$VENV/bin/ansible-test" .venv/bin/python tests/sanity/validate_modules.py
