#!/usr/bin/env bash
# Installs Debian's chromium for the timeline picture's browser test
# (tests/sandbox/picture-browser.test.ts) when no chromium is on PATH. Runs as
# root with no standard input (CI): non-interactive.
set -euo pipefail

# Any of the browsers the test looks for (tests/sandbox/picture-browser.test.ts).
for browser in chromium chromium-browser google-chrome; do
    if command -v "$browser" >/dev/null 2>&1; then
        echo "install-chromium: $("$browser" --version 2>/dev/null | head -n1 || echo "$browser") already installed" >&2
        exit 0
    fi
done
bash "$(dirname "$0")/apt-install.sh" install-chromium chromium
echo "install-chromium: $(chromium --version 2>/dev/null | head -n1)" >&2
