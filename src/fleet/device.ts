/**
 * The device side of fleet deployment: a store of verified bundles under a root directory,
 * atomic activation (symlink swap), a service restart, a health check with a deadline and an
 * automatic return to the previous bundle when it fails. Only bundles signed by the pinned key
 * (`ROOT/trusted.pub`) are installed.
 *
 *   ROOT/trusted.pub          pinned Ed25519 public key
 *   ROOT/bundles/<id>/        verified copies, the newest `keep` kept (never the active one):
 *                             real directories holding the manifest, its signature and the
 *                             regular files it lists, nothing else (never a symlink)
 *   ROOT/bundles/.<id>.<pid>.tmp   an install in progress (removed on failure, or by the next
 *                             install when its process is gone)
 *   ROOT/current -> bundles/<id>
 *   ROOT/state.json           { active, previous }
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, readlink, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CheckFailedError, InputError } from '../errors.js';
import { copyBundle, loadPublicKey, verifyBundle } from '../bundle/bundle.js';
import { bundleId, MANIFEST } from '../bundle/manifest.js';
import { mkdirp } from '../mkdirp.js';

const run = promisify(execFile);

export interface DeviceOptions {
  root: string;
  /** Bundles kept besides the active one (default 3). */
  keep?: number;
  /** Shell command that restarts the daemon; default: systemctl restart streamcell where systemd runs, else none. */
  restart?: string;
  healthUrl?: string;
  /** Seconds the new bundle has to answer /healthz with 200 (default 30). */
  deadlineS?: number;
}

interface State {
  active: string | null;
  previous: string | null;
}

export class DeviceStore {
  readonly root: string;
  constructor(private readonly opts: DeviceOptions) {
    this.root = resolve(opts.root);
  }

  private get bundles(): string {
    return join(this.root, 'bundles');
  }

  private async state(): Promise<State> {
    try {
      return JSON.parse(await readFile(join(this.root, 'state.json'), 'utf8')) as State;
    } catch {
      return { active: null, previous: null };
    }
  }

  private async saveState(s: State): Promise<void> {
    const tmp = join(this.root, `.state.${process.pid}.json`);
    await writeFile(tmp, JSON.stringify(s, null, 2) + '\n');
    await rename(tmp, join(this.root, 'state.json'));
  }

  /** Pins the public key bundles must be signed with. */
  async trust(keyFile: string): Promise<void> {
    const pem = await readFile(resolve(keyFile), 'utf8').catch(() => {
      throw new InputError('cannot read the public key', { file: resolve(keyFile), expected: 'a PEM public key (streamcell keygen)' });
    });
    loadPublicKey(pem, resolve(keyFile));
    await mkdirp(this.bundles);
    await writeFile(join(this.root, 'trusted.pub'), pem, { mode: 0o644 });
  }

  private async key() {
    const file = join(this.root, 'trusted.pub');
    const pem = await readFile(file, 'utf8').catch(() => {
      throw new InputError('no public key is pinned on this device: only signed bundles are installed', {
        file,
        expected: 'streamcell device trust streamcell.pub',
      });
    });
    return loadPublicKey(pem, file);
  }

