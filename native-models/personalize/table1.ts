/**
 * The paper's Table 1 on the tiny world (paper section 3, A.1, A.5, A.6): CLIP-I, CLIP-T and SAS of
 * single-prompt DreamBooth and of MSP-Diffusion in its configurations, for panels with n = 1, 2, 3
 * and more than 3 (here 4) personalized subjects, on the identity set (world/identity.ts, the tiny
 * world's Subject-Dataset11). `npm run eval:table1` runs it (table1-main.ts).
 *
 *   1. cast        all subjects of the identity set trained jointly once (cast-training.ts): the
 *                  model's identifier tokens in order (sks, zwx, ...), class nouns from the
 *                  subject's caption phrase ('cartoon man' for the comic man, 'man' for the
 *                  human-styled one, 'cat', 'mug', ...), its 11 reference scenes as images, each with
 *                  the subject's own mask from the scene, so cut-outs are exact. The variant folder
 *                  is cached (`castModelDir`) with a stamp of what made it (base model, subjects,
 *                  training settings); it is reused when the stamp matches and trained again when it
 *                  does not (or with `retrain`). Training resumes from its checkpoints when killed.
 *   2. panels      per n, `compositions` subject combinations drawn with a fixed seed (distinct
 *                  while the pool allows); per combination `prompts` layouts, each a different place
 *                  (background kind) and a different world arrangement of the same subjects
 *                  (tiny/layouts.ts: one painted region per subject, from its box); per layout
 *                  `images` fixed seeds, the same for every row, so rows differ only in method.
 *                  Local prompt 'a <identifier> <class noun>', background prompt the place
 *                  ('in a park'), global prompt all of them ('a sks cartoon man and a zwx cat in a park').
 *   3. rows        DreamBooth: the single global prompt over the whole picture on the cast model
 *                  (render-scene.ts renderBaselines, text-to-image). MSP with a scaffolding image
 *                  (the place's background alone, rendered by the world) and without one, each with
 *                  the global diffuser on or off and SAL on or off; and MSP without scaffolding with
 *                  the OpenPose ControlNet, GD on, SAL off, as the paper's last row (the scene's
 *                  skeletons; subjects without one have none, so a panel of animals and objects gets
 *                  an empty pose image). The paper's presets (msp/request.ts PAPER_PRESETS) fix
 *                  the global diffuser steps as a share of the steps (8/80 with scaffolding, 2/80
 *                  without, 2/50 with ControlNet; at least 1) and the scaffolding share (0.2). SAL
 *                  binds each subject segment to its identifier's class in the cast's segmentation
 *                  model, over the first half of the steps (REQUEST_DEFAULTS.sal) with `salWeight`.
 *   4. metrics     per panel metrics.ts evaluatePanel with the cast model's CLIP (clip/) and the
 *                  cast segmentation model's encoder (SAS): CLIP-I and SAS per subject on its own
 *                  region's crop against its 11 references (with one subject CLIP-I compares whole
 *                  pictures), CLIP-T of the whole picture and the global prompt. The baseline is
 *                  scored on the same regions as MSP. Per row and n: CLIP-I and SAS are means over
 *                  panels (each the mean of its subjects); CLIP-T is the best of each layout's
 *                  images averaged over the layouts (bestPerPromptMean, as the paper reports it).
 *   5. identifiers for n = 2, the fraction of panels in which the cast's segmentation model finds
 *                  both subjects, each as its identifier's class, inside its own region (tiny/judge.ts
 *                  classInRegion): does the identifier token bring out its own subject, in its place?
 *
 * Defaults and why: the studio's sampling (REQUEST_DEFAULTS: 50 DDIM steps, guidance 7.5) rather
 * than the paper's 80 / 50 steps; SAL weight 10 (on the tiny model 1 barely changes a picture, 10
 * lowers the SAL loss visibly, 50 and more add noise); 2 combinations x 2 layouts x 2 images per n,
 * against the paper's 11 x 5 x 4, because one 50-step panel takes seconds on a CPU (SAL rows about
 * three times as long) and the table renders 10 rows x 4 n of them: about an hour on a quiet 2-core
 * machine; cast training 1,500 UNet steps (batch 8) and 600 segmentation steps for 11 subjects.
 * Textual Inversion (the paper's second row) is not implemented. n > 3 is 4: a world scene holds at
 * most 4 subjects.
 *
 * Table keys: rows by {@link TABLE1_ROWS} key, then n ('1', '2', '3', '4'), then metric.
 *
 * @example
 * const result = await runTable1({ baseModelDir, castModelDir: '.tmp/table1/cast-model',
 *   counts: { compositions: 2, prompts: 2, images: 2 }, log: console.log });
 * await writeTable1(result, 'docs');
 * result.table['MSP w/o scaffolding, GD=T, SAL=F']['2'].clipI;
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RgbImage } from '../image/image.js';
import { encodePng } from '../image/png.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { PAPER_PRESETS, planSteps, REQUEST_DEFAULTS } from '../msp/request.js';
import { generateComposite, type CompositeOptions, type CompositeSegment } from '../pipelines/msp.js';
import { renderBaselines } from '../pipelines/render-scene.js';
import { loadSegmentationModel, SalGuidance } from '../pipelines/sal.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { Runtime } from '../runtime/session.js';
import { Rng } from '../tensor/random.js';
import { imageGrid } from '../tiny/evaluate.js';
import { classInRegion, judgeImage, SegmentationJudge } from '../tiny/judge.js';
import { layoutFromScene, layoutSegments, type WorldLayout } from '../tiny/layouts.js';
import { RARE_IDENTIFIERS } from '../tokenizer/rare-tokens.js';
import {
  BACKGROUND_KINDS,
  BACKGROUND_PHRASES,
  BACKGROUND_VARIANTS,
  INDOOR_KINDS,
} from '../world/backgrounds.js';
import { IDENTITY_SUBJECTS, identityReferenceImages, type IdentitySubject } from '../world/identity.js';
import { generateScene, type WorldScene } from '../world/scene.js';
import { renderWorldBackground } from './augment.js';
import type { Cast } from './cast-file.js';
import { readRareTokens } from './cast-file.js';
import { trainCast, type CastTrainingOptions, type CastTrainingProgress } from './cast-training.js';
import {
  bestPerPromptMean,
  evaluatePanel,
  loadImageTextEmbedder,
  ReferenceEmbeddingCache,
  SegmentationEncoder,
  type ReferenceImage,
} from './metrics.js';

export class Table1Error extends Error {
  override name = 'Table1Error';
}

/** One row of the table: a method and its configuration. */
export interface Table1Row {
  /** The row's key in the table and table1.json. */
  key: string;
  /** The paper's "Methods" column. */
  method: string;
  /** The paper's "Configuration" column. */
  configuration: string;
  /** The single-prompt text-to-image baseline (no regions). */
  baseline: boolean;
  scaffold: boolean;
  globalDiffuser: boolean;
  sal: boolean;
  controlnet: boolean;
}

