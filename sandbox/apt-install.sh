#!/usr/bin/env bash
# apt-install.sh WHO PACKAGE...: installs Debian packages for the sandbox's
# install-*.sh scripts, as root with no standard input (CI): non-interactive,
# one `apt-get update` an hour at most (two scripts in one .ci/run share it).
# Not root: says what to run instead and fails.
set -euo pipefail
who=$1
shift
if [ "$(id -u)" != "0" ]; then
    echo "$who: $* missing and this is not root: run 'apt-get install -y $*' as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ -z "$(find /var/lib/apt/lists -maxdepth 0 -mmin -60 2>/dev/null)" ] || [ -z "$(ls /var/lib/apt/lists/*Packages* 2>/dev/null | head -n1)" ]; then
    echo "$who: apt-get update" >&2
    apt-get update -q >&2
    touch /var/lib/apt/lists
fi
echo "$who: apt-get install -y $*" >&2
apt-get install -y -q --no-install-recommends "$@" >&2
