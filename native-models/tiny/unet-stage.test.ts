import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { UnetArchitecture } from '../models/unet.js';
import { unetResidualShapes } from '../models/unet.js';
import { LATENT_SIDE, latentDataset, trainUnet, unetInferenceModel } from './unet-stage.js';

const MODEL = join(import.meta.dirname, '..', 'weights', 'tiny-sd');
const SMALL: UnetArchitecture = {
  latentChannels: 4,
  blockOutChannels: [8, 16],
  attention: [false, true],
  heads: 2,
  normGroups: 4,
  crossAttentionDim: 128,
  timestepDim: 16,
};

describe('tiny UNet stage', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('encodes world scenes to scaled latents and token ids, and reads them back from its cache', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'unet-data-'));
    dirs.push(cacheDir);
    const first = await latentDataset({ modelDir: MODEL, count: 6, seed: 3, cacheDir });
    expect(first.latents.length).toBe(6 * 4 * LATENT_SIDE * LATENT_SIDE);
    expect(first.ids.length).toBe(6 * first.sequenceLength);
    // scaled latents have roughly unit spread (scaling_factor = 1 / latent std)
    let sq = 0;
    for (const v of first.latents) sq += v * v;
    const rms = Math.sqrt(sq / first.latents.length);
    expect(rms).toBeGreaterThan(0.3);
    expect(rms).toBeLessThan(3);
    const again = await latentDataset({ modelDir: MODEL, count: 6, seed: 3, cacheDir });
    expect(again.latents).toEqual(first.latents);
    expect(again.ids).toEqual(first.ids);
  });

  it('trains a small UNet whose export runs, and whose ControlNet-aware variant equals it with zero residuals', async () => {
    const work = await mkdtemp(join(tmpdir(), 'unet-train-'));
    dirs.push(work);
    const losses: number[] = [];
    const result = await trainUnet({
      modelDir: MODEL,
      steps: 4,
      batch: 2,
      datasetSize: 4,
      architecture: SMALL,
      checkpointDir: join(work, 'unet'),
      onProgress: (p) => losses.push(p.loss),
    });
    expect(result.step).toBe(4);
    expect(losses.every(Number.isFinite)).toBe(true);
    const plain = await ort.InferenceSession.create(unetInferenceModel(result.ema, { architecture: SMALL }));
    const aware = await ort.InferenceSession.create(
      unetInferenceModel(result.ema, { architecture: SMALL, residuals: true }),
    );
    const sample = new Float32Array(4 * LATENT_SIDE * LATENT_SIDE).map((_, i) => Math.sin(i));
    const feeds: Record<string, ort.Tensor> = {
      sample: new ort.Tensor('float32', sample, [1, 4, LATENT_SIDE, LATENT_SIDE]),
      timestep: new ort.Tensor('int64', BigInt64Array.from([500n]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', new Float32Array(48 * 128).fill(0.1), [1, 48, 128]),
    };
    const a = (await plain.run(feeds)).out_sample;
    expect(a.dims).toEqual([1, 4, LATENT_SIDE, LATENT_SIDE]);
    const shapes = unetResidualShapes(SMALL, 1, LATENT_SIDE);
    const zeros: Record<string, ort.Tensor> = {};
    shapes.down.forEach((s, i) => {
      zeros[`down_block_${i}_additional_residual`] = new ort.Tensor(
        'float32',
        new Float32Array(s.reduce((x, y) => x * y)),
        s,
      );
    });
    zeros.mid_block_additional_residual = new ort.Tensor(
      'float32',
      new Float32Array(shapes.mid.reduce((x, y) => x * y)),
      shapes.mid,
    );
    const b = (await aware.run({ ...feeds, ...zeros })).out_sample;
    const da = a.data as Float32Array;
    const db = b.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < da.length; i++) maxDiff = Math.max(maxDiff, Math.abs(da[i] - db[i]));
    expect(maxDiff).toBeLessThan(1e-5);
    await plain.release();
    await aware.release();
  }, 60_000);
});
