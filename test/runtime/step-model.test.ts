/** readModelInfo: inputs/outputs, state metadata validation, step vs sequence, hash. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isInputError, type InputError } from '../../src/errors.js';
import { readModelInfo } from '../../src/runtime/step-model.js';
import { lstmStepModel, lstmWindowModel, twoInputStepModel } from './models.js';

function stateEntry(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'lstm.h', input: 'state_in.lstm.h', output: 'state_out.lstm.h', shape: [8], dtype: 'float32', init: 0, ...over };
}

function catchInputError(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    if (isInputError(e)) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('readModelInfo', () => {
  it('reads a step model: dims, states, kind, sha256', () => {
    const bytes = lstmStepModel();
    const info = readModelInfo(bytes);
    expect(info.kind).toBe('step');
    expect(info.stateSource).toBe('metadata');
    expect(info.inputs.map((i) => [i.name, i.dims])).toEqual([
      ['x', ['batch', 1, 3]],
      ['state_in.lstm.h', ['batch', 8]],
      ['state_in.lstm.c', ['batch', 8]],
    ]);
    expect(info.sampleInputs.map((i) => i.name)).toEqual(['x']);
    expect(info.predictionOutputs.map((o) => o.name)).toEqual(['y']);
    expect(info.states).toEqual([
      { name: 'lstm.h', input: 'state_in.lstm.h', output: 'state_out.lstm.h', shape: [8], dtype: 'float32', init: 0 },
      { name: 'lstm.c', input: 'state_in.lstm.c', output: 'state_out.lstm.c', shape: [8], dtype: 'float32', init: 0 },
    ]);
    expect(info.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(info.inputs[0]!.dtype).toBe('float32');
  });

  it('classifies a fixed-window model as a sequence model, a time-1 stateless model as a step model', () => {
    expect(readModelInfo(lstmWindowModel({}, 6)).kind).toBe('sequence');
    expect(readModelInfo(lstmWindowModel({}, 'time')).kind).toBe('sequence');
    expect(readModelInfo(lstmWindowModel({}, 1)).kind).toBe('step');
    const two = readModelInfo(twoInputStepModel());
    expect(two.kind).toBe('step');
    expect(two.sampleInputs.map((i) => [i.name, i.dims])).toEqual([
      ['x', ['batch', 1, 3]],
      ['z', ['batch', 2]],
    ]);
  });

  it('infers states from state_in/state_out names when metadata is absent (init 0)', () => {
    const info = readModelInfo(lstmStepModel({}, { metadata: null }));
    expect(info.stateSource).toBe('names');
    expect(info.states.map((s) => [s.name, s.shape, s.init])).toEqual([
      ['lstm.h', [8], 0],
      ['lstm.c', [8], 0],
    ]);
  });

  it.each([
    ['not json', '{', 'streamcell.state'],
    ['not an array', '{"a":1}', 'streamcell.state'],
    ['entry not an object', '[3]', 'streamcell.state[0]'],
    ['bad name', JSON.stringify([stateEntry({ name: 'lstm.q' })]), 'streamcell.state[0].name'],
    ['missing input', JSON.stringify([stateEntry({ input: 'nope' })]), 'streamcell.state[0].input'],
    ['missing output', JSON.stringify([stateEntry({ output: 'nope' })]), 'streamcell.state[0].output'],
    ['bad shape', JSON.stringify([stateEntry({ shape: [8.5] })]), 'streamcell.state[0].shape'],
    ['shape disagrees with graph', JSON.stringify([stateEntry({ shape: [9] })]), 'streamcell.state[0].shape'],
    ['bad dtype', JSON.stringify([stateEntry({ dtype: 'int8' })]), 'streamcell.state[0].dtype'],
    ['bad init', JSON.stringify([stateEntry({ init: 'zero' })]), 'streamcell.state[0].init'],
    ['duplicate', JSON.stringify([stateEntry(), stateEntry()]), 'streamcell.state[1].name'],
  ])('rejects malformed streamcell.state (%s) naming the field', (_label, raw, field) => {
    const e = catchInputError(() => readModelInfo(lstmStepModel({}, { metadata: { 'streamcell.state': raw } }), 'm.onnx'));
    expect(e.context.field).toBe(field);
    expect(e.context.file).toBe('m.onnx');
    expect(e.message).toContain('streamcell.state');
  });

  it('rejects bytes that are not an ONNX model', () => {
    const e = catchInputError(() => readModelInfo(new Uint8Array([1, 2, 3, 4, 5, 6, 7]), 'junk.onnx'));
    expect(e.context.file).toBe('junk.onnx');
  });
});