function mspRow(scaffold: boolean, globalDiffuser: boolean, sal: boolean, controlnet = false): Table1Row {
  const method = `MSP w/${scaffold ? '' : 'o'} scaffolding${controlnet ? ' w/ ControlNet' : ''}`;
  const configuration = `GD=${globalDiffuser ? 'T' : 'F'}, SAL=${sal ? 'T' : 'F'}`;
  return {
    key: `${method}, ${configuration}`,
    method,
    configuration,
    baseline: false,
    scaffold,
    globalDiffuser,
    sal,
    controlnet,
  };
}

/** The rows, in the paper's order (Textual Inversion is not implemented here). */
export const TABLE1_ROWS: readonly Table1Row[] = Object.freeze([
  {
    key: 'DreamBooth (single prompt)',
    method: 'DreamBooth (single prompt)',
    configuration: '',
    baseline: true,
    scaffold: false,
    globalDiffuser: false,
    sal: false,
    controlnet: false,
  },
  ...[true, false].flatMap((scaffold) =>
    [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ].map(([gd, sal]) => mspRow(scaffold, gd, sal)),
  ),
  mspRow(false, true, false, true),
]);

/** The subject counts of the columns: 1, 2, 3 and "more than 3" (4, the most a world scene holds). */
export const TABLE1_NS: readonly number[] = Object.freeze([1, 2, 3, 4]);

/** One cell: the three metrics of a row at one n (and the identifier check at n = 2). */
export interface Table1Cell {
  clipI: number;
  clipT: number;
  sas: number;
  /** n = 2 only: the fraction of panels where both subjects are found in their own regions. */
  identifiersFound?: number;
}

/** Rows by key, then n ('1'...'4'), then metric: the content of table1.json. */
export type Table1 = Record<string, Record<string, Table1Cell>>;

export interface Table1Counts {
  /** Subject combinations per n. */
  compositions: number;
  /** Layouts (place and arrangement) per combination: the paper's text prompts. */
  prompts: number;
  /** Images (seeds) per layout. */
  images: number;
}

export interface Table1Sampling {
  steps: number;
  guidanceScale: number;
  /** SAL guidance weight in the SAL=T rows. */
  salWeight: number;
}

/** The cast training settings Table 1 passes through to {@link trainCast}. */
export type Table1Training = Pick<
  CastTrainingOptions,
  'steps' | 'batch' | 'classImages' | 'samplesPerSubject' | 'compositesPerSubject' | 'segmentationSteps'
>;

export const TABLE1_DEFAULT_COUNTS: Readonly<Table1Counts> = Object.freeze({
  compositions: 2,
  prompts: 2,
  images: 2,
});

export const TABLE1_DEFAULT_TRAINING: Readonly<Table1Training> = Object.freeze({
  steps: 1500,
  segmentationSteps: 600,
});

export const TABLE1_DEFAULT_SAMPLING: Readonly<Table1Sampling> = Object.freeze({
  steps: REQUEST_DEFAULTS.steps,
  guidanceScale: REQUEST_DEFAULTS.guidanceScale,
  salWeight: 10,
});

