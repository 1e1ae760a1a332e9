import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { fleetStatus, inventoryHosts } from '../../fleet/deploy.js';
import { emit, guarded, type GlobalArgs } from '../output.js';
import { hostTable } from './deploy.js';

export const command = 'fleet <action>';
export const describe = 'Fleet-wide queries over an Ansible inventory: status';

interface Args extends GlobalArgs {
  action: 'status';
  inventory: string;
  timeout: number;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .positional('action', { choices: ['status'] as const, demandOption: true })
    .option('inventory', { type: 'string', demandOption: true, describe: 'Ansible inventory (hosts.yml)' })
    .option('timeout', { type: 'number', default: 10, describe: 'SSH connection timeout per host, seconds' }) as unknown as Argv<Args>;
}

export async function handler(args: ArgumentsCamelCase<Args>): Promise<void> {
  await guarded(args, async () => {
    const inventory = resolve(args.inventory);
    const hosts = await fleetStatus({ inventory, hosts: await inventoryHosts(inventory), timeoutS: args.timeout });
    emit(args, { hosts }, () => hostTable(hosts));
    if (hosts.some((h) => h.status !== 'ok')) process.exitCode = 1;
  });
}
