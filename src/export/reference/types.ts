/** What a reference layer implementation sees, shared by every layer family. */
import { UnsupportedError } from '../../errors.js';
import type { JsonObject } from '../tfjs-format/types.js';
import type { LayerConfig, LayerSpec } from '../topology.js';
import type { NDArray } from './ndarray.js';

/** Explicit recurrent state of stateful layers, keyed `${layerName}.${kind}`. */
export interface StateStore {
  get(key: string): NDArray | undefined;
  set(key: string, value: NDArray): void;
}

export interface RefArgs {
  layer: LayerSpec;
  cfg: LayerConfig;
  inputs: NDArray[];
  /** Keyword arguments of the call (`initial_state`, `training`, `mask`, …). */
  kwargs: JsonObject;
  state: StateStore;
}

/** Computes one call of a layer; returns its outputs in Keras order. */
export type RefLayer = (args: RefArgs) => NDArray[];

export function who(layer: LayerSpec): { name: string; className: string } {
  return { name: layer.name, className: layer.className };
}

export function unsupported(layer: LayerSpec, message: string, field?: string, supported?: readonly string[]): UnsupportedError {
  return new UnsupportedError(message, { layer: who(layer), field, supported });
}

/** Refuses channels_first: every 1-D layer here is written for [batch, steps, channels]. */
export function requireChannelsLast(args: RefArgs): void {
  const fmt = args.cfg.raw('data_format');
  if (fmt !== undefined && fmt !== null && fmt !== 'channels_last') {
    throw unsupported(args.layer, `data_format=${JSON.stringify(fmt)} is not supported`, 'data_format', ['data_format=channels_last']);
  }
}

export function requireRank(args: RefArgs, x: NDArray, rank: number, what: string): void {
  if (x.shape.length !== rank) throw unsupported(args.layer, `expects a rank-${rank} input ${what}, got shape [${x.shape}]`, 'input shape');
}
