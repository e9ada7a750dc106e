import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { VaeArchitecture } from '../models/vae.js';
import { Rng } from '../tensor/random.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import {
  encoderShift,
  growDecoderValues,
  resnetsPerBlock,
  trainVaeDecoder,
  trainVaeEncoder,
  vaeEncoderModel,
  vaeDecoderModel,
  vaeDecoderTrainingGraph,
  vaeInferenceModels,
  vaeTrainingGraph,
  writeVaePart,
  type ImageSource,
} from './vae-stage.js';

const SMALL: VaeArchitecture = { latentChannels: 4, blockOutChannels: [8, 16], normGroups: 4 };
const GROWN: VaeArchitecture = { ...SMALL, decoderResnetsPerBlock: 3 };

/** A VAE's initial (random) weights, as a trained one would hand them over. */
function randomVaeWeights(a: VaeArchitecture): ParameterTensor[] {
  const { m } = vaeTrainingGraph(a, 1, 16, 1e-6);
  return m.params.map((p) => ({
    name: p.name,
    shape: p.shape,
    data: m.values.get(p.name) ?? new Float32Array(),
  }));
}

/** Soft blobs on a gradient: smooth enough for a tiny decoder to learn in a few steps. */
const blobs: ImageSource = (rng, size) => {
  const out = new Float32Array(3 * size * size);
  const [cx, cy, r] = [rng.nextFloat() * size, rng.nextFloat() * size, 3 + rng.nextFloat() * size * 0.3];
  const color = [rng.nextFloat() * 2 - 1, rng.nextFloat() * 2 - 1, rng.nextFloat() * 2 - 1];
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
        out[(c * size + y) * size + x] = inside ? color[c] : (y / size) * 0.5 - 0.25;
      }
  return out;
};

async function decode(model: Uint8Array, latent: Float32Array, side: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({ latent_sample: new ort.Tensor('float32', latent, [1, 4, side, side]) });
    return Float32Array.from(out.sample.data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('growing the VAE decoder', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('starts as the trained decoder: added resnets are identities', async () => {
    const trained = randomVaeWeights(SMALL);
    const { m } = vaeDecoderTrainingGraph(GROWN, 1, 8);
    const grown = growDecoderValues(m, trained);
    // two added resnets per level, each with norm1, conv1, norm2, conv2 weights and biases
    expect(grown.length).toBe(2 * 2 * 8);
    expect(grown.every((n) => /^decoder\.up_blocks\.[01]\.resnets\.[12]\./.test(n))).toBe(true);
    const start = m.params.map((p) => ({
      name: p.name,
      shape: p.shape,
      data: m.values.get(p.name) ?? new Float32Array(),
    }));
    const latent = new Rng(3).randn(4 * 8 * 8);
    const before = await decode(vaeDecoderModel(trained, SMALL), latent, 8);
    const after = await decode(vaeDecoderModel(start, GROWN), latent, 8);
    expect(after.length).toBe(3 * 16 * 16);
    let worst = 0;
    for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i] - after[i]));
    expect(worst).toBeLessThan(1e-5);
    // and the added blocks are real: their first convolutions are not zero
    const conv1 = start.find((p) => p.name === 'decoder.up_blocks.0.resnets.1.conv1.weight');
    expect(conv1?.data.some((v) => v !== 0)).toBe(true);
  });

  it('refuses weights of another shape and a decoder missing a block it should have', () => {
    const trained = randomVaeWeights(SMALL);
    const { m } = vaeDecoderTrainingGraph(GROWN, 1, 8);
    const wrong = trained.map((p) =>
      p.name === 'decoder.conv_in.weight' ? { ...p, shape: [1, ...p.shape.slice(1)] } : p,
    );
    expect(() => growDecoderValues(m, wrong)).toThrow(/decoder weight decoder.conv_in.weight is 1x4x3x3/);
    const partial = trained.filter((p) => !p.name.startsWith('decoder.up_blocks.1.resnets.0.'));
    expect(() => growDecoderValues(vaeDecoderTrainingGraph(GROWN, 1, 8).m, partial)).toThrow(
      /the trained decoder has no weight decoder.up_blocks.1.resnets.0./,
    );
  });

  it('trains on the frozen encoder: the loss falls and the encoder is untouched', async () => {
    const trained = randomVaeWeights(SMALL);
    const { encoder } = vaeInferenceModels(trained, SMALL);
    const checkpointDir = await mkdtemp(join(tmpdir(), 'vae-decoder-'));
    dirs.push(checkpointDir);
    const losses: number[] = [];
    const result = await trainVaeDecoder({
      encoder,
      initialWeights: trained,
      architecture: GROWN,
      images: blobs,
      imageSize: 32,
      latentCrop: 8,
      steps: 60,
      batch: 4,
      lr: 3e-3,
      checkpointDir,
      checkpointEvery: 30,
      onProgress: (p) => losses.push(p.loss),
    });
    expect(result.step).toBe(60);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-10))).toBeLessThan(0.7 * mean(losses.slice(0, 5)));
    // only decoder parameters are trained
    expect(result.parameters.every((p) => /^(post_quant_conv|decoder)\./.test(p.name))).toBe(true);
    // a resumed run starts from the checkpoint and ends at the new length
    const resumed = await trainVaeDecoder({
      encoder,
      initialWeights: trained,
      architecture: GROWN,
      images: blobs,
      imageSize: 32,
      latentCrop: 8,
      steps: 70,
      batch: 4,
      checkpointDir,
      resume: true,
    });
    expect(resumed.step).toBe(70);
  });

  it('writes the decoder part with its resnet count in the config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vae-part-'));
    dirs.push(dir);
    await writeVaePart(dir, 'vae_decoder', vaeDecoderModel(randomVaeWeights(SMALL), SMALL), 0.5, GROWN);
    const config = JSON.parse(await readFile(join(dir, 'vae_decoder', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config).toMatchObject({
      decoder_resnets_per_block: 3,
      scaling_factor: 0.5,
      block_out_channels: [8, 16],
    });
  });
});

