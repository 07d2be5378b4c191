#!/usr/bin/env bash
# Builds the Pulumi CLI and the bridged GitHub resource plugin from the Go
# wrapper modules next to this script, into a cache folder outside git:
#
#   ${RAXX_ENGINE_CACHE:-$HOME/.cache/raxx-rotations/engine}/<key>/bin/{pulumi,pulumi-resource-github}
#
# <key> names the pinned versions plus a hash of the wrapper modules (go.mod,
# go.sum, main.go), this script (its build flags) and the Go toolchain, so a
# change to any of them builds anew and an unchanged checkout reuses the
# binaries (< 1 s).
#
# STDOUT: the bin folder, as the only line. Progress goes to STDERR.
# A cold build (empty Go caches) takes minutes; a relink with warm Go caches
# takes seconds. Binaries are built under a temporary name and renamed, so a
# killed build never leaves a half-written binary behind.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cli_dir="$here/cli"
github_dir="$here/github"

started=$SECONDS
say() { printf '[engine %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed (need go >= 1.26 on PATH, see engine/*/go.mod): https://go.dev/doc/install"

# The pinned versions live in the wrapper modules; read them from there.
pulumi_version="$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/pulumi/pulumi/pkg/v3") { print $(i + 1); exit } }' "$cli_dir/go.mod")"
github_version="$(sed -n 's/^const version = "\(.*\)"$/\1/p' "$github_dir/main.go")"
[[ -n "$pulumi_version" ]] || die "cannot read the pulumi/pkg/v3 version from $cli_dir/go.mod"
[[ -n "$github_version" ]] || die "cannot read the plugin version from $github_dir/main.go"

go_version="$(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
sources_hash="$(
  {
    printf '%s\n' "$go_version"
    cat "$cli_dir/go.mod" "$cli_dir/go.sum" "$cli_dir/main.go" \
        "$github_dir/go.mod" "$github_dir/go.sum" "$github_dir/main.go" "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16
)"
key="pulumi-${pulumi_version}_github-v${github_version}_${sources_hash}"
cache_root="${RAXX_ENGINE_CACHE:-$HOME/.cache/raxx-rotations/engine}"
root="$cache_root/$key"
bin="$root/bin"

have_all() { [[ -x "$bin/pulumi" && -x "$bin/pulumi-resource-github" ]]; }

if have_all; then
  say "reusing $bin"
  printf '%s\n' "$bin"
  exit 0
fi

mkdir -p "$bin"
# One builder per key: a second caller waits here, then finds the binaries.
exec 9>"$root/.lock"
if ! flock -n 9; then
  say "another build of $key is running; waiting for it"
  flock 9
fi
if have_all; then
  say "reusing $bin (built by the other process)"
  printf '%s\n' "$bin"
  exit 0
fi

# Leftovers of a build that was killed (SIGKILL skips the cleanup below).
rm -f "$bin"/.*.tmp.*

# go.sum is committed and complete: never resolve or look anything up.
export GOFLAGS="-mod=readonly -buildvcs=false"

child=""
tmp_files=()
cleanup() {
  if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
    kill "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true # it may still be writing its output
  fi
  if ((${#tmp_files[@]})); then rm -f "${tmp_files[@]}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# build <module dir> <output name> <package> [extra go build args...]
build() {
  local dir="$1" name="$2" pkg="$3"
  shift 3
  local out="$bin/$name"
  if [[ -x "$out" ]]; then
    say "$name: already built"
    return
  fi
  local tmp="$bin/.$name.tmp.$$"
  tmp_files+=("$tmp")
  local t0=$SECONDS
  (cd "$dir" && exec go build -o "$tmp" -ldflags "-s -w $*" "$pkg") </dev/null >&2 &
  child=$!
  local next=30
  while kill -0 "$child" 2>/dev/null; do
    sleep 1
    if ((SECONDS - t0 >= next)); then
      say "$name: still building ($((SECONDS - t0))s so far)"
      next=$((next + 30))
    fi
  done
  local rc=0
  wait "$child" || rc=$?
  child=""
  ((rc == 0)) || die "$name: go build failed (exit $rc); see the Go output above"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$out"
  say "$name: built in $((SECONDS - t0))s"
}

say "building the engine into $root"
say "(a cold build with empty Go caches downloads ~1.6 GB of modules and takes about 6 minutes on 2 cores; with warm Go caches it relinks in seconds)"
say "step 1/2: pulumi CLI $pulumi_version (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)"
build "$cli_dir" pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version"
say "step 2/2: pulumi-resource-github $github_version (terraform-provider-github bridged)"
build "$github_dir" pulumi-resource-github .

have_all || die "binaries missing after the build in $bin"
say "done in $((SECONDS - started))s"
printf '%s\n' "$bin"