/** Small everything: a smoke run of the whole path in minutes (its figures mean nothing). */
export const TABLE1_QUICK: Readonly<{
  counts: Table1Counts;
  training: Table1Training;
  sampling: Partial<Table1Sampling>;
}> = Object.freeze({
  counts: { compositions: 1, prompts: 1, images: 1 },
  training: {
    steps: 10,
    batch: 2,
    classImages: 1,
    samplesPerSubject: 3,
    compositesPerSubject: 1,
    segmentationSteps: 5,
  },
  sampling: { steps: 8 },
});

export interface Table1Options {
  /** The model the cast is trained from (the shipped tiny model). */
  baseModelDir: string;
  /** Where the cast model is cached. */
  castModelDir: string;
  /** Train the cast again even when the cached one matches. */
  retrain?: boolean;
  /** Identity subjects (indices into IDENTITY_SUBJECTS) in the cast; default all 11. */
  subjects?: readonly number[];
  training?: Table1Training;
  sampling?: Partial<Table1Sampling>;
  counts?: Partial<Table1Counts>;
  /** Subject counts to evaluate (default {@link TABLE1_NS}). */
  ns?: readonly number[];
  /** Keys of the rows to evaluate (default all of {@link TABLE1_ROWS}). */
  rows?: readonly string[];
  /** The CLIP of CLIP-I and CLIP-T (default: `clip/` of the cast model, i.e. of the base model). */
  clipDir?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  onTrainingProgress?: (p: CastTrainingProgress) => void;
}

/** A cast subject of the table: an identity subject with its identifier and class noun. */
export interface Table1Subject {
  /** Index in IDENTITY_SUBJECTS. */
  index: number;
  name: string;
  identifier: string;
  classNoun: string;
  /** 'a sks cartoon man': the local prompt of its segment. */
  prompt: string;
}

export interface Table1Result {
  table: Table1;
  /** The rows evaluated (the ControlNet row needs a model with a ControlNet). */
  rows: Table1Row[];
  ns: number[];
  subjects: Table1Subject[];
  castModelDir: string;
  /** Whether the cached cast model was used. */
  castReused: boolean;
  settings: {
    baseModel: string;
    counts: Table1Counts;
    sampling: Table1Sampling;
    training: Table1Training;
    /** Global diffuser steps (GD=T) with a scaffold, without one, and with ControlNet. */
    globalDiffuserSteps: { scaffold: number; noScaffold: number; controlnet: number };
    scaffoldingSteps: number;
    salSteps: number;
    clip: string;
  };
  /** Per n, the first layout's first image in every row, and the layout itself. */
  samples: { n: number; layout: RgbImage; images: RgbImage[] }[];
  renders: number;
  trainingSeconds: number;
  evaluationSeconds: number;
}

// ---------------------------------------------------------------------------------------------
// the cast

/** The class noun of an identity subject: the noun of its caption phrase ('cartoon man', 'man', 'cat'). */
export function identityClassNoun(subject: IdentitySubject): string {
  return subject.classPhrase.startsWith('a cartoon ') ? `cartoon ${subject.className}` : subject.className;
}

/** The identity subjects as a cast: identifiers in the given order, references with their own masks. */
export function identityCast(
  indices: readonly number[],
  identifiers: readonly string[],
): { cast: Cast; subjects: Table1Subject[] } {
  if (indices.length === 0) throw new Table1Error('the cast needs at least one identity subject');
  if (new Set(indices).size !== indices.length)
    throw new Table1Error(`identity subjects are listed twice: ${indices.join(', ')}`);
  if (identifiers.length < indices.length)
    throw new Table1Error(
      `${indices.length} subjects need as many identifier tokens; the model reserves ${identifiers.length}`,
    );
  const subjects = indices.map((index, k): Table1Subject => {
    const s = IDENTITY_SUBJECTS[index] as IdentitySubject | undefined;
    if (!s)
      throw new Table1Error(`identity subject ${index} does not exist (0-${IDENTITY_SUBJECTS.length - 1})`);
    const classNoun = identityClassNoun(s);
    return {
      index,
      name: s.name,
      identifier: identifiers[k],
      classNoun,
      prompt: `a ${identifiers[k]} ${classNoun}`,
    };
  });
  const cast: Cast = {
    name: 'table1 identity set',
    subjects: subjects.map((s) => {
      const scenes = identityReferenceImages(s.index);
      return {
        name: s.name,
        identifier: s.identifier,
        classNoun: s.classNoun,
        images: scenes.map((scene) => scene.image),
        masks: scenes.map((scene) => scene.subjects[0].mask),
      };
    }),
  };
  return { cast, subjects };
}

/** The 11 references of a subject with its masks, as metrics.ts takes them. */
function referencesOf(index: number): ReferenceImage[] {
  return identityReferenceImages(index).map((scene) => ({
    image: scene.image,
    mask: scene.subjects[0].mask,
  }));
}

/** What made a cached cast model; a different stamp means it is trained again. */
interface CastStamp {
  version: 1;
  baseModel: string;
  /** Size and modification time of the base model's UNet: a retrained base model invalidates the cast. */
  baseUnet: { bytes: number; modifiedMs: number };
  subjects: string[];
  training: Table1Training;
}

const STAMP_FILE = 'table1-cast.json';

