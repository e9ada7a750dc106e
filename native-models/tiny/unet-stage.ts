/**
 * The tiny world's UNet: epsilon prediction on 32x32x4 latents of the shipped VAE, conditioned
 * by cross-attention on the tiny text encoder (frozen, or trained with it: `textEncoder`), trained
 * with the project's engine and exported in the diffusers ONNX layout (unet/model.onnx +
 * config.json, float16 weight storage).
 *
 * Data: a fixed set of world scenes (half single-subject, the rest 2-4 subjects) encoded once to
 * latents (the VAE posterior mean times scaling_factor) and token ids, cached in the work folder
 * so a resumed run reads it back instead of re-encoding. The text encoder runs on each batch (it
 * is frozen, small, and keeps the cache to a few MB of ids); 10% of captions are dropped to the
 * empty prompt for classifier-free guidance. Loss: MSE on the noise with min-SNR-5 weighting
 * (Hang et al. 2023), timesteps uniform over the SD 1.x scaled-linear schedule the folder ships.
 *
 * Regional samples (optional, `regionalShare`): MSP asks the UNet for the noise of one painted
 * region given that region's own prompt ('a red cat sitting facing left', 'in a park' for the
 * background) while the latent holds a whole multi-subject scene. World captions always describe
 * the whole scene, so the plain objective never shows the UNet that situation. A regional sample
 * takes a scene's MSP segments as the panel editor would paint them (tiny/layouts.ts: a region per
 * subject, its box grown a little, the background the rest), picks one segment, uses its prompt as
 * the caption and weighs the noise loss by its latent mask (scaled up for small regions), so the
 * loss asks exactly what a composite step asks of each segment.
 *
 * Subject weighting (optional, `subjectWeight` s): in a plain sample the subjects cover a tenth to
 * a third of the picture, so most of the noise loss is spent on backgrounds, while what tells a
 * man from a boy or a woman from a girl (height, head, hair, clothes) lies in a few subject pixels.
 * With s > 0 a plain sample weighs the pixels inside its subjects' latent masks (1 + s) times its
 * background's, normalized so the sample's mean weight stays its min-SNR weight.
 *
 * Person focus (optional, `personShare` p): a world scene holds a person (man, woman, boy, girl)
 * about half the time, and a single-subject caption names one in 4 of 13, while most of what the
 * UNet still gets wrong is which person it draws. With p > 0 that share of the samples is drawn
 * from the scenes whose caption names a person (read from the cached token ids), the rest from all
 * scenes as before; the objective is unchanged, only how often each scene is seen.
 *
 * Caption contrast (optional, `contrast` λ): the noise loss alone barely asks which person a
 * caption names (a boy drawn for 'a cartoon man' costs a few pixels of error), and three runs of it
 * (more steps, subject weighting, person focus) did not separate the adult and child classes. With
 * λ > 0 each batch gets CONTRAST_PAIRS extra rows: copies of samples whose caption names a person,
 * the same noisy latent, timestep and weights, with every person word swapped for its other age
 * (man <-> boy, woman <-> girl). Beside the noise loss the run minimizes λ times the mean hinge
 * max(0, (1 + CONTRAST_MARGIN) e - e'), e and e' the sample's weighted noise error under its own and
 * under the swapped caption: the UNet (and a jointly trained text encoder) must predict a picture's
 * noise measurably better from the caption that is true of it — the classifier a diffusion model
 * holds (Li et al. 2023, "Your Diffusion Model is Secretly a Zero-Shot Classifier"), trained as one.
 *
 * @example
 * const result = await trainUnet({ modelDir: 'native-models/weights/tiny-sd', steps: 8000, checkpointDir: '.tmp/tiny/unet' });
 * await writeUnet('native-models/weights/tiny-sd', unetInferenceModel(result.parameters, { residuals: true }));
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../onnx/layers.js';
import type { Graph } from '../onnx/graph.js';
import { unet, unetConfig, unetResidualShapes, type UnetArchitecture } from '../models/unet.js';
import { textEncoder, type TextEncoderArchitecture } from '../models/text-encoder.js';
import { TrainStep } from '../training/train-step.js';
import { Trainer, bakeParameters, type DataLoader, type TrainingRunOptions } from '../training/trainer.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { Rng } from '../tensor/random.js';
import { alphasCumprodFor, DEFAULT_SCHEDULER_CONFIG } from '../schedulers/scheduler.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { generateScene, type WorldScene } from '../world/scene.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { isPerson, SUBJECT_CLASSES } from '../world/classes.js';
import { layoutFromScene, layoutSegments } from './layouts.js';

export const TINY_UNET: UnetArchitecture = {
  latentChannels: 4,
  blockOutChannels: [32, 64, 128],
  attention: [false, true, true],
  layersPerBlock: 1,
  heads: 4,
  normGroups: 16,
  crossAttentionDim: 128,
  timestepDim: 64,
};

/**
 * The tiny UNet architecture of a model folder's unet/config.json (or `config`, the folder's
 * controlnet/config.json, say): the shipped layout with the folder's resnets per level. Missing
 * folder: the default. A config of another layout, or a model.onnx without its config, is refused.
 */
export async function tinyUnetArchitecture(modelDir: string, folder = 'unet'): Promise<UnetArchitecture> {
  const file = join(modelDir, folder, 'config.json');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) {
    // a model without its config could be any layout: guessing the default would mistrain it
    if (existsSync(join(modelDir, folder, 'model.onnx')))
      throw new Error(`${file} is missing beside ${folder}/model.onnx: its layers_per_block cannot be known`);
    return TINY_UNET;
  }
  const config = JSON.parse(text) as { block_out_channels?: number[]; layers_per_block?: number | number[] };
  const expected = JSON.stringify(TINY_UNET.blockOutChannels);
  if (JSON.stringify(config.block_out_channels) !== expected)
    throw new Error(
      `${file}: block_out_channels ${JSON.stringify(config.block_out_channels)} is not the tiny UNet's ${expected}`,
    );
  return { ...TINY_UNET, layersPerBlock: config.layers_per_block ?? 1 };
}

