#!/usr/bin/env bash
# Installs Debian's chromium for the timeline picture's browser test
# (tests/sandbox/picture-browser.test.ts) when no chromium is on PATH. Runs as
# root with no standard input (CI): non-interactive.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: $(chromium --version 2>/dev/null | head -n1 || echo chromium) already installed" >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-chromium: chromium is missing and this is not root: run 'apt-get install -y chromium' as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: apt-get update" >&2
apt-get update -q >&2
echo "install-chromium: apt-get install -y chromium" >&2
apt-get install -y -q --no-install-recommends chromium >&2
echo "install-chromium: $(chromium --version 2>/dev/null | head -n1)" >&2