async function castStamp(baseModelDir: string, subjects: Table1Subject[], training: Table1Training) {
  const unet = await stat(join(baseModelDir, 'unet', 'model.onnx')).catch(() => undefined);
  const stamp: CastStamp = {
    version: 1,
    baseModel: resolve(baseModelDir),
    baseUnet: { bytes: unet?.size ?? 0, modifiedMs: Math.round(unet?.mtimeMs ?? 0) },
    subjects: subjects.map((s) => `${s.identifier}=${s.classNoun}:${IDENTITY_SUBJECTS[s.index].id}`),
    training: Object.fromEntries(
      Object.entries(training)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b)),
    ) as Table1Training,
  };
  return stamp;
}

/** Why the cached cast cannot be used, or null when it can. */
async function staleReason(dir: string, wanted: CastStamp): Promise<string | null> {
  if (!existsSync(join(dir, 'cast.json'))) return 'no cached cast model';
  let found: unknown;
  try {
    found = JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'));
  } catch {
    return `the cached cast model has no readable ${STAMP_FILE}`;
  }
  const f = found as Partial<CastStamp>;
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (f.baseModel !== wanted.baseModel) return `it was trained from ${String(f.baseModel)}`;
  if (!same(f.baseUnet, wanted.baseUnet)) return 'the base model has changed since';
  if (!same(f.subjects, wanted.subjects)) return 'it was trained on other subjects';
  if (!same(f.training, wanted.training))
    return `it was trained with ${JSON.stringify(f.training)}, not ${JSON.stringify(wanted.training)}`;
  return null;
}

/**
 * The cast model: the cached one when its stamp matches, else trained (resuming from the
 * checkpoints of an interrupted run of the same cast). Returns whether it was reused.
 */
async function castModel(
  o: Table1Options,
  cast: Cast,
  subjects: Table1Subject[],
  training: Table1Training,
  log: (line: string) => void,
): Promise<{ reused: boolean }> {
  const dir = o.castModelDir;
  const stamp = await castStamp(o.baseModelDir, subjects, training);
  const reason = o.retrain ? 'retraining as asked' : await staleReason(dir, stamp);
  if (reason === null) {
    log(`cast: reusing ${dir}`);
    return { reused: true };
  }
  log(`cast: training ${subjects.length} subjects into ${dir} (${reason})`);
  // checkpoints of an interrupted run are resumed only when they were made for this very cast
  const workDir = `${dir}.training`;
  const interrupted = o.retrain
    ? 'retrain'
    : await readFile(join(workDir, STAMP_FILE), 'utf8').catch(() => '');
  if (interrupted !== JSON.stringify(stamp)) await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  await writeFile(join(workDir, STAMP_FILE), JSON.stringify(stamp));
  const result = await trainCast({
    ...training,
    baseModelDir: o.baseModelDir,
    cast,
    outDir: dir,
    workDir,
    resume: true,
    log,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onTrainingProgress ? { onProgress: o.onTrainingProgress } : {}),
  });
  if (result.stoppedBy === 'cancelled')
    throw new Table1Error(`cast training stopped at step ${result.unetSteps}; run again to resume it`);
  await writeFile(join(dir, STAMP_FILE), JSON.stringify(stamp, null, 2) + '\n');
  return { reused: false };
}

// ---------------------------------------------------------------------------------------------
// compositions and layouts

/**
 * `count` combinations of `n` subjects from `pool`, fixed by `seed`: distinct while the pool has
 * enough of them (with n = 1 every subject comes before any repeats), then repeated in order.
 *
 * @example
 * table1Compositions([0, 1, 2, 3], 2, 3); // e.g. [[2, 0], [1, 3], [0, 3]]
 */
export function table1Compositions(
  pool: readonly number[],
  n: number,
  count: number,
  seed = 0x7ab1e,
): number[][] {
  if (n < 1 || n > pool.length)
    throw new Table1Error(`a composition of ${n} subjects needs at least ${n} subjects in the cast`);
  const rng = new Rng(seed + n);
  const seen = new Set<string>();
  const out: number[][] = [];
  for (let attempt = 0; out.length < count && attempt < 200 * count; attempt++) {
    const combo = shuffled(rng, pool).slice(0, n);
    const key = [...combo].sort((a, b) => a - b).join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(combo);
  }
  for (let i = 0; out.length < count; i++) out.push(out[i]);
  return out;
}

/** One layout of a composition: the scene it comes from, the painted regions, the prompts. */
export interface Table1Layout {
  scene: WorldScene;
  /** Regions with the cast's local prompts; `regions[j]` is `subjects[j]`. */
  layout: WorldLayout;
  subjects: Table1Subject[];
  /** The global prompt: every subject and the place. */
  prompt: string;
  seed: number;
}

/**
 * The layout of composition `c`, prompt `p` at n subjects: the world arranges the subjects (their
 * identity appearance, a pose and orientation of its choice) on the p-th place of a shuffled list
 * of places (outdoor ones when a car is in it).
 */
