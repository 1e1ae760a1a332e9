#!/usr/bin/env bash
# Runs Node for ARM (from scripts/arm-sysroot.sh) under qemu user-mode emulation as a board would:
# in a private user + mount namespace with its own binfmt_misc (Linux ≥ 6.7), where qemu is
# registered for ARM ELF files with the F flag, so that child processes (the native-backend
# probe, `npm`) run too; the host's binfmt setup is not touched.
#   scripts/arm-run.sh arm64|armv7 [--cpu CPU] [--cpuinfo FILE] [--exec] -- ARGS...
# Runs the ARM `node ARGS…`, or with --exec the command ARGS with the ARM node first on PATH
# (e.g. `bash scripts/install-on-device.sh`). --cpuinfo bind-mounts FILE over /proc/cpuinfo
# (onnxruntime-node arm64 segfaults on an x86 one).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
arch="${1:?usage: arm-run.sh arm64|armv7 [--cpu CPU] [--cpuinfo FILE] -- ARGS...}"; shift
cpu=""; cpuinfo=""; execmode=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu="$2"; shift 2 ;;
    --cpuinfo) cpuinfo="$2"; shift 2 ;;
    --exec) execmode=1; shift ;;
    --) shift; break ;;
    *) echo "arm-run: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$arch" in
  arm64) qemu=/usr/bin/qemu-aarch64-static; magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'; mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
  armv7) qemu=/usr/bin/qemu-arm-static; magic='\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00'; mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
  *) echo "arm-run: arch must be arm64 or armv7" >&2; exit 2 ;;
esac
dir="$root/.arm/$arch"
[ -x "$dir/node/bin/node" ] || { echo "arm-run: $dir/node missing: run scripts/arm-sysroot.sh $arch" >&2; exit 2; }
export QEMU_LD_PREFIX="$dir/sysroot"
[ -n "$cpu" ] && export QEMU_CPU="$cpu"
if [ "$execmode" = 1 ]; then export PATH="$dir/node/bin:$PATH"; else set -- "$dir/node/bin/node" "$@"; fi
exec unshare --user --map-root-user --mount --propagation private sh -c '
  set -e
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  printf "%s" ":streamcell-$1:M::$2:$3:$4:F" > /proc/sys/fs/binfmt_misc/register
  if [ -n "$5" ]; then mount --bind "$5" /proc/cpuinfo; fi
  shift 5
  exec "$@"
' sh "$arch" "$magic" "$mask" "$qemu" "$cpuinfo" "$@"
