/**
 * The tiny world's segmentation model: a U-Net with a ResNet-34-style encoder, trained with the
 * project's engine on world scenes against their class masks, exported in the SAL contract of
 * pipelines/sal.ts (`segmentation/model.onnx` + `classes.json`) with float16 weight storage, and
 * measured on held-out scenes. SAL guides generation through it; the judge (judge.ts) scores the
 * acceptance metrics with it.
 *
 *   encoder  image [B, 3, H, W] in [-1, 1] -> stem (conv 3x3 stride 2, GN, ReLU) -> layer1..layer4
 *            of basic residual blocks in the ResNet-34 layout [3, 4, 6, 3] (two 3x3 convs per
 *            block; the first block of layers 2-4 has stride 2 and a 1x1 projection shortcut),
 *            16/32/64/128 channels at 1/2, 1/4, 1/8, 1/16 of the input
 *   decoder  four U-Net blocks: nearest 2x upsampling, concatenation with the skip (layer3,
 *            layer2, layer1, then the input image itself at full resolution), two conv 3x3 + GN +
 *            ReLU; 64/32/16/16 channels
 *   head     conv 1x1 -> logits [B, K, H, W], K = WORLD_CLASSES.length (background first)
 *
 * Names follow torchvision's ResNet (`encoder.layer1.0.conv1.weight`, `encoder.layer2.0.downsample.0`)
 * and segmentation_models_pytorch's U-Net (`decoder.blocks.0.conv1`, `segmentation_head`). The
 * `bn*` / `downsample.1` slots hold GroupNorm (8 groups): it trains at batch 8 without running
 * statistics and exports as one op that has a gradient rule. Convs have no bias (the norm after
 * them has one); the last norm of each residual block starts at zero, so every block starts as
 * the identity (Goyal et al. 2017), which helps short runs. H and W must be multiples of 16.
 *
 * Loss: per-pixel softmax cross-entropy over the class axis, each pixel weighted by its class's
 * weight 1 / sqrt(frequency) (normalized so the mean pixel weight is 1): the background covers
 * ~83% of the pixels, and unweighted training learned only the largest class in a 1000-step trial.
 * Plus half the same loss on a training-only 1x1 head at 1/8 resolution (deep supervision, see
 * {@link segmentationTrainingGraph}). AdamW (lr 5e-3, the best of 1e-3 / 2e-3 / 5e-3 / 1e-2 in
 * 400-step trials), cosine schedule with warmup, gradient norm clipped to 1.
 *
 * Data: world scenes of 1-4 subjects at 128x128, mirrored half the time; 40% of them degraded
 * like a generator's output (blur or 2x resampling, noise, slight colour shifts; see
 * {@link degradeLikeGenerator}).
 *
 * Cost: a training step at batch 8 takes ~1.3 s of CPU (two onnxruntime threads) plus ~70 ms
 * to draw the batch, about 0.7 s on two idle cores: 2000 steps (the default) in ~25 minutes.
 *
 * @example
 * const result = await trainSegmentation({ steps: 2000, checkpointDir: '.tmp/tiny/segmentation', resume: true });
 * await writeSegmentation(join(out, 'segmentation'), segmentationInferenceModel(result.parameters));
 * const judge = await SegmentationJudge.load(join(out, 'segmentation'));
 * const figures = await evaluateSegmentation(judge);
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../onnx/layers.js';
import { float } from '../onnx/graph.js';
import { crossEntropyLoss } from '../training/losses.js';
import { TrainStep } from '../training/train-step.js';
import { Trainer, bakeParameters, type DataLoader, type TrainingRunOptions } from '../training/trainer.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { Rng } from '../tensor/random.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import { imageToTensor } from '../image/image.js';
import { generateScene } from '../world/scene.js';
import { CLASS_INFO, SUBJECT_CLASSES, WORLD_CLASSES } from '../world/classes.js';
import { stepsBefore } from './run-steps.js';
import {
  SegmentationJudge,
  classInRegion,
  judgeImage,
  mainColor,
  silhouetteIoU,
  skeletonSilhouette,
  subjectPixels,
} from './judge.js';

export interface SegmentationArchitecture {
  /** Side of the square training images (the judge resamples pictures to it). */
  imageSize: number;
  /** Output channels of the stem (3x3 conv, stride 2). */
  stemChannels: number;
  /** Channels of the four residual stages (layer1..layer4); layers 2-4 halve the resolution. */
  stageChannels: [number, number, number, number];
  /** Basic blocks per stage: [3, 4, 6, 3] is ResNet-34. */
  stageBlocks: [number, number, number, number];
  /** Channels of the four decoder blocks, deepest first (1/8, 1/4, 1/2 and full resolution). */
  decoderChannels: [number, number, number, number];
  normGroups: number;
  /** Class names, background first; the logits' channels. */
  classes: readonly string[];
}