export function table1Layout(
  combo: readonly Table1Subject[],
  n: number,
  c: number,
  p: number,
  size: number,
): Table1Layout {
  const seed = 0x7ab1_0000 + n * 1_000_000 + c * 1_000 + p;
  const identity = combo.map((s) => IDENTITY_SUBJECTS[s.index]);
  const outdoorOnly = identity.some((s) => ['car', 'tree', 'house'].includes(s.className));
  const places = shuffled(
    new Rng(0x7ab1_0000 + n * 1_000_000 + c * 1_000),
    BACKGROUND_KINDS.filter((k) => !outdoorOnly || !INDOOR_KINDS.includes(k)),
  );
  const kind = places[p % places.length];
  const rng = new Rng(seed);
  const variant = Math.floor(rng.nextFloat() * BACKGROUND_VARIANTS);
  const scene = generateScene(rng, {
    size,
    specs: identity.map((s) => ({ className: s.className, color: s.color, attributes: s.attributes })),
    background: { kind, variant },
  });
  const layout = layoutFromScene(scene);
  // the scene lists its subjects far to near: find each one's cast subject by class and colour
  const subjects = scene.subjects.map((ws) => {
    const k = identity.findIndex((s) => s.className === ws.className && s.color === ws.color);
    if (k < 0) throw new Table1Error(`the scene has a ${ws.color} ${ws.className} that is not in the cast`);
    return combo[k];
  });
  layout.regions = layout.regions.map((r, j) => ({ ...r, prompt: subjects[j].prompt }));
  const prompt = `${combo.map((s) => s.prompt).join(' and ')} ${BACKGROUND_PHRASES[kind]}`;
  layout.prompt = prompt;
  return { scene, layout, subjects, prompt, seed };
}

/** The segment map of a layout as a picture: regions in colours over the dimmed place, with the skeletons. */
function layoutPicture(l: Table1Layout, scaffold: RgbImage): RgbImage {
  const colors = [
    [230, 25, 75],
    [60, 180, 75],
    [67, 99, 216],
    [245, 130, 49],
  ];
  const { width, height } = scaffold;
  const data = Uint8Array.from(scaffold.data, (v) => v >> 1);
  const pose = l.scene.openpose.data;
  for (let p = 0; p < width * height; p++) {
    const j = l.layout.regions.findIndex((r) => r.pixelMask[p] === 1);
    if (j >= 0) data.set(colors[j % colors.length], 3 * p);
    if (pose[3 * p] + pose[3 * p + 1] + pose[3 * p + 2] > 0) data.set(pose.subarray(3 * p, 3 * p + 3), 3 * p);
  }
  return { width, height, data };
}

// ---------------------------------------------------------------------------------------------
// the evaluation

interface Accumulator {
  clipI: number[];
  sas: number[];
  /** Per layout, CLIP-T of each image. */
  clipT: number[][];
  found: number;
  panels: number;
}

