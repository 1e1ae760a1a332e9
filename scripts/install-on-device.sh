#!/usr/bin/env bash
# Installs streamcell on a device (Raspberry Pi, Jetson, any Linux with Node.js ≥ 20) as a
# systemd service. Run as root from an unpacked streamcell checkout or npm package:
#   sudo scripts/install-on-device.sh [--config path/to/config.yaml]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    *) echo "usage: $0 [--config FILE]" >&2; exit 2 ;;
  esac
done
command -v node >/dev/null || { echo "install-on-device: Node.js ≥ 20 is required (apt-get install nodejs)" >&2; exit 2; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "install-on-device: Node.js $major found, ≥ 20 needed" >&2; exit 2; }

id streamcell >/dev/null 2>&1 || useradd --system --no-create-home --groups dialout --shell /usr/sbin/nologin streamcell
install -d -m 0755 /opt/streamcell /etc/streamcell
install -d -o streamcell -g streamcell -m 0750 /var/lib/streamcell /var/log/streamcell
# The app: package files and production dependencies (onnxruntime-node has no 32-bit ARM
# binary; streamcell then uses onnxruntime-web by itself).
cp -a "$here/package.json" "$here/package-lock.json" "$here/dist" "$here/models" /opt/streamcell/
(cd /opt/streamcell && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --omit=optional --no-audit --no-fund)
# The shipped default as a step model (no tfjs needed with --no-verify).
[ -f /opt/streamcell/models/co2-lstm/model.step.onnx ] || node /opt/streamcell/dist/cli/main.js export /opt/streamcell/models/co2-lstm/model.json -o /opt/streamcell/models/co2-lstm/model.onnx --streaming --no-verify
if [ -n "$config" ]; then install -m 0640 -g streamcell "$config" /etc/streamcell/config.yaml; fi
if [ ! -f /etc/streamcell/config.yaml ]; then
  cat > /etc/streamcell/config.yaml <<'YAML'
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
install -m 0644 "$here/scripts/systemd/streamcell.service" "$here/scripts/systemd/streamcell-health.service" "$here/scripts/systemd/streamcell-health.timer" /etc/systemd/system/
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now streamcell.service streamcell-health.timer
  systemctl --no-pager status streamcell.service || true
else
  echo "install-on-device: no systemd here; start it with: node /opt/streamcell/dist/cli/main.js stream --config /etc/streamcell/config.yaml"
fi
