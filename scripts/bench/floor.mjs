#!/usr/bin/env node
/**
 * Where a step's time goes, and how far beyond one thread the pool goes (`npm run bench`).
 *
 * 1. One stream, batch 1, side by side in interleaved rounds: onnxruntime's own kernel time
 *    (its profiler: the sum of the graph's node times per run), the native session called
 *    synchronously with no JavaScript around it, onnxruntime-node's public `session.run`
 *    (what "bare" means elsewhere), StreamPool.push, and onnxruntime-web (WASM) both ways.
 * 2. Many streams: stream-steps/s through `pushMany` with the session in this thread, in one
 *    worker, in two workers, and with two intra-op threads, each call awaited and with two calls
 *    in flight (as in a daemon, where readings keep coming); bare batched `session.run` alongside.
 *
 *   node --expose-gc scripts/bench/floor.mjs [--quick] [--model step.onnx]
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StreamPool } from '../../dist/runtime/pool.js';
import { readModelInfo } from '../../dist/runtime/step-model.js';

const require = createRequire(import.meta.url);

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** Feeds for `rows` rows of a step model: every input filled with 0.1 (state included). */
function feedsFor(ort, info, rows) {
  const feeds = {};
  for (const i of info.inputs) {
    const dims = i.dims.map((d, k) => (k === 0 ? rows : typeof d === 'number' ? d : 1));
    feeds[i.name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.1), dims);
  }
  return feeds;
}