/** The shipped model: ResNet-34 layout at 1/4 of its width (1.53 M parameters). */
export const TINY_SEGMENTATION: SegmentationArchitecture = {
  imageSize: 128,
  stemChannels: 16,
  stageChannels: [16, 32, 64, 128],
  stageBlocks: [3, 4, 6, 3],
  decoderChannels: [64, 32, 16, 16],
  normGroups: 8,
  classes: WORLD_CLASSES,
};

// ---------------------------------------------------------------------------------------------
// network

/** Conv without bias (torchvision's ResNet convs; the norm after it has the bias), He-initialized. */
function conv(m: ModelBuilder, name: string, x: string, out: number, kernel: number, stride = 1): string {
  const inChannels = m.g.shape(x)[1];
  const fanIn = inChannels * kernel * kernel;
  const w = m.param(`${name}.weight`, [out, inChannels, kernel, kernel], 'normal', Math.sqrt(2 / fanIn));
  const pad = (kernel - 1) >> 1;
  return m.g.op1('Conv', [x, w], {
    kernel_shape: [kernel, kernel],
    strides: [stride, stride],
    pads: [pad, pad, pad, pad],
  });
}

function groupNorm(
  m: ModelBuilder,
  name: string,
  x: string,
  groups: number,
  scale: 'ones' | 'zeros' = 'ones',
) {
  const c = m.g.shape(x)[1];
  const weight = m.param(`${name}.weight`, [c], scale);
  const bias = m.param(`${name}.bias`, [c], 'zeros');
  return m.g.op1('GroupNormalization', [x, weight, bias], {
    num_groups: Math.min(groups, c),
    epsilon: float(1e-5),
  });
}

const relu = (m: ModelBuilder, x: string) => m.g.op1('Relu', [x]);

/** torchvision BasicBlock: conv3x3-norm-relu-conv3x3-norm, + identity or 1x1 projection, relu. */
function basicBlock(m: ModelBuilder, name: string, x: string, out: number, stride: number, groups: number) {
  const inChannels = m.g.shape(x)[1];
  let h = relu(m, groupNorm(m, `${name}.bn1`, conv(m, `${name}.conv1`, x, out, 3, stride), groups));
  h = groupNorm(m, `${name}.bn2`, conv(m, `${name}.conv2`, h, out, 3), groups, 'zeros');
  const identity =
    stride === 1 && inChannels === out
      ? x
      : groupNorm(m, `${name}.downsample.1`, conv(m, `${name}.downsample.0`, x, out, 1, stride), groups);
  return relu(m, m.g.op1('Add', [h, identity]));
}

function upsample2x(m: ModelBuilder, x: string): string {
  const g = m.g;
  return g.op1('Resize', [x, '', g.initializer(g.fresh('scales'), Float32Array.from([1, 1, 2, 2]), [4])], {
    mode: 'nearest',
    nearest_mode: 'floor',
    coordinate_transformation_mode: 'asymmetric',
  });
}

/** The U-Net: image [B, 3, H, W] in [-1, 1] -> logits [B, K, H, W]. H and W must be multiples of 16. */
export function segmentationUnet(m: ModelBuilder, a: SegmentationArchitecture, image: string): string {
  return unet(m, a, image).logits;
}

/** The U-Net, also returning the decoder blocks' outputs (deepest first). */
function unet(
  m: ModelBuilder,
  a: SegmentationArchitecture,
  image: string,
): { logits: string; decoder: string[] } {
  const g = m.g;
  const G = a.normGroups;
  let h = relu(m, groupNorm(m, 'encoder.bn1', conv(m, 'encoder.conv1', image, a.stemChannels, 3, 2), G));
  const features: string[] = [];
  a.stageChannels.forEach((channels, s) => {
    for (let b = 0; b < a.stageBlocks[s]; b++)
      h = basicBlock(m, `encoder.layer${s + 1}.${b}`, h, channels, s > 0 && b === 0 ? 2 : 1, G);
    features.push(h);
  });
  // skips deepest first: layer3 (1/8), layer2 (1/4), layer1 (1/2), the image (full resolution)
  const skips = [features[2], features[1], features[0], image];
  const decoder: string[] = [];
  a.decoderChannels.forEach((channels, i) => {
    const p = `decoder.blocks.${i}`;
    h = g.op1('Concat', [upsample2x(m, h), skips[i]], { axis: 1 });
    h = relu(m, groupNorm(m, `${p}.norm1`, conv(m, `${p}.conv1`, h, channels, 3), G));
    h = relu(m, groupNorm(m, `${p}.norm2`, conv(m, `${p}.conv2`, h, channels, 3), G));
    decoder.push(h);
  });
  return { logits: m.conv2d('segmentation_head', h, a.classes.length, 1), decoder };
}

