#!/usr/bin/env bash
# Cross-compile static release binaries of every command into dist/.
#
#   deploy/release.sh                     # all targets, version from git
#   VERSION=v0.1.0 deploy/release.sh
#   TARGETS="linux/arm64" CMDS=meshrelay deploy/release.sh
#
# Output: dist/CMD-OS-ARCH[.exe] and dist/SHA256SUMS. Binaries are static
# (CGO_ENABLED=0), stripped, and built with -trimpath so they do not embed
# this machine's paths. Called by `make release`.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DIST=${DIST:-dist}
TARGETS=${TARGETS:-linux/amd64 linux/arm64 darwin/arm64 windows/amd64}
CMDS=${CMDS:-$(cd cmd && for d in */; do [ -f "$d/main.go" ] && printf '%s ' "${d%/}"; done)}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}

rm -rf "$DIST"
mkdir -p "$DIST"
for target in $TARGETS; do
  os=${target%/*}
  arch=${target#*/}
  ext=
  [ "$os" = windows ] && ext=.exe
  for cmd in $CMDS; do
    out="$DIST/$cmd-$os-$arch$ext"
    echo "build $out ($VERSION)"
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build \
      -trimpath \
      -ldflags "-s -w -X main.version=$VERSION" \
      -o "$out" "./cmd/$cmd"
  done
done

# Check that the Linux binaries are static: no ELF interpreter.
for f in "$DIST"/*-linux-*; do
  if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" != '177ELF' ]; then
    echo "release: $f is not an ELF file" >&2
    exit 1
  fi
  if command -v readelf >/dev/null && readelf -l "$f" | grep -q 'INTERP'; then
    echo "release: $f is dynamically linked" >&2
    exit 1
  fi
done

sums=$(cd "$DIST" && if command -v sha256sum >/dev/null; then sha256sum -- *; else shasum -a 256 -- *; fi)
printf '%s\n' "$sums" > "$DIST/SHA256SUMS"
echo "release: $(ls "$DIST" | grep -vc SHA256SUMS) binaries in $DIST/"
