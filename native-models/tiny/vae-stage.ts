/**
 * The tiny world's autoencoder: 128x128 RGB <-> a 32x32x4 latent (4x downsampling), trained with
 * the project's engine (reconstruction MSE + L1 + a small KL term), exported in the diffusers
 * ONNX layout (vae_encoder/, vae_decoder/ with config.json) with float16 weight storage, and
 * measured by reconstruction PSNR on held-out images.
 *
 * A trained VAE's decoder can then be grown and trained on its own ({@link trainVaeDecoder}): extra
 * resnets per level that start as identities, on the frozen encoder's posterior means. The latent
 * space stays the one the UNet learned, so a better decoder needs no UNet retraining.
 *
 * The encoder can be refined against the frozen decoder ({@link trainVaeEncoder}): optimising a
 * held-out latent directly against the decoder gains about 3 dB, so the encoder's latents, not the
 * decoder, limit reconstruction. An anchor term keeps the refined posterior means close to the
 * original ones, the latent space the UNet learned to generate.
 *
 * @example
 * const result = await trainVae({ steps: 3000, images, checkpointDir: '.tmp/tiny/vae', resume: true });
 * await writeVae('native-models/weights/tiny-sd', vaeInferenceModels(result.parameters), scalingFactor);
 */
import { mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-write.js';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../onnx/layers.js';
import type { Graph } from '../onnx/graph.js';
import { vaeDecoder, vaeEncoder, vaeScaleFactor, type VaeArchitecture } from '../models/vae.js';
import { TrainStep } from '../training/train-step.js';
import { Trainer, bakeParameters, type DataLoader, type TrainingRunOptions } from '../training/trainer.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { Rng } from '../tensor/random.js';

export const TINY_VAE: VaeArchitecture = { latentChannels: 4, blockOutChannels: [32, 64, 64], normGroups: 8 };

/** The shipped decoder: TINY_VAE's, grown to two resnets per level by the vae-decoder stage. */
export const TINY_VAE_GROWN: VaeArchitecture = { ...TINY_VAE, decoderResnetsPerBlock: 2 };

/** Draws one training image, CHW in [-1, 1], of size x size. */
export type ImageSource = (rng: Rng, size: number) => Float32Array;

export interface VaeTrainingOptions extends TrainingRunOptions {
  images: ImageSource;
  size?: number;
  klWeight?: number;
  architecture?: VaeArchitecture;
}

/** The training graph: image -> posterior -> sampled latent -> reconstruction; loss = MSE + 0.5 L1 + kl * KL. */
export function vaeTrainingGraph(a: VaeArchitecture, batch: number, size: number, klWeight: number) {
  const m = new ModelBuilder('vae_training', 11, 'input');
  const g = m.g;
  const f = vaeScaleFactor(a);
  const C = a.latentChannels;
  const image = g.input('image', [batch, 3, size, size]);
  const eps = g.input('eps', [batch, C, size / f, size / f]);
  const params = vaeEncoder(m, a, image);
  const [mean, rawLogvar] = g.op('Split', [params, g.ints([C, C])], { axis: 1 }, { count: 2 });
  const logvar = g.op1('Clip', [rawLogvar, g.scalar(-30), g.scalar(20)]);
  const std = g.op1('Exp', [g.op1('Mul', [logvar, g.scalar(0.5)])]);
  const z = g.op1('Add', [mean, g.op1('Mul', [std, eps])]);
  const recon = vaeDecoder(m, a, z);
  const diff = g.op1('Sub', [recon, image]);
  const mse = g.op1('ReduceMean', [g.op1('Mul', [diff, diff])], { keepdims: 0 });
  const l1 = g.op1('ReduceMean', [g.op1('Abs', [diff])], { keepdims: 0 });
  // KL(N(mean, var) || N(0, 1)) per latent element, averaged
  const kl = g.op1('Mul', [
    g.op1(
      'ReduceMean',
      [
        g.op1('Sub', [
          g.op1('Add', [g.op1('Mul', [mean, mean]), g.op1('Exp', [logvar])]),
          g.op1('Add', [logvar, g.scalar(1)]),
        ]),
      ],
      {
        keepdims: 0,
      },
    ),
    g.scalar(0.5),
  ]);
  const loss = g.op1('Add', [
    g.op1('Add', [mse, g.op1('Mul', [l1, g.scalar(0.5)])]),
    g.op1('Mul', [kl, g.scalar(klWeight)]),
  ]);
  return { m, loss, mse };
}

class ImageBatches implements DataLoader {
  constructor(
    readonly batchSize: number,
    private readonly size: number,
    private readonly images: ImageSource,
    private readonly latent: [number, number],
  ) {}

  next(rng: Rng): Record<string, ort.Tensor> {
    const per = 3 * this.size * this.size;
    const data = new Float32Array(this.batchSize * per);
    for (let i = 0; i < this.batchSize; i++) data.set(this.images(rng, this.size), i * per);
    const [c, side] = this.latent;
    return {
      image: new ort.Tensor('float32', data, [this.batchSize, 3, this.size, this.size]),
      eps: new ort.Tensor('float32', rng.randn(this.batchSize * c * side * side), [
        this.batchSize,
        c,
        side,
        side,
      ]),
    };
  }
}

export async function trainVae(
  o: VaeTrainingOptions,
): Promise<{ parameters: ParameterTensor[]; step: number; lastLoss: number }> {
  const a = o.architecture ?? TINY_VAE;
  const size = o.size ?? 128;
  const batch = o.batch ?? 8;
  const lr = o.lr ?? 1e-3;
  const { m, loss } = vaeTrainingGraph(a, batch, size, o.klWeight ?? 1e-6);
  const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values });
  const trainer = await Trainer.adamW(
    step,
    new ImageBatches(batch, size, o.images, [a.latentChannels, size / vaeScaleFactor(a)]),
    {
      steps: o.steps,
      lr,
      minLr: lr / 20,
      warmupSteps: Math.min(200, Math.floor(o.steps / 10)),
      seed: o.seed ?? 1,
      checkpointDir: o.checkpointDir,
      checkpointEvery: o.checkpointEvery ?? 200,
      resume: o.resume === true,
    },
  );
  const result = await trainer.train(o.steps, { signal: o.signal, onProgress: o.onProgress });
  await step.dispose();
  return { parameters: step.parameters, step: result.step, lastLoss: result.lastLoss };
}

