#!/bin/bash
# Install and start a Docker engine on Debian when none answers (no systemd needed).
# Also installs debootstrap, which builds debian:bookworm when no registry can be reached.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-docker: no Docker engine answers and this is not root: start Docker, or rerun as root" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  echo "install-docker: installing docker.io and debootstrap from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker
else
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
fi
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "install-docker: engine $(docker info --format '{{.ServerVersion}}') is up" >&2
    exit 0
  fi
  sleep 1
done
echo "install-docker: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