/** '' for the shipped layout's default, else '-layers-2' or '-layers-2-2-1': checkpoint folders per layout. */
export function layoutSuffix(a: UnetArchitecture): string {
  const counts = [a.layersPerBlock ?? 1].flat();
  return counts.every((c) => c === 1) ? '' : `-layers-${counts.join('-')}`;
}

/** Latent side of the tiny model (128 px through the 4x VAE). */
export const LATENT_SIDE = 32;
export const IMAGE_SIDE = 128;
const MIN_SNR_GAMMA = 5;
const CAPTION_DROPOUT = 0.1;
/** A regional sample's mask is scaled by 1 / max(area share, this): small regions weigh up to 4x. */
const MIN_REGION_SHARE = 0.25;

/** The SD 1.x scheduler config the tiny model is trained with and ships (scheduler/scheduler_config.json). */
export const TINY_SCHEDULER_CONFIG = {
  _class_name: 'DDIMScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  steps_offset: 1,
  clip_sample: false,
  timestep_spacing: 'leading',
};

// ---------------------------------------------------------------------------------------------
// 1. The cached latent dataset

export interface LatentDataset {
  count: number;
  /** [count, 4, 32, 32] scaled latents. */
  latents: Float32Array;
  /** [count, sequenceLength] token ids (padded with the end token). */
  ids: Int32Array;
  sequenceLength: number;
  /** [count, 128, 128, 3] OpenPose images (RGB bytes), when the dataset was built with `withControl`. */
  control?: Uint8Array;
}

/** Scenes for text-to-image: half single-subject (what text-to-image is judged on), the rest 2-4. */
export function worldScene(rng: Rng): WorldScene {
  const u = rng.nextFloat();
  const subjects = u < 0.5 ? 1 : u < 0.7 ? 2 : u < 0.85 ? 3 : 4;
  return generateScene(rng, { size: IMAGE_SIDE, subjects });
}

const CONTROL_BYTES = IMAGE_SIDE * IMAGE_SIDE * 3;

/**
 * Encodes `count` world scenes (seeded) with the folder's VAE encoder and tokenizer; reads the cache
 * file in `cacheDir` instead when it exists for the same kind, count, seed and VAE.
 */
