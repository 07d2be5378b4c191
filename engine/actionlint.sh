#!/usr/bin/env bash
# Builds actionlint (github.com/rhysd/actionlint, from the Go module proxy) into
# a cache folder outside git, once, and prints its path (STDOUT, one line).
# The workflows test runs it over .github/workflows; .ci/run builds it ahead.
set -euo pipefail

version=v1.7.12
dir="${RAXX_ACTIONLINT_CACHE:-$HOME/.cache/raxx-rotations/actionlint-${version#v}}"
bin="$dir/actionlint"
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "actionlint: Go is not installed (need go on PATH to build actionlint $version)" >&2; exit 1; }
echo "actionlint: building $version from the Go module proxy into $dir" >&2
mkdir -p "$dir"
tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && GOBIN="$tmp" GOFLAGS="-buildvcs=false" go install "github.com/rhysd/actionlint/cmd/actionlint@$version") </dev/null >&2
mv "$tmp/actionlint" "$bin"
echo "$bin"
