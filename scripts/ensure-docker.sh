#!/usr/bin/env bash
# Make this machine ready for the integration tests and the demo: a reachable Docker engine, plus
# debootstrap (builds the emulator's root filesystem) and a static busybox (the runner's test image).
# Installs what is missing with apt-get and starts dockerd when it is not running (needs root).
set -euo pipefail
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "ensure-docker: please install: ${missing[*]}" >&2; exit 3; fi
  echo "ensure-docker: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "ensure-docker: dockerd is not running; start it (sudo systemctl start docker)" >&2; exit 3; fi
echo "ensure-docker: starting dockerd" >&2
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "ensure-docker: dockerd did not come up; see /var/log/dockerd.log" >&2
exit 3
