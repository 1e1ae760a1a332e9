/**
 * Builds the tfjs model for an `--arch` and saves it as a LayersModel (model.json +
 * weights.bin).
 *
 * tfjs 4.22 cannot run Conv1D with padding 'causal' (it throws at predict). Training therefore
 * uses a zero left-pad layer followed by a 'valid' Conv1D, which computes exactly the causal
 * convolution; on save the pad layer is folded back into the Conv1D as padding 'causal', the
 * Keras form that the exporter converts and the streamify pass turns into a ring buffer. The
 * saved model is then checked by `streamcell export` against the float64 reference (tfjs can
 * load but not run it).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayersModel, Sequential, Tensor } from '@tensorflow/tfjs';
import type { Tf } from '../export/tfjs-backend.js';
import { isRecurrent, type ArchLayer } from './arch.js';
import { mkdirp } from '../mkdirp.js';

export interface ModelSpec {
  arch: ArchLayer[];
  task: 'forecast' | 'classify';
  channels: number;
  /** forecast: 1; classify: number of classes. */
  outputs: number;
  seed: number;
  dropout: number;
  /**
   * Fixed first layer 'diff' (causal Conv1D, kernel 2, no bias, not trainable): a kernel
   * [2, channels, channels] that passes some channels through and turns others into scaled
   * first differences. The model's inputs stay the plain normalised channels.
   */
  diffKernel?: Float32Array;
}

const PAD_CLASS = 'StreamcellCausalPad1D';

type Shape = (number | null)[];

/** A zero left-pad over time; stands in for Conv1D padding 'causal' during training. */
function causalPadLayer(tf: Tf, pad: number, name: string, inputShape?: Shape) {
  class CausalPad1D extends tf.layers.Layer {
    static className = PAD_CLASS;
    constructor() {
      super({ name, ...(inputShape ? { inputShape: inputShape as number[] } : {}) });
    }
    override computeOutputShape(s: Shape | Shape[]): Shape {
      const shape = s as Shape;
      return [shape[0]!, shape[1] === null ? null : shape[1]! + pad, shape[2]!];
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      return tf.pad(x, [
        [0, 0],
        [pad, 0],
        [0, 0],
      ]);
    }
    override getConfig() {
      return { ...super.getConfig(), pad };
    }
  }
  return new CausalPad1D();
}

/**
 * The sequential model: [diff] → conv1d… → recurrent… → dense… → output ('delta', linear, for
 * forecasts; 'classes', softmax, for classification). Every initializer is seeded.
 */
export function buildModel(tf: Tf, spec: ModelSpec): Sequential {
  let seed = spec.seed;
  const glorot = () => tf.initializers.glorotUniform({ seed: seed++ });
  const orthogonal = () => tf.initializers.orthogonal({ seed: seed++, gain: 1 });
  const counts: Record<string, number> = {};
  const nameOf = (base: string) => {
    counts[base] = (counts[base] ?? 0) + 1;
    return counts[base] === 1 ? base : `${base}_${counts[base]}`;
  };
  const model = tf.sequential({ name: spec.task === 'forecast' ? 'streamcell_forecast' : 'streamcell_classify' });
  const inputShape: Shape = [null, spec.channels];
  const first = () => (model.layers.length === 0 ? { inputShape: inputShape as number[] } : {});
  const dropout = () => {
    if (spec.dropout > 0) model.add(tf.layers.dropout({ rate: spec.dropout, name: nameOf('dropout') }));
  };
  const C = spec.channels;
  if (spec.diffKernel) {
    model.add(causalPadLayer(tf, 1, 'diff_pad', inputShape));
    const diff = tf.layers.conv1d({ filters: C, kernelSize: 2, padding: 'valid', useBias: false, trainable: false, name: 'diff' });
    model.add(diff);
    diff.setWeights([tf.tensor3d(spec.diffKernel, [2, C, C])]);
  }
  const lastRec = spec.arch.reduce((last, l, i) => (isRecurrent(l) ? i : last), -1);
  spec.arch.forEach((l, i) => {
    if (l.kind === 'conv1d') {
      const name = nameOf('conv1d');
      const pad = l.kernel - 1;
      if (pad > 0) model.add(causalPadLayer(tf, pad, `${name}_pad`, model.layers.length === 0 ? inputShape : undefined));
      model.add(
        tf.layers.conv1d({
          filters: l.filters,
          kernelSize: l.kernel,
          padding: 'valid',
          activation: 'relu',
          name,
          kernelInitializer: glorot(),
          ...first(),
        }),
      );
    } else if (isRecurrent(l)) {
      const common = {
        units: l.units,
        returnSequences: i < lastRec,
        kernelInitializer: glorot(),
        recurrentInitializer: orthogonal(),
        ...first(),
      };
      if (l.kind === 'lstm') model.add(tf.layers.lstm({ ...common, name: nameOf('lstm') }));
      else if (l.kind === 'gru') model.add(tf.layers.gru({ ...common, name: nameOf('gru') }));
      else model.add(tf.layers.simpleRNN({ ...common, name: nameOf('rnn') }));
      dropout();
    } else {
      model.add(tf.layers.dense({ units: l.units, activation: 'relu', kernelInitializer: glorot(), name: nameOf('dense') }));
      dropout();
    }
  });
  model.add(
    spec.task === 'forecast'
      ? tf.layers.dense({ units: 1, name: 'delta', kernelInitializer: glorot() })
      : tf.layers.dense({ units: spec.outputs, activation: 'softmax', name: 'classes', kernelInitializer: glorot() }),
  );
  return model;
}