// ---------------------------------------------------------------------------------------------
// growing the decoder

export interface VaeDecoderTrainingOptions extends TrainingRunOptions {
  /** The frozen encoder (ONNX bytes): its posterior means are what the decoder learns to decode. */
  encoder: Uint8Array;
  /** A trained decoder's weights: blocks it has start from them, blocks it lacks as identities. */
  initialWeights: readonly ParameterTensor[];
  architecture: VaeArchitecture;
  /** Whole training images at `imageSize` (the encoder sees them whole; the decoder a crop). */
  images: ImageSource;
  imageSize?: number;
  /** Side of the decoder's latent crops (default 16: 64x64 pixels at factor 4). */
  latentCrop?: number;
}

/** Decoder training graph: latent crop -> decoder -> loss MSE + 0.5 L1 against the image crop. */
export function vaeDecoderTrainingGraph(a: VaeArchitecture, batch: number, latentSide: number) {
  const m = new ModelBuilder('vae_decoder_training', 11, 'input');
  const g = m.g;
  const side = latentSide * vaeScaleFactor(a);
  const latent = g.input('latent', [batch, a.latentChannels, latentSide, latentSide]);
  const image = g.input('image', [batch, 3, side, side]);
  const diff = g.op1('Sub', [vaeDecoder(m, a, latent), image]);
  const mse = g.op1('ReduceMean', [g.op1('Mul', [diff, diff])], { keepdims: 0 });
  const l1 = g.op1('ReduceMean', [g.op1('Abs', [diff])], { keepdims: 0 });
  const loss = g.op1('Add', [mse, g.op1('Mul', [l1, g.scalar(0.5)])]);
  return { m, loss };
}