export async function latentDataset(o: {
  modelDir: string;
  count: number;
  seed: number;
  cacheDir?: string;
  /** Scene sampler (default {@link worldScene}) and a name for it in the cache file. */
  scenes?: { name: string; sample: (rng: Rng) => WorldScene };
  /** Keep each scene's OpenPose image (ControlNet training). */
  withControl?: boolean;
  log?: (line: string) => void;
}): Promise<LatentDataset> {
  const tokenizer = await CLIPTokenizer.fromFolder(join(o.modelDir, 'tokenizer'));
  const L = await textSequenceLength(o.modelDir);
  const vaeBytes = await readFile(join(o.modelDir, 'vae_encoder', 'model.onnx'));
  const vaeConfig = JSON.parse(await readFile(join(o.modelDir, 'vae_encoder', 'config.json'), 'utf8')) as {
    scaling_factor: number;
  };
  const scenes = o.scenes ?? { name: 'world', sample: worldScene };
  const withControl = o.withControl === true;
  const per = 4 * LATENT_SIDE * LATENT_SIDE;
  const bytesPerItem = (per + L) * 4 + (withControl ? CONTROL_BYTES : 0);
  const cacheFile = o.cacheDir
    ? join(
        o.cacheDir,
        `${scenes.name}${withControl ? '-pose' : ''}-${o.count}-${o.seed}-${vaeFingerprint(vaeBytes)}.bin`,
      )
    : undefined;
  if (cacheFile) {
    const cached = await readFile(cacheFile).catch(() => undefined);
    if (cached && cached.byteLength === o.count * bytesPerItem) {
      const copy = new Uint8Array(cached).buffer;
      return {
        count: o.count,
        latents: new Float32Array(copy, 0, o.count * per),
        ids: new Int32Array(copy, o.count * per * 4, o.count * L),
        sequenceLength: L,
        ...(withControl
          ? { control: new Uint8Array(copy, o.count * (per + L) * 4, o.count * CONTROL_BYTES) }
          : {}),
      };
    }
  }
  const session = await ort.InferenceSession.create(vaeBytes);
  const rng = new Rng(o.seed);
  const latents = new Float32Array(o.count * per);
  const ids = new Int32Array(o.count * L);
  const control = withControl ? new Uint8Array(o.count * CONTROL_BYTES) : undefined;
  const chunk = 32;
  const started = performance.now();
  for (let start = 0; start < o.count; start += chunk) {
    const n = Math.min(chunk, o.count - start);
    const pixels = new Float32Array(n * 3 * IMAGE_SIDE * IMAGE_SIDE);
    for (let i = 0; i < n; i++) {
      const scene = scenes.sample(rng);
      pixels.set(imageToChw(scene.image.data, IMAGE_SIDE), i * 3 * IMAGE_SIDE * IMAGE_SIDE);
      const enc = tokenizer.encode(scene.caption, { maxLength: L, padding: 'max_length', truncation: true });
      ids.set(enc.ids, (start + i) * L);
      control?.set(scene.openpose.data, (start + i) * CONTROL_BYTES);
    }
    const out = await session.run({
      sample: new ort.Tensor('float32', pixels, [n, 3, IMAGE_SIDE, IMAGE_SIDE]),
    });
    const params = out.latent_parameters.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const mean = params.subarray(i * 2 * per, i * 2 * per + per);
      for (let k = 0; k < per; k++) latents[(start + i) * per + k] = mean[k] * vaeConfig.scaling_factor;
    }
    if (o.log && (start / chunk) % 50 === 0) {
      o.log(
        `data: ${start + n}/${o.count} scenes encoded (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
  await session.release();
  if (cacheFile && o.cacheDir) {
    await mkdir(o.cacheDir, { recursive: true });
    const bytes = new Uint8Array(o.count * bytesPerItem);
    bytes.set(new Uint8Array(latents.buffer), 0);
    bytes.set(new Uint8Array(ids.buffer), latents.byteLength);
    if (control) bytes.set(control, latents.byteLength + ids.byteLength);
    await writeFileAtomic(cacheFile, bytes);
  }
  return { count: o.count, latents, ids, sequenceLength: L, ...(control ? { control } : {}) };
}

/** The MSP segments of every scene of a latent dataset: prompts as token ids, latent masks. */
export interface RegionalDataset {
  /** Per scene: its first segment in `ids` / `masks`, and how many it has (subjects + background). */
  first: Uint32Array;
  segments: Uint8Array;
  /** [entries, sequenceLength] token ids of each segment's prompt. */
  ids: Int32Array;
  /** [entries, 32 * 32] latent masks, 1 inside the segment. */
  masks: Uint8Array;
  sequenceLength: number;
}

/**
 * The segments of the scenes {@link latentDataset} encoded with the same count, seed and sampler
 * (the scene stream is replayed, so entry i belongs to latent i), read from `cacheDir` when there.
 */
export async function regionalDataset(o: {
  modelDir: string;
  count: number;
  seed: number;
  cacheDir?: string;
  scenes?: { name: string; sample: (rng: Rng) => WorldScene };
  log?: (line: string) => void;
}): Promise<RegionalDataset> {
  const tokenizer = await CLIPTokenizer.fromFolder(join(o.modelDir, 'tokenizer'));
  const L = await textSequenceLength(o.modelDir);
  const scenes = o.scenes ?? { name: 'world', sample: worldScene };
  const plane = LATENT_SIDE * LATENT_SIDE;
  const cacheFile = o.cacheDir
    ? join(o.cacheDir, `${scenes.name}-regions-${o.count}-${o.seed}-${L}.bin`)
    : undefined;
  const cached = cacheFile ? await readFile(cacheFile).catch(() => undefined) : undefined;
  if (cached && cached.byteLength >= 5 * o.count) {
    const bytes = new Uint8Array(cached);
    const segments = bytes.slice(0, o.count);
    const entries = segments.reduce((n, k) => n + k, 0);
    if (cached.byteLength === o.count + entries * (4 * L + plane)) {
      const ids = new Int32Array(bytes.slice(o.count, o.count + entries * 4 * L).buffer);
      const masks = bytes.slice(o.count + entries * 4 * L);
      return { first: firstEntries(segments), segments, ids, masks, sequenceLength: L };
    }
  }
  const rng = new Rng(o.seed);
  const segments = new Uint8Array(o.count);
  const ids: Int32Array[] = [];
  const masks: Uint8Array[] = [];
  const started = performance.now();
  for (let i = 0; i < o.count; i++) {
    const scene = scenes.sample(rng);
    const parts = layoutSegments(layoutFromScene(scene), IMAGE_SIDE / LATENT_SIDE);
    segments[i] = parts.length;
    for (const part of parts) {
      ids.push(tokenizer.encode(part.prompt, { maxLength: L, padding: 'max_length', truncation: true }).ids);
      masks.push(Uint8Array.from(part.mask, (v) => (v > 0.5 ? 1 : 0)));
    }
    if (o.log && (i + 1) % 4000 === 0)
      o.log(
        `data: ${i + 1}/${o.count} scenes split into segments (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
  }
  const flatIds = new Int32Array(ids.length * L);
  ids.forEach((x, k) => flatIds.set(x, k * L));
  const flatMasks = new Uint8Array(masks.length * plane);
  masks.forEach((x, k) => flatMasks.set(x, k * plane));
  if (cacheFile && o.cacheDir) {
    await mkdir(o.cacheDir, { recursive: true });
    const bytes = new Uint8Array(o.count + flatIds.byteLength + flatMasks.byteLength);
    bytes.set(segments, 0);
    bytes.set(new Uint8Array(flatIds.buffer), o.count);
    bytes.set(flatMasks, o.count + flatIds.byteLength);
    await writeFileAtomic(cacheFile, bytes);
  }
  return { first: firstEntries(segments), segments, ids: flatIds, masks: flatMasks, sequenceLength: L };
}

function firstEntries(segments: Uint8Array): Uint32Array {
  const first = new Uint32Array(segments.length);
  for (let i = 1; i < segments.length; i++) first[i] = first[i - 1] + segments[i - 1];
  return first;
}

function vaeFingerprint(bytes: Uint8Array): string {
  let h = 2166136261;
  for (let i = 0; i < bytes.length; i += 97) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
  return `${bytes.length.toString(36)}${h.toString(36)}`;
}

function imageToChw(data: Uint8Array, side: number): Float32Array {
  const out = new Float32Array(3 * side * side);
  const plane = side * side;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = data[p * 3 + c] / 127.5 - 1;
  }
  return out;
}

async function textSequenceLength(modelDir: string): Promise<number> {
  const config = JSON.parse(await readFile(join(modelDir, 'text_encoder', 'config.json'), 'utf8')) as {
    max_position_embeddings: number;
  };
  return config.max_position_embeddings;
}

// ---------------------------------------------------------------------------------------------
// 2. Training

/**
 * The training graph: loss = mean(loss_weight * (unet(sample, t, context) - noise)^2), with
 * loss_weight [B, 1, 1, 1], or [B, 1, 32, 32] (a per-pixel weight) with `spatialWeights`. The
 * context is an input (encoder_hidden_states from the frozen text encoder) or, with `textEncoder`,
 * the text encoder's output inside the graph, so its weights train with the UNet's.
 */
export function unetTrainingGraph(
  a: UnetArchitecture,
  batch: number,
  L: number,
  seed = 7,
  {
    spatialWeights = false,
    textEncoder: text,
    contrast,
  }: {
    spatialWeights?: boolean;
    /** Train the text encoder too: the graph takes input_ids [B, L] and encodes them itself. */
    textEncoder?: TextEncoderArchitecture | undefined;
    /**
     * Caption contrast (see the file header): every input has `pairs` more rows, the swapped
     * copies, and the graph takes contrast_mask [pairs] (1 where a row has its pair).
     */
    contrast?: { pairs: number; weight: number } | undefined;
  } = {},
) {
  const m = new ModelBuilder('unet_training', seed, 'input');
  const g = m.g;
  const C = a.latentChannels;
  // under the caption contrast every input has the pairs' rows after the batch's own
  const rows = batch + (contrast?.pairs ?? 0);
  const sample = g.input('sample', [rows, C, LATENT_SIDE, LATENT_SIDE]);
  const timestep = g.input('timestep', [rows], 'int64');
  if (text && text.hiddenSize !== a.crossAttentionDim)
    throw new RangeError(
      `the text encoder's hidden size ${text.hiddenSize} is not the UNet's cross-attention width ${a.crossAttentionDim}`,
    );
  const context = text
    ? textEncoder(m, text, g.input('input_ids', [rows, L], 'int32')).lastHiddenState
    : g.input('encoder_hidden_states', [rows, L, a.crossAttentionDim]);
  const noise = g.input('noise', [rows, C, LATENT_SIDE, LATENT_SIDE]);
  const weightSide = spatialWeights ? LATENT_SIDE : 1;
  const weight = g.input('loss_weight', [rows, 1, weightSide, weightSide]);
  const pred = unet(m, a, { sample, timestep, context });
  if (!contrast) return { m, loss: weightedNoiseLoss(g, pred, noise, weight) };
  const mask = g.input('contrast_mask', [contrast.pairs]);
  return {
    m,
    loss: contrastiveNoiseLoss(g, pred, noise, weight, mask, { samples: batch, ...contrast }),
  };
}

/** Extra rows per batch under the caption contrast, and its margin (see the file header). */
export const CONTRAST_PAIRS = 4;
export const CONTRAST_MARGIN = 0.05;

/**
 * The noise loss of the first `samples` rows plus `weight` times the mean over the pairs of
 * contrast_mask * max(0, (1 + margin) e_k - e'_k), where e_k is row k's weighted noise error and
 * e'_k that of row samples + k, its copy under the swapped caption.
 */
export function contrastiveNoiseLoss(
  g: Graph,
  prediction: string,
  noise: string,
  lossWeight: string,
  mask: string,
  {
    samples,
    pairs,
    weight,
    margin = CONTRAST_MARGIN,
  }: { samples: number; pairs: number; weight: number; margin?: number },
): string {
  const perRow = g.op1(
    'ReduceMean',
    [weightedSquaredError(g, prediction, noise, lossWeight), g.ints([1, 2, 3])],
    {
      keepdims: 0,
    },
  );
  const rows = (from: number, to: number) =>
    g.op1('Slice', [perRow, g.ints([from]), g.ints([to]), g.ints([0])]);
  const noiseLoss = g.op1('ReduceMean', [rows(0, samples)], { keepdims: 0 });
  const own = g.op1('Mul', [rows(0, pairs), g.scalar(1 + margin)]);
  const hinge = g.op1('Mul', [g.op1('Relu', [g.op1('Sub', [own, rows(samples, samples + pairs)])]), mask]);
  const contrast = g.op1('Mul', [g.op1('ReduceSum', [hinge], { keepdims: 0 }), g.scalar(weight / pairs)]);
  return g.op1('Add', [noiseLoss, contrast]);
}

/** mean(loss_weight * (prediction - noise)^2): the noise loss with per-sample (min-SNR) weights. */
export function weightedNoiseLoss(g: Graph, prediction: string, noise: string, weight: string): string {
  return g.op1('ReduceMean', [weightedSquaredError(g, prediction, noise, weight)], { keepdims: 0 });
}

/** weight * (prediction - noise)^2, elementwise. */
function weightedSquaredError(g: Graph, prediction: string, noise: string, weight: string): string {
  const diff = g.op1('Sub', [prediction, noise]);
  return g.op1('Mul', [g.op1('Mul', [diff, diff]), weight]);
}

/**
 * Noisy latents, timesteps, text contexts and targets from the cached dataset; with `regional`,
 * that share of the samples are regional (see the file header) and loss_weight is per pixel.
 */
export class LatentBatches implements DataLoader {
  private readonly alphasCumprod = alphasCumprodFor(DEFAULT_SCHEDULER_CONFIG);
  private readonly emptyIds: Int32Array;

  private readonly regional?: { data: RegionalDataset; share: number };
  private readonly captionDropout: number;
  private readonly subjectWeight: number;
  private readonly focus?: { scenes: Uint32Array; share: number };
  private readonly contrast?: { pairs: number; swap: ReadonlyMap<number, number> };

  constructor(
    readonly batchSize: number,
    private readonly data: LatentDataset,
    /** The frozen text encoder, run on each batch; null feeds input_ids (a graph that encodes them). */
    private readonly textEncoder: ort.InferenceSession | null,
    tokenizer: CLIPTokenizer,
    {
      regional,
      captionDropout = CAPTION_DROPOUT,
      subjectWeight = 0,
      focus,
      contrast,
    }: {
      /** Share of regional samples and their segments (see the file header). */
      regional?: { data: RegionalDataset; share: number } | undefined;
      /** Share of samples whose caption is replaced by the empty prompt (classifier-free guidance). */
      captionDropout?: number;
      /** Extra weight of subject pixels in plain samples (see the file header); needs `regional`'s masks. */
      subjectWeight?: number;
      /** That share of the samples is drawn from `scenes` (indices into `data`), the rest from all. */
      focus?: { scenes: Uint32Array; share: number } | undefined;
      /** Caption contrast: `pairs` extra rows with token ids swapped by `swap` (see the file header). */
      contrast?: { pairs: number; swap: ReadonlyMap<number, number> } | undefined;
    } = {},
  ) {
    if (!(captionDropout >= 0 && captionDropout <= 1))
      throw new RangeError(`captionDropout must be between 0 and 1, got ${captionDropout}`);
    if (!(subjectWeight >= 0 && Number.isFinite(subjectWeight)))
      throw new RangeError(`subjectWeight must be a number of at least 0, got ${subjectWeight}`);
    if (subjectWeight > 0 && !regional)
      throw new RangeError("subjectWeight needs the scenes' segments (a regional dataset, share 0 allowed)");
    if (focus) {
      if (!(focus.share >= 0 && focus.share <= 1))
        throw new RangeError(`the focus share must be between 0 and 1, got ${focus.share}`);
      if (focus.share > 0 && focus.scenes.length === 0)
        throw new RangeError('a focus share needs at least one scene to focus on');
      const outside = focus.scenes.find((i) => i >= data.count);
      if (outside !== undefined)
        throw new RangeError(`focus scene ${outside} is not in the dataset of ${data.count} scenes`);
      if (focus.share > 0) this.focus = focus;
    }
    if (contrast) {
      if (!(Number.isInteger(contrast.pairs) && contrast.pairs >= 1 && contrast.pairs <= batchSize))
        throw new RangeError(
          `contrast pairs must be a whole number from 1 to the batch size, got ${contrast.pairs}`,
        );
      if (contrast.swap.size === 0) throw new RangeError('the caption contrast needs words to swap');
      this.contrast = contrast;
    }
    this.regional = regional;
    this.captionDropout = captionDropout;
    this.subjectWeight = subjectWeight;
    if (regional && regional.data.segments.length !== data.count)
      throw new RangeError(
        `the regional dataset has ${regional.data.segments.length} scenes, the latent dataset ${data.count}`,
      );
    this.emptyIds = tokenizer.encode('', {
      maxLength: data.sequenceLength,
      padding: 'max_length',
    }).ids;
  }

  async next(rng: Rng): Promise<Record<string, ort.Tensor>> {
    const B = this.batchSize;
    const pairs = this.contrast?.pairs ?? 0;
    const rows = B + pairs;
    const L = this.data.sequenceLength;
    const per = 4 * LATENT_SIDE * LATENT_SIDE;
    const sample = new Float32Array(rows * per);
    const noise = new Float32Array(rows * per);
    noise.set(rng.randn(B * per));
    const timesteps = new BigInt64Array(rows);
    const plane = IMAGE_SIDE * IMAGE_SIDE;
    const latentPlane = LATENT_SIDE * LATENT_SIDE;
    const weightPlane = this.regional ? latentPlane : 1;
    const weights = new Float32Array(rows * weightPlane);
    const ids = new Int32Array(rows * L);
    const control = this.data.control;
    const cond = control ? new Float32Array(rows * 3 * plane) : undefined;
    for (let b = 0; b < B; b++) {
      const i = this.sceneIndex(rng);
      const t = Math.floor(rng.nextFloat() * this.alphasCumprod.length);
      const abar = this.alphasCumprod[t];
      const sa = Math.sqrt(abar);
      const sb = Math.sqrt(1 - abar);
      const x0 = this.data.latents.subarray(i * per, (i + 1) * per);
      for (let k = 0; k < per; k++) sample[b * per + k] = sa * x0[k] + sb * noise[b * per + k];
      timesteps[b] = BigInt(t);
      const snr = abar / (1 - abar);
      const w = Math.min(snr, MIN_SNR_GAMMA) / snr;
      let caption = this.data.ids.subarray(i * L, (i + 1) * L);
      const weight = weights.subarray(b * weightPlane, (b + 1) * weightPlane);
      if (this.regional && rng.nextFloat() < this.regional.share) {
        // one MSP segment of the scene: its prompt, the loss inside its latent mask
        const r = this.regional.data;
        const e = r.first[i] + Math.floor(rng.nextFloat() * r.segments[i]);
        caption = r.ids.subarray(e * L, (e + 1) * L);
        const mask = r.masks.subarray(e * latentPlane, (e + 1) * latentPlane);
        const share = mask.reduce((n, v) => n + v, 0) / latentPlane;
        const scaled = w / Math.max(share, MIN_REGION_SHARE);
        for (let p = 0; p < latentPlane; p++) weight[p] = mask[p] * scaled;
      } else if (this.regional && this.subjectWeight > 0) {
        this.subjectWeights(weight, this.regional.data, i, w);
      } else {
        weight.fill(w);
      }
      const drop = rng.nextFloat() < this.captionDropout;
      ids.set(drop ? this.emptyIds : caption, b * L);
      if (control && cond) {
        // OpenPose RGB bytes -> CHW in [0, 1], the ControlNet conditioning convention
        const src = control.subarray(i * CONTROL_BYTES, (i + 1) * CONTROL_BYTES);
        for (let p = 0; p < plane; p++) {
          for (let c = 0; c < 3; c++) cond[(b * 3 + c) * plane + p] = src[p * 3 + c] / 255;
        }
      }
    }
    const mask = this.contrast ? this.pairRows({ sample, noise, timesteps, weights, ids, cond }) : undefined;
    const inputIds = new ort.Tensor('int32', ids, [rows, L]);
    const context: Record<string, ort.Tensor> = this.textEncoder
      ? { encoder_hidden_states: (await this.textEncoder.run({ input_ids: inputIds })).last_hidden_state }
      : { input_ids: inputIds };
    return {
      sample: new ort.Tensor('float32', sample, [rows, 4, LATENT_SIDE, LATENT_SIDE]),
      timestep: new ort.Tensor('int64', timesteps, [rows]),
      ...context,
      noise: new ort.Tensor('float32', noise, [rows, 4, LATENT_SIDE, LATENT_SIDE]),
      loss_weight: new ort.Tensor('float32', weights, [
        rows,
        1,
        ...(this.regional ? [LATENT_SIDE, LATENT_SIDE] : [1, 1]),
      ]),
      ...(cond
        ? { controlnet_cond: new ort.Tensor('float32', cond, [rows, 3, IMAGE_SIDE, IMAGE_SIDE]) }
        : {}),
      ...(mask ? { contrast_mask: new ort.Tensor('float32', mask, [mask.length]) } : {}),
    };
  }

  /**
   * Fills the contrast rows (after the batch's own) with copies of the first samples whose caption
   * holds a word to swap, their ids swapped; returns the mask (0 for a row left without a pair).
   */
  private pairRows(b: {
    sample: Float32Array;
    noise: Float32Array;
    timesteps: BigInt64Array;
    weights: Float32Array;
    ids: Int32Array;
    cond: Float32Array | undefined;
  }): Float32Array {
    const { pairs, swap } = this.contrast as { pairs: number; swap: ReadonlyMap<number, number> };
    const B = this.batchSize;
    const L = this.data.sequenceLength;
    const mask = new Float32Array(pairs);
    const copy = (a: Float32Array | Int32Array, from: number, to: number) => {
      const n = a.length / (B + pairs);
      a.copyWithin(to * n, from * n, (from + 1) * n);
    };
    let k = 0;
    for (let row = 0; row < B && k < pairs; row++) {
      const caption = b.ids.subarray(row * L, (row + 1) * L);
      if (!caption.some((id) => swap.has(id))) continue;
      const to = B + k;
      copy(b.sample, row, to);
      copy(b.noise, row, to);
      copy(b.weights, row, to);
      if (b.cond) copy(b.cond, row, to);
      b.timesteps[to] = b.timesteps[row];
      b.ids.set(
        caption.map((id) => swap.get(id) ?? id),
        to * L,
      );
      mask[k++] = 1;
    }
    // rows left without a pair keep zeros (weight 0, mask 0): they add nothing to the loss
    return mask;
  }

  /** A scene drawn uniformly, or (at the focus share) from the focus scenes. */
  private sceneIndex(rng: Rng): number {
    // no extra draw without a focus, so runs without one replay exactly as before
    if (this.focus && rng.nextFloat() < this.focus.share)
      return this.focus.scenes[Math.floor(rng.nextFloat() * this.focus.scenes.length)];
    return Math.floor(rng.nextFloat() * this.data.count);
  }

  /** Scene i's plain-sample weights: its subjects' pixels (1 + s) times its background's, mean w. */
  private subjectWeights(weight: Float32Array, r: RegionalDataset, i: number, w: number): void {
    const latentPlane = LATENT_SIDE * LATENT_SIDE;
    const first = r.first[i];
    // the last segment of a scene is its background; the others are its subjects
    const background = r.masks.subarray(
      (first + r.segments[i] - 1) * latentPlane,
      (first + r.segments[i]) * latentPlane,
    );
    let subjectPixels = 0;
    for (let p = 0; p < latentPlane; p++) subjectPixels += 1 - background[p];
    const norm = w / (1 + (this.subjectWeight * subjectPixels) / latentPlane);
    for (let p = 0; p < latentPlane; p++) weight[p] = norm * (1 + this.subjectWeight * (1 - background[p]));
  }
}

/** The words of the world's person classes, as captions name them. */
export const PERSON_WORDS: readonly string[] = SUBJECT_CLASSES.filter(isPerson);

/**
 * The scenes of `data` whose caption names one of `words` (each must be a single token of the
 * tokenizer, so a word is found by its id, never inside another word: 'man' is not in 'woman').
 */
export function scenesNaming(
  data: LatentDataset,
  tokenizer: CLIPTokenizer,
  words: readonly string[],
): Uint32Array {
  const wanted = new Set(words.map((word) => singleTokenId(tokenizer, word)));
  const L = data.sequenceLength;
  const found: number[] = [];
  for (let i = 0; i < data.count; i++) {
    const caption = data.ids.subarray(i * L, (i + 1) * L);
    if (caption.some((id) => wanted.has(id))) found.push(i);
  }
  return Uint32Array.from(found);
}

/** The id of a word that is one token of `tokenizer`; refuses a word split into several. */
function singleTokenId(tokenizer: CLIPTokenizer, word: string): number {
  const tokens = tokenizer.tokenize(word);
  const id = tokens.length === 1 ? tokenizer.tokenToId(tokens[0]) : undefined;
  if (id === undefined)
    throw new RangeError(`'${word}' is not one token of this tokenizer (${tokens.join(' ')})`);
  return id;
}

/** Each person class's other age, the swap of the caption contrast. */
export const AGE_PARTNERS: Readonly<Record<string, string>> = {
  man: 'boy',
  boy: 'man',
  woman: 'girl',
  girl: 'woman',
};

/** Token id -> token id of each word's partner in `partners` (both ways when the map is). */
export function tokenSwap(
  tokenizer: CLIPTokenizer,
  partners: Readonly<Record<string, string>>,
): Map<number, number> {
  return new Map(
    Object.entries(partners).map(([word, partner]) => [
      singleTokenId(tokenizer, word),
      singleTokenId(tokenizer, partner),
    ]),
  );
}

export interface UnetTrainingOptions extends TrainingRunOptions {
  modelDir: string;
  datasetSize?: number;
  /** Share of regional samples (0 = the plain objective, the default); see the file header. */
  regionalShare?: number;
  /** Share of samples trained on the empty prompt (default 0.1; the ControlNet paper uses 0.5). */
  captionDropout?: number;
  /** Extra weight of subject pixels in plain samples (0 = none, the default); see the file header. */
  subjectWeight?: number;
  /** Share of samples drawn from the scenes naming a person (0 = none, the default); see the file header. */
  personShare?: number;
  /** Weight λ of the caption contrast (0 = none, the default); see the file header. */
  contrast?: number;
  architecture?: UnetArchitecture;
  /**
   * A fresh run starts from these weights instead of random ones (every UNet weight must be
   * given); a resumed run reads its checkpoint instead.
   */
  initialWeights?: readonly ParameterTensor[];
  /**
   * Trains the text encoder with the UNet (diffusers' `--train_text_encoder`), starting from
   * `weights` (every text encoder weight must be given): the frozen text tower of the tiny CLIP
   * puts captions that differ only in man / boy or woman / girl almost where it puts the same
   * caption, so the UNet cannot tell them apart however long it trains.
   */
  textEncoder?: { architecture: TextEncoderArchitecture; weights: readonly ParameterTensor[] };
  log?: (line: string) => void;
}

/**
 * Trains (or resumes) the UNet (and, with `textEncoder`, the text encoder); returns the EMA weights
 * (what ships) and the raw ones, the text encoder's among them.
 */
export async function trainUnet(o: UnetTrainingOptions): Promise<{
  parameters: ParameterTensor[];
  ema: ParameterTensor[];
  step: number;
  lastLoss: number;
}> {
  const a = o.architecture ?? TINY_UNET;
  const batch = o.batch ?? 16;
  const lr = o.lr ?? 1e-3;
  const regionalShare = o.regionalShare ?? 0;
  if (!(regionalShare >= 0 && regionalShare <= 1))
    throw new RangeError(`regionalShare must be between 0 and 1, got ${regionalShare}`);
  const contrastWeight = o.contrast ?? 0;
  if (!(contrastWeight >= 0 && Number.isFinite(contrastWeight)))
    throw new RangeError(`contrast must be a number of at least 0, got ${contrastWeight}`);
  const source = {
    modelDir: o.modelDir,
    count: o.datasetSize ?? 32_000,
    seed: o.seed ?? 424_242,
    ...(o.checkpointDir ? { cacheDir: join(o.checkpointDir, '..', 'unet-data') } : {}),
    ...(o.log ? { log: o.log } : {}),
  };
  const data = await latentDataset(source);
  const subjectWeight = o.subjectWeight ?? 0;
  // subject weighting reads the subjects' latent masks from the regional dataset
  const regional =
    regionalShare > 0 || subjectWeight > 0
      ? { data: await regionalDataset(source), share: regionalShare }
      : undefined;
  const tokenizer = await CLIPTokenizer.fromFolder(join(o.modelDir, 'tokenizer'));
  const textEncoder = o.textEncoder
    ? null
    : await ort.InferenceSession.create(join(o.modelDir, 'text_encoder', 'model.onnx'));
  const contrast =
    contrastWeight > 0 ? { pairs: Math.min(CONTRAST_PAIRS, batch), weight: contrastWeight } : undefined;
  const { m, loss } = unetTrainingGraph(a, batch, data.sequenceLength, 7, {
    spatialWeights: regional !== undefined,
    textEncoder: o.textEncoder?.architecture,
    contrast,
  });
  if (o.initialWeights)
    startFrom(m.values, o.initialWeights, 'UNet', (name) => !name.startsWith('text_model.'));
  if (o.textEncoder)
    startFrom(m.values, o.textEncoder.weights, 'text encoder', (name) => name.startsWith('text_model.'));
  const personShare = o.personShare ?? 0;
  const focus =
    personShare > 0 ? { scenes: scenesNaming(data, tokenizer, PERSON_WORDS), share: personShare } : undefined;
  if (focus)
    o.log?.(
      `unet: ${focus.scenes.length} of ${data.count} scenes name a person; ${personShare} of the samples come from them`,
    );
  const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values });
  const trainer = await Trainer.adamW(
    step,
    new LatentBatches(batch, data, textEncoder, tokenizer, {
      regional,
      subjectWeight,
      focus,
      contrast: contrast && { pairs: contrast.pairs, swap: tokenSwap(tokenizer, AGE_PARTNERS) },
      ...(o.captionDropout !== undefined ? { captionDropout: o.captionDropout } : {}),
    }),
    {
      steps: o.steps,
      lr,
      minLr: lr / 10,
      warmupSteps: Math.min(300, Math.floor(o.steps / 10)),
      weightDecay: 0.01,
      emaDecay: 0.999,
      seed: o.seed ?? 1,
      checkpointDir: o.checkpointDir,
      checkpointEvery: o.checkpointEvery ?? 100,
      resume: o.resume === true,
    },
  );
  const result = await trainer.train(o.steps, { signal: o.signal, onProgress: o.onProgress });
  await step.dispose();
  await textEncoder?.release();
  const ema = step.parameters.map((p) => ({
    ...p,
    data: trainer.ema?.get(p.name)?.slice() ?? p.data.slice(),
  }));
  return { parameters: step.parameters, ema, step: result.step, lastLoss: result.lastLoss };
}

