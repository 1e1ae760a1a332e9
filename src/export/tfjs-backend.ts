/**
 * Lazy tfjs loader: `@tensorflow/tfjs-node` when its native library loads, otherwise
 * `@tensorflow/tfjs` on its pure-JS cpu backend. Only commands that train, export or verify
 * call this, so a device running the daemon never loads tfjs.
 */
import { InputError } from '../errors.js';

export type Tf = typeof import('@tensorflow/tfjs');

export interface TfjsInfo {
  tf: Tf;
  /** e.g. "tensorflow (tfjs-node)" or "cpu (@tensorflow/tfjs)". */
  backend: string;
  /** Why tfjs-node is not used, when it is not. */
  fallbackReason?: string;
}

let loaded: Promise<TfjsInfo> | undefined;

export function loadTfjs(): Promise<TfjsInfo> {
  loaded ??= (async () => {
    let reason: string | undefined;
    if (process.env.STREAMCELL_TFJS_NODE !== '0') {
      try {
        const name = '@tensorflow/tfjs-node';
        const tf = (await import(name)) as Tf;
        await tf.ready();
        return { tf, backend: `${tf.getBackend()} (tfjs-node)` };
      } catch (e) {
        reason = `@tensorflow/tfjs-node not usable: ${(e as Error).message.split('\n')[0]}`;
      }
    } else reason = 'STREAMCELL_TFJS_NODE=0';
    let tf: Tf;
    try {
      tf = await import('@tensorflow/tfjs');
    } catch (e) {
      // A device install (scripts/install-on-device.sh) leaves tfjs out on purpose.
      throw new InputError(
        `@tensorflow/tfjs is not installed (${(e as Error).message.split('\n')[0]}): training, export parity and tfjs models need the workstation install`,
        {
          expected:
            "run this on the workstation install (npm install, which includes tfjs), or 'npm install @tensorflow/tfjs' here; on a device, export with --no-verify or bring ONNX models",
        },
      );
    }
    // The cpu backend prints an "install tfjs-node" banner on its first tensor unless in
    // production mode; we already say which backend is used.
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
    await tf.ready();
    return { tf, backend: `${tf.getBackend()} (@tensorflow/tfjs)`, fallbackReason: reason };
  })();
  return loaded;
}