/** The resnets of a level: `encoder.down_blocks.<level>.resnets.<j>` or `decoder.up_blocks.<level>.resnets.<j>`. */
function resnetPattern(part: 'encoder' | 'decoder', level: string, index: string): RegExp {
  return new RegExp(
    `^${part}\\.${part === 'encoder' ? 'down' : 'up'}_blocks\\.${level}\\.resnets\\.${index}\\.`,
  );
}

/** A resnet a grown decoder or encoder adds: `resnets.<j>` with j >= 1. */
const GROWN_DECODER_RESNET = resnetPattern('decoder', '\\d+', '[1-9]\\d*');
const GROWN_ENCODER_RESNET = resnetPattern('encoder', '\\d+', '[1-9]\\d*');

/** Resnets per level of a trained encoder or decoder, read from its weights' names. */
export function resnetsPerBlock(weights: readonly ParameterTensor[], part: 'encoder' | 'decoder'): number {
  const pattern = resnetPattern(part, '0', '(\\d+)');
  let count = 0;
  for (const w of weights) {
    const match = pattern.exec(w.name);
    if (match) count = Math.max(count, Number(match[1]) + 1);
  }
  if (count === 0) throw new RangeError(`these weights have no ${part} resnets`);
  return count;
}

/**
 * Sets a decoder builder's initial values from trained weights. Parameters the weights lack must
 * belong to added resnets; those keep their random initialization except `conv2`, which starts at
 * zero, so each added block starts as the identity and the grown decoder decodes exactly as the
 * trained one did. Returns the names of the added parameters.
 */
export function growDecoderValues(m: ModelBuilder, weights: readonly ParameterTensor[]): string[] {
  const byName = new Map(weights.map((w) => [w.name, w]));
  const grown: string[] = [];
  for (const p of m.params) {
    const w = byName.get(p.name);
    if (w) {
      if (w.shape.join('x') !== p.shape.join('x'))
        throw new RangeError(
          `decoder weight ${p.name} is ${w.shape.join('x')}, the architecture wants ${p.shape.join('x')}`,
        );
      m.values.set(p.name, Float32Array.from(w.data));
    } else if (GROWN_DECODER_RESNET.test(p.name)) {
      if (/\.conv2\.(weight|bias)$/.test(p.name)) m.values.get(p.name)?.fill(0);
      grown.push(p.name);
    } else {
      throw new RangeError(`the trained decoder has no weight ${p.name}`);
    }
  }
  return grown;
}

/** Batches of (posterior mean crop, image crop), the means from the frozen encoder. */
class LatentCropBatches implements DataLoader {
  constructor(
    readonly batchSize: number,
    private readonly encoder: ort.InferenceSession,
    private readonly images: ImageSource,
    private readonly imageSize: number,
    private readonly latentCrop: number,
    private readonly a: VaeArchitecture,
  ) {}

  async next(rng: Rng): Promise<Record<string, ort.Tensor>> {
    const B = this.batchSize;
    const S = this.imageSize;
    const f = vaeScaleFactor(this.a);
    const C = this.a.latentChannels;
    const [L, c] = [S / f, this.latentCrop];
    const pixels = new Float32Array(B * 3 * S * S);
    for (let b = 0; b < B; b++) pixels.set(this.images(rng, S), b * 3 * S * S);
    const params = (await this.encoder.run({ sample: new ort.Tensor('float32', pixels, [B, 3, S, S]) }))
      .latent_parameters.data as Float32Array;
    const latent = new Float32Array(B * C * c * c);
    const image = new Float32Array(B * 3 * (c * f) ** 2);
    for (let b = 0; b < B; b++) {
      const lx = Math.floor(rng.nextFloat() * (L - c + 1));
      const ly = Math.floor(rng.nextFloat() * (L - c + 1));
      for (let ch = 0; ch < C; ch++)
        for (let y = 0; y < c; y++) {
          const from = ((b * 2 * C + ch) * L + ly + y) * L + lx; // the mean: the first C channels
          latent.set(params.subarray(from, from + c), ((b * C + ch) * c + y) * c);
        }
      const side = c * f;
      for (let ch = 0; ch < 3; ch++)
        for (let y = 0; y < side; y++) {
          const from = ((b * 3 + ch) * S + ly * f + y) * S + lx * f;
          image.set(pixels.subarray(from, from + side), ((b * 3 + ch) * side + y) * side);
        }
    }
    return {
      latent: new ort.Tensor('float32', latent, [B, C, c, c]),
      image: new ort.Tensor('float32', image, [B, 3, c * f, c * f]),
    };
  }
}

