import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import type { HostResult } from '../../fleet/deploy.js';
import { emit, guarded, writeOutput, type ArgsOf } from '../output.js';

export const command = 'deploy';
export const describe = 'Roll a signed bundle out to a fleet with Ansible: canary first, then batches; stops and rolls back on failed health';

export function builder(y: Argv) {
  return y
    .option('bundle', { type: 'string', demandOption: true, describe: 'signed bundle directory' })
    .option('inventory', { type: 'string', demandOption: true, describe: 'Ansible inventory (hosts.yml)' })
    .option('canary', { type: 'string', describe: 'first batch: host count or percentage (e.g. 1 or 10%)' })
    .option('batch', { type: 'number', describe: 'hosts per batch after the canary (default: all the rest)' })
    .option('max-fail', { type: 'number', default: 0, describe: 'failed hosts tolerated per batch before the rollout stops' })
    .option('timeout', { type: 'number', default: 10, describe: 'SSH connection timeout per host, seconds' })
    .option('report', { type: 'string', describe: 'write the JSON report here' });
}

export function hostTable(hosts: HostResult[]): string {
  const w = Math.max(4, ...hosts.map((h) => h.host.length));
  return [
    `${'host'.padEnd(w)}  ${'status'.padEnd(11)}  detail`,
    ...hosts.map((h) => `${h.host.padEnd(w)}  ${h.status.padEnd(11)}  ${h.active ? `active ${h.active}; ` : ''}${h.detail}`),
  ].join('\n');
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { deploy, inventoryHosts } = await import('../../fleet/deploy.js');
    const inventory = resolve(args.inventory);
    const hosts = await inventoryHosts(inventory);
    const r = await deploy({ bundle: args.bundle, inventory, canary: args.canary, batch: args.batch, maxFail: args.maxFail, timeoutS: args.timeout, hosts });
    if (r.ignored.length) process.stderr.write(`streamcell: not shipped: ${r.ignored.length} file(s) the manifest does not list: ${r.ignored.join(', ')}\n`);
    if (args.report) await writeOutput(resolve(args.report), JSON.stringify(r, null, 2) + '\n', '--report');
    emit(args, r, () => `rollout of ${r.bundle} (batches ${r.plan.join(' → ')}): ${r.ok ? 'done' : 'STOPPED'}\n${hostTable(r.hosts)}`);
    if (!r.ok) process.exitCode = 1;
  });
}