/** Number of weights of the network. */
export function segmentationParameterCount(a: SegmentationArchitecture = TINY_SEGMENTATION): number {
  return segmentationParameterShapes(a).reduce((n, p) => n + p.shape.reduce((x, y) => x * y, 1), 0);
}

/** Name and shape of every weight of the inference model. */
function segmentationParameterShapes(
  a: SegmentationArchitecture,
): { name: string; shape: readonly number[] }[] {
  const m = new ModelBuilder('count', 1);
  segmentationUnet(m, a, m.g.input('image', [1, 3, a.imageSize, a.imageSize]));
  return m.params;
}

// ---------------------------------------------------------------------------------------------
// data

/** One training example: the picture CHW in [-1, 1] and its class index per pixel. */
export interface SegmentationSample {
  pixels: Float32Array;
  labels: Uint8Array;
}

/** Draws one size x size example. Must use only `rng` (for resumable runs). */
export type SegmentationSource = (rng: Rng, size: number) => SegmentationSample;

/** Fraction of training pictures degraded by {@link degradeLikeGenerator}. */
export const DEGRADED_FRACTION = 0.4;

/**
 * Roughens a clean render the way a tiny generator's output differs from it, in place: softened
 * (half the time a Gaussian blur with sigma 0.5-1.5 px, half the time averaged down 2x and
 * bilinearly up again, like a VAE's reconstruction), then Gaussian noise (sigma 0.01-0.05 in
 * [-1, 1] units, up to ~6 levels of 255) and a slight per-channel gain (+-8%) and offset (+-0.05).
 */
export function degradeLikeGenerator(rng: Rng, pixels: Float32Array, size: number): Float32Array {
  const plane = size * size;
  const soften = rng.nextFloat() < 0.5 ? 'blur' : 'resample';
  const sigma = 0.5 + rng.nextFloat();
  const noise = 0.01 + 0.04 * rng.nextFloat();
  for (let c = 0; c < 3; c++) {
    const channel = pixels.subarray(c * plane, (c + 1) * plane);
    if (soften === 'blur') gaussianBlur(channel, size, sigma);
    else halfAndBack(channel, size);
    const gain = 1 + 0.16 * (rng.nextFloat() - 0.5);
    const offset = 0.1 * (rng.nextFloat() - 0.5);
    for (let p = 0; p < plane; p++)
      channel[p] = Math.max(-1, Math.min(1, channel[p] * gain + offset + noise * rng.normal()));
  }
  return pixels;
}

function gaussianBlur(x: Float32Array, size: number, sigma: number): void {
  const r = Math.ceil(2 * sigma);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  const kernel = k.map((v) => v / sum);
  const tmp = new Float32Array(x.length);
  const clamp = (v: number) => Math.max(0, Math.min(size - 1, v));
  for (let y = 0; y < size; y++)
    for (let xx = 0; xx < size; xx++) {
      let s = 0;
      for (let i = -r; i <= r; i++) s += kernel[i + r] * x[y * size + clamp(xx + i)];
      tmp[y * size + xx] = s;
    }
  for (let y = 0; y < size; y++)
    for (let xx = 0; xx < size; xx++) {
      let s = 0;
      for (let i = -r; i <= r; i++) s += kernel[i + r] * tmp[clamp(y + i) * size + xx];
      x[y * size + xx] = s;
    }
}

