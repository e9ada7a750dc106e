/**
 * The cast's subject-aware segmentation model (paper 2(iii), A.4): the ResNet-34-style U-Net with
 * one class per subject plus background, fine-tuned from the base model's class-segmentation model
 * (the tiny world ships one) on the cast's augmented samples — composites of one to all subjects
 * on world backgrounds, whose instance masks are the labels. SAL guidance in the MSP pipeline and
 * the SAS metric use it; its classes are the subjects' identifiers.
 *
 * Without a base model to start from (a user's Stable Diffusion folder has none), the same
 * architecture trains from scratch; it is small and the task (these few subjects) is narrow.
 *
 * @example
 * const seg = await trainCastSegmentation({ augmenter, identifiers: ['sks', 'zwx'], steps: 300,
 *   baseDir: join(modelDir, 'segmentation'), checkpointDir: 'work/segmentation' });
 * await writeSegmentation(join(outDir, 'segmentation'), segmentationInferenceModel(seg.parameters, seg.architecture), seg.architecture);
 */
import { join } from 'node:path';
import { imageToTensor } from '../image/image.js';
import type { TrainProgress } from '../training/trainer.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { Rng } from '../tensor/random.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import {
  DEGRADED_FRACTION,
  TINY_SEGMENTATION,
  degradeLikeGenerator,
  flipHorizontally,
  readSegmentationArchitecture,
  trainSegmentation,
  type SegmentationArchitecture,
  type SegmentationSource,
} from '../tiny/segmentation-stage.js';
import { AugmentError, type CastAugmenter } from './augment.js';

export interface CastSegmentationOptions {
  /** Draws the training samples; its size must be the architecture's image size. */
  augmenter: CastAugmenter;
  /** The class names of the subjects, in cast order (their identifiers). */
  identifiers: readonly string[];
  steps: number;
  /** The base model's `segmentation/` folder to fine-tune from, when it has one of this architecture. */
  baseDir?: string;
  batch?: number;
  lr?: number;
  seed?: number;
  checkpointDir?: string;
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
}

export interface CastSegmentation {
  architecture: SegmentationArchitecture;
  parameters: ParameterTensor[];
  /** Whether it started from the base model's weights. */
  fineTuned: boolean;
  step: number;
  lastLoss: number;
}

/** Fine-tunes (or trains) the cast's segmentation model; see the file header. */
export async function trainCastSegmentation(o: CastSegmentationOptions): Promise<CastSegmentation> {
  // 1. architecture and starting weights
  const base = o.baseDir ? await readSegmentationArchitecture(o.baseDir) : undefined;
  const classes = ['background', ...o.identifiers];
  const architecture: SegmentationArchitecture = { ...(base ?? TINY_SEGMENTATION), classes };
  if (o.augmenter.size !== architecture.imageSize)
    throw new AugmentError(
      `the segmentation model trains at ${architecture.imageSize}x${architecture.imageSize}, the augmenter draws ${o.augmenter.size}x${o.augmenter.size}`,
    );
  const initialWeights = base && o.baseDir ? await readOnnxWeights(join(o.baseDir, 'model.onnx')) : undefined;

  // 2. train on composites of one to all subjects
  const source = castSegmentationSource(o.augmenter);
  const result = await trainSegmentation({
    steps: o.steps,
    architecture,
    batch: o.batch ?? 8,
    lr: o.lr ?? (initialWeights ? 1e-3 : 3e-3),
    warmupSteps: Math.min(30, Math.floor(o.steps / 10)),
    source,
    classWeights: castClassWeights(source, architecture.imageSize, classes.length),
    ...(initialWeights ? { initialWeights } : {}),
    seed: o.seed ?? 11,
    ...(o.checkpointDir ? { checkpointDir: o.checkpointDir, checkpointEvery: 50 } : {}),
    ...(o.resume ? { resume: true } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  return {
    architecture,
    parameters: result.parameters,
    fineTuned: initialWeights !== undefined,
    step: result.step,
    lastLoss: result.lastLoss,
  };
}

/**
 * Training examples from the augmenter: 1 to n subjects of the cast in random order (label = cast
 * index + 1), mirrored half the time, and some degraded like a generator's output.
 */
export function castSegmentationSource(augmenter: CastAugmenter): SegmentationSource {
  const n = augmenter.cast.length;
  return (rng: Rng, size: number) => {
    const count = 1 + Math.floor(rng.nextFloat() * n);
    const order = shuffled(rng, n).slice(0, count);
    const sample = augmenter.composite(rng, order);
    const pixels = imageToTensor(sample.image);
    const labels = new Uint8Array(size * size);
    for (let p = 0; p < labels.length; p++) {
      const id = sample.instanceMask[p];
      labels[p] = id === 0 ? 0 : order[id - 1] + 1;
    }
    if (rng.nextFloat() < 0.5) flipHorizontally(pixels, labels, size);
    if (rng.nextFloat() < DEGRADED_FRACTION) degradeLikeGenerator(rng, pixels, size);
    return { pixels, labels };
  };
}

/** 1 / sqrt(pixel frequency) per class over 64 samples (fixed seed), normalized to a mean pixel weight of 1. */
function castClassWeights(source: SegmentationSource, size: number, classes: number): Float32Array {
  const counts = new Float64Array(classes);
  const rng = new Rng(4242); // its own stream: the training run's draws stay untouched
  for (let i = 0; i < 64; i++) for (const k of source(rng, size).labels) counts[k]++;
  const total = counts.reduce((a, b) => a + b, 0);
  const raw = Array.from(counts, (c) => 1 / Math.sqrt(Math.max(c, 1) / total));
  const mean = raw.reduce((a, w, k) => a + (w * counts[k]) / total, 0);
  return Float32Array.from(raw, (w) => w / mean);
}

function shuffled(rng: Rng, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