  /**
   * Verifies (signature and checksums) and stores a bundle; returns its id and the entries of
   * the source folder the manifest does not list (not copied). Changes nothing else. Only the
   * listed regular files are copied (a symlinked bundle folder is copied, not linked), each
   * checked as it is copied, and the copy is verified again before it is renamed into place.
   */
  async install(bundleDir: string): Promise<{ id: string; ignored: string[] }> {
    const key = await this.key();
    await mkdirp(this.bundles);
    await this.cleanOrphans();
    const given = resolve(bundleDir);
    let src: string;
    try {
      src = await realpath(given);
    } catch (e) {
      throw new InputError(`not a bundle: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        file: given,
        expected: 'a directory written by streamcell bundle',
      });
    }
    if (!(await lstat(src)).isDirectory())
      throw new InputError('not a bundle: not a directory', { file: given, expected: 'a directory written by streamcell bundle' });
    // The name is only known from the manifest: stage under a pid-named folder first.
    const tmp = join(this.bundles, `.install.${process.pid}.tmp`);
    await rm(tmp, { recursive: true, force: true });
    try {
      const copied = await copyBundle(src, tmp, { publicKey: key });
      const b = await verifyBundle(tmp, { publicKey: key }); // the copy, as it lies in the store
      const id = bundleId(b.manifest);
      const dest = join(this.bundles, id);
      const st = await this.state();
      if (st.active === id) {
        // The same bundle again is a no-op (a rollout re-run); the same version with other content is not.
        const same = (await readFile(join(dest, MANIFEST), 'utf8').catch(() => '')) === (await readFile(join(tmp, MANIFEST), 'utf8'));
        if (same) return { id, ignored: copied.ignored };
        throw new InputError(`bundle ${id} is active with different content; give the new bundle a new version`, {
          file: join(given, MANIFEST),
          field: 'version',
          expected: 'a version not already active',
        });
      }
      await rm(dest, { recursive: true, force: true });
      await rename(tmp, dest);
      await this.prune();
      return { id, ignored: copied.ignored };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Removes `.tmp` folders left in bundles/ by installs whose process is gone (killed mid-copy). */
  private async cleanOrphans(): Promise<void> {
    for (const name of await readdir(this.bundles)) {
      const m = /^\..*\.(\d+)\.tmp$/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      let alive = pid !== process.pid;
      if (alive) {
        try {
          process.kill(pid, 0);
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (!alive) await rm(join(this.bundles, name), { recursive: true, force: true });
    }
  }

  private async prune(): Promise<void> {
    const st = await this.state();
    const keep = this.opts.keep ?? 3;
    const entries = await Promise.all((await this.list()).map(async (id) => ({ id, t: (await lstat(join(this.bundles, id))).mtimeMs })));
    const removable = entries.filter((e) => e.id !== st.active && e.id !== st.previous).sort((a, b) => b.t - a.t);
    for (const e of removable.slice(keep)) await rm(join(this.bundles, e.id), { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    if (!existsSync(this.bundles)) return [];
    // Installed bundles are real directories; anything else (a stray file or link) is not one.
    const names = (await readdir(this.bundles)).filter((n) => !n.startsWith('.'));
    const dirs = await Promise.all(names.map(async (n) => ((await lstat(join(this.bundles, n)).catch(() => undefined))?.isDirectory() ? n : undefined)));
    return dirs.filter((n): n is string => n !== undefined).sort();
  }

  private async point(id: string): Promise<void> {
    const tmp = join(this.root, `.current.${process.pid}`);
    await rm(tmp, { force: true });
    await symlink(join('bundles', id), tmp);
    await rename(tmp, join(this.root, 'current')); // rename(2) replaces the link atomically
  }

  private async restart(): Promise<string> {
    const cmd = this.opts.restart ?? (existsSync('/run/systemd/system') ? 'systemctl restart streamcell.service' : undefined);
    if (!cmd) return 'no restart (no systemd; pass --restart CMD)';
    await run('/bin/sh', ['-c', cmd], { timeout: 60_000 });
    return cmd;
  }

  private async healthy(): Promise<{ ok: boolean; detail: string }> {
    const url = this.opts.healthUrl ?? 'http://127.0.0.1:8080/healthz';
    const deadline = Date.now() + (this.opts.deadlineS ?? 30) * 1000;
    let detail = 'no answer';
    while (Date.now() < deadline) {
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) return { ok: true, detail: '200' };
        // A token-mode daemon answers /healthz without the token to a loopback peer only.
        detail =
          r.status === 401
            ? 'HTTP 401: the daemon wants its token; /healthz answers without it only on 127.0.0.1, so point --health there'
            : `HTTP ${r.status}`;
      } catch (e) {
        detail = (e as Error).message;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    return { ok: false, detail };
  }

  /**
   * Activates an installed bundle; when the daemon does not become healthy before the deadline
   * the previous bundle is put back and restarted, and a CheckFailedError says why.
   */
  async activate(id: string): Promise<{ active: string; previous: string | null; restart: string }> {
    if (!(await this.list()).includes(id))
      throw new InputError(`bundle '${id}' is not installed`, { field: 'version', expected: `one of: ${(await this.list()).join(', ') || '(none)'}` });
    await verifyBundle(join(this.bundles, id), { publicKey: await this.key() });
    const st = await this.state();
    const before = st.active;
    await this.point(id);
    const restart = await this.restart();
    const h = await this.healthy();
    if (!h.ok) {
      if (before) await this.point(before);
      else await rm(join(this.root, 'current'), { force: true }); // nothing was active: leave nothing active
      await this.restart().catch(() => undefined);
      throw new CheckFailedError(
        `bundle ${id} failed its health check (${h.detail}) within ${this.opts.deadlineS ?? 30} s; ${before ? `rolled back to ${before}` : 'no previous bundle to return to'}`,
        { field: 'healthz' },
      );
    }
    await this.saveState({ active: id, previous: before && before !== id ? before : st.previous });
    await this.prune();
    return { active: id, previous: before, restart };
  }

  async rollback(): Promise<{ active: string; previous: string | null; restart: string }> {
    const st = await this.state();
    if (!st.previous) throw new InputError('there is no previous bundle to roll back to', { field: 'previous', expected: 'an earlier activation' });
    return this.activate(st.previous);
  }

  async status(): Promise<{ root: string; active: string | null; previous: string | null; current: string | null; installed: string[]; trusted: boolean }> {
    const st = await this.state();
    const current = await readlink(join(this.root, 'current')).catch(() => null);
    return { root: this.root, ...st, current, installed: await this.list(), trusted: existsSync(join(this.root, 'trusted.pub')) };
  }
}
