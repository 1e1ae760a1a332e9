import { fileURLToPath } from 'node:url';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { runDemo } from '../demo.js';
import { resolveModel } from '../model-source.js';
import { guarded, type GlobalArgs } from '../output.js';
import { backendChoice, withBackendOption, type BackendArgs } from '../backend-option.js';

export const command = 'demo';
export const describe = 'Stream a simulated accelerometer through the shipped activity model: live predictions, dashboard, ends by itself';

interface Args extends GlobalArgs, BackendArgs {
  bundle: string;
  seconds: number;
  forever: boolean;
  port: number;
  hz: number;
}

const SHIPPED = fileURLToPath(new URL('../../../models/imu-activity.bundle', import.meta.url));

export function builder(y: Argv): Argv<Args> {
  y = y
    .option('bundle', { type: 'string', default: SHIPPED, describe: 'bundle to run (default: the shipped activity classifier)' })
    .option('seconds', { type: 'number', default: 15, describe: 'how long to run' })
    .option('forever', { type: 'boolean', default: false, describe: 'keep running until Ctrl-C' })
    .option('port', { type: 'number', default: 8080, describe: 'dashboard port on 127.0.0.1' })
    .option('hz', { type: 'number', default: 50, describe: 'sensor sample rate' });
  return withBackendOption(y) as unknown as Argv<Args>;
}

export async function handler(args: ArgumentsCamelCase<Args>): Promise<void> {
  await guarded(args, async () => {
    if (!(args.seconds > 0)) throw new InputError(`--seconds ${args.seconds}`, { field: '--seconds', expected: 'a positive number' });
    const { bytes, file } = await resolveModel(args.bundle);
    await runDemo({ bundle: file, bytes, seconds: args.forever ? undefined : args.seconds, port: args.port, hz: args.hz, out: process.stdout, backend: backendChoice(args) });
  });
}
