#!/usr/bin/env bash
# Rebuilds the shipped default bundle models/imu-activity.bundle from models/imu-activity
# (itself made by scripts/make-imu-model.mjs, fixed seeds). Unsigned: sign your own bundles
# with `streamcell keygen` + `streamcell bundle --sign`.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
node dist/cli/main.js bundle --model models/imu-activity -o models/imu-activity.bundle \
  --calibration models/imu-activity/data.csv --name imu-activity --bundle-version 1.0.0
