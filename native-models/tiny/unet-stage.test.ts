import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { checkGradients } from '../autodiff/gradcheck.js';
import { Graph } from '../onnx/graph.js';
import type { UnetArchitecture } from '../models/unet.js';
import { unetResidualShapes } from '../models/unet.js';
import { Rng } from '../tensor/random.js';
import { alphasCumprodFor, DEFAULT_SCHEDULER_CONFIG } from '../schedulers/scheduler.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import { tinyClipArchitecture, textEncoderInferenceModel } from './clip-stage.js';
import { layoutFromScene, layoutSegments } from './layouts.js';
import {
  AGE_PARTNERS,
  CONTRAST_MARGIN,
  contrastiveNoiseLoss,
  LATENT_SIDE,
  LatentBatches,
  latentDataset,
  layoutSuffix,
  TINY_UNET,
  tinyUnetArchitecture,
  PERSON_WORDS,
  regionalDataset,
  scenesNaming,
  tokenSwap,
  trainUnet,
  unetInferenceModel,
  worldScene,
} from './unet-stage.js';

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

  it("reads the folder's resnets per level from its config, and refuses another layout or a missing config", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msp-unet-config-'));
    dirs.push(dir);
    expect(await tinyUnetArchitecture(dir)).toBe(TINY_UNET);
    await mkdir(join(dir, 'unet'));
    const config = { block_out_channels: [32, 64, 128], layers_per_block: [1, 2, 2] };
    await writeFile(join(dir, 'unet', 'config.json'), JSON.stringify(config));
    const a = await tinyUnetArchitecture(dir);
    expect(a).toEqual({ ...TINY_UNET, layersPerBlock: [1, 2, 2] });
    expect(layoutSuffix(a)).toBe('-layers-1-2-2');
    expect(layoutSuffix({ ...TINY_UNET, layersPerBlock: [1, 1, 1] })).toBe('');
    expect(layoutSuffix(TINY_UNET)).toBe('');
    await writeFile(
      join(dir, 'unet', 'config.json'),
      JSON.stringify({ ...config, block_out_channels: [64, 128] }),
    );
    await expect(tinyUnetArchitecture(dir)).rejects.toThrow(
      /config.json: block_out_channels \[64,128\] is not the tiny UNet's \[32,64,128\]/,
    );
    await mkdir(join(dir, 'controlnet'));
    await writeFile(join(dir, 'controlnet', 'model.onnx'), new Uint8Array(4));
    await expect(tinyUnetArchitecture(dir, 'controlnet')).rejects.toThrow(
      /controlnet[/\\]config.json is missing beside controlnet\/model.onnx/,
    );
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

  it('splits the same scenes into MSP segments (prompt ids, latent masks) and reads them back from its cache', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'unet-regions-'));
    dirs.push(cacheDir);
    const regions = await regionalDataset({ modelDir: MODEL, count: 6, seed: 3, cacheDir });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const L = regions.sequenceLength;
    const plane = LATENT_SIDE * LATENT_SIDE;
    const rng = new Rng(3);
    for (let i = 0; i < 6; i++) {
      const scene = worldScene(rng);
      const parts = layoutSegments(layoutFromScene(scene), 4);
      expect(regions.segments[i]).toBe(scene.subjects.length + 1);
      parts.forEach((part, j) => {
        const e = regions.first[i] + j;
        const ids = tokenizer.encode(part.prompt, {
          maxLength: L,
          padding: 'max_length',
          truncation: true,
        }).ids;
        expect(Array.from(regions.ids.subarray(e * L, (e + 1) * L))).toEqual(Array.from(ids));
        expect(Array.from(regions.masks.subarray(e * plane, (e + 1) * plane))).toEqual(Array.from(part.mask));
      });
    }
    const again = await regionalDataset({ modelDir: MODEL, count: 6, seed: 3, cacheDir });
    expect(again.ids).toEqual(regions.ids);
    expect(again.masks).toEqual(regions.masks);
    expect(again.first).toEqual(regions.first);
  });

  it("weighs a regional sample's loss by its segment's mask, scaled up for small segments", async () => {
    const data = await latentDataset({ modelDir: MODEL, count: 5, seed: 11 });
    const regions = await regionalDataset({ modelDir: MODEL, count: 5, seed: 11 });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const textEncoder = await ort.InferenceSession.create(join(MODEL, 'text_encoder', 'model.onnx'));
    const plane = LATENT_SIDE * LATENT_SIDE;
    try {
      const batches = new LatentBatches(6, data, textEncoder, tokenizer, {
        regional: { data: regions, share: 1 },
      });
      const feeds = await batches.next(new Rng(5));
      expect(feeds.loss_weight.dims).toEqual([6, 1, LATENT_SIDE, LATENT_SIDE]);
      const weights = feeds.loss_weight.data as Float32Array;
      const allMasks = Array.from({ length: regions.masks.length / plane }, (_, e) =>
        regions.masks.subarray(e * plane, (e + 1) * plane),
      );
      for (let b = 0; b < 6; b++) {
        const w = weights.subarray(b * plane, (b + 1) * plane);
        const inside = [...w].filter((v) => v > 0);
        expect(inside.length).toBeGreaterThan(0);
        // one value inside (the min-SNR weight over the scaled area share), zero outside
        expect(Math.max(...inside) - Math.min(...inside)).toBeLessThan(1e-6);
        const mask = allMasks.find((m) => m.every((v, p) => (v === 1) === w[p] > 0));
        expect(mask).toBeDefined();
        const share = inside.length / plane;
        expect(inside[0]).toBeLessThanOrEqual(1 / Math.max(share, 0.25) + 1e-6);
      }
      // share 0: the plain objective, one weight per sample
      const plain = await new LatentBatches(2, data, textEncoder, tokenizer).next(new Rng(5));
      expect(plain.loss_weight.dims).toEqual([2, 1, 1, 1]);
      expect(
        () =>
          new LatentBatches(2, data, textEncoder, tokenizer, {
            regional: { data: { ...regions, segments: regions.segments.subarray(1) }, share: 1 },
          }),
      ).toThrow(/the regional dataset has 4 scenes, the latent dataset 5/);
    } finally {
      await textEncoder.release();
    }
  });

  it("weighs a plain sample's subject pixels (1 + s) times its background's, at the sample's min-SNR mean", async () => {
    const data = await latentDataset({ modelDir: MODEL, count: 5, seed: 11 });
    const regions = await regionalDataset({ modelDir: MODEL, count: 5, seed: 11 });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const textEncoder = await ort.InferenceSession.create(join(MODEL, 'text_encoder', 'model.onnx'));
    const plane = LATENT_SIDE * LATENT_SIDE;
    const alphasCumprod = alphasCumprodFor(DEFAULT_SCHEDULER_CONFIG);
    // every scene's background mask: the last segment of each
    const backgrounds = Array.from(regions.segments, (n, i) => {
      const e = regions.first[i] + n - 1;
      return regions.masks.subarray(e * plane, (e + 1) * plane);
    });
    try {
      const feeds = await new LatentBatches(8, data, textEncoder, tokenizer, {
        regional: { data: regions, share: 0 },
        subjectWeight: 2,
      }).next(new Rng(9));
      expect(feeds.loss_weight.dims).toEqual([8, 1, LATENT_SIDE, LATENT_SIDE]);
      const weights = feeds.loss_weight.data as Float32Array;
      const timesteps = feeds.timestep.data as BigInt64Array;
      for (let b = 0; b < 8; b++) {
        const w = weights.subarray(b * plane, (b + 1) * plane);
        const low = Math.min(...w);
        const high = Math.max(...w);
        expect(high / low).toBeCloseTo(3, 5);
        // the low weight lies exactly on one of the scenes' backgrounds
        const background = backgrounds.find((m) => m.every((v, p) => (v === 1) === (w[p] === low)));
        expect(background).toBeDefined();
        const abar = alphasCumprod[Number(timesteps[b])];
        const snr = abar / (1 - abar);
        const mean = w.reduce((n, v) => n + v, 0) / plane;
        expect(mean).toBeCloseTo(Math.min(snr, 5) / snr, 5);
      }
      expect(() => new LatentBatches(2, data, textEncoder, tokenizer, { subjectWeight: 2 })).toThrow(
        /subjectWeight needs the scenes' segments/,
      );
      expect(
        () =>
          new LatentBatches(2, data, textEncoder, tokenizer, {
            regional: { data: regions, share: 0 },
            subjectWeight: -1,
          }),
      ).toThrow(/subjectWeight must be a number of at least 0, got -1/);
    } finally {
      await textEncoder.release();
    }
  });

  it('draws the focus share of its samples from the scenes naming a person, the rest from all', async () => {
    const data = await latentDataset({ modelDir: MODEL, count: 12, seed: 11 });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const textEncoder = await ort.InferenceSession.create(join(MODEL, 'text_encoder', 'model.onnx'));
    const L = data.sequenceLength;
    const captions = Array.from({ length: data.count }, (_, i) =>
      tokenizer.decode(data.ids.subarray(i * L, (i + 1) * L)),
    );
    const people = scenesNaming(data, tokenizer, PERSON_WORDS);
    // found by whole words, never inside another ('man' in 'woman')
    expect([...people]).toEqual(captions.flatMap((c, i) => (/\b(man|woman|boy|girl)\b/.test(c) ? [i] : [])));
    expect(people.length).toBeGreaterThan(0);
    expect(people.length).toBeLessThan(data.count);
    expect(() => scenesNaming(data, tokenizer, ['cartoonish'])).toThrow(/'cartoonish' is not one token/);
    const isPerson = new Set(people);
    // a sample's caption tells its scene (no caption dropout): count the person scenes drawn
    const personShareOf = async (share: number, seed: number): Promise<number> => {
      const batches = new LatentBatches(64, data, null, tokenizer, {
        captionDropout: 0,
        focus: { scenes: people, share },
      });
      let n = 0;
      let total = 0;
      const rng = new Rng(seed);
      for (let k = 0; k < 8; k++) {
        const ids = (await batches.next(rng)).input_ids.data as Int32Array;
        for (let b = 0; b < 64; b++) {
          const caption = ids.subarray(b * L, (b + 1) * L);
          const i = captions.findIndex((_, j) =>
            data.ids.subarray(j * L, (j + 1) * L).every((v, p) => v === caption[p]),
          );
          total++;
          if (isPerson.has(i)) n++;
        }
      }
      return n / total;
    };
    const natural = people.length / data.count;
    // 512 samples each: the expected shares are natural and 1 (all person scenes) and 0.5 + 0.5 natural
    expect(Math.abs((await personShareOf(0, 3)) - natural)).toBeLessThan(0.07);
    expect(await personShareOf(1, 3)).toBe(1);
    expect(Math.abs((await personShareOf(0.5, 3)) - (0.5 + 0.5 * natural))).toBeLessThan(0.07);
    // without a focus (or at share 0) the sample stream is the one it always was
    const plain = await new LatentBatches(4, data, textEncoder, tokenizer).next(new Rng(5));
    const zero = await new LatentBatches(4, data, textEncoder, tokenizer, {
      focus: { scenes: people, share: 0 },
    }).next(new Rng(5));
    expect(zero.sample.data).toEqual(plain.sample.data);
    await textEncoder.release();
    expect(
      () => new LatentBatches(2, data, null, tokenizer, { focus: { scenes: people, share: 1.5 } }),
    ).toThrow(/the focus share must be between 0 and 1, got 1.5/);
    expect(
      () => new LatentBatches(2, data, null, tokenizer, { focus: { scenes: new Uint32Array(), share: 0.5 } }),
    ).toThrow(/needs at least one scene/);
    expect(
      () =>
        new LatentBatches(2, data, null, tokenizer, { focus: { scenes: Uint32Array.of(12), share: 0.5 } }),
    ).toThrow(/focus scene 12 is not in the dataset of 12 scenes/);
  });

  it('adds the swapped-caption copies of the first person samples as contrast rows', async () => {
    const data = await latentDataset({ modelDir: MODEL, count: 12, seed: 11 });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const swap = tokenSwap(tokenizer, AGE_PARTNERS);
    const B = 8;
    const P = 4;
    const options = {
      captionDropout: 0,
      regional: { data: await regionalDataset({ modelDir: MODEL, count: 12, seed: 11 }), share: 0.5 },
    };
    const plain = await new LatentBatches(B, data, null, tokenizer, options).next(new Rng(9));
    const paired = await new LatentBatches(B, data, null, tokenizer, {
      ...options,
      contrast: { pairs: P, swap },
    }).next(new Rng(9));
    const rows = <T extends { length: number; subarray(a: number, b: number): T }>(a: T, n: number) => {
      const per = a.length / n;
      return Array.from({ length: n }, (_, r) => a.subarray(r * per, (r + 1) * per));
    };
    // the batch's own rows are the ones it draws without the contrast (same random stream)
    for (const name of ['sample', 'noise', 'loss_weight', 'input_ids'] as const) {
      const own = rows(paired[name].data as Float32Array, B + P).slice(0, B);
      expect(own, name).toEqual(rows(plain[name].data as Float32Array, B));
    }
    expect(paired.contrast_mask.dims).toEqual([P]);
    const ids = rows(paired.input_ids.data as Int32Array, B + P);
    const decoded = ids.map((r) => tokenizer.decode(r));
    const persons = decoded.slice(0, B).flatMap((c, r) => (/\b(man|woman|boy|girl)\b/.test(c) ? [r] : []));
    expect(persons.length).toBeGreaterThan(0);
    const mask = Array.from(paired.contrast_mask.data as Float32Array);
    expect(mask).toEqual(Array.from({ length: P }, (_, k) => (k < persons.length ? 1 : 0)));
    const other: Record<string, string> = AGE_PARTNERS;
    for (const [k, row] of persons.slice(0, P).entries()) {
      // the same noisy latent, timestep and weights; every person word swapped for its other age
      for (const name of ['sample', 'noise', 'loss_weight', 'timestep'] as const) {
        const r = rows(paired[name].data as Float32Array, B + P);
        expect(r[B + k], name).toEqual(r[row]);
      }
      expect(decoded[B + k]).toBe(decoded[row].replace(/\b(man|woman|boy|girl)\b/g, (w) => other[w]));
      expect(decoded[B + k]).not.toBe(decoded[row]);
    }
    expect(() => new LatentBatches(2, data, null, tokenizer, { contrast: { pairs: 3, swap } })).toThrow(
      /contrast pairs must be a whole number from 1 to the batch size, got 3/,
    );
    expect(() => tokenSwap(tokenizer, { cartoonish: 'man' })).toThrow(/'cartoonish' is not one token/);
  });

  it("adds the weighted hinge on each pair's own and swapped noise errors, with its gradient", async () => {
    const samples = 3;
    const pairs = 2;
    const rowsIn = samples + pairs;
    const g = new Graph({ floatType: 'float64' });
    const shape = [rowsIn, 2, 2, 2];
    const prediction = g.input('prediction', shape);
    const noise = g.input('noise', shape);
    const weight = g.input('weight', [rowsIn, 1, 1, 1]);
    const mask = g.input('mask', [pairs]);
    const loss = contrastiveNoiseLoss(g, prediction, noise, weight, mask, { samples, pairs, weight: 0.5 });
    const rng = new Rng(4);
    const n = 8;
    const p = Float64Array.from(rng.randn(rowsIn * n));
    const e = Float64Array.from(rng.randn(rowsIn * n));
    // row 3 (pair 0) predicts its noise almost exactly, row 4 (pair 1) is masked out
    for (let i = 0; i < n; i++) p[3 * n + i] = e[3 * n + i] + 0.1 * p[3 * n + i];
    const w = Float64Array.of(1, 0.5, 2, 1, 1);
    const m = Float64Array.of(1, 0);
    const err = Array.from({ length: rowsIn }, (_, r) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += w[r] * (p[r * n + i] - e[r * n + i]) ** 2;
      return sum / n;
    });
    const hinge = (k: number) => m[k] * Math.max(0, (1 + CONTRAST_MARGIN) * err[k] - err[samples + k]);
    const expected = (err[0] + err[1] + err[2]) / samples + (0.5 / pairs) * (hinge(0) + hinge(1));
    expect(hinge(0)).toBeGreaterThan(0.1);
    const feeds = { prediction: p, noise: e, weight: w, mask: m };
    const r = await checkGradients(g, loss, ['prediction'], feeds);
    expect(r.maxError, JSON.stringify(r.worst)).toBeLessThan(1e-6);
    expect(r.directionalError).toBeLessThan(1e-6);
    expect(r.maxAbsGradient).toBeGreaterThan(0.01);
    const session = await ort.InferenceSession.create(g.toBytes());
    const out = await session.run(
      Object.fromEntries(
        Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float64', v, g.shape(k))]),
      ),
      ['gradcheck_loss'],
    );
    expect(Number(out.gradcheck_loss.data[0])).toBeCloseTo(expected, 10);
  });

  it('replaces the caption by the empty prompt at the requested share', async () => {
    const data = await latentDataset({ modelDir: MODEL, count: 5, seed: 11 });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const textEncoder = await ort.InferenceSession.create(join(MODEL, 'text_encoder', 'model.onnx'));
    try {
      // 1 gives every sample the empty prompt's context, 0 keeps the captions
      const contexts = async (captionDropout: number) => {
        const b = await new LatentBatches(4, data, textEncoder, tokenizer, { captionDropout }).next(
          new Rng(6),
        );
        const h = b.encoder_hidden_states.data as Float32Array;
        const row = h.length / 4;
        return Array.from({ length: 4 }, (_, i) => Array.from(h.subarray(i * row, (i + 1) * row)));
      };
      const dropped = await contexts(1);
      for (const r of dropped) expect(r).toEqual(dropped[0]);
      const kept = await contexts(0);
      expect(kept.some((r) => r.some((v, k) => v !== dropped[0][k]))).toBe(true);
      expect(() => new LatentBatches(2, data, textEncoder, tokenizer, { captionDropout: 1.5 })).toThrow(
        /captionDropout must be between 0 and 1, got 1.5/,
      );
    } finally {
      await textEncoder.release();
    }
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
    // with regional samples, resumed from the same checkpoint
    const regional = await trainUnet({
      modelDir: MODEL,
      steps: 6,
      batch: 2,
      datasetSize: 4,
      architecture: SMALL,
      checkpointDir: join(work, 'unet'),
      checkpointEvery: 1,
      resume: true,
      regionalShare: 0.5,
      onProgress: (p) => losses.push(p.loss),
    });
    expect(regional.step).toBe(6);
    expect(losses.length).toBe(6);
    expect(losses.every(Number.isFinite)).toBe(true);
    // the caption contrast trains too (its own run: the graph has the pair rows)
    const contrasted = await trainUnet({
      modelDir: MODEL,
      steps: 2,
      batch: 2,
      datasetSize: 4,
      architecture: SMALL,
      contrast: 1,
      onProgress: (p) => losses.push(p.loss),
    });
    expect(contrasted.step).toBe(2);
    expect(losses.slice(6).every(Number.isFinite)).toBe(true);
    await expect(trainUnet({ modelDir: MODEL, steps: 1, contrast: -1 })).rejects.toThrow(
      /contrast must be a number of at least 0, got -1/,
    );
    await expect(trainUnet({ modelDir: MODEL, steps: 1, regionalShare: 2 })).rejects.toThrow(
      /regionalShare must be between 0 and 1, got 2/,
    );
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

  it('trains the text encoder with the UNet, starting exactly where the frozen text encoder is', async () => {
    const work = await mkdtemp(join(tmpdir(), 'unet-text-'));
    dirs.push(work);
    const start = await trainUnet({
      modelDir: MODEL,
      steps: 1,
      batch: 2,
      datasetSize: 4,
      architecture: SMALL,
    });
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const text = tinyClipArchitecture(tokenizer.vocabSize).text;
    const textWeights = await readOnnxWeights(join(MODEL, 'text_encoder', 'model.onnx'));
    const run = async (joint: boolean, steps: number) => {
      const losses: number[] = [];
      const result = await trainUnet({
        modelDir: MODEL,
        steps,
        batch: 2,
        datasetSize: 4,
        lr: 1e-3,
        architecture: SMALL,
        initialWeights: start.parameters,
        ...(joint ? { textEncoder: { architecture: text, weights: textWeights } } : {}),
        onProgress: (p) => losses.push(p.loss),
      });
      return { result, losses };
    };
    // the same batches through the frozen encoder's session and through its weights in the graph
    const frozen = await run(false, 1);
    const joint = await run(true, 3);
    expect(joint.losses[0]).toBeCloseTo(frozen.losses[0], 4);
    expect(joint.losses.every(Number.isFinite)).toBe(true);
    // the text encoder's weights moved, and its export runs in the text_encoder/ contract
    const trained = joint.result.parameters.filter((p) => p.name.startsWith('text_model.'));
    const before = new Map(textWeights.map((w) => [w.name, w.data]));
    expect(trained.length).toBeGreaterThan(0);
    expect(
      trained.some((p) => p.data.some((v, i) => Math.abs(v - (before.get(p.name)?.[i] ?? v)) > 1e-6)),
    ).toBe(true);
    const exported = await ort.InferenceSession.create(
      textEncoderInferenceModel(trained, text, tokenizer.eosTokenId),
    );
    const ids = Int32Array.from(
      tokenizer.encode('a cartoon man', { maxLength: 48, padding: 'max_length' }).ids,
    );
    const out = await exported.run({ input_ids: new ort.Tensor('int32', ids, [1, 48]) });
    expect(out.last_hidden_state.dims).toEqual([1, 48, 128]);
    await exported.release();
    // weights that do not fit are refused by name
    await expect(
      trainUnet({
        modelDir: MODEL,
        steps: 1,
        batch: 2,
        datasetSize: 4,
        architecture: SMALL,
        textEncoder: { architecture: text, weights: textWeights.slice(1) },
      }),
    ).rejects.toThrow(/the text encoder weights do not fit the architecture: 1 of its \d+ are missing/);
  }, 120_000);

  it('exports the shipped text encoder weights back to the same text encoder', async () => {
    const tokenizer = await CLIPTokenizer.fromFolder(join(MODEL, 'tokenizer'));
    const text = tinyClipArchitecture(tokenizer.vocabSize).text;
    const shipped = await ort.InferenceSession.create(join(MODEL, 'text_encoder', 'model.onnx'));
    const again = await ort.InferenceSession.create(
      textEncoderInferenceModel(
        await readOnnxWeights(join(MODEL, 'text_encoder', 'model.onnx')),
        text,
        tokenizer.eosTokenId,
      ),
    );
    const ids = Int32Array.from(
      tokenizer.encode('a cartoon woman in a red dress waving on a beach', {
        maxLength: 48,
        padding: 'max_length',
      }).ids,
    );
    const feeds = { input_ids: new ort.Tensor('int32', ids, [1, 48]) };
    const a = (await shipped.run(feeds)).last_hidden_state.data as Float32Array;
    const b = (await again.run(feeds)).last_hidden_state.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    expect(maxDiff).toBeLessThan(1e-5);
    await shipped.release();
    await again.release();
  });
});