/** 2x2 area average, then bilinear (half-pixel centres) back to full size. */
function halfAndBack(x: Float32Array, size: number): void {
  const h = size / 2;
  const small = new Float32Array(h * h);
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < h; xx++) {
      const o = 2 * y * size + 2 * xx;
      small[y * h + xx] = (x[o] + x[o + 1] + x[o + size] + x[o + size + 1]) / 4;
    }
  for (let y = 0; y < size; y++) {
    const sy = Math.max(0, Math.min(h - 1, (y + 0.5) / 2 - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let xx = 0; xx < size; xx++) {
      const sx = Math.max(0, Math.min(h - 1, (xx + 0.5) / 2 - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(h - 1, x0 + 1);
      const fx = sx - x0;
      const top = small[y0 * h + x0] * (1 - fx) + small[y0 * h + x1] * fx;
      const bottom = small[y1 * h + x0] * (1 - fx) + small[y1 * h + x1] * fx;
      x[y * size + xx] = top * (1 - fy) + bottom * fy;
    }
  }
}

/** Mirrors a CHW picture and its label map left to right, in place. */
export function flipHorizontally(pixels: Float32Array, labels: Uint8Array, size: number): void {
  const rows = pixels.length / size;
  for (let r = 0; r < rows; r++) pixels.subarray(r * size, (r + 1) * size).reverse();
  for (let y = 0; y < size; y++) labels.subarray(y * size, (y + 1) * size).reverse();
}

/**
 * World training examples: a scene of 1-4 subjects (uniform), rendered as the world renders by
 * default (2x2 supersampled), mirrored half the time, and {@link DEGRADED_FRACTION} of them
 * degraded like a generator's output, so the judge also reads generated pictures.
 */
export const worldSegmentationSample: SegmentationSource = (rng, size) => {
  const scene = generateScene(rng, { size, subjects: 1 + Math.floor(rng.nextFloat() * 4) });
  const pixels = imageToTensor(scene.image);
  const labels = scene.classMask.slice();
  if (rng.nextFloat() < 0.5) flipHorizontally(pixels, labels, size);
  if (rng.nextFloat() < DEGRADED_FRACTION) degradeLikeGenerator(rng, pixels, size);
  return { pixels, labels };
};

/**
 * Per-class loss weights 1 / sqrt(pixel frequency), normalized so that the mean weight of a pixel
 * is 1, from `count` world scenes of 1-4 subjects (fixed seed: the same weights every run).
 */
export function worldClassWeights(classes: number, count = 256, seed = 4242): Float32Array {
  const rng = new Rng(seed);
  const freq = new Float64Array(classes);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const scene = generateScene(rng, { size: 64, antialias: false });
    for (const c of scene.classMask) freq[c]++;
    total += scene.classMask.length;
  }
  const raw = Array.from(freq, (f) => 1 / Math.sqrt(Math.max(f / total, 1e-4)));
  const mean = raw.reduce((s, w, k) => s + (w * freq[k]) / total, 0);
  return Float32Array.from(raw, (w) => w / mean);
}

class SegmentationBatches implements DataLoader {
  constructor(
    readonly batchSize: number,
    private readonly size: number,
    private readonly classWeights: Float32Array,
    private readonly source: SegmentationSource,
  ) {}

  next(rng: Rng): Record<string, ort.Tensor> {
    const { batchSize: B, size: S } = this;
    const K = this.classWeights.length;
    const plane = S * S;
    const image = new Float32Array(B * 3 * plane);
    // class-weighted one-hot targets: the cross-entropy then weights each pixel by its class
    const targets = new Float32Array(B * K * plane);
    for (let b = 0; b < B; b++) {
      const { pixels, labels } = this.source(rng, S);
      image.set(pixels, b * 3 * plane);
      for (let p = 0; p < plane; p++) {
        const k = labels[p];
        if (k >= K) throw new Error(`label ${k} at pixel ${p} is not below the ${K} classes`);
        targets[(b * K + k) * plane + p] = this.classWeights[k];
      }
    }
    return {
      image: new ort.Tensor('float32', image, [B, 3, S, S]),
      targets: new ort.Tensor('float32', targets, [B, K, S, S]),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// training

/** Weight of the auxiliary loss on the first decoder block (see {@link segmentationTrainingGraph}). */
export const DEEP_SUPERVISION = 0.5;

/**
 * The training graph: image -> logits; loss = class-weighted per-pixel cross-entropy against
 * `targets` (class-weighted one-hot, [B, K, H, W]) + `deepSupervision` x the same cross-entropy of
 * a 1x1 head (`aux_head`, training only) on the first decoder block, at 1/8 resolution, against
 * the targets averaged over 8x8 cells. The auxiliary loss reaches the encoder through a short path:
 * on a 64x64 proxy it raised the held-out subject class accuracy after 1000 steps from 39% to 46%
 * and the mIoU from 23% to 30%.
 */
export function segmentationTrainingGraph(
  a: SegmentationArchitecture,
  batch: number,
  size: number,
  { seed = 1, deepSupervision = DEEP_SUPERVISION }: { seed?: number; deepSupervision?: number } = {},
) {
  const m = new ModelBuilder('segmentation_training', seed, 'input');
  const g = m.g;
  const image = g.input('image', [batch, 3, size, size]);
  const { logits, decoder } = unet(m, a, image);
  const targets = g.input('targets', [batch, a.classes.length, size, size]);
  let loss = crossEntropyLoss(g, logits, targets, { axis: 1 });
  if (deepSupervision > 0) {
    // the first decoder block (1/8 resolution) classifies its cells against the class fractions in them
    const aux = m.conv2d('aux_head', decoder[0], a.classes.length, 1);
    const pooled = g.op1('AveragePool', [targets], { kernel_shape: [8, 8], strides: [8, 8] });
    loss = g.op1('Add', [
      loss,
      g.op1('Mul', [crossEntropyLoss(g, aux, pooled, { axis: 1 }), g.scalar(deepSupervision)]),
    ]);
  }
  return { m, loss };
}

export interface SegmentationTrainingOptions extends TrainingRunOptions {
  architecture?: SegmentationArchitecture;
  /** Training picture side (default the architecture's imageSize). */
  size?: number;
  weightDecay?: number;
  warmupSteps?: number;
  source?: SegmentationSource;
  /** Weight of the auxiliary 1/8-resolution loss (default {@link DEEP_SUPERVISION}; 0 turns it off). */
  deepSupervision?: number;
  /** Loss weight per class (default {@link worldClassWeights}). */
  classWeights?: Float32Array;
  /**
   * Start from these weights where name and size match (fine-tuning, e.g. a cast's model from the
   * world model: the encoder and decoder carry over, a head for other classes starts fresh).
   */
  initialWeights?: readonly ParameterTensor[];
}

export async function trainSegmentation(
  o: SegmentationTrainingOptions,
): Promise<{ parameters: ParameterTensor[]; step: number; lastLoss: number }> {
  const a = o.architecture ?? TINY_SEGMENTATION;
  const size = o.size ?? a.imageSize;
  const batch = o.batch ?? 8;
  const lr = o.lr ?? 5e-3;
  if (size % 16 !== 0) throw new RangeError(`the training size must be a multiple of 16, got ${size}`);
  const weights = o.classWeights ?? worldClassWeights(a.classes.length);
  if (weights.length !== a.classes.length)
    throw new RangeError(`${weights.length} class weights for ${a.classes.length} classes`);
  const { m, loss } = segmentationTrainingGraph(a, batch, size, {
    ...(o.deepSupervision !== undefined ? { deepSupervision: o.deepSupervision } : {}),
  });
  if (o.initialWeights) {
    const byName = new Map(o.initialWeights.map((p) => [p.name, p.data]));
    for (const [name, value] of m.values) {
      const w = byName.get(name);
      if (w && w.length === value.length) value.set(w);
    }
  }
  const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values });
  const trainer = await Trainer.adamW(
    step,
    new SegmentationBatches(batch, size, weights, o.source ?? worldSegmentationSample),
    {
      steps: o.steps,
      lr,
      minLr: lr / 20,
      warmupSteps: o.warmupSteps ?? Math.min(100, Math.floor(o.steps / 10)),
      weightDecay: o.weightDecay ?? 0.01,
      // no decay for norm scales and biases
      noWeightDecay: (p) => p.shape.length <= 1,
      seed: o.seed ?? 1,
      checkpointDir: o.checkpointDir,
      checkpointEvery: o.checkpointEvery ?? 100,
      resume: o.resume === true,
    },
  );
  const result = await trainer.train(o.steps, { signal: o.signal, onProgress: o.onProgress });
  await step.dispose();
  return { parameters: step.parameters, step: result.step, lastLoss: result.lastLoss };
}

// ---------------------------------------------------------------------------------------------
// export

/** The inference model (image -> logits, batch and spatial sizes dynamic) with the trained weights baked in as float16. */
export function segmentationInferenceModel(
  params: readonly ParameterTensor[],
  a: SegmentationArchitecture = TINY_SEGMENTATION,
): Uint8Array {
  const m = new ModelBuilder('segmentation', 1);
  const image = m.g.input('image', [1, 3, a.imageSize, a.imageSize]);
  m.g.output(segmentationUnet(m, a, image), 'logits');
  const names = new Set(m.params.map((p) => p.name));
  bakeParameters(
    m.g,
    params.filter((p) => names.has(p.name)),
  );
  m.g.storeWeightsAsFloat16();
  return m.g.toBytes({
    dynamicAxes: {
      image: { 0: 'batch', 2: 'height', 3: 'width' },
      logits: { 0: 'batch', 2: 'height', 3: 'width' },
    },
  });
}

/** Writes model.onnx, classes.json (the SAL contract) and config.json (architecture, preprocessing) into `dir`. */
export async function writeSegmentation(
  dir: string,
  model: Uint8Array,
  a: SegmentationArchitecture = TINY_SEGMENTATION,
): Promise<void> {
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), model);
  await writeFile(join(dir, 'classes.json'), json({ classes: a.classes }));
  await writeFile(
    join(dir, 'config.json'),
    json({
      _class_name: 'MspTinySegmentationUnet',
      encoder: 'resnet34-style basic blocks, GroupNorm',
      image_size: a.imageSize,
      preprocessing: 'RGB, CHW, value / 127.5 - 1; height and width multiples of 16',
      stem_channels: a.stemChannels,
      stage_channels: a.stageChannels,
      stage_blocks: a.stageBlocks,
      decoder_channels: a.decoderChannels,
      norm_num_groups: a.normGroups,
      num_classes: a.classes.length,
    }),
  );
}