/**
 * Sets the graph's initial values of the parameters `owned` selects from `weights`: every one must
 * be given with its size (other entries of `weights`, such as a file's constants, are ignored).
 */
export function startFrom(
  values: Map<string, Float32Array>,
  weights: readonly ParameterTensor[],
  what: string,
  owned: (name: string) => boolean,
): void {
  const given = new Map(weights.map((w) => [w.name, w.data]));
  const names = [...values.keys()].filter(owned);
  const missing = names.filter((n) => !given.has(n));
  if (missing.length > 0)
    throw new Error(
      `the ${what} weights do not fit the architecture: ${missing.length} of its ${names.length} are missing (${missing.slice(0, 3).join(', ')})`,
    );
  for (const name of names) {
    const value = values.get(name) as Float32Array;
    const w = given.get(name) as Float32Array;
    if (w.length !== value.length)
      throw new Error(`the ${what} weight ${name} has ${w.length} values, the architecture ${value.length}`);
    value.set(w);
  }
}

/** The UNet's weights among an ONNX file's initializers (drops constants such as timestep frequencies). */
export function unetWeightsOnly(
  weights: readonly ParameterTensor[],
  a: UnetArchitecture = TINY_UNET,
): ParameterTensor[] {
  const { m } = unetTrainingGraph(a, 1, 4);
  const names = new Set(m.values.keys());
  const kept = weights.filter((w) => names.has(w.name));
  if (kept.length !== names.size)
    throw new Error(`the UNet file has ${kept.length} of the architecture's ${names.size} weights`);
  return kept;
}

