import { describe, expect, it } from 'vitest';
import { converterFor, supportedLayers } from '../src/export/converters/registry.js';
import { acceptedLayerClasses, canonicalLayerClass, LAYER_CLASS_ALIASES, LAYER_CLASSES } from '../src/export/layer-classes.js';
import { hasReferenceLayer, REFERENCE_LAYER_CLASSES } from '../src/export/reference/layers.js';

/** The exporter handles InputLayer itself; every other class through a converter. */
const converterAccepts = (c: string) => canonicalLayerClass(c) === 'InputLayer' || converterFor(c) !== undefined;

describe('layer class table', () => {
  const candidates = [
    ...new Set([...acceptedLayerClasses(), ...supportedLayers(), ...REFERENCE_LAYER_CLASSES, 'Conv2D', 'LSTMCell', 'toString', 'constructor', 'conv1d']),
  ];

  it.each(candidates)('converter and reference agree on %s', (c) => {
    expect(converterAccepts(c)).toBe(hasReferenceLayer(c));
  });

  it('accepts every canonical class and alias in both', () => {
    for (const c of acceptedLayerClasses()) {
      expect(converterAccepts(c), c).toBe(true);
      expect(hasReferenceLayer(c), c).toBe(true);
    }
    expect(REFERENCE_LAYER_CLASSES).toEqual(acceptedLayerClasses());
    expect(supportedLayers()).toEqual([...LAYER_CLASSES].sort());
  });

  it('maps the aliases the converter used to take alone', () => {
    for (const a of ['Conv1d', 'Convolution1D', 'AveragePool1D', 'MaxPooling1d']) {
      expect(hasReferenceLayer(a), a).toBe(true);
      expect(converterFor(a)).toBe(converterFor(LAYER_CLASS_ALIASES[a]!));
    }
  });
});