describe('refining the VAE encoder against the frozen decoder', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** The weights as a shipped (float16) encoder hands them over, and that encoder's bytes. */
  async function shippedEncoder(weights: ParameterTensor[]) {
    const dir = await mkdtemp(join(tmpdir(), 'vae-encoder-'));
    dirs.push(dir);
    const bytes = vaeEncoderModel(weights, SMALL);
    await writeFile(join(dir, 'model.onnx'), bytes);
    return { bytes, weights: await readOnnxWeights(join(dir, 'model.onnx')) };
  }

  const refine = async (
    start: { bytes: Uint8Array; weights: ParameterTensor[] },
    decoderWeights: ParameterTensor[],
    steps: number,
    anchorWeight: number,
    losses: number[] = [],
    architecture: VaeArchitecture = SMALL,
  ) =>
    trainVaeEncoder({
      initialWeights: start.weights,
      anchorEncoder: start.bytes,
      decoderWeights,
      architecture,
      images: blobs,
      size: 16,
      scalingFactor: 0.5,
      anchorWeight,
      steps,
      batch: 4,
      lr: 3e-3,
      onProgress: (p) => losses.push(p.loss),
    });

  it('starts at the trained encoder (the anchor term is zero), lowers the loss and trains the encoder only', async () => {
    const trained = randomVaeWeights(SMALL);
    const start = await shippedEncoder(trained);
    const free: number[] = [];
    const result = await refine(start, trained, 60, 0, free);
    const anchored: number[] = [];
    await refine(start, trained, 1, 1e3, anchored);
    expect(Math.abs(anchored[0] - free[0])).toBeLessThan(1e-4 * free[0]);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(free.slice(-10))).toBeLessThan(0.9 * mean(free.slice(0, 5)));
    expect(result.parameters.length).toBeGreaterThan(0);
    expect(result.parameters.every((p) => /^(encoder|quant_conv)\./.test(p.name))).toBe(true);
  });

  it('moves the posterior means less the more the anchor weighs', async () => {
    const trained = randomVaeWeights(SMALL);
    const start = await shippedEncoder(trained);
    const shift = async (anchorWeight: number) => {
      const { parameters } = await refine(start, trained, 40, anchorWeight);
      return encoderShift({ before: start.bytes, after: vaeEncoderModel(parameters, SMALL) }, blobs, 0.5, {
        count: 4,
        size: 16,
      });
    };
    const loose = await shift(0);
    const tight = await shift(100);
    expect(loose).toBeGreaterThan(0);
    expect(tight).toBeLessThan(0.5 * loose);
  });

  it('grows the encoder: added resnets start as identities, train, and the count is read back from the names', async () => {
    const trained = randomVaeWeights(SMALL);
    const start = await shippedEncoder(trained);
    const grownArchitecture: VaeArchitecture = { ...SMALL, encoderResnetsPerBlock: 2 };
    const grow = (steps: number, anchorWeight: number, losses: number[]) =>
      refine(start, trained, steps, anchorWeight, losses, grownArchitecture);
    // at step 0 the grown encoder is the trained one: a heavy anchor adds nothing to the first loss
    const plain: number[] = [];
    await refine(start, trained, 1, 0, plain);
    const anchored: number[] = [];
    await grow(1, 1e3, anchored);
    expect(Math.abs(anchored[0] - plain[0])).toBeLessThan(1e-4 * plain[0]);

    const losses: number[] = [];
    const result = await grow(60, 0, losses);
    expect(result.grown.length).toBeGreaterThan(0);
    expect(result.grown.every((n) => /^encoder\.down_blocks\.\d+\.resnets\.1\./.test(n))).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-10))).toBeLessThan(0.9 * mean(losses.slice(0, 5)));
    const conv2 = result.parameters.find((p) => p.name === 'encoder.down_blocks.0.resnets.1.conv2.weight');
    expect(conv2?.data.some((v) => v !== 0)).toBe(true); // trained away from its zero start
    expect(resnetsPerBlock(result.parameters, 'encoder')).toBe(2);
    expect(resnetsPerBlock(trained, 'encoder')).toBe(1);
    expect(resnetsPerBlock(randomVaeWeights(GROWN), 'decoder')).toBe(3);
    expect(() =>
      resnetsPerBlock(
        trained.filter((p) => !p.name.startsWith('decoder.')),
        'decoder',
      ),
    ).toThrow(/no decoder resnets/);

    // the grown encoder exports and writes its resnet count
    const dir = await mkdtemp(join(tmpdir(), 'vae-grown-'));
    dirs.push(dir);
    await writeVaePart(
      dir,
      'vae_encoder',
      vaeEncoderModel(result.parameters, grownArchitecture),
      0.5,
      grownArchitecture,
    );
    const config = JSON.parse(await readFile(join(dir, 'vae_encoder', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config.encoder_resnets_per_block).toBe(2);
    expect(config).not.toHaveProperty('decoder_resnets_per_block');
    expect(resnetsPerBlock(await readOnnxWeights(join(dir, 'vae_encoder', 'model.onnx')), 'encoder')).toBe(2);
  });

  it('refuses weights that do not fit the architecture', async () => {
    const trained = randomVaeWeights(SMALL);
    const start = await shippedEncoder(trained);
    await expect(
      refine(
        start,
        trained.filter((p) => p.name !== 'decoder.conv_out.weight'),
        1,
        0,
      ),
    ).rejects.toThrow(/the trained VAE has no weight decoder.conv_out.weight/);
  });
});
