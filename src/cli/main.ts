#!/usr/bin/env node
/**
 * streamcell CLI entry. Each subcommand is a module under ./commands exporting
 * command/describe/builder/handler; handlers are thin and call the library.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type MiddlewareFunction } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { InputError } from '../errors.js';
import { VERSION } from '../version.js';
import { reportError } from './output.js';
import * as benchCmd from './commands/bench.js';
import * as bundleCmd from './commands/bundle.js';
import * as demoCmd from './commands/demo.js';
import * as deployCmd from './commands/deploy.js';
import * as deviceCmd from './commands/device.js';
import * as fleetCmd from './commands/fleet.js';
import * as keygenCmd from './commands/keygen.js';
import * as exportCmd from './commands/export.js';
import * as forecastCmd from './commands/forecast.js';
import * as inspectCmd from './commands/inspect.js';
import * as quantizeCmd from './commands/quantize.js';
import * as runCmd from './commands/run.js';
import * as streamCmd from './commands/stream.js';
import * as streamifyCmd from './commands/streamify.js';
import * as trainCmd from './commands/train.js';
import * as verifyCmd from './commands/verify.js';

/** Builds the CLI parser; tests call `.parseAsync(argv)` on it. */
export function cli(argv: string[]) {
  return yargs(argv)
    .scriptName('streamcell')
    .version(VERSION)
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of text', global: true })
    .command(demoCmd)
    .command(trainCmd)
    .command(exportCmd)
    .command(inspectCmd)
    .command(streamifyCmd)
    .command(benchCmd)
    .command(quantizeCmd)
    .command(verifyCmd)
    .command(forecastCmd)
    .command(runCmd)
    .command(streamCmd)
    .command(keygenCmd)
    .command(bundleCmd)
    .command(deviceCmd)
    .command(deployCmd)
    .command(fleetCmd)
    .middleware(
      ((argv: Record<string, unknown>, y: { getOptions(): { array: string[] } }) => {
        // yargs turns a single-valued option given twice into an array; refuse it by name.
        const arrays = new Set(y.getOptions().array);
        for (const [k, v] of Object.entries(argv)) {
          if (k !== '_' && Array.isArray(v) && !arrays.has(k) && /^[a-z]/.test(k) && !/[A-Z]/.test(k)) {
            throw new InputError(`option --${k} is given ${v.length} times (${v.map((x) => JSON.stringify(x)).join(', ')})`, {
              field: `--${k}`,
              expected: 'one value',
            });
          }
        }
      }) as unknown as MiddlewareFunction,
      true,
    )
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .fail((msg, err) => {
      throw err ?? new InputError(`${msg}\nRun 'streamcell --help' for usage.`, { expected: 'a valid command line' });
    })
    .help();
}

/** Runs the CLI on `process.argv`-shaped arguments (bin.js calls it after its Node version check). */
export async function main(processArgv: string[]): Promise<void> {
  const argv = hideBin(processArgv);
  try {
    await cli(argv).parseAsync();
  } catch (e) {
    reportError({ json: argv.includes('--json') }, e);
  }
}

// Run when executed directly (node dist/cli/main.js), not when imported by tests or bin.js.
function isMain(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}
if (isMain()) await main(process.argv);