/**
 * The architecture of a segmentation folder written by {@link writeSegmentation} (config.json +
 * classes.json), or undefined when the folder holds another kind of model (it can still serve as a
 * judge or for SAL, but not be fine-tuned here).
 */
export async function readSegmentationArchitecture(
  dir: string,
): Promise<SegmentationArchitecture | undefined> {
  let config: Record<string, unknown>;
  let classes: unknown;
  try {
    config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    classes = (JSON.parse(await readFile(join(dir, 'classes.json'), 'utf8')) as { classes?: unknown })
      .classes;
  } catch {
    return undefined;
  }
  const four = (v: unknown): v is [number, number, number, number] =>
    Array.isArray(v) && v.length === 4 && v.every((x) => Number.isInteger(x) && x > 0);
  const positive = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
  if (
    config._class_name !== 'MspTinySegmentationUnet' ||
    !positive(config.image_size) ||
    !positive(config.stem_channels) ||
    !positive(config.norm_num_groups) ||
    !four(config.stage_channels) ||
    !four(config.stage_blocks) ||
    !four(config.decoder_channels) ||
    !Array.isArray(classes) ||
    !classes.every((c) => typeof c === 'string')
  )
    return undefined;
  return {
    imageSize: config.image_size,
    stemChannels: config.stem_channels,
    stageChannels: config.stage_channels,
    stageBlocks: config.stage_blocks,
    decoderChannels: config.decoder_channels,
    normGroups: config.norm_num_groups,
    classes: classes as string[],
  };
}

