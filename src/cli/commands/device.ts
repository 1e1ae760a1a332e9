import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { emit, guarded, type ArgsOf } from '../output.js';

export const command = 'device <action> [target]';
export const describe = 'Device side of deployment: trust KEY | install BUNDLE | activate ID | rollback | status | list';

export function builder(y: Argv) {
  return y
    .positional('action', { choices: ['trust', 'install', 'activate', 'rollback', 'status', 'list'] as const, demandOption: true })
    .positional('target', { type: 'string', describe: 'key file (trust), bundle directory (install) or bundle id (activate)' })
    .option('root', { type: 'string', default: process.env.STREAMCELL_ROOT ?? '/var/lib/streamcell', describe: 'device store directory' })
    .option('activate', { type: 'boolean', default: false, describe: 'install: activate right away' })
    .option('restart', { type: 'string', describe: 'command that restarts the daemon (default: systemctl restart streamcell where systemd runs)' })
    .option('health', { type: 'string', default: 'http://127.0.0.1:8080/healthz', describe: 'health URL checked after activation' })
    .option('deadline', { type: 'number', default: 30, describe: 'seconds to become healthy before rolling back' })
    .option('keep', { type: 'number', default: 3, describe: 'bundles kept besides the active and previous ones' });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { DeviceStore } = await import('../../fleet/device.js');
    const store = new DeviceStore({ root: args.root, restart: args.restart, healthUrl: args.health, deadlineS: args.deadline, keep: args.keep });
    const need = () => {
      if (!args.target)
        throw new InputError(`device ${args.action} needs a target`, {
          field: 'target',
          expected: args.action === 'trust' ? 'a public key file' : args.action === 'install' ? 'a bundle directory' : 'a bundle id (device list)',
        });
      return args.target;
    };
    switch (args.action) {
      case 'trust':
        await store.trust(need());
        return emit(args, { ok: true, trusted: need() }, () => `pinned ${need()}: only bundles signed with it will be installed`);
      case 'install': {
        const wasActive = (await store.status()).active;
        const { id, ignored } = await store.install(need());
        // Files the manifest does not list are neither copied nor trusted: say so.
        if (ignored.length)
          process.stderr.write(`streamcell: ignored ${ignored.length} file(s) the manifest does not list (not copied): ${ignored.join(', ')}\n`);
        // Re-deploying the active bundle changes nothing: no restart, no health gamble.
        const act =
          args.activate && wasActive !== id
            ? await store.activate(id)
            : args.activate
              ? { active: id, previous: null, restart: 'none (already active)' }
              : undefined;
        return emit(args, { ok: true, installed: id, ignored, activated: act }, () => `installed ${id}${act ? `; active (restart: ${act.restart})` : ''}`);
      }
      case 'activate': {
        const r = await store.activate(need());
        return emit(args, { ok: true, ...r }, () => `active: ${r.active} (previous ${r.previous ?? 'none'}; restart: ${r.restart})`);
      }
      case 'rollback': {
        const r = await store.rollback();
        return emit(args, { ok: true, ...r }, () => `rolled back: active ${r.active}`);
      }
      case 'status': {
        const s = await store.status();
        return emit(
          args,
          s,
          () =>
            `active ${s.active ?? 'none'} (previous ${s.previous ?? 'none'}); installed: ${s.installed.join(', ') || 'none'}; key ${s.trusted ? 'pinned' : 'NOT pinned'}`,
        );
      }
      case 'list': {
        const l = await store.list();
        return emit(args, { installed: l }, () => l.join('\n') || '(none)');
      }
    }
  });
}