/**
 * The model rolled out `steps` times in one graph, for multi-step training (`rolloutLoss`):
 * step j runs `model` on the window, turns its output into the next sample as streaming does
 * (target channel 0 += (outMean + outStd · y) / targetStd in normalised units; the other
 * channels held at their last value), slides the window and feeds it on. Outputs
 * [batch, steps], the model's output at each step; weights are the model's own (shared).
 */
export function rolloutModel(tf: Tf, model: LayersModel, o: { steps: number; window: number; channels: number; add: number; scale: number }): LayersModel {
  const C = o.channels;
  const W = o.window;
  const onehot = Array.from({ length: C }, (_, c) => (c === 0 ? 1 : 0));
  class RolloutStep extends tf.layers.Layer {
    static className = 'StreamcellRolloutStep';
    override computeOutputShape(s: Shape | Shape[]): Shape {
      return (s as Shape[])[0]!;
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      // No tidy here: the tape keeps these tensors for the backward pass (fit disposes them per batch).
      const [win, y] = inputs as Tensor[];
      const last = tf.slice(win!, [0, W - 1, 0], [-1, 1, C]);
      const step = tf.mul(tf.add(tf.mul(y!, o.scale), o.add), tf.tensor1d(onehot)).reshape([-1, 1, C]);
      return tf.concat([tf.slice(win!, [0, 1, 0], [-1, W - 1, C]), tf.add(last, step)], 1);
    }
  }
  const input = tf.input({ shape: [W, C] });
  let win = input;
  const ys = [];
  for (let j = 0; j < o.steps; j++) {
    const y = model.apply(win) as ReturnType<typeof tf.input>;
    ys.push(y);
    if (j < o.steps - 1) win = new RolloutStep({ name: `rollout_${j}` }).apply([win, y]) as ReturnType<typeof tf.input>;
  }
  return tf.model({ inputs: input, outputs: ys.length === 1 ? ys[0]! : (tf.layers.concatenate({ axis: -1 }).apply(ys) as ReturnType<typeof tf.input>) });
}

/**
 * A fitted AR(p) as a tfjs model the export → streamify → bundle path takes like any trained
 * model. Two causal Conv1Ds: a fixed one (not trainable) that turns the last p samples of each
 * channel into the newest sample and its differences from the p − 1 before it, then a
 * kernel-1 one with the coefficients re-expressed on those (Σ w on the newest, w on each
 * difference) and the bias — the same linear function, but on level series (where the fit's
 * coefficients are large and of alternating sign) without the cancellation that made float32
 * results depend on the summation order. Last, an identity SimpleRNN(1) (kernel 1, recurrent
 * 0, linear) returns the last step, named like the forecasters' output ('delta'). Streamified,
 * the first convolution keeps the last p − 1 samples in a ring buffer.
 */