// ---------------------------------------------------------------------------------------------
// evaluation

/** Subjects with fewer visible pixels (nearly hidden by nearer ones) are left out of the per-subject figure. */
export const MIN_SUBJECT_AREA = 24;

export interface SegmentationFigures {
  pixelAcc: number;
  /** Mean over the classes of IoU (true positives / (true + false positives + false negatives), pooled over the images). */
  mIoU: number;
  perClassIoU: Record<string, number>;
  /** Subjects whose class {@link classInRegion} finds in their own mask. */
  subjectClassAcc: number;
  perClassSubjectAcc: Record<string, number>;
  subjects: number;
}

export interface SegmentationEvaluation extends SegmentationFigures {
  images: number;
  /** The same held-out scenes, each degraded by {@link degradeLikeGenerator}. */
  degraded: SegmentationFigures;
  /**
   * Judge calibration on clean single-subject renders: mainColor of the pixels the judge assigns
   * to the subject's class (inside the subject's mask grown by 2 px) equals the world's colour.
   */
  colorAgreement: number;
  /** The same rule on the ground-truth masks (no model involved). */
  colorAgreementTrueMask: number;
  /** Mean IoU of the pixels the judge assigns to a person (any subject class) against the silhouette of its skeleton. */
  silhouetteIoU: number;
  /** The same with the ground-truth masks. */
  silhouetteIoUTrueMask: number;
  singles: number;
}

function dilate(mask: Uint8Array, size: number, radius: number): Uint8Array {
  let cur = mask;
  for (let r = 0; r < radius; r++) {
    const next = cur.slice();
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const o = y * size + x;
        if (cur[o]) continue;
        if (
          (x > 0 && cur[o - 1]) ||
          (x < size - 1 && cur[o + 1]) ||
          (y > 0 && cur[o - size]) ||
          (y < size - 1 && cur[o + size])
        )
          next[o] = 1;
      }
    cur = next;
  }
  return cur;
}

class FigureAccumulator {
  private correct = 0;
  private pixels = 0;
  private readonly tp: number[];
  private readonly fp: number[];
  private readonly fn: number[];
  private readonly hits: number[];
  private readonly seen: number[];

  constructor(private readonly classes: readonly string[]) {
    const zeros = () => new Array<number>(classes.length).fill(0);
    [this.tp, this.fp, this.fn, this.hits, this.seen] = [zeros(), zeros(), zeros(), zeros(), zeros()];
  }

  add(
    predicted: Uint8Array,
    truth: Uint8Array,
    subjects: { className: string; classIndex: number; mask: Uint8Array; area: number }[],
    size: number,
  ): void {
    for (let p = 0; p < truth.length; p++) {
      const t = truth[p];
      const q = predicted[p];
      this.pixels++;
      if (t === q) {
        this.correct++;
        this.tp[t]++;
      } else {
        this.fp[q]++;
        this.fn[t]++;
      }
    }
    const map = { width: size, height: size, classes: this.classes, data: predicted };
    for (const s of subjects) {
      if (s.area < MIN_SUBJECT_AREA) continue;
      this.seen[s.classIndex]++;
      if (classInRegion(map, s.mask, s.className)) this.hits[s.classIndex]++;
    }
  }

  figures(): SegmentationFigures {
    const perClassIoU: Record<string, number> = {};
    const perClassSubjectAcc: Record<string, number> = {};
    const ious: number[] = [];
    this.classes.forEach((c, k) => {
      const union = this.tp[k] + this.fp[k] + this.fn[k];
      if (union > 0) {
        perClassIoU[c] = this.tp[k] / union;
        ious.push(perClassIoU[c]);
      }
      if (k > 0 && this.seen[k] > 0) perClassSubjectAcc[c] = this.hits[k] / this.seen[k];
    });
    const subjects = this.seen.reduce((a, b) => a + b, 0);
    return {
      pixelAcc: this.correct / this.pixels,
      mIoU: ious.reduce((a, b) => a + b, 0) / ious.length,
      perClassIoU,
      subjectClassAcc: this.hits.reduce((a, b) => a + b, 0) / Math.max(1, subjects),
      perClassSubjectAcc,
      subjects,
    };
  }
}

