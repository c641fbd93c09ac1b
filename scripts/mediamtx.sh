#!/usr/bin/env bash
# Builds MediaMTX, the media server the WHIP publishing tests run against
# (internal/testenv.MediaMTX), once, and prints its binary's path on stdout;
# later runs print the cached path at once. Progress goes to stderr.
#   scripts/mediamtx.sh            -> ~/.cache/deskcast/mediamtx-v1.20.1/mediamtx
#
# MediaMTX is built in a module of its own, never inside Deskcast's go.mod: it
# needs other pion versions (webrtc v4.2.18, transport/v4). `go install
# module@version` cannot build it: two files its `go generate` downloads from
# GitHub are missing from the module (internal/core/VERSION, embedded as the
# version, and internal/servers/hls/hls.min.js, the HLS player page's script).
# So the module source is copied to a temporary directory, the two files are
# written there (a placeholder script: the tests never open the HLS page), and
# it is built there. Only the Go module proxy is used.
set -euo pipefail

version=v1.20.1
module=github.com/bluenviron/mediamtx
go=${GO:-go}
dir="${XDG_CACHE_HOME:-$HOME/.cache}/deskcast/mediamtx-$version"
bin="$dir/mediamtx"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
# One build at a time: a second caller (another test binary, a parallel make)
# waits here and then finds the binary.
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/deskcast-mediamtx.XXXXXX")
# The module cache is read-only, and so is a plain copy of it.
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

{
  start=$(date +%s)
  echo "mediamtx: building MediaMTX $version into $dir (once: a minute or two)"
  # Outside any module (and any go.work), so Deskcast's go.mod plays no part.
  if ! (cd "$work" && GOWORK=off "$go" mod download -json "$module@$version" >"$work/download.json"); then
    cat "$work/download.json"
    echo "mediamtx: go mod download $module@$version failed (is the Go module proxy reachable?)"
    exit 1
  fi
  src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$work/download.json")
  if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
    cat "$work/download.json"
    echo "mediamtx: go mod download $module@$version gave no source directory"
    exit 1
  fi
  cp -R "$src" "$work/src"
  chmod -R u+w "$work/src"
  printf '%s' "$version" >"$work/src/internal/core/VERSION" # embedded as it is: no newline
  printf '%s\n' "/* placeholder for hls.js: built by deskcast's scripts/mediamtx.sh, which cannot download it */" \
    >"$work/src/internal/servers/hls/hls.min.js"
  # CGO_ENABLED=0 as MediaMTX's own release builds (scripts/binaries.mk); -s -w drops the symbol
  # tables (a smaller cache), -trimpath keeps the temporary directory out of the binary.
  # Built beside its final name and renamed once it runs, so an interrupted build never leaves
  # a broken binary where the next run would take it as cached.
  (cd "$work/src" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
    "$go" build -trimpath -ldflags='-s -w' -o "$bin.partial" .)
  got=$("$bin.partial" --version)
  if [ "$got" != "$version" ]; then
    echo "mediamtx: the built binary says it is version '$got', not $version"
    exit 1
  fi
  mv -f "$bin.partial" "$bin"
  echo "mediamtx: built $bin ($(du -h "$bin" | cut -f1)) in $(($(date +%s) - start)) s"
} >&2

echo "$bin"
