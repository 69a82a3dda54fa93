#!/usr/bin/env bash
# Builds the node image by hand, as the compose deployer does when the image is missing:
# FROM scratch, the node binary at /usr/local/bin/nomos-node plus the shared libraries ldd lists,
# tagged nomos-script-node:<first 12 hex of the binary's sha256>. No registry, no base image.
#   scripts/build-image.sh [BINARY] [TAG]
# BINARY defaults to target/release/nomos-script, else target/debug/nomos-script. The image runs
# `<entrypoint> devnode --config FILE`; pass its tag to a run with LOGOS_BLOCKCHAIN_TESTNET_IMAGE=TAG.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-}"
if [[ -z "$bin" ]]; then
  for b in target/release/nomos-script target/debug/nomos-script; do
    [[ -x "$b" ]] && { bin="$b"; break; }
  done
fi
[[ -n "$bin" && -x "$bin" ]] || { echo "error: no node binary (build nomos-script, or pass BINARY)" >&2; exit 2; }
tag="${2:-nomos-script-node:$(sha256sum "$bin" | cut -c1-12)}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin"
cp "$bin" "$ctx/rootfs/usr/local/bin/nomos-node"
# `ldd` prints "name => /path (addr)" or "/path (addr)"; copy each library (symlinks resolved) to its path.
if ldd "$bin" >/dev/null 2>&1; then
  ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break } }' | while read -r lib; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
fi
cp assets/image/Dockerfile "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build --label nomos-script.image=node -t "$tag" "$ctx" >&2
echo "$tag"
