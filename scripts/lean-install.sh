#!/usr/bin/env bash
# The daemon's dependencies, and nothing else, into an app folder that already holds
# package.json, package-lock.json and dist/ (scripts/install-on-device.sh and
# scripts/device-package.sh call it):
#   scripts/lean-install.sh APP_DIR [x64|arm64|arm]
# - no devDependencies, no optional ones (tfjs: training and export stay on the workstation);
# - no install scripts: `prepare` would need the TypeScript compiler, onnxruntime-node's would
#   fetch CUDA libraries; the native modules ship their binaries inside the package;
# - onnxruntime-node keeps the binary of this platform only (all six ship: 288 MB), and
#   onnxruntime-web the one WASM build Node runs (ort-wasm-simd-threaded) instead of four.
# The npm here may be the workstation's installing for another CPU (--cpu), so that a board
# only unpacks. NPM (default: npm) names the npm command.
set -euo pipefail
app="${1:?usage: lean-install.sh APP_DIR [x64|arm64|arm]}"
cpu="${2:-$(node -p process.arch)}"
case "$cpu" in x64|arm64|arm) ;; *) echo "lean-install: CPU must be x64, arm64 or arm (got $cpu)" >&2; exit 2 ;; esac
npm_cmd=(${NPM:-npm})
# `npm ci` when there is a lockfile (a checkout); an `npm pack` tarball has none.
verb=ci; [ -f "$app/package-lock.json" ] || verb=install
(cd "$app" && ONNXRUNTIME_NODE_INSTALL=skip "${npm_cmd[@]}" "$verb" --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error --cpu="$cpu" --os=linux)
nm="$app/node_modules"
# onnxruntime-node: only bin/napi-v*/linux/<cpu> (none at all for 32-bit ARM: WASM runs there).
ortbin="$nm/onnxruntime-node/bin"
if [ -d "$ortbin" ]; then
  for napi in "$ortbin"/napi-v*; do
    for plat in "$napi"/*; do
      [ "$(basename "$plat")" = linux ] || rm -rf "$plat"
    done
    for a in "$napi"/linux/*; do
      [ "$(basename "$a")" = "$cpu" ] || rm -rf "$a"
    done
  done
fi
# onnxruntime-web: Node loads dist/ort.node.min.mjs (or .js) and ort-wasm-simd-threaded.{wasm,mjs}.
ortweb="$nm/onnxruntime-web/dist"
if [ -d "$ortweb" ]; then
  find "$ortweb" -maxdepth 1 -type f ! -name 'ort.node.min.*' ! -name 'ort-wasm-simd-threaded.wasm' ! -name 'ort-wasm-simd-threaded.mjs' -delete
  find "$ortweb" -maxdepth 1 -name '*.map' -delete
fi
# protobufjs ships its code generator (and its 16 MB of dependencies); we only decode.
rm -rf "$nm/protobufjs/cli"
# What only a developer reads.
find "$nm" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' -o -name '*.markdown' \) -type f -delete 2>/dev/null || true
find "$nm" -type d \( -name test -o -name tests -o -name __tests__ -o -name docs -o -name example -o -name examples \) -prune -exec rm -rf {} + 2>/dev/null || true
# serialport: prebuilt bindings for this platform only.
for pb in "$nm"/@serialport/bindings-cpp/prebuilds/*; do
  [ -d "$pb" ] || continue
  case "$(basename "$pb")" in "linux-$cpu") ;; *) rm -rf "$pb" ;; esac
done
echo "lean-install: $(du -sh "$app" | cut -f1) in $app (node_modules $(du -sh "$nm" | cut -f1), linux-$cpu)"