/** Trains (or reuses) the cast and measures every row at every n; see the file header. */
export async function runTable1(o: Table1Options): Promise<Table1Result> {
  const log = o.log ?? (() => {});
  const counts: Table1Counts = { ...TABLE1_DEFAULT_COUNTS, ...o.counts };
  const sampling: Table1Sampling = { ...TABLE1_DEFAULT_SAMPLING, ...o.sampling };
  const training: Table1Training = { ...TABLE1_DEFAULT_TRAINING, ...o.training };
  const ns = [...(o.ns ?? TABLE1_NS)];
  const unknown = (o.rows ?? []).filter((key) => !TABLE1_ROWS.some((r) => r.key === key));
  if (unknown.length > 0)
    throw new Table1Error(
      `unknown rows ${unknown.map((k) => `'${k}'`).join(', ')}; the rows are ${TABLE1_ROWS.map((r) => `'${r.key}'`).join(', ')}`,
    );
  for (const [name, v] of Object.entries(counts))
    if (!Number.isInteger(v) || v < 1) throw new Table1Error(`${name} must be a positive integer, got ${v}`);
  if (!Number.isInteger(sampling.steps) || sampling.steps < 2)
    throw new Table1Error(`steps must be an integer of at least 2, got ${sampling.steps}`);
  if (training.segmentationSteps === 0)
    throw new Table1Error(
      'Table 1 needs the cast segmentation model (SAL, SAS): segmentation steps must be at least 1',
    );

  // 1. the cast
  const trainingStarted = performance.now();
  const tokens = await readRareTokens(join(o.baseModelDir, 'tokenizer'));
  const pool = [...(o.subjects ?? IDENTITY_SUBJECTS.map((_, i) => i))];
  const { cast, subjects } = identityCast(pool, tokens.length > 0 ? tokens : RARE_IDENTIFIERS);
  for (const n of ns)
    if (!Number.isInteger(n) || n < 1 || n > Math.min(4, subjects.length))
      throw new Table1Error(`n = ${n}: panels hold 1 to ${Math.min(4, subjects.length)} cast subjects here`);
  const trained = await castModel(o, cast, subjects, training, log);
  const trainingSeconds = trained.reused ? 0 : (performance.now() - trainingStarted) / 1000;

  // 2. the models: the cast model, its CLIP, its segmentation model (SAS encoder, SAL, judge)
  const evaluationStarted = performance.now();
  const runtime = new Runtime();
  const sd = await StableDiffusion.load(o.castModelDir, runtime);
  const segmentationDir = join(o.castModelDir, 'segmentation');
  const clipDir = o.clipDir ?? join(o.castModelDir, 'clip');
  const clip = await loadImageTextEmbedder(clipDir);
  const encoder = await SegmentationEncoder.load(segmentationDir);
  const judge = await SegmentationJudge.load(segmentationDir);
  const segmentation = await loadSegmentationModel(segmentationDir);
  const wanted = TABLE1_ROWS.filter((r) => !o.rows || o.rows.includes(r.key));
  const rows = wanted.filter((r) => !r.controlnet || sd.model.components.controlnet);
  if (rows.length < wanted.length) log(`${sd.name} has no ControlNet: the ControlNet row is left out`);
  const size = sd.sizes.defaultImageSize ?? 128;
  const factor = sd.sizes.vaeScaleFactor;
  const globalSteps = (preset: keyof typeof PAPER_PRESETS) =>
    Math.max(
      1,
      Math.round(
        (sampling.steps * PAPER_PRESETS[preset].settings.globalDiffuserSteps) /
          PAPER_PRESETS[preset].settings.steps,
      ),
    );
  const gd = {
    scaffold: globalSteps('scaffoldImage'),
    noScaffold: globalSteps('noScaffold'),
    controlnet: globalSteps('controlnet'),
  };
  const plan = planSteps({
    steps: sampling.steps,
    scaffoldingSteps: REQUEST_DEFAULTS.scaffoldingSteps,
    globalDiffuserSteps: Math.max(gd.scaffold, gd.noScaffold, gd.controlnet),
    sal: { ...REQUEST_DEFAULTS.sal, weight: sampling.salWeight },
  });
  if (plan.harmonizationSteps < 0)
    throw new Table1Error(
      `${sampling.steps} steps are too few for the scaffolding and global diffuser steps`,
    );
  const salSteps = new Set(plan.salSteps);
  log(
    `evaluate: ${rows.length} rows x n = ${ns.join(', ')}; per n ${counts.compositions} compositions x ${counts.prompts} prompts x ${counts.images} images; ${sampling.steps} DDIM steps, guidance ${sampling.guidanceScale}, scaffolding ${plan.scaffoldingSteps}, GD ${gd.scaffold}/${gd.noScaffold}/${gd.controlnet}, SAL ${sampling.salWeight} on ${salSteps.size} steps`,
  );

  const acc = new Map<string, Accumulator>();
  const cell = (row: string, n: number) => {
    const key = `${row}|${n}`;
    let a = acc.get(key);
    if (!a) {
      a = { clipI: [], sas: [], clipT: [], found: 0, panels: 0 };
      acc.set(key, a);
    }
    return a;
  };
  const references = new Map(subjects.map((s) => [s.identifier, referencesOf(s.index)]));
  const cache = new ReferenceEmbeddingCache();
  const samples: Table1Result['samples'] = [];
  let renders = 0;
  const layouts = ns.length * counts.compositions * counts.prompts;
  try {
    for (const n of ns) {
      const combos = table1Compositions(pool, n, counts.compositions).map((combo) =>
        combo.map((index) => subjects[pool.indexOf(index)]),
      );
      for (const [c, combo] of combos.entries()) {
        for (let p = 0; p < counts.prompts; p++) {
          o.signal?.throwIfAborted();
          const started = performance.now();
          const l = table1Layout(combo, n, c, p, size);
          const segments: CompositeSegment[] = layoutSegments(l.layout, factor);
          const scaffold = renderWorldBackground(l.scene.background, size);
          const panelSubjects = l.layout.regions.map((r, j) => ({
            name: l.subjects[j].identifier,
            segment: r.pixelMask,
            references: references.get(l.subjects[j].identifier) ?? [],
          }));
          const sal = rows.some((r) => r.sal)
            ? await SalGuidance.create(sd, segmentation, {
                width: size,
                height: size,
                subjects: l.subjects.map((s, j) => ({ className: s.identifier, mask: segments[j].mask })),
              })
            : undefined;
          const sample =
            p === 0 && c === 0
              ? { n, layout: layoutPicture(l, scaffold), images: [] as RgbImage[] }
              : undefined;
          try {
            for (const row of rows) {
              const perImage: number[] = [];
              for (let i = 0; i < counts.images; i++) {
                const image = await renderRow(sd, row, l, {
                  segments,
                  scaffold,
                  seed: (l.seed + Math.imul(i + 1, 0x9e37_79b1)) >>> 0,
                  sampling,
                  scaffoldingSteps: plan.scaffoldingSteps,
                  globalDiffuserSteps: row.controlnet
                    ? gd.controlnet
                    : row.scaffold
                      ? gd.scaffold
                      : gd.noScaffold,
                  ...(sal ? { sal: { guidance: sal, steps: salSteps } } : {}),
                  ...(o.signal ? { signal: o.signal } : {}),
                });
                renders++;
                if (sample && i === 0) sample.images.push(image);
                // 4. the metrics on the layout's regions
                const scores = await evaluatePanel(
                  { image, prompt: l.prompt, subjects: panelSubjects },
                  { clip, sas: encoder, cache },
                );
                const a = cell(row.key, n);
                a.clipI.push(scores.clipI);
                a.sas.push(scores.sas ?? Number.NaN);
                perImage.push(scores.clipT);
                a.panels++;
                // 5. the identifier check
                if (n === 2) {
                  const map = await judgeImage(judge, image);
                  const found = l.layout.regions.every((r, j) =>
                    classInRegion(map, r.pixelMask, l.subjects[j].identifier),
                  );
                  if (found) a.found++;
                }
              }
              cell(row.key, n).clipT.push(perImage);
            }
          } finally {
            await sal?.dispose();
          }
          if (sample) samples.push(sample);
          // a rough estimate: later layouts have more subjects and take longer
          const done = renders / (rows.length * counts.images);
          const left = ((performance.now() - evaluationStarted) / done) * (layouts - done);
          log(
            `n=${n} composition ${c + 1}/${counts.compositions} prompt ${p + 1}/${counts.prompts} (${l.prompt}): ${rows.length * counts.images} renders in ${((performance.now() - started) / 1000).toFixed(1)} s; about ${(left / 60_000).toFixed(0)} min left`,
          );
        }
      }
    }
  } finally {
    await Promise.all([clip.release(), encoder.release(), judge.release()]);
    await runtime.dispose();
  }

  // the table: rows, then n, then metric
  const table: Table1 = {};
  for (const row of rows) {
    const byN: Record<string, Table1Cell> = {};
    for (const n of ns) {
      const a = cell(row.key, n);
      byN[String(n)] = {
        clipI: round(mean(a.clipI)),
        clipT: round(bestPerPromptMean(a.clipT)),
        sas: round(mean(a.sas)),
        ...(n === 2 ? { identifiersFound: round(a.found / a.panels) } : {}),
      };
    }
    table[row.key] = byN;
  }
  return {
    table,
    rows,
    ns,
    subjects,
    castModelDir: o.castModelDir,
    castReused: trained.reused,
    settings: {
      baseModel: o.baseModelDir,
      counts,
      sampling,
      training,
      globalDiffuserSteps: gd,
      scaffoldingSteps: plan.scaffoldingSteps,
      salSteps: salSteps.size,
      clip: clipDir,
    },
    samples,
    renders,
    trainingSeconds,
    evaluationSeconds: (performance.now() - evaluationStarted) / 1000,
  };
}