/**
 * Held-out figures. The scenes come from a seed the training stream never draws: `count` scenes
 * of 1-4 subjects (clean, and each degraded once more), and `perClass` single-subject scenes per
 * class for the judge's colour and silhouette calibration.
 */
export async function evaluateSegmentation(
  judge: SegmentationJudge,
  { seed = 31_337, count = 200, perClass = 10, size = judge.inputSize, chunk = 8 } = {},
): Promise<SegmentationEvaluation> {
  const rng = new Rng(seed);
  const degradeRng = new Rng(seed + 1);
  const clean = new FigureAccumulator(judge.classes);
  const degraded = new FigureAccumulator(judge.classes);
  const plane = size * size;
  const classifyAt = async (pixels: Float32Array[]) => {
    const batch = new Float32Array(pixels.length * 3 * plane);
    pixels.forEach((p, i) => batch.set(p, i * 3 * plane));
    if (size === judge.inputSize) return judge.classify(batch, pixels.length);
    const maps: Uint8Array[] = [];
    for (const p of pixels) maps.push((await judgeImage(judge, { width: size, height: size, data: p })).data);
    return maps;
  };
  // 1. pixel and subject figures on scenes of 1-4 subjects, clean and degraded
  for (let start = 0; start < count; start += chunk) {
    const scenes = Array.from({ length: Math.min(chunk, count - start) }, () =>
      generateScene(rng, { size, subjects: 1 + Math.floor(rng.nextFloat() * 4) }),
    );
    const pixels = scenes.map((s) => imageToTensor(s.image));
    const maps = await classifyAt(pixels);
    const roughMaps = await classifyAt(pixels.map((p) => degradeLikeGenerator(degradeRng, p.slice(), size)));
    scenes.forEach((s, i) => {
      clean.add(maps[i], s.classMask, s.subjects, size);
      degraded.add(roughMaps[i], s.classMask, s.subjects, size);
    });
  }
  // 2. the judge's colour and silhouette rules on clean single-subject scenes
  let colorHits = 0;
  let colorHitsTrue = 0;
  const ious: number[] = [];
  const iousTrue: number[] = [];
  const singles = perClass * SUBJECT_CLASSES.length;
  for (let start = 0; start < singles; start += chunk) {
    const scenes = Array.from({ length: Math.min(chunk, singles - start) }, (_, i) =>
      generateScene(rng, {
        size,
        specs: [{ className: SUBJECT_CLASSES[(start + i) % SUBJECT_CLASSES.length] }],
      }),
    );
    const maps = await classifyAt(scenes.map((s) => imageToTensor(s.image)));
    scenes.forEach((s, i) => {
      const subject = s.subjects[0];
      const map = { width: size, height: size, classes: judge.classes, data: maps[i] };
      const region = dilate(subject.mask, size, 2);
      let pixels = subjectPixels(map, region, subject.className);
      if (pixels.reduce((n, v) => n + v, 0) < 8) pixels = subjectPixels(map, region, null);
      if (mainColor(s.image, pixels) === subject.color) colorHits++;
      if (mainColor(s.image, subject.mask) === subject.color) colorHitsTrue++;
      if (CLASS_INFO[subject.className].humanLike && s.pose.people.length === 1) {
        const silhouette = skeletonSilhouette(s.pose.people[0], size, size);
        ious.push(silhouetteIoU(subjectPixels(map, new Uint8Array(plane).fill(1), null), silhouette));
        iousTrue.push(silhouetteIoU(subject.mask, silhouette));
      }
    });
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    ...clean.figures(),
    images: count,
    degraded: degraded.figures(),
    colorAgreement: colorHits / singles,
    colorAgreementTrueMask: colorHitsTrue / singles,
    silhouetteIoU: mean(ious),
    silhouetteIoUTrueMask: mean(iousTrue),
    singles,
  };
}

// ---------------------------------------------------------------------------------------------
// the train:tiny stage

/**
 * `train:tiny --stage segmentation`: trains (checkpoints in `<work>/segmentation` every 100 steps,
 * a progress line every 25), exports `<out>/segmentation/`, evaluates on held-out scenes and
 * returns the figures for metrics.json. With `resume` and `steps` at or below the checkpoint's
 * step it only re-exports and re-evaluates.
 */