/**
 * Trains a (grown) decoder on the frozen encoder's posterior means: see {@link growDecoderValues}
 * for how it starts. Returns the decoder's parameters.
 */
export async function trainVaeDecoder(
  o: VaeDecoderTrainingOptions,
): Promise<{ parameters: ParameterTensor[]; step: number; lastLoss: number; grown: string[] }> {
  const a = o.architecture;
  const batch = o.batch ?? 8;
  const lr = o.lr ?? 3e-4;
  const latentCrop = o.latentCrop ?? 16;
  const imageSize = o.imageSize ?? 128;
  if (imageSize % vaeScaleFactor(a) !== 0 || latentCrop > imageSize / vaeScaleFactor(a))
    throw new RangeError(`a ${latentCrop}-latent crop does not fit ${imageSize}-pixel images`);
  const { m, loss } = vaeDecoderTrainingGraph(a, batch, latentCrop);
  const grown = growDecoderValues(m, o.initialWeights);
  const encoder = await ort.InferenceSession.create(o.encoder);
  const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values });
  try {
    const trainer = await Trainer.adamW(
      step,
      new LatentCropBatches(batch, encoder, o.images, imageSize, latentCrop, a),
      {
        steps: o.steps,
        lr,
        minLr: lr / 20,
        warmupSteps: Math.min(100, Math.floor(o.steps / 10)),
        seed: o.seed ?? 1,
        checkpointDir: o.checkpointDir,
        checkpointEvery: o.checkpointEvery ?? 100,
        resume: o.resume === true,
      },
    );
    const result = await trainer.train(o.steps, { signal: o.signal, onProgress: o.onProgress });
    return { parameters: step.parameters, step: result.step, lastLoss: result.lastLoss, grown };
  } finally {
    await step.dispose();
    await encoder.release();
  }
}

// ---------------------------------------------------------------------------------------------
// refining the encoder

export interface VaeEncoderTrainingOptions extends TrainingRunOptions {
  /** The trained encoder's weights: the starting point. */
  initialWeights: readonly ParameterTensor[];
  /** The original encoder (ONNX bytes): its posterior means are the anchor. */
  anchorEncoder: Uint8Array;
  /** The frozen decoder's weights (it must be built by `architecture`). */
  decoderWeights: readonly ParameterTensor[];
  /**
   * Encoder and decoder. An encoder with more resnets per level than `initialWeights` is grown:
   * the added ones start as identities (conv2 at zero), so training starts at the trained encoder.
   */
  architecture: VaeArchitecture;
  images: ImageSource;
  /**
   * Side of the training images (default 128, whole world scenes as the UNet's data and the
   * figures see them: 64-pixel crops lowered the held-out PSNR, their borders are not the whole
   * picture's).
   */
  size?: number;
  /** The UNet's `scaling_factor`: the anchor is measured in the latents the UNet sees. */
  scalingFactor: number;
  /** Weight of the anchor, the mean squared distance to the original means (default 0.1). */
  anchorWeight?: number;
}

/**
 * Encoder training graph: image -> encoder -> posterior mean -> frozen decoder, loss MSE against
 * the image (what PSNR measures: the decoder is fixed, so the encoder only chooses latents) plus
 * `anchorWeight` x mean((scalingFactor x (mean - anchor))^2). Every weight is
 * an initializer (the decoder's stay frozen); the encoder's are named in `trainable`.
 */
