/**
 * The whole tiny random SD UNet of the foundation issue, imported from its ONNX file: the
 * gradient with respect to every weight and the input latent passes a directional-derivative
 * check (entries one by one are covered by the per-rule tests).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readModelFile } from '../onnx/external-data.js';
import { importModel } from '../onnx/import.js';
import { OPSET } from '../onnx/graph.js';
import { Rng } from '../tensor/random.js';
import { checkGradients, weightedSum } from './gradcheck.js';
import { cleanupTempDirs, sharedRandomModel } from '../../test/helpers/random-model.js';

afterAll(cleanupTempDirs);

describe('the random SD UNet', () => {
  it('passes a directional-derivative check over all weights and the latent', async () => {
    const model = await readModelFile(join(await sharedRandomModel(), 'unet', 'model.onnx'));
    const g = importModel(model, {
      inputShapes: { sample: [2, 4, 8, 8], timestep: [2], encoder_hidden_states: [2, 16, 32] },
      opset: OPSET,
    });
    g.outputs.length = 0;
    const loss = weightedSum(g, 'out_sample');
    const weights = [...g.initializers.values()].filter(
      (t) => t.dtype === 'float32' && t.data.length > 4 && !t.name.startsWith('const'),
    );
    const rng = new Rng(2);
    const feeds: Record<string, Float32Array | BigInt64Array> = {
      sample: rng.randn(2 * 4 * 64),
      timestep: BigInt64Array.of(300n, 800n),
      encoder_hidden_states: rng.randn(2 * 16 * 32),
    };
    for (const w of weights) feeds[w.name] = g.promoteToInput(w.name).data as Float32Array;
    const wrt = ['sample', 'encoder_hidden_states', ...weights.map((w) => w.name)];
    // per-entry checks on the inputs, the directional check over everything (each entry costs 4 runs)
    const r = await checkGradients(g, loss, wrt, feeds, { entries: 0 });
    console.log(
      `random UNet (${weights.length} weight tensors): directional error ${r.directionalError.toExponential(2)}`,
    );
    expect(weights.length).toBeGreaterThan(100);
    expect(r.maxAbsGradient).toBeGreaterThan(1e-3);
    expect(r.directionalError).toBeLessThan(5e-3);
  });
});
