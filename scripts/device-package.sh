#!/usr/bin/env bash
# Builds an offline device package on the workstation: the app (dist, models, scripts) with the
# daemon's dependencies for one platform, installed by this machine's npm (--cpu), so a board (or
# a fleet over LTE) only unpacks it: sudo scripts/install-on-device.sh --package FILE.
#   scripts/device-package.sh arm64|arm|x64 [-o streamcell-device-linux-ARCH.tgz]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cpu="${1:?usage: device-package.sh arm64|arm|x64 [-o FILE]}"; shift
out="streamcell-device-linux-$cpu.tgz"
[ "${1:-}" = "-o" ] && out="$2"
[ -f "$here/dist/cli/bin.js" ] || { echo "device-package: build first (npm run build)" >&2; exit 2; }
stage="$(mktemp -d)"; trap 'rm -rf "$stage"' EXIT
app="$stage/streamcell"
mkdir -p "$app"
cp -a "$here/package.json" "$here/package-lock.json" "$here/dist" "$here/models" "$here/scripts" "$app/"
bash "$here/scripts/lean-install.sh" "$app" "$cpu"
echo "linux-$cpu" > "$app/.platform"
tar -czf "$out" -C "$stage" streamcell
echo "device-package: $out ($(du -h "$out" | cut -f1) compressed, $(du -sh "$app" | cut -f1) installed)"
