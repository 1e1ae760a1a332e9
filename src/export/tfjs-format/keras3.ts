/**
 * Keras 3 models converted by tensorflowjs 4.22 (`save_keras_model`, `--input_format keras`)
 * are written in shapes neither tfjs 4.22 nor a Keras-2-era reader accepts. This boundary
 * rewrites them into the Keras 2 wire shape, so the exporter and tfjs (for the parity check)
 * both read them:
 * - InputLayer `batch_shape` → `batch_input_shape`;
 * - `dtype` as a `DTypePolicy` object → its name;
 * - Functional `inbound_nodes` `[{args: [__keras_tensor__…], kwargs}]` → `[[[layer, node, index, {}], …]]`,
 *   and flat `input_layers`/`output_layers` (`["x", 0, 0]`, Keras ≥ 3.11) → nested;
 * - weight names: a Sequential's `<model name>/` prefix dropped; Bidirectional sub-layer weights
 *   written without the wrapper (`forward_lstm_1/lstm_cell/kernel`, after a `.keras` reload)
 *   moved under it; the forward layer's name `forward_X` → `X` (tfjs prefixes `forward_` itself).
 */
import { UnsupportedError } from '../../errors.js';
import type { JsonObject, JsonValue, LayerJson, ModelTopologyJson } from './types.js';

export interface Keras3Rewrite {
  /** The Keras version the file names, e.g. "3.15.1". */
  kerasVersion: string;
  /** What was rewritten, for the export report. */
  notes: string[];
  /** Old weight name → new one (only renamed weights). */
  renamed: Map<string, string>;
}

const isObj = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** True for a topology written by Keras 3 (its version, or shapes only Keras 3 writes). */
export function isKeras3(topo: ModelTopologyJson, kerasVersion?: string): boolean {
  if (kerasVersion) return /^3\./.test(kerasVersion);
  const layers = layerList(topo);
  return layers.some(
    (l) => (l.class_name === 'InputLayer' && isObj(l.config) && 'batch_shape' in l.config) || (Array.isArray(l.inbound_nodes) && l.inbound_nodes.some(isObj)),
  );
}

function layerList(topo: ModelTopologyJson): LayerJson[] {
  const cfg = topo.config;
  if (Array.isArray(cfg)) return cfg;
  return Array.isArray(cfg?.layers) ? (cfg.layers as unknown as LayerJson[]) : [];
}

/** `{module, class_name: 'DTypePolicy', config: {name}}` anywhere in a config → the name. */
function flattenDtypes(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(flattenDtypes);
  if (!isObj(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'dtype' && isObj(x) && /DTypePolicy$/.test(String(x.class_name)) && isObj(x.config) && typeof x.config.name === 'string') out[k] = x.config.name;
    else out[k] = flattenDtypes(x);
  }
  return out;
}

/** Keras 3 node `{args, kwargs}` → Keras 2 `[[layer, node, index, kwargs], …]`. */
function kerasTensors(v: JsonValue, out: JsonValue[]): void {
  if (Array.isArray(v)) v.forEach((x) => kerasTensors(x, out));
  else if (isObj(v) && v.class_name === '__keras_tensor__' && isObj(v.config) && Array.isArray(v.config.keras_history)) {
    const [layer, node, index] = v.config.keras_history as [string, number, number];
    out.push([layer, node, index, {}]);
  }
}

function nestKeys(v: JsonValue | undefined): JsonValue | undefined {
  return Array.isArray(v) && typeof v[0] === 'string' ? [v] : v;
}

/**
 * Rewrites a Keras 3 topology (in place) and returns the weight renames. `weightNames` are the
 * manifest's names, in order.
 */
