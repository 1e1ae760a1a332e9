import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { META, STATE_METADATA_KEY, parseStateMetadata, readPreprocessing, serializeStateMetadata, type StateSpec } from '../src/model-format/index.js';

function inputErrorOf(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

const states: StateSpec[] = [
  { name: 'lstm.h', input: 'state_in.lstm.h', output: 'state_out.lstm.h', shape: [4], dtype: 'float32', init: 0 },
  { name: 'conv.buf', input: 'state_in.conv.buf', output: 'state_out.conv.buf', shape: [2, 1], dtype: 'float32', init: [0.5, -1] },
];

const pre = { task: 'forecast', channels: ['a', 'b'], window: 8, normalization: { a: { mean: 0, std: 1 }, b: { mean: 2, std: 3 } } };

describe('model-format', () => {
  it('names every streamcell key once', () => {
    const keys = Object.values(META);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.every((k) => k.startsWith('streamcell.'))).toBe(true);
    expect(STATE_METADATA_KEY).toBe(META.state);
  });

  it('round-trips streamcell.state', () => {
    expect(parseStateMetadata(serializeStateMetadata(states))).toEqual(states);
  });

  it('checks state entries against a graph when given one', () => {
    const graph = {
      inputs: new Map([
        ['state_in.lstm.h', { dims: ['batch', 4] }],
        ['state_in.conv.buf', { dims: [] }],
      ]),
      outputs: new Set(['state_out.lstm.h', 'state_out.conv.buf']),
    };
    expect(parseStateMetadata(serializeStateMetadata(states), graph)).toEqual(states);
    const e = inputErrorOf(() => parseStateMetadata(serializeStateMetadata([{ ...states[0]!, shape: [5] }]), graph, 'm.onnx'));
    expect(e.context.field).toBe('streamcell.state[0].shape');
    expect(e.context.file).toBe('m.onnx');
  });

  it.each([
    ['not json', '{', 'streamcell.state'],
    ['not an array', '{}', 'streamcell.state'],
    ['bad name', JSON.stringify([{ ...states[0], name: 'x' }]), 'streamcell.state[0].name'],
    ['bad init', JSON.stringify([{ ...states[0], init: [1] }]), 'streamcell.state[0].init'],
  ])('rejects malformed streamcell.state (%s) naming the field', (_l, raw, field) => {
    expect(inputErrorOf(() => parseStateMetadata(raw)).context.field).toBe(field);
  });

  it('reads embedded preprocessing, or undefined when there is none', () => {
    expect(readPreprocessing({ [META.preprocessing]: JSON.stringify(pre) }, 'm.onnx')).toEqual(pre);
    expect(readPreprocessing({}, 'm.onnx')).toBeUndefined();
  });

  it.each([
    ['invalid JSON', '{', 'streamcell.preprocessing'],
    ['not an object', '3', 'streamcell.preprocessing'],
    ['bad task', JSON.stringify({ ...pre, task: 'x' }), 'streamcell.preprocessing.task'],
    ['no channels', JSON.stringify({ ...pre, channels: [] }), 'streamcell.preprocessing.channels'],
    ['bad window', JSON.stringify({ ...pre, window: 0 }), 'streamcell.preprocessing.window'],
    ['bad normalization', JSON.stringify({ ...pre, normalization: { a: { mean: 0, std: 1 } } }), 'streamcell.preprocessing.normalization'],
    ['classify without classes', JSON.stringify({ ...pre, task: 'classify' }), 'streamcell.preprocessing.classes'],
  ])('readPreprocessing refuses %s naming the source and field', (_l, text, field) => {
    const e = inputErrorOf(() => readPreprocessing({ [META.preprocessing]: text }, 'm.onnx'));
    expect(e.context.field).toBe(field);
    expect(e.context.file).toBe('m.onnx');
    expect(e.message).toContain('streamcell.preprocessing');
  });
});
