#!/usr/bin/env bash
# Installs the streamcell daemon on a device (Raspberry Pi, Jetson, any Linux with Node.js ≥ 20)
# as a systemd service, with only what the daemon needs (scripts/lean-install.sh: ≈ 66 MB on
# arm64, ≈ 42 MB on armv7; no tfjs — training and export stay on the workstation).
#   sudo scripts/install-on-device.sh [--config FILE] [--package streamcell-device-linux-ARCH.tgz]
#                                     [--root DIR] [--no-service]
# From a checkout or an unpacked `npm pack` tarball, the dependencies come from the npm registry
# (the lockfile's versions when there is one);
# with --package (made by scripts/device-package.sh on the workstation) nothing is downloaded.
# --root DIR installs under DIR (an image being built, a test) and touches no users or services.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
config=""; package=""; root="/"; service=1
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --package) package="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --no-service) service=0; shift ;;
    *) echo "usage: $0 [--config FILE] [--package TGZ] [--root DIR] [--no-service]" >&2; exit 2 ;;
  esac
done
root="${root%/}"
need_node() {
  echo "install-on-device: $1. streamcell needs Node.js 20 or newer; Debian 12 and Raspberry Pi OS Bookworm ship 18 (apt install nodejs)." >&2
  echo "  Install Node 20: the linux-arm64 / linux-armv7l / linux-x64 tarball from nodejs.org, or the NodeSource apt repository." >&2
  exit 2
}
command -v node >/dev/null || need_node "no 'node' on PATH"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || need_node "Node.js $(node -v) found"
arch=$(node -p process.arch)
case "$arch" in x64|arm64|arm) ;; *) echo "install-on-device: unsupported CPU '$arch' (x64, arm64 or arm)" >&2; exit 2 ;; esac

if [ "$root" = "" ] && [ "$(id -u)" != 0 ]; then
  echo "install-on-device: run it as root (sudo), or with --root DIR to install into a folder" >&2; exit 2
fi
if [ -n "$package" ]; then
  # Check the package before anything is replaced: a wrong one must leave the installed app alone.
  [ -f "$package" ] || { echo "install-on-device: no package '$package'" >&2; exit 2; }
  want="linux-$arch"
  got=$(tar -xzOf "$package" streamcell/.platform 2>/dev/null || echo "not a streamcell device package")
  [ "$got" = "$want" ] || { echo "install-on-device: $package was made for $got, this device is $want" >&2; exit 2; }
fi

app="$root/opt/streamcell"
if [ "$root" = "" ] && ! id streamcell >/dev/null 2>&1; then
  useradd --system --no-create-home --groups dialout --shell /usr/sbin/nologin streamcell
fi
install -d -m 0755 "$app" "$root/etc/streamcell" "$root/etc/systemd/system"
owner=(); [ "$root" = "" ] && owner=(-o streamcell -g streamcell)
install -d "${owner[@]}" -m 0750 "$root/var/lib/streamcell" "$root/var/log/streamcell"
if [ -n "$package" ]; then
  # A device package is the app with its node_modules for this platform: unpack, nothing to fetch.
  tar -xzf "$package" -C "$app" --strip-components=1
elif [ "$(cd "$app" && pwd -P)" = "$(cd "$here" && pwd -P)" ]; then
  bash "$here/scripts/lean-install.sh" "$app" "$arch"   # run again from the installed copy
else
  cp -a "$here/package.json" "$here/dist" "$here/models" "$here/scripts" "$app/"
  if [ -f "$here/package-lock.json" ]; then cp -a "$here/package-lock.json" "$app/"; fi
  bash "$here/scripts/lean-install.sh" "$app" "$arch"
fi
# The shipped default as a step model (export without its tfjs parity check: no tfjs here).
step="$app/models/co2-lstm/model.step.onnx"
[ -f "$step" ] || node "$app/dist/cli/bin.js" export "$app/models/co2-lstm/model.json" -o "$app/models/co2-lstm/model.onnx" --streaming --no-verify >/dev/null
if [ -n "$config" ]; then install -m 0640 "$config" "$root/etc/streamcell/config.yaml"; fi
if [ ! -f "$root/etc/streamcell/config.yaml" ]; then
  cat > "$root/etc/streamcell/config.yaml" <<'YAML'
# streamcell daemon config (see README). Edit the source and the model, then:
#   systemctl restart streamcell
model: /opt/streamcell/models/co2-lstm/model.step.onnx
sources: ["serial:/dev/ttyUSB0?baud=115200&format=csv"]
sinks: ["jsonl:/var/log/streamcell/predictions.jsonl?maxBytes=104857600&keep=5", "http://127.0.0.1:8080"]
checkpoint: { file: /var/lib/streamcell/state.checkpoint, every_s: 30 }
policy: { non_finite: skip }
log_level: info
YAML
fi
if [ "$root" = "" ]; then chgrp streamcell "$root/etc/streamcell/config.yaml"; fi
install -m 0644 "$here/scripts/systemd/streamcell.service" "$here/scripts/systemd/streamcell-health.service" "$here/scripts/systemd/streamcell-health.timer" "$root/etc/systemd/system/"
echo "install-on-device: installed in $app ($(du -sh "$app" | cut -f1), linux-$arch, $(node -v))"
if [ "$service" = 1 ] && [ "$root" = "" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now streamcell.service streamcell-health.timer
  systemctl --no-pager status streamcell.service || true
else
  echo "install-on-device: service not started; start it with: node $app/dist/cli/bin.js stream --config $root/etc/streamcell/config.yaml"
fi
