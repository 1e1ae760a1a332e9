import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { emit, guarded, type ArgsOf } from '../output.js';
import { hostTable } from './deploy.js';

export const command = 'fleet <action>';
export const describe = 'Fleet-wide queries over an Ansible inventory: status';

export function builder(y: Argv) {
  return y
    .positional('action', { choices: ['status'] as const, demandOption: true })
    .option('inventory', { type: 'string', demandOption: true, describe: 'Ansible inventory (hosts.yml)' })
    .option('timeout', { type: 'number', default: 10, describe: 'SSH connection timeout per host, seconds' });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { fleetStatus, inventoryHosts } = await import('../../fleet/deploy.js');
    const inventory = resolve(args.inventory);
    const hosts = await fleetStatus({ inventory, hosts: await inventoryHosts(inventory), timeoutS: args.timeout });
    emit(args, { hosts }, () => hostTable(hosts));
    if (hosts.some((h) => h.status !== 'ok')) process.exitCode = 1;
  });
}
