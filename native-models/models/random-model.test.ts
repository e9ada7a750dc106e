import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createRandomModel } from './random-model.js';
import { loadModelFolder } from './model-folder.js';
import { cleanupTempDirs, makeTempDir, sharedRandomModel } from '../../test/helpers/random-model.js';
import { Rng } from '../tensor/random.js';

afterAll(cleanupTempDirs);

const randn = (n: number, seed = 7) => new Rng(seed).randn(n);

async function session(dir: string, component: string) {
  return ort.InferenceSession.create(join(dir, component, 'model.onnx'), { intraOpNumThreads: 1 });
}

describe('createRandomModel', () => {
  it('writes a folder that passes the model contract, with sizes read from its files', async () => {
    const started = performance.now();
    const dir = await sharedRandomModel();
    expect(performance.now() - started).toBeLessThan(20_000);
    const model = await loadModelFolder(dir);
    expect(model.sizes).toEqual({
      latentChannels: 4,
      vaeScaleFactor: 8,
      scalingFactor: 0.18215,
      hiddenSize: 32,
      sequenceLength: 16,
      defaultImageSize: 64,
    });
    expect(Object.keys(model.components).sort()).toEqual(
      ['controlnet', 'text_encoder', 'unet', 'unet_controlnet', 'vae_decoder', 'vae_encoder'].sort(),
    );
    expect(model.controlnetResiduals).toEqual([
      'down_block_0_additional_residual',
      'down_block_1_additional_residual',
      'down_block_2_additional_residual',
      'down_block_3_additional_residual',
      'mid_block_additional_residual',
    ]);
    expect(model.vaeEncoderOutput).toEqual({ name: 'latent_parameters', kind: 'latent_parameters' });
  });

  it('runs every component at several batch sizes and resolutions (dynamic axes)', async () => {
    const dir = await sharedRandomModel();
    const text = await session(dir, 'text_encoder');
    const ids = new Int32Array(3 * 16).fill(5);
    const te = await text.run({ input_ids: new ort.Tensor('int32', ids, [3, 16]) });
    expect(te.last_hidden_state.dims).toEqual([3, 16, 32]);
    expect(te.pooler_output.dims).toEqual([3, 32]);

    const unet = await session(dir, 'unet');
    for (const [b, h, w] of [
      [1, 8, 8],
      [2, 8, 12],
      [3, 16, 8],
    ]) {
      const out = await unet.run({
        sample: new ort.Tensor('float32', randn(b * 4 * h * w), [b, 4, h, w]),
        timestep: new ort.Tensor('int64', new BigInt64Array(b).fill(500n), [b]),
        encoder_hidden_states: new ort.Tensor('float32', randn(b * 16 * 32), [b, 16, 32]),
      });
      expect(out.out_sample.dims).toEqual([b, 4, h, w]);
      expect(Array.from(out.out_sample.data as Float32Array).every(Number.isFinite)).toBe(true);
    }

    const dec = await session(dir, 'vae_decoder');
    const img = await dec.run({
      latent_sample: new ort.Tensor('float32', randn(2 * 4 * 8 * 4), [2, 4, 8, 4]),
    });
    expect(img.sample.dims).toEqual([2, 3, 64, 32]);
    const enc = await session(dir, 'vae_encoder');
    const lat = await enc.run({ sample: new ort.Tensor('float32', randn(3 * 64 * 32), [1, 3, 64, 32]) });
    expect(lat.latent_parameters.dims).toEqual([1, 8, 8, 4]);
  });

  it('the ControlNet-aware UNet with zero residuals equals the plain UNet; residuals change it', async () => {
    const dir = await sharedRandomModel();
    const [unet, unetCn, cn] = await Promise.all([
      session(dir, 'unet'),
      session(dir, 'unet_controlnet'),
      session(dir, 'controlnet'),
    ]);
    const feeds = {
      sample: new ort.Tensor('float32', randn(2 * 4 * 8 * 8, 1), [2, 4, 8, 8]),
      timestep: new ort.Tensor('int64', new BigInt64Array([700n, 700n]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', randn(2 * 16 * 32, 2), [2, 16, 32]),
    };
    const residuals = await cn.run({
      ...feeds,
      controlnet_cond: new ort.Tensor('float32', randn(2 * 3 * 64 * 64, 3), [2, 3, 64, 64]),
      conditioning_scale: new ort.Tensor('float32', Float32Array.of(1), [1]),
    });
    const zeros = Object.fromEntries(
      Object.entries(residuals).map(([k, t]) => [
        k,
        new ort.Tensor('float32', new Float32Array(t.size), t.dims),
      ]),
    );
    const plain = (await unet.run(feeds)).out_sample.data as Float32Array;
    const withZeros = (await unetCn.run({ ...feeds, ...zeros })).out_sample.data as Float32Array;
    const withResiduals = (await unetCn.run({ ...feeds, ...residuals })).out_sample.data as Float32Array;
    let maxZeroDiff = 0;
    let maxResidualDiff = 0;
    for (let i = 0; i < plain.length; i++) {
      maxZeroDiff = Math.max(maxZeroDiff, Math.abs(plain[i] - withZeros[i]));
      maxResidualDiff = Math.max(maxResidualDiff, Math.abs(plain[i] - withResiduals[i]));
    }
    expect(maxZeroDiff).toBeLessThan(1e-5);
    expect(maxResidualDiff).toBeGreaterThan(1e-3);
  });

  it('is deterministic by seed and differs across seeds', async () => {
    const root = await makeTempDir();
    const a = await createRandomModel(join(root, 'a'), { seed: 3, controlnet: false });
    const b = await createRandomModel(join(root, 'b'), { seed: 3, controlnet: false });
    const c = await createRandomModel(join(root, 'c'), { seed: 4, controlnet: false });
    const { readFile } = await import('node:fs/promises');
    const bytes = async (d: string) => readFile(join(d, 'unet', 'model.onnx'));
    expect((await bytes(a)).equals(await bytes(b))).toBe(true);
    expect((await bytes(a)).equals(await bytes(c))).toBe(false);
  });

  it('refuses a non-empty folder and leaves it untouched', async () => {
    const root = await makeTempDir();
    const dir = join(root, 'taken');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    await expect(createRandomModel(dir)).rejects.toThrow(/is not empty/);
    expect(await readdir(dir)).toEqual(['notes.txt']);
    expect((await readdir(root)).sort()).toEqual(['taken']);
  });
});