export function rewriteKeras3(topo: ModelTopologyJson, weightNames: string[], kerasVersion: string): Keras3Rewrite {
  const notes: string[] = [];
  const renamed = new Map<string, string>();
  const names = new Set(weightNames);
  const rename = (from: string, to: string) => {
    renamed.set(from, to);
    names.delete(from);
    names.add(to);
  };
  const cfg = topo.config;
  const layers = layerList(topo);
  if (topo.class_name === 'Sequential' && isObj(cfg) && typeof cfg.name === 'string') {
    const prefix = `${cfg.name}/`;
    const n = weightNames.filter((w) => w.startsWith(prefix));
    // Only when every weight has it: a layer may itself be called like the model.
    if (n.length > 0 && n.length === weightNames.length) {
      for (const w of n) rename(w, w.slice(prefix.length));
      notes.push(`weight names without the Sequential prefix '${prefix}'`);
    }
  }
  for (const l of layers) {
    if (isObj(l.config)) l.config = flattenDtypes(l.config) as JsonObject;
    if (l.class_name === 'InputLayer' && isObj(l.config) && 'batch_shape' in l.config && !('batch_input_shape' in l.config)) {
      l.config.batch_input_shape = l.config.batch_shape!;
      delete l.config.batch_shape;
      notes.push(`InputLayer '${String(l.config.name)}': batch_shape read as batch_input_shape`);
    }
    if (Array.isArray(l.inbound_nodes) && l.inbound_nodes.some(isObj)) {
      l.inbound_nodes = l.inbound_nodes.map((node) => {
        if (!isObj(node)) return node;
        const refs: JsonValue[] = [];
        kerasTensors(node.args ?? [], refs);
        // Keyword tensors: initial_state follows the input, as Keras 2 wrote it; any other (mask=…)
        // would silently become an input of another meaning, so it is refused.
        for (const [k, v] of Object.entries(isObj(node.kwargs) ? node.kwargs : {})) {
          const found: JsonValue[] = [];
          kerasTensors(v, found);
          if (found.length === 0) continue;
          if (k !== 'initial_state') {
            throw new UnsupportedError(`layer '${String(l.config?.name ?? l.name)}' is called with a tensor as keyword argument '${k}'`, {
              supported: ['tensor arguments passed positionally, and initial_state'],
            });
          }
          refs.push(...found);
        }
        return refs;
      });
    }
    if (l.class_name === 'Bidirectional' && isObj(l.config)) {
      const bidi = String(l.config.name ?? l.name);
      const inner = l.config.layer;
      const back = l.config.backward_layer;
      const fwdName = isObj(inner) && isObj(inner.config) && typeof inner.config.name === 'string' ? inner.config.name : undefined;
      const bwdName = isObj(back) && isObj(back.config) && typeof back.config.name === 'string' ? back.config.name : undefined;
      for (const sub of [fwdName, bwdName]) {
        if (!sub) continue;
        for (const w of [...names]) if (w.startsWith(`${sub}/`)) rename(w, `${bidi}/${w}`);
      }
      if (fwdName && /^forward_/.test(fwdName) && isObj(inner) && isObj(inner.config)) {
        const plain = fwdName.replace(/^forward_/, '');
        inner.config.name = plain;
        // tfjs names the halves forward_<inner> / backward_<inner>; put every weight there.
        for (const w of [...names]) {
          const m = new RegExp(`^${bidi.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(forward|backward)_[^/]+/(.+)$`).exec(w);
          if (m) {
            const to = `${bidi}/${m[1]}_${plain}/${m[2]}`;
            if (to !== w) rename(w, to);
          }
        }
        notes.push(`Bidirectional '${bidi}': Keras 3 sub-layer names mapped to tfjs' forward_/backward_ ${plain}`);
      }
    }
  }
  if (isObj(cfg)) {
    for (const k of ['input_layers', 'output_layers'] as const) if (k in cfg) cfg[k] = nestKeys(cfg[k])!;
  }
  // Renames were recorded step by step; collapse chains (a → b → c) to a → c.
  const final = new Map<string, string>();
  for (const w of weightNames) {
    let to = w;
    for (let i = 0; i < 4 && renamed.has(to); i++) to = renamed.get(to)!;
    if (to !== w) final.set(w, to);
  }
  return { kerasVersion, notes: [...new Set(notes)], renamed: final };
}