/** µs per call of `fn` over `n` calls (after a short warm-up). */
async function perCall(fn, n) {
  for (let i = 0; i < Math.min(100, n); i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return ((performance.now() - t0) * 1000) / n;
}

/** onnxruntime's profiler over `n` runs: mean node (kernel) time and mean run time per call, µs. */
async function kernelProfile(ort, bytes, info, n) {
  const dir = await mkdtemp(join(tmpdir(), 'streamcell-prof-'));
  try {
    const s = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      enableProfiling: true,
      profileFilePrefix: join(dir, 'ort'),
    });
    const feeds = feedsFor(ort, info, 1);
    for (let i = 0; i < 200; i++) await s.run(feeds);
    for (let i = 0; i < n; i++) await s.run(feeds);
    s.endProfiling();
    await s.release();
    const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
    const events = JSON.parse(await readFile(join(dir, file), 'utf8'));
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(-n);
    const firstTs = runs[0].ts;
    const nodes = events.filter((e) => e.cat === 'Node' && e.ts >= firstTs);
    const byOp = {};
    for (const e of nodes) byOp[e.args?.op_name ?? '?'] = (byOp[e.args?.op_name ?? '?'] ?? 0) + e.dur / runs.length;
    return {
      nodeUs: nodes.reduce((a, e) => a + e.dur, 0) / runs.length,
      runUs: runs.reduce((a, e) => a + e.dur, 0) / runs.length,
      byOpUs: byOp,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run({ quick = false, model } = {}) {
  const bytes = model ?? (await readFile(process.argv[process.argv.indexOf('--model') + 1]));
  const info = readModelInfo(bytes);
  const ortNode = require('onnxruntime-node');
  const ortWeb = require('onnxruntime-web');
  ortWeb.env.wasm.numThreads = 1;
  const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };

  // ---- 1. one stream ----
  const pub = await ortNode.InferenceSession.create(bytes, opts);
  let native;
  try {
    // The native session as onnxruntime-node's own handler drives it, minus the setImmediate
    // and the JavaScript wrapping: the floor a JavaScript caller can reach.
    const { binding, initOrt } = require(join(require.resolve('onnxruntime-node'), '..', 'binding.js'));
    initOrt();
    native = new binding.InferenceSession();
    native.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, opts);
  } catch {
    native = undefined;
  }
  const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const poolNode = await StreamPool.create(bytes, { backend: 'onnxruntime-node' });
  const poolWeb = await StreamPool.create(bytes, { backend: 'onnxruntime-web' });
  const nodeFeeds = feedsFor(ortNode, info, 1);
  const webFeeds = feedsFor(ortWeb, info, 1);
  const fetches = Object.fromEntries(pub.outputNames.map((n) => [n, null]));
  const x = new Float32Array(info.sampleInputs.reduce((a, i) => a + i.dims.slice(1).reduce((p, d) => p * (typeof d === 'number' ? d : 1), 1), 0)).fill(0.1);
  const variants = {
    nativeSync: native ? () => native.run(nodeFeeds, fetches, {}) : undefined,
    nodeRun: () => pub.run(nodeFeeds),
    nodePool: () => poolNode.push('s', x),
    webRun: () => web.run(webFeeds),
    webPool: () => poolWeb.push('s', x),
  };
  const samples = {};
  const rounds = quick ? 5 : 15;
  const n = quick ? 300 : 1000;
  for (let r = 0; r < rounds; r++) {
    for (const [k, fn] of Object.entries(variants)) if (fn) (samples[k] ??= []).push(await perCall(fn, n));
    if (r % 5 === 4) {
      poolNode.reset('s');
      poolWeb.reset('s');
    }
  }
  const step = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const profile = await kernelProfile(ortNode, bytes, info, quick ? 300 : 2000);
  await Promise.all([pub.release(), web.release(), poolNode.close(), poolWeb.close()]);
  native?.dispose?.();

  // ---- 2. many streams ----
  const setups = {
    'this thread': {},
    '1 worker': { workers: 1 },
    '2 workers': { workers: 2 },
    '2 intra-op threads': { session: { intraOpThreads: 2 } },
  };
  const pools = {};
  for (const [k, o] of Object.entries(setups)) pools[k] = await StreamPool.create(bytes, { backend: 'onnxruntime-node', ...o });
  const bare = await ortNode.InferenceSession.create(bytes, opts);
  const many = [];
  for (const streams of [256, 1024]) {
    const ids = Array.from({ length: streams }, (_, i) => `s${i}`);
    const flat = new Float32Array(streams * poolNode.sampleSize).fill(0.1);
    const bareFeeds = feedsFor(ortNode, info, 256);
    const R = quick ? 10 : 40;
    const res = {};
    const bareRound = async () => {
      for (let done = 0; done < streams; done += 256) await bare.run(bareFeeds);
    };
    for (let r = 0; r < (quick ? 3 : 7); r++) {
      for (const [k, p] of Object.entries(pools)) {
        for (let i = 0; i < 3; i++) await p.pushMany(ids, flat);
        let t0 = performance.now();
        for (let i = 0; i < R; i++) await p.pushMany(ids, flat);
        (res[k] ??= []).push((streams * R) / ((performance.now() - t0) / 1000));
        // As a daemon sees it: the next readings arrive while a round computes (two calls in flight).
        t0 = performance.now();
        let prev = p.pushMany(ids, flat);
        for (let i = 1; i < R; i++) {
          const next = p.pushMany(ids, flat);
          await prev;
          prev = next;
        }
        await prev;
        (res[`${k}, 2 in flight`] ??= []).push((streams * R) / ((performance.now() - t0) / 1000));
      }
      for (let i = 0; i < 3; i++) await bareRound();
      const t0 = performance.now();
      for (let i = 0; i < R; i++) await bareRound();
      (res.bare ??= []).push((streams * R) / ((performance.now() - t0) / 1000));
    }
    many.push({ streams, streamStepsPerSec: Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)])) });
  }
  await Promise.all([...Object.values(pools).map((p) => p.close()), bare.release()]);

  const best = Math.max(
    ...many.flatMap((m) =>
      Object.entries(m.streamStepsPerSec)
        .filter(([k]) => k !== 'bare')
        .map(([, v]) => v),
    ),
  );
  const json = { cpus: cpus().length, step, profile, many, goals: { streamStepsPerSec: 1e6, met: best >= 1e6, best } };
  const us = (v) => (v === undefined ? '–' : `${v.toFixed(1)} µs`);
  const lines = [
    'Where one step goes (LSTM-64 step model, batch 1, µs per call, medians of interleaved rounds):',
    `  onnxruntime kernels (profiler, sum of node times) ${us(profile.nodeUs)} of ${us(profile.runUs)} per run — ${Object.entries(profile.byOpUs)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}`,
    `  native session, called synchronously              ${us(step.nativeSync)}`,
    `  onnxruntime-node session.run (bare)               ${us(step.nodeRun)}`,
    `  StreamPool.push, onnxruntime-node                 ${us(step.nodePool)}  (${(step.nodePool / step.nodeRun).toFixed(2)}× bare)`,
    `  onnxruntime-web session.run (WASM)                ${us(step.webRun)}  (${(step.webRun / step.nodeRun).toFixed(2)}× node)`,
    `  StreamPool.push, onnxruntime-web                  ${us(step.webPool)}`,
    `Beyond one thread (pushMany, stream-steps/s, ${cpus().length} cores):`,
    ...many.map(
      (m) =>
        `  ${m.streams} streams: ${Object.entries(m.streamStepsPerSec)
          .map(([k, v]) => `${k} ${Math.round(v / 1000)}k`)
          .join(', ')}`,
    ),
    `  best ${Math.round(best / 1000)}k (goal ≥ 1,000k: ${best >= 1e6 ? 'OK' : 'MISSED'})`,
  ];
  return { json, lines };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { lines } = await run({ quick: process.argv.includes('--quick') });
  console.log(lines.join('\n'));
}