export async function runSegmentationStage(o: {
  steps?: number;
  batch?: number;
  resume: boolean;
  /**
   * Start from the folder's judge (segmentation/model.onnx) instead of from scratch, at a fifth of
   * the learning rate, on scenes of another seed, with checkpoints of its own (segmentation-fine-tune/).
   */
  fineTune?: boolean;
  out: string;
  work: string;
  log: (line: string) => void;
}): Promise<Record<string, number>> {
  const a = TINY_SEGMENTATION;
  const steps = o.steps ?? 2000;
  const started = performance.now();
  let last = started;
  let first = true;
  const dir = join(o.out, 'segmentation');
  const fineTune = o.fineTune === true;
  const checkpointDir = join(o.work, fineTune ? 'segmentation-fine-tune' : 'segmentation');
  // a fine-tuning run adds to the folder's fine-tuning steps (the judge it starts from may have had some)
  const before = fineTune
    ? await stepsBefore({
        checkpointDir,
        metricsDir: o.out,
        resume: o.resume,
        base: { seg_fine_tune_steps: 'folder' },
        warn: o.log,
      })
    : { seg_fine_tune_steps: 0 };
  // 1. train
  const result = await trainSegmentation({
    steps,
    batch: o.batch ?? 8,
    ...(fineTune ? { initialWeights: await folderJudgeWeights(dir), lr: 1e-3, seed: 2 } : {}),
    checkpointDir,
    checkpointEvery: 100,
    resume: o.resume,
    onProgress: (p) => {
      const now = performance.now();
      if (first) {
        o.log(`segmentation: starting at step ${p.step - 1}`);
        first = false;
        last = now;
      }
      if (p.step % 25 === 0 || p.step === p.totalSteps) {
        o.log(
          `segmentation step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ${((now - last) / 25).toFixed(0)} ms/step`,
        );
        last = now;
      }
    },
  });
  const trained = performance.now();
  // 2. export
  await writeSegmentation(dir, segmentationInferenceModel(result.parameters, a), a);
  // 3. evaluate through the exported folder, as the judge will use it
  const judge = await SegmentationJudge.load(dir);
  const e = await evaluateSegmentation(judge);
  await judge.release();
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const perClass = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([c, v]) => `${c} ${(100 * v).toFixed(0)}`)
      .join(', ');
  const lines = [
    `segmentation: ${result.step} ${fineTune ? 'fine-tuning ' : ''}steps, ${segmentationParameterCount(a)} parameters`,
    `segmentation held-out (${e.images} scenes, ${e.subjects} subjects): pixel accuracy ${pct(e.pixelAcc)}, mIoU ${pct(e.mIoU)}, subject class found ${pct(e.subjectClassAcc)}`,
    `segmentation degraded copies: pixel accuracy ${pct(e.degraded.pixelAcc)}, mIoU ${pct(e.degraded.mIoU)}, subject class found ${pct(e.degraded.subjectClassAcc)}`,
    `segmentation IoU per class (%): ${perClass(e.perClassIoU)}`,
    `segmentation class found per class (%): ${perClass(e.perClassSubjectAcc)}`,
    `judge calibration (${e.singles} single-subject scenes): colour agrees ${pct(e.colorAgreement)} (true masks ${pct(e.colorAgreementTrueMask)}), ` +
      `person vs own skeleton silhouette IoU ${e.silhouetteIoU.toFixed(3)} (true masks ${e.silhouetteIoUTrueMask.toFixed(3)})`,
    `segmentation: training ${((trained - started) / 60000).toFixed(1)} min, export + evaluation ${((performance.now() - trained) / 60000).toFixed(1)} min this run`,
  ];
  for (const line of lines) o.log(line);
  const r4 = (v: number) => Number(v.toFixed(4));
  return {
    seg_pixel_acc: r4(e.pixelAcc),
    seg_miou: r4(e.mIoU),
    seg_subject_class_acc: r4(e.subjectClassAcc),
    // a judge trained from scratch has had no fine-tuning
    ...(fineTune
      ? { seg_fine_tune_steps: before.seg_fine_tune_steps + result.step }
      : { seg_steps: result.step, seg_fine_tune_steps: 0 }),
    judge_color_agreement: r4(e.colorAgreement),
    judge_silhouette_iou: r4(e.silhouetteIoU),
  };
}

/** The folder's judge weights, every one of the architecture's, for a fine-tuning run to start from. */
export async function folderJudgeWeights(
  dir: string,
  a: SegmentationArchitecture = TINY_SEGMENTATION,
): Promise<ParameterTensor[]> {
  const file = join(dir, 'model.onnx');
  if (!existsSync(file))
    throw new Error(`${file} is missing: a fine-tuning run starts from the folder's judge; train one first`);
  const weights = await readOnnxWeights(file);
  const sizes = new Map(weights.map((p) => [p.name, p.data.length]));
  for (const p of segmentationParameterShapes(a)) {
    const size = p.shape.reduce((x, y) => x * y, 1);
    if (sizes.get(p.name) !== size)
      throw new Error(
        `${file}: ${p.name} is ${sizes.has(p.name) ? `of ${sizes.get(p.name)} values, not ${size}` : 'missing'}: another judge architecture`,
      );
  }
  return weights;
}