export function vaeEncoderTrainingGraph(
  a: VaeArchitecture,
  batch: number,
  size: number,
  o: { scalingFactor: number; anchorWeight: number },
): { g: Graph; loss: string; trainable: string[]; m: ModelBuilder } {
  const m = new ModelBuilder('vae_encoder_training', 13);
  const g = m.g;
  const f = vaeScaleFactor(a);
  const C = a.latentChannels;
  const image = g.input('image', [batch, 3, size, size]);
  const anchor = g.input('anchor', [batch, C, size / f, size / f]);
  const [mean] = g.op('Split', [vaeEncoder(m, a, image), g.ints([C, C])], { axis: 1 }, { count: 2 });
  const trainable = m.params.map((p) => p.name);
  const diff = g.op1('Sub', [vaeDecoder(m, a, mean), image]);
  const mse = g.op1('ReduceMean', [g.op1('Mul', [diff, diff])], { keepdims: 0 });
  const shift = g.op1('Mul', [g.op1('Sub', [mean, anchor]), g.scalar(o.scalingFactor)]);
  const drift = g.op1('ReduceMean', [g.op1('Mul', [shift, shift])], { keepdims: 0 });
  const loss = g.op1('Add', [mse, g.op1('Mul', [drift, g.scalar(o.anchorWeight)])]);
  return { g, loss, trainable, m };
}

/** Batches of (image crop, the original encoder's posterior mean of it). */
class AnchoredImageBatches implements DataLoader {
  constructor(
    readonly batchSize: number,
    private readonly anchorEncoder: ort.InferenceSession,
    private readonly images: ImageSource,
    private readonly size: number,
    private readonly a: VaeArchitecture,
  ) {}

  async next(rng: Rng): Promise<Record<string, ort.Tensor>> {
    const { batchSize: B, size: S } = this;
    const C = this.a.latentChannels;
    const h = S / vaeScaleFactor(this.a);
    const pixels = new Float32Array(B * 3 * S * S);
    for (let b = 0; b < B; b++) pixels.set(this.images(rng, S), b * 3 * S * S);
    const image = new ort.Tensor('float32', pixels, [B, 3, S, S]);
    const params = (await this.anchorEncoder.run({ sample: image })).latent_parameters.data as Float32Array;
    const anchor = new Float32Array(B * C * h * h);
    for (let b = 0; b < B; b++)
      anchor.set(params.subarray(b * 2 * C * h * h, (b * 2 + 1) * C * h * h), b * C * h * h);
    return { image, anchor: new ort.Tensor('float32', anchor, [B, C, h, h]) };
  }
}

/**
 * Refines a trained encoder against the frozen decoder (see the file header); starts exactly at
 * the trained encoder, so the anchor term starts at zero. Returns the encoder's parameters.
 */
