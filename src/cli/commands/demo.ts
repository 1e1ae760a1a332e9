import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { guarded, type ArgsOf } from '../output.js';
import { backendChoice, withBackendOption } from '../backend-option.js';

export const command = 'demo';
export const describe = 'Stream a simulated accelerometer through the shipped activity model: live predictions, dashboard, ends by itself';

const SHIPPED = fileURLToPath(new URL('../../../models/imu-activity.bundle', import.meta.url));

export function builder(y: Argv) {
  const withOptions = y
    .option('bundle', { type: 'string', default: SHIPPED, describe: 'bundle to run (default: the shipped activity classifier)' })
    .option('seconds', { type: 'number', default: 15, describe: 'how long to run' })
    .option('forever', { type: 'boolean', default: false, describe: 'keep running until Ctrl-C' })
    .option('port', { type: 'number', default: 8080, describe: 'dashboard port on 127.0.0.1' })
    .option('hz', { type: 'number', default: 50, describe: 'sensor sample rate' });
  return withBackendOption(withOptions);
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { runDemo } = await import('../demo.js');
    const { resolveModel } = await import('../model-source.js');
    if (!(args.seconds > 0)) throw new InputError(`--seconds ${args.seconds}`, { field: '--seconds', expected: 'a positive number' });
    const { bytes, file, bundle } = await resolveModel(args.bundle);
    await runDemo({
      bundle: file,
      bytes,
      manifest: bundle && { name: bundle.manifest.name, version: bundle.manifest.version },
      seconds: args.forever ? undefined : args.seconds,
      port: args.port,
      hz: args.hz,
      out: process.stdout,
      backend: backendChoice(args),
    });
  });
}
