/**
 * Saves a tfjs LayersModel the way `streamcell train` writes one (model.json + weights.bin in
 * `dir`) and returns the model.json path: the benchmarks build their models with tfjs and export
 * them from files, as a user would.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function saveTfjsModel(tf, model, dir) {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(a.weightData));
      await writeFile(
        join(dir, 'model.json'),
        JSON.stringify({ format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }),
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return join(dir, 'model.json');
}
