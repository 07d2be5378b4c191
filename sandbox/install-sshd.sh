#!/usr/bin/env bash
# Installs Debian's openssh-server for the sandbox's SSH hosts (sandbox/services/sshd.ts)
# when /usr/sbin/sshd is missing. Runs as root with no standard input (CI):
# non-interactive, and the system's own sshd service is never started (the
# sandbox runs its own sshd on a loopback port with its own config file).
set -euo pipefail

if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1; then
    echo "install-sshd: $(/usr/sbin/sshd -V 2>&1 | head -n1 || echo sshd) already installed" >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-sshd: /usr/sbin/sshd is missing and this is not root: run 'apt-get install -y openssh-server' as root" >&2
    exit 1
fi

# Keep the package's maintainer scripts from starting the system sshd on port 22.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

bash "$(dirname "$0")/apt-install.sh" install-sshd openssh-server openssh-client
echo "install-sshd: installed $(/usr/sbin/sshd -V 2>&1 | head -n1 || true)" >&2
