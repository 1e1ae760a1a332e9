/**
 * The native-backend probe. onnxruntime-node's binary can kill the process that loads it — an
 * illegal instruction on some Raspberry Pi images (onnxruntime issue 24112), a segfault where
 * its CPU detection reads an unexpected /proc/cpuinfo — and a daemon that dies at load restarts
 * under systemd forever. So before the first load, a child process loads it and runs one tiny
 * session; a child that dies by a signal, exits non-zero or hangs marks native unusable and the
 * caller moves on to WASM. The verdict is cached per (binary, Node, kernel, CPU) so that later
 * starts skip the child.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, release } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mkdirpSync } from '../mkdirp.js';

export interface ProbeResult {
  ok: boolean;
  /** Why native is unusable (when !ok). */
  reason?: string;
  /** Served from the cache file rather than a child process. */
  cached: boolean;
  /** The cache file, when one could be used. */
  cacheFile?: string;
  ms: number;
}

/** An ONNX model `y = x + x` (float32 [2]), written by hand: the probe must not import our encoder's dependencies. */
const TINY_MODEL = 'CAgSCnN0cmVhbWNlbGw6OQoOCgF4CgF4EgF5IgNBZGQSBXByb2JlWg8KAXgSCgoICAESBAoCCAJiDwoBeRIKCggIARIECgIIAkIECgAQEQ==';

const CHILD = `
const [binding, model] = process.argv.slice(1);
const ort = await import(binding);
const m = ort.InferenceSession ? ort : ort.default;
const s = await m.InferenceSession.create(Buffer.from(model, 'base64'), { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { mlas: { disable_kleidiai: '1' } } });
const r = await s.run({ x: new m.Tensor('float32', Float32Array.from([1, 2]), [2]) });
if (r.y.data[1] !== 4) throw new Error('wrong result ' + Array.from(r.y.data));
process.stdout.write('ok');
`;

function cacheDir(): string | undefined {
  if (process.env.STREAMCELL_STATE_DIR) return process.env.STREAMCELL_STATE_DIR;
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'streamcell');
  try {
    const h = homedir();
    return h && h !== '/' ? join(h, '.cache', 'streamcell') : undefined;
  } catch {
    return undefined;
  }
}

/** What the verdict depends on: the binary, Node, the kernel and the CPU as /proc/cpuinfo shows it. */
function probeKey(entry: string): string {
  const h = createHash('sha256');
  h.update(`${entry}\0${process.version}\0${process.arch}\0${release()}\0`);
  // The binaries themselves (size and mtime: hashing 25 MB would cost ~0.3 s per start on a Pi).
  const dir = join(dirname(dirname(entry)), 'bin');
  for (const sub of [`napi-v6/linux/${process.arch}`, `napi-v3/linux/${process.arch}`]) {
    for (const f of ['onnxruntime_binding.node', 'libonnxruntime.so.1']) {
      try {
        const st = statSync(join(dir, sub, f));
        h.update(`${sub}/${f}:${st.size}:${st.mtimeMs}\0`);
      } catch {
        /* not this layout */
      }
    }
  }
  // The CPU as the binary's detection sees it, without what changes from boot to boot (MHz, bogomips).
  try {
    const first = readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0] ?? '';
    h.update(
      first
        .split('\n')
        .filter((l) => /^(model name|flags|Features|CPU implementer|CPU architecture|CPU variant|CPU part|vendor_id|cpu family|model\s*:|Hardware)/.test(l))
        .join('\n'),
    );
  } catch {
    /* not Linux */
  }
  return h.digest('hex').slice(0, 32);
}

function readCache(file: string): Record<string, { ok: boolean; reason?: string }> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, { ok: boolean; reason?: string }>;
  } catch {
    return {};
  }
}

/** `transient`: the verdict may change on the next start (a timeout, an OOM kill): not remembered. */
function runChild(entry: string, timeoutMs: number): Promise<{ ok: boolean; reason?: string; transient?: boolean }> {
  return new Promise((done) => {
    let out = '';
    let err = '';
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, pathToFileURL(entry).href, TINY_MODEL], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      done({ ok: false, reason: `the probe could not start a child process: ${(e as Error).message}` });
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ ok: false, reason: `the probe could not start a child process: ${e.message}` });
    });
    // 'close', not 'exit': stdout is only complete once the streams have closed.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && out === 'ok') done({ ok: true });
      else if (timedOut) done({ ok: false, reason: `loading onnxruntime-node did not finish within ${timeoutMs} ms`, transient: true });
      else if (signal === 'SIGKILL') done({ ok: false, reason: 'the probe was killed (SIGKILL: out of memory?)', transient: true });
      else if (code === 0) done({ ok: false, reason: `the probe exited without its result (${JSON.stringify(out.slice(0, 80))})`, transient: true });
      else if (signal) done({ ok: false, reason: `loading onnxruntime-node killed the process with ${signal}` });
      else {
        const last =
          err
            .trim()
            .split('\n')
            .filter((l) => /Error|error/.test(l))
            .pop() ??
          err.trim().split('\n').pop() ??
          '';
        done({ ok: false, reason: `loading onnxruntime-node failed (exit ${code}): ${last.slice(0, 300)}` });
      }
    });
  });
}

let inProcess: Promise<ProbeResult> | undefined;

/**
 * Probes onnxruntime-node once per process (and once per machine, with the cache). Never throws.
 */
export function probeNative(opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
  inProcess ??= (async () => {
    const t0 = Date.now();
    let entry: string;
    try {
      entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    } catch (e) {
      return { ok: false, reason: `onnxruntime-node is not installed: ${(e as Error).message.split('\n')[0]}`, cached: false, ms: Date.now() - t0 };
    }
    const dir = cacheDir();
    const file = dir ? join(dir, 'native-probe.json') : undefined;
    const key = probeKey(entry);
    const hit = file ? readCache(file)[key] : undefined;
    if (hit) return { ...hit, cached: true, cacheFile: file, ms: Date.now() - t0 };
    const timeoutMs = opts.timeoutMs ?? (Number(process.env.STREAMCELL_PROBE_TIMEOUT_MS) || 60_000);
    const { transient, ...verdict } = await runChild(entry, timeoutMs);
    // A probe that could not start, timed out or was killed says nothing lasting about the binary.
    const remember = !transient && !/could not start a child process/.test(verdict.reason ?? '');
    if (file && remember) {
      try {
        mkdirpSync(dirname(file));
        // Only the newest few entries: an upgraded binary or kernel leaves its old key behind.
        const all = Object.fromEntries(
          Object.entries(readCache(file))
            .filter(([k]) => k !== key)
            .slice(-7),
        );
        all[key] = verdict;
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, JSON.stringify(all, null, 1));
        renameSync(tmp, file);
      } catch {
        /* a read-only home: probe again next time */
      }
    }
    return { ...verdict, cached: false, cacheFile: remember ? file : undefined, ms: Date.now() - t0 };
  })();
  return inProcess;
}