/** What a row's render of one layout image needs besides the row and the layout. */
interface RowRender {
  segments: CompositeSegment[];
  scaffold: RgbImage;
  seed: number;
  sampling: Table1Sampling;
  scaffoldingSteps: number;
  /** The global diffuser steps of this row's setting (used when the row has GD=T). */
  globalDiffuserSteps: number;
  sal?: { guidance: SalGuidance; steps: ReadonlySet<number> };
  signal?: AbortSignal;
}

/** One picture of a row: the single-prompt baseline, or MSP in the row's configuration. */
async function renderRow(
  sd: StableDiffusion,
  row: Table1Row,
  l: Table1Layout,
  r: RowRender,
): Promise<RgbImage> {
  const size = l.scene.image.width;
  const composite: Omit<CompositeOptions, 'scaffoldingSteps' | 'globalDiffuserSteps'> = {
    prompt: l.prompt,
    negativePrompt: '',
    segments: r.segments,
    steps: r.sampling.steps,
    scheduler: 'ddim',
    guidanceScale: r.sampling.guidanceScale,
    seed: r.seed,
    width: size,
    height: size,
    globalDiffuserWeight: 1,
    ...(r.signal ? { signal: r.signal } : {}),
  };
  if (row.baseline) {
    const baselines = await renderBaselines(
      sd,
      { composite: { ...composite, scaffoldingSteps: 0, globalDiffuserSteps: 0 } },
      r.signal ? { signal: r.signal } : {},
    );
    const t2i = baselines['text-to-image'];
    if (!t2i) throw new Table1Error('the baseline render gave no text-to-image picture');
    return t2i.image;
  }
  const sal = row.sal ? r.sal : undefined;
  if (row.sal && !sal) throw new Table1Error(`${row.key}: no SAL guidance was set up`);
  const result = await generateComposite(sd, {
    ...composite,
    scaffoldingSteps: r.scaffoldingSteps,
    globalDiffuserSteps: row.globalDiffuser ? r.globalDiffuserSteps : 0,
    ...(row.scaffold ? { scaffold: r.scaffold } : {}),
    ...(row.controlnet ? { controlImage: l.scene.openpose, controlnetScale: 1 } : {}),
    ...(sal
      ? {
          guide: {
            steps: sal.steps,
            weight: r.sampling.salWeight,
            gradient: (x0: Float32Array) => sal.guidance.gradient(x0),
          },
        }
      : {}),
  });
  return result.image;
}

// ---------------------------------------------------------------------------------------------
// output

const N_LABEL = (n: number) => (n > 3 ? `n>3 (${n})` : `n=${n}`);

