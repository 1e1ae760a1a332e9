/**
 * What a layer converter sees: the graph being built, the tensors flowing between layers,
 * and hooks for explicit recurrent state (stateful models, later the streamify pass).
 */
import type { ElemType, GraphBuilder } from './onnx/builder.js';
import type { LayerCall, LayerSpec, Shape } from './topology.js';
import type { LayerConfig } from './topology.js';

/** A tensor in the ONNX graph with its Keras shape (batch first, `null` = unknown). */
export interface Tensor {
  name: string;
  shape: Shape;
  dtype: 'float32' | 'int32';
}

/** A recurrent state tensor that the exported model takes and returns explicitly. */
export interface StateTensor {
  layer: string;
  kind: 'h' | 'c' | 'buf';
  /** Shape without batch. */
  shape: number[];
  input: string;
  output: string;
}

export interface ConvertContext {
  g: GraphBuilder;
  opset: number;
  /** Declares an explicit state input (`state_in.<layer>.<kind>`) and returns its ONNX name. */
  stateInput(layer: string, kind: StateTensor['kind'], shape: number[]): string;
  /** Binds the value that becomes `state_out.<layer>.<kind>`. */
  stateOutput(layer: string, kind: StateTensor['kind'], value: string): void;
  warn(message: string): void;
}

export interface ConverterArgs {
  ctx: ConvertContext;
  layer: LayerSpec;
  cfg: LayerConfig;
  inputs: Tensor[];
  call: LayerCall;
}

/** Converts one call of a layer; returns its output tensors in Keras order. */
export type Converter = (args: ConverterArgs) => Tensor[];

export function elemOf(t: Tensor): ElemType {
  return t.dtype;
}