export function buildArModel(tf: Tf, m: { p: number; channels: number; weights: Float64Array; bias: number }): Sequential {
  const C = m.channels;
  const p = m.p;
  const inputShape: Shape = [null, C];
  const model = tf.sequential({ name: `ar${p}` });
  // Lag-difference kernel [p, C, p·C]: output (L, c) = x[t, c] for L = 0, x[t − L, c] − x[t, c] for L ≥ 1.
  const lagKernel = new Float32Array(p * C * p * C);
  const at = (q: number, c: number, o: number) => (q * C + c) * p * C + o;
  const coef = new Float32Array(p * C);
  for (let c = 0; c < C; c++) {
    lagKernel[at(p - 1, c, c)] = 1;
    let sum = 0;
    for (let L = 0; L < p; L++) sum += m.weights[(p - 1 - L) * C + c]!;
    coef[c] = sum;
    for (let L = 1; L < p; L++) {
      lagKernel[at(p - 1 - L, c, L * C + c)] = 1;
      lagKernel[at(p - 1, c, L * C + c)] = -1;
      coef[L * C + c] = m.weights[(p - 1 - L) * C + c]!;
    }
  }
  if (p > 1) model.add(causalPadLayer(tf, p - 1, 'ar_lags_pad', inputShape));
  const lags = tf.layers.conv1d({
    filters: p * C,
    kernelSize: p,
    padding: 'valid',
    useBias: false,
    trainable: false,
    name: 'ar_lags',
    ...(p > 1 ? {} : { inputShape: inputShape as number[] }),
  });
  model.add(lags);
  lags.setWeights([tf.tensor3d(lagKernel, [p, C, p * C])]);
  const ar = tf.layers.conv1d({ filters: 1, kernelSize: 1, padding: 'valid', useBias: true, name: 'ar' });
  model.add(ar);
  ar.setWeights([tf.tensor3d(coef, [1, p * C, 1]), tf.tensor1d([m.bias])]);
  const last = tf.layers.simpleRNN({ units: 1, activation: 'linear', returnSequences: false, name: 'delta' });
  model.add(last);
  last.setWeights([tf.tensor2d([[1]]), tf.tensor2d([[0]]), tf.tensor1d([0])]);
  return model;
}

export function countParameters(model: LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}

interface TopologyLayer {
  class_name: string;
  config: Record<string, unknown>;
}

/** Folds each pad layer into the Conv1D after it as padding 'causal' (see the file comment). */
export function foldCausalPads(topology: unknown): unknown {
  const t = structuredClone(topology) as { class_name: string; config: { layers: TopologyLayer[] } };
  const layers = t.config.layers;
  const out: TopologyLayer[] = [];
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    if (l.class_name !== PAD_CLASS) {
      out.push(l);
      continue;
    }
    const conv = layers[i + 1];
    if (!conv || conv.class_name !== 'Conv1D') throw new Error(`internal: ${PAD_CLASS} '${String(l.config.name)}' is not followed by a Conv1D`);
    conv.config.padding = 'causal';
    if (l.config.batch_input_shape) conv.config.batch_input_shape = l.config.batch_input_shape;
  }
  t.config.layers = out;
  return t;
}

export interface SavedModel {
  modelJson: string;
  weightsBin: string;
  weightBytes: Uint8Array;
}

/** Writes `dir/model.json` and `dir/weights.bin` (one shard), causal pads folded. */
export async function saveModel(tf: Tf, model: LayersModel, dir: string): Promise<SavedModel> {
  await mkdirp(dir);
  const modelJson = join(dir, 'model.json');
  const weightsBin = join(dir, 'weights.bin');
  let weightBytes = new Uint8Array(0);
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const parts = a.weightData === undefined ? [] : Array.isArray(a.weightData) ? a.weightData : [a.weightData];
      weightBytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let o = 0;
      for (const p of parts) {
        weightBytes.set(new Uint8Array(p), o);
        o += p.byteLength;
      }
      await writeFile(weightsBin, weightBytes);
      await writeFile(
        modelJson,
        JSON.stringify(
          {
            format: 'layers-model',
            generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers} (streamcell train)`,
            convertedBy: null,
            modelTopology: foldCausalPads(a.modelTopology),
            weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
          },
          null,
          1,
        ),
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return { modelJson, weightsBin, weightBytes };
}