export async function trainVaeEncoder(
  o: VaeEncoderTrainingOptions,
): Promise<{ parameters: ParameterTensor[]; step: number; lastLoss: number; grown: string[] }> {
  const a = o.architecture;
  const batch = o.batch ?? 4;
  const lr = o.lr ?? 3e-4;
  const size = o.size ?? 128;
  if (size % vaeScaleFactor(a) !== 0)
    throw new RangeError(`crops of ${size} px do not divide by the scale factor ${vaeScaleFactor(a)}`);
  const { g, loss, trainable, m } = vaeEncoderTrainingGraph(a, batch, size, {
    scalingFactor: o.scalingFactor,
    anchorWeight: o.anchorWeight ?? 0.1,
  });
  const given = new Map([...o.initialWeights, ...o.decoderWeights].map((w) => [w.name, w]));
  const grown: string[] = [];
  for (const p of m.params) {
    const w = given.get(p.name);
    if (!w && GROWN_ENCODER_RESNET.test(p.name)) {
      // an added encoder resnet: random, but conv2 at zero, so it starts as the identity
      if (/\.conv2\.(weight|bias)$/.test(p.name))
        g.setInitializer(p.name, new Float32Array(p.shape.reduce((x, y) => x * y, 1)));
      grown.push(p.name);
      continue;
    }
    if (!w) throw new RangeError(`the trained VAE has no weight ${p.name}`);
    if (w.shape.join('x') !== p.shape.join('x'))
      throw new RangeError(
        `VAE weight ${p.name} is ${w.shape.join('x')}, the architecture wants ${p.shape.join('x')}`,
      );
    g.setInitializer(p.name, Float32Array.from(w.data));
  }
  const anchorEncoder = await ort.InferenceSession.create(o.anchorEncoder);
  const step = await TrainStep.create({ graph: g, loss, parameters: trainable });
  try {
    const trainer = await Trainer.adamW(
      step,
      new AnchoredImageBatches(batch, anchorEncoder, o.images, size, a),
      {
        steps: o.steps,
        lr,
        minLr: lr / 20,
        warmupSteps: Math.min(100, Math.floor(o.steps / 10)),
        seed: o.seed ?? 1,
        checkpointDir: o.checkpointDir,
        checkpointEvery: o.checkpointEvery ?? 100,
        resume: o.resume === true,
      },
    );
    const result = await trainer.train(o.steps, { signal: o.signal, onProgress: o.onProgress });
    return { parameters: step.parameters, step: result.step, lastLoss: result.lastLoss, grown };
  } finally {
    await step.dispose();
    await anchorEncoder.release();
  }
}

/** Root mean square distance between two encoders' posterior means over held-out images, in the UNet's scaled units. */
export async function encoderShift(
  encoders: { before: Uint8Array; after: Uint8Array },
  images: ImageSource,
  scalingFactor: number,
  { count = 64, size = 128, seed = 777_777 } = {},
): Promise<number> {
  const [before, after] = await Promise.all([
    ort.InferenceSession.create(encoders.before),
    ort.InferenceSession.create(encoders.after),
  ]);
  try {
    const rng = new Rng(seed);
    let sum = 0;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const sample = new ort.Tensor('float32', images(rng, size), [1, 3, size, size]);
      const p = (await before.run({ sample })).latent_parameters;
      const q = (await after.run({ sample })).latent_parameters.data as Float32Array;
      const half = (p.data as Float32Array).length / 2;
      for (let k = 0; k < half; k++) sum += ((q[k] - (p.data as Float32Array)[k]) * scalingFactor) ** 2;
      n += half;
    }
    return Math.sqrt(sum / n);
  } finally {
    await before.release();
    await after.release();
  }
}

/** The decoder alone as an inference graph (float16 storage), as ONNX bytes. */
export function vaeDecoderModel(params: readonly ParameterTensor[], a: VaeArchitecture): Uint8Array {
  const dec = new ModelBuilder('vae_decoder', 1);
  const latent = dec.g.input('latent_sample', [1, a.latentChannels, 32, 32]);
  dec.g.output(vaeDecoder(dec, a, latent), 'sample');
  const names = new Set(dec.params.map((p) => p.name));
  bakeParameters(
    dec.g,
    params.filter((p) => names.has(p.name)),
  );
  dec.g.storeWeightsAsFloat16();
  return dec.g.toBytes({
    dynamicAxes: {
      latent_sample: { 0: 'batch', 2: 'latent_height', 3: 'latent_width' },
      sample: { 0: 'batch', 2: 'height', 3: 'width' },
    },
  });
}

/** Inference graphs with the trained weights baked in (float16 storage), as ONNX bytes. */
export function vaeInferenceModels(params: readonly ParameterTensor[], a: VaeArchitecture = TINY_VAE) {
  return { encoder: vaeEncoderModel(params, a), decoder: vaeDecoderModel(params, a) };
}