/**
 * The table as Markdown: settings, the cast, then one line per row with CLIP-I, CLIP-T and SAS per
 * n (3 decimals) and the identifier check, as in the paper's Table 1.
 */
/** A Markdown table with its columns padded to their widest cell, as Prettier formats it. */
function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, c) => Math.max(3, h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: readonly string[]) => `| ${cells.map((v, c) => v.padEnd(widths[c])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function table1Markdown(result: Table1Result): string {
  const s = result.settings;
  const metrics = ['CLIP-I', 'CLIP-T', 'SAS'];
  const idColumn = result.ns.includes(2);
  const header = [
    'Method',
    'Configuration',
    ...result.ns.flatMap((n) => metrics.map((m) => `${N_LABEL(n)} ${m}`)),
    ...(idColumn ? ['IDs found (n=2)'] : []),
  ];
  const f = (v: number) => v.toFixed(3);
  const lines = result.rows.map((row) => {
    const cells = result.table[row.key];
    return [
      row.method,
      row.configuration,
      ...result.ns.flatMap((n) => {
        const c = cells[String(n)];
        return [f(c.clipI), f(c.clipT), f(c.sas)];
      }),
      ...(idColumn ? [f(cells['2'].identifiersFound ?? 0)] : []),
    ];
  });
  const tableLines = markdownTable(header, lines);
  const minutes = (sec: number) => `${(sec / 60).toFixed(1)} min`;
  return [
    '# Table 1 on the tiny world',
    '',
    "The paper's Table 1 (CLIP-I, CLIP-T, SAS by number of personalized subjects n) on the tiny",
    "world's identity set, with a cast trained from the base model named below; written by",
    '`npm run eval:table1` (native-models/personalize/table1.ts explains every choice). The figures',
    'are those of `table1.json`; the sample grid is `table1-samples.png`.',
    '',
    ...tableLines,
    '',
    "CLIP-I and SAS: mean over panels of the mean over the panel's subjects, each on its own region's",
    'crop against its 11 references (with n = 1 CLIP-I compares whole pictures); the DreamBooth row is',
    'scored on the same regions. CLIP-T: the best image of each layout, averaged over the layouts.',
    'IDs found: the share of 2-subject panels in which the cast segmentation model finds both',
    "subjects, as their identifiers' classes, inside their own regions.",
    '',
    '## Settings',
    '',
    `- base model: \`${s.baseModel}\`; cast model: \`${result.castModelDir}\` (${result.castReused ? 'reused' : 'trained in this run'})`,
    `- cast training: ${JSON.stringify(s.training)}`,
    `- per n: ${s.counts.compositions} subject combinations x ${s.counts.prompts} layouts (places) x ${s.counts.images} images; ${result.renders} renders`,
    `- ${s.sampling.steps} DDIM steps, guidance ${s.sampling.guidanceScale}, scaffolding steps ${s.scaffoldingSteps}, global diffuser steps (GD=T) ${s.globalDiffuserSteps.scaffold} with scaffolding / ${s.globalDiffuserSteps.noScaffold} without / ${s.globalDiffuserSteps.controlnet} with ControlNet, SAL weight ${s.sampling.salWeight} on ${s.salSteps} steps`,
    `- CLIP: \`${s.clip}\`; SAS and SAL: the cast model's \`segmentation/\``,
    `- time: cast training ${result.castReused ? 'none (reused)' : minutes(result.trainingSeconds)}, evaluation ${minutes(result.evaluationSeconds)}`,
    '',
    '## The cast',
    '',
    ...markdownTable(
      ['identifier', 'class noun', 'subject'],
      result.subjects.map((x) => [x.identifier, x.classNoun, x.name]),
    ),
    '',
    '## Samples',
    '',
    `\`table1-samples.png\`: one line per n (${result.ns.join(', ')}), the first layout's first image;`,
    `columns: the layout (regions in colour over the dimmed place, skeletons), then ${result.rows.map((r) => `${r.method}${r.configuration ? ` ${r.configuration}` : ''}`).join('; ')}.`,
    '',
  ].join('\n');
}

/** The sample grid: per n, the layout and then every row's first image. */
export function table1SampleGrid(result: Table1Result): RgbImage {
  return imageGrid(result.samples.map((s) => [s.layout, ...s.images]));
}

/** Writes table1.md, table1.json and table1-samples.png into `outDir`; returns their paths. */
export async function writeTable1(
  result: Table1Result,
  outDir: string,
): Promise<{ markdown: string; json: string; samples: string }> {
  await mkdir(outDir, { recursive: true });
  const paths = {
    markdown: join(outDir, 'table1.md'),
    json: join(outDir, 'table1.json'),
    samples: join(outDir, 'table1-samples.png'),
  };
  await writeFileAtomic(paths.markdown, table1Markdown(result));
  await writeFileAtomic(paths.json, JSON.stringify(result.table, null, 2) + '\n');
  await writeFileAtomic(paths.samples, await encodePng(table1SampleGrid(result)));
  return paths;
}

// ---------------------------------------------------------------------------------------------
// helpers

function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Table1Error('no panels were scored');
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function round(v: number): number {
  return Number(v.toFixed(4));
}

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
