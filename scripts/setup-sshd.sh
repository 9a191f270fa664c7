#!/usr/bin/env bash
# Makes sure OpenSSH's server binary is present for the SSH tests, which start their own sshd
# instances on loopback addresses (see test/ssh/fixture.ts). Installs Debian's openssh-server
# when /usr/sbin/sshd is missing; does nothing when it is there. It never starts, enables or
# configures the system's own ssh service.
set -euo pipefail

if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null; then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "setup-sshd: /usr/sbin/sshd is missing and apt-get is not available; install OpenSSH's server by hand" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-sshd: run as root (or install sudo) to install openssh-server" >&2; exit 1; }
  sudo="sudo"
fi

echo "[setup-sshd] installing openssh-server"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package's maintainer scripts from starting the system sshd.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
[ -x /usr/sbin/sshd ] || { echo "setup-sshd: openssh-server installed but /usr/sbin/sshd is missing" >&2; exit 1; }
echo "[setup-sshd] $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