export function unetParameterCount(params: readonly ParameterTensor[]): number {
  return params.reduce((n, p) => n + p.data.length, 0);
}

// ---------------------------------------------------------------------------------------------
// 3. Export

const BATCH = 'batch';

/**
 * The inference UNet with the weights baked in (float16 storage unless `float16: false`). With
 * `residuals` it also takes the ControlNet's residuals (down_block_{i}_additional_residual,
 * mid_block_additional_residual), added to its skips and mid block: the tiny folder's unet/, which
 * computes the plain UNet when they are zero. `batch` only sets the example shapes (the exported axes are dynamic).
 */
export function unetInferenceModel(
  params: readonly ParameterTensor[],
  { residuals = false, architecture = TINY_UNET, sequenceLength = 48, float16 = true, batch = 1 } = {},
): Uint8Array {
  const a = architecture;
  const m = new ModelBuilder('unet', 1);
  const g = m.g;
  const inputs = {
    sample: g.input('sample', [batch, a.latentChannels, LATENT_SIDE, LATENT_SIDE]),
    timestep: g.input('timestep', [batch], 'int64'),
    context: g.input('encoder_hidden_states', [batch, sequenceLength, a.crossAttentionDim]),
  };
  const dynamicAxes: Record<string, Record<number, string>> = {
    sample: { 0: BATCH, 2: 'height', 3: 'width' },
    timestep: { 0: 'timestep_batch' },
    encoder_hidden_states: { 0: BATCH },
    out_sample: { 0: BATCH, 2: 'height', 3: 'width' },
  };
  let extra: { down: string[]; mid: string } | undefined;
  if (residuals) {
    const shapes = unetResidualShapes(a, batch, LATENT_SIDE);
    extra = {
      down: shapes.down.map((shape, i) => {
        const name = `down_block_${i}_additional_residual`;
        dynamicAxes[name] = { 0: BATCH, 2: `height_${i}`, 3: `width_${i}` };
        return g.input(name, shape);
      }),
      mid: g.input('mid_block_additional_residual', shapes.mid),
    };
    dynamicAxes.mid_block_additional_residual = { 0: BATCH, 2: 'height_mid', 3: 'width_mid' };
  }
  g.output(unet(m, a, inputs, extra), 'out_sample');
  bakeParameters(g, params);
  if (float16) g.storeWeightsAsFloat16();
  return g.toBytes({ dynamicAxes, docString: 'MSP Studio tiny-world UNet' });
}

/**
 * Writes unet/ (model.onnx + config.json) and scheduler/scheduler_config.json into a model folder.
 * The tiny folder's unet/ takes the ControlNet residuals itself (`unetInferenceModel(..., { residuals:
 * true })`), so a unet_controlnet/ left by an older recipe, which would shadow it, is removed.
 */
export async function writeUnet(
  dir: string,
  model: Uint8Array,
  { architecture = TINY_UNET } = {},
): Promise<void> {
  await mkdir(join(dir, 'unet'), { recursive: true });
  await writeFile(join(dir, 'unet', 'model.onnx'), model);
  await rm(join(dir, 'unet_controlnet'), { recursive: true, force: true });
  await writeFile(
    join(dir, 'unet', 'config.json'),
    JSON.stringify(unetConfig(architecture, LATENT_SIDE), null, 2) + '\n',
  );
  await mkdir(join(dir, 'scheduler'), { recursive: true });
  await writeFile(
    join(dir, 'scheduler', 'scheduler_config.json'),
    JSON.stringify(TINY_SCHEDULER_CONFIG, null, 2) + '\n',
  );
}
