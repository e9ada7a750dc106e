/**
 * The tiny world's autoencoder: 128x128 RGB <-> a 32x32x4 latent (4x downsampling), trained with
 * the project's engine (reconstruction MSE + L1 + a small KL term), exported in the diffusers
 * ONNX layout (vae_encoder/, vae_decoder/ with config.json) with float16 weight storage, and
 * measured by reconstruction PSNR on held-out images.
 *
 * @example
 * const result = await trainVae({ steps: 3000, images, checkpointDir: '.tmp/tiny/vae', resume: true });
 * await exportVae(result.parameters, 'native-models/weights/tiny-sd', scalingFactor);
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../onnx/layers.js';
import { vaeDecoder, vaeEncoder, vaeScaleFactor, type VaeArchitecture } from '../models/vae.js';
import { TrainStep } from '../training/train-step.js';
import { Trainer, bakeParameters, type DataLoader, type TrainProgress } from '../training/trainer.js';
import { AdamW, cosineWithWarmup, type ParameterTensor } from '../training/optimizers.js';
import { Rng } from '../tensor/random.js';

export const TINY_VAE: VaeArchitecture = { latentChannels: 4, blockOutChannels: [32, 64, 64], normGroups: 8 };

/** Draws one training image, CHW in [-1, 1], of size x size. */
export type ImageSource = (rng: Rng, size: number) => Float32Array;

export interface VaeTrainingOptions {
  images: ImageSource;
  steps: number;
  size?: number;
  batch?: number;
  lr?: number;
  klWeight?: number;
  seed?: number;
  checkpointDir?: string;
  checkpointEvery?: number;
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
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
  const trainer = await Trainer.create(
    {
      model: step,
      data: new ImageBatches(batch, size, o.images, [a.latentChannels, size / vaeScaleFactor(a)]),
      optimizer: new AdamW({ lr, weightDecay: 0 }),
      learningRate: cosineWithWarmup({
        lr,
        warmupSteps: Math.min(200, Math.floor(o.steps / 10)),
        totalSteps: o.steps,
        minLr: lr / 20,
      }),
      maxGradNorm: 1,
      seed: o.seed ?? 1,
      ...(o.checkpointDir
        ? { checkpointDir: o.checkpointDir, checkpointEvery: o.checkpointEvery ?? 200 }
        : {}),
    },
    { resume: o.resume === true },
  );
  const result = await trainer.train(o.steps, {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  await step.dispose();
  return { parameters: step.parameters, step: result.step, lastLoss: result.lastLoss };
}

/** Inference graphs with the trained weights baked in (float16 storage), as ONNX bytes. */
export function vaeInferenceModels(params: readonly ParameterTensor[], a: VaeArchitecture = TINY_VAE) {
  const f = vaeScaleFactor(a);
  const enc = new ModelBuilder('vae_encoder', 1);
  const image = enc.g.input('sample', [1, 3, 32 * f, 32 * f]);
  enc.g.output(vaeEncoder(enc, a, image), 'latent_parameters');
  const dec = new ModelBuilder('vae_decoder', 1);
  const latent = dec.g.input('latent_sample', [1, a.latentChannels, 32, 32]);
  dec.g.output(vaeDecoder(dec, a, latent), 'sample');
  const byName = (names: Set<string>) => params.filter((p) => names.has(p.name));
  bakeParameters(enc.g, byName(new Set(enc.params.map((p) => p.name))));
  bakeParameters(dec.g, byName(new Set(dec.params.map((p) => p.name))));
  enc.g.storeWeightsAsFloat16();
  dec.g.storeWeightsAsFloat16();
  return {
    encoder: enc.g.toBytes({
      dynamicAxes: {
        sample: { 0: 'batch', 2: 'height', 3: 'width' },
        latent_parameters: { 0: 'batch', 2: 'latent_height', 3: 'latent_width' },
      },
    }),
    decoder: dec.g.toBytes({
      dynamicAxes: {
        latent_sample: { 0: 'batch', 2: 'latent_height', 3: 'latent_width' },
        sample: { 0: 'batch', 2: 'height', 3: 'width' },
      },
    }),
  };
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
  const config = {
    _class_name: 'AutoencoderKL',
    in_channels: 3,
    out_channels: 3,
    latent_channels: a.latentChannels,
    block_out_channels: a.blockOutChannels,
    norm_num_groups: a.normGroups,
    scaling_factor: scalingFactor,
    sample_size: 128,
  };
  for (const [part, bytes] of [
    ['vae_encoder', models.encoder],
    ['vae_decoder', models.decoder],
  ] as const) {
    await mkdir(join(dir, part), { recursive: true });
    await writeFile(join(dir, part, 'model.onnx'), bytes);
    await writeFile(join(dir, part, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  }
}
