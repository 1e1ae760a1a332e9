/**
 * What board this is (Raspberry Pi / Jetson model from the device tree and nv_tegra_release),
 * and the runtime settings that suit it: threads per session and inference backend.
 */
import { existsSync, readFileSync } from 'node:fs';
import { arch, cpus, totalmem } from 'node:os';
import type { BackendName } from '../runtime/backend.js';

export interface DeviceInfo {
  model: string;
  kind: 'raspberry-pi' | 'jetson' | 'generic';
  arch: string;
  cores: number;
  memoryMiB: number;
  /**
   * Suggested intra-op threads: the cores left after the pipeline's thread, up to 4 (1 on two
   * cores, where the pipeline needs the other one). Measured on 2 cores: two intra-op threads
   * stepped 256–1024 streams 1.3–1.4× faster than one, while worker sessions (option `workers`)
   * lost to the hand-over of each batch (~70 µs); so the spare cores go to intra-op threads.
   */
  threads: number;
  /** onnxruntime-node has no 32-bit ARM binary: use WASM there. */
  backend: BackendName;
}

function read(path: string): string | undefined {
  try {
    return existsSync(path) ? readFileSync(path, 'utf8').replace(/\0/g, '').trim() : undefined;
  } catch {
    return undefined;
  }
}

export function detectDevice(root = '/'): DeviceInfo {
  const dt = read(`${root}proc/device-tree/model`);
  const tegra = read(`${root}etc/nv_tegra_release`);
  const a = arch();
  const cores = cpus().length || 1;
  const kind = tegra || /jetson|nvidia/i.test(dt ?? '') ? 'jetson' : /raspberry/i.test(dt ?? '') ? 'raspberry-pi' : 'generic';
  const model = dt ?? (tegra ? `NVIDIA Jetson (${tegra.split('\n')[0]})` : `${a} ${cpus()[0]?.model ?? ''}`.trim());
  return {
    model,
    kind,
    arch: a,
    cores,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    threads: cores <= 2 ? 1 : Math.min(4, cores - 1),
    backend: a === 'arm' || a === 'ia32' ? 'onnxruntime-web' : 'onnxruntime-node',
  };
}