/** The encoder alone as an inference graph (float16 storage), as ONNX bytes. */
export function vaeEncoderModel(
  params: readonly ParameterTensor[],
  a: VaeArchitecture = TINY_VAE,
): Uint8Array {
  const f = vaeScaleFactor(a);
  const enc = new ModelBuilder('vae_encoder', 1);
  const image = enc.g.input('sample', [1, 3, 32 * f, 32 * f]);
  enc.g.output(vaeEncoder(enc, a, image), 'latent_parameters');
  const names = new Set(enc.params.map((p) => p.name));
  bakeParameters(
    enc.g,
    params.filter((p) => names.has(p.name)),
  );
  enc.g.storeWeightsAsFloat16();
  return enc.g.toBytes({
    dynamicAxes: {
      sample: { 0: 'batch', 2: 'height', 3: 'width' },
      latent_parameters: { 0: 'batch', 2: 'latent_height', 3: 'latent_width' },
    },
  });
}

/** Reconstruction PSNR (dB, images in [-1, 1] so the peak-to-peak range is 2) and latent std over held-out images. */
export async function evaluateVae(
  models: { encoder: Uint8Array; decoder: Uint8Array },
  images: ImageSource,
  { count = 64, size = 128, seed = 777_777 } = {},
): Promise<{ psnr: number; latentStd: number }> {
  const enc = await ort.InferenceSession.create(models.encoder);
  const dec = await ort.InferenceSession.create(models.decoder);
  const rng = new Rng(seed);
  let mseSum = 0;
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let i = 0; i < count; i++) {
    const img = images(rng, size);
    const params = (await enc.run({ sample: new ort.Tensor('float32', img, [1, 3, size, size]) }))
      .latent_parameters;
    const [, c2, h, w] = params.dims;
    const mean = (params.data as Float32Array).subarray(0, (c2 / 2) * h * w);
    for (const v of mean) {
      sum += v;
      sumSq += v * v;
      n++;
    }
    const recon = (
      await dec.run({ latent_sample: new ort.Tensor('float32', mean.slice(), [1, c2 / 2, h, w]) })
    ).sample.data as Float32Array;
    let mse = 0;
    for (let k = 0; k < img.length; k++) {
      const r = Math.max(-1, Math.min(1, recon[k]));
      mse += (r - img[k]) ** 2;
    }
    mseSum += mse / img.length;
  }
  await enc.release();
  await dec.release();
  const mse = mseSum / count;
  const variance = sumSq / n - (sum / n) ** 2;
  return { psnr: 10 * Math.log10(4 / mse), latentStd: Math.sqrt(variance) };
}

/** Writes vae_encoder/ and vae_decoder/ (model.onnx + config.json) into a model folder. */
export async function writeVae(
  dir: string,
  models: { encoder: Uint8Array; decoder: Uint8Array },
  scalingFactor: number,
  a: VaeArchitecture = TINY_VAE,
): Promise<void> {
  await writeVaePart(dir, 'vae_encoder', models.encoder, scalingFactor, a);
  await writeVaePart(dir, 'vae_decoder', models.decoder, scalingFactor, a);
}

/**
 * Writes one part (model.onnx + config.json, diffusers' AutoencoderKL fields plus its resnets per
 * level, `encoder_resnets_per_block` or `decoder_resnets_per_block`) atomically.
 */
export async function writeVaePart(
  dir: string,
  part: 'vae_encoder' | 'vae_decoder',
  bytes: Uint8Array,
  scalingFactor: number,
  a: VaeArchitecture,
): Promise<void> {
  const config = {
    _class_name: 'AutoencoderKL',
    in_channels: 3,
    out_channels: 3,
    latent_channels: a.latentChannels,
    block_out_channels: a.blockOutChannels,
    ...(part === 'vae_decoder'
      ? { decoder_resnets_per_block: a.decoderResnetsPerBlock ?? 1 }
      : { encoder_resnets_per_block: a.encoderResnetsPerBlock ?? 1 }),
    norm_num_groups: a.normGroups,
    scaling_factor: scalingFactor,
    sample_size: 128,
  };
  await mkdir(join(dir, part), { recursive: true });
  await writeFileAtomic(join(dir, part, 'model.onnx'), bytes);
  await writeFileAtomic(join(dir, part, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}
