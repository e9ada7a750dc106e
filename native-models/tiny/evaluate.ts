/**
 * The embedded model's acceptance figures, measured by the independent judge (the segmentation
 * model, never used for conditioning here) on held-out world scenes (seeds far from every training
 * seed), with one set of generation settings:
 *
 *   t2i_class_acc / t2i_color_acc   single-subject captions: the prompted class is found in the
 *                                   picture, and the judge's pixels of it have the prompted colour
 *   t2i_color_acc_any_subject       diagnostic: the colour read from the judge's pixels of any
 *                                   subject class, so a man drawn in the prompted red coat that
 *                                   the judge reads as a boy still counts (the colour alone)
 *   pose_silhouette_iou             one person (or robot) with its skeleton through the ControlNet:
 *                                   IoU of the judge's pixels of the prompted class with the
 *                                   skeleton's silhouette (a figure judged as another class scores 0)
 *   pose_silhouette_iou_any_class   the same with the judge's pixels of any subject class: the pose
 *                                   alone, whatever class the judge reads
 *   pose_silhouette_iou_figure      the largest connected part of those pixels: the figure without
 *                                   the specks a judge reads into a noisy background
 *   msp_segment_class_acc_n{2,3,4}  MSP on 2-4 subject layouts (a region and a class prompt per
 *                                   subject): each region's class is found inside its region
 *   baseline_segment_class_acc_n*   the single-prompt baseline (the scene caption, same seed and
 *                                   settings, no regions) judged on the same regions
 *
 * Every picture goes through generateComposite; text-to-image is the one-segment case.
 *
 * @example
 * const figures = await evaluateTinyModel({ modelDir, settings: { steps: 30, guidanceScale: 5 } });
 */
import { join } from 'node:path';
import type { RgbImage } from '../image/image.js';
import { generateComposite } from '../pipelines/msp.js';
import type { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { generateScene, type WorldScene } from '../world/scene.js';
import { CLASS_INFO, SUBJECT_CLASSES } from '../world/classes.js';
import { layoutFromScene, layoutSegments, type WorldLayout } from './layouts.js';
import {
  classInRegion,
  judgeImage,
  largestComponent,
  mainColor,
  readRegion,
  SegmentationJudge,
  silhouetteIoU,
  skeletonSilhouette,
  subjectPixels,
} from './judge.js';

export interface EvaluationSettings {
  steps: number;
  guidanceScale: number;
  /** Scaffolding share of the steps for MSP. */
  scaffolding: number;
}

export interface EvaluationCounts {
  t2i: number;
  pose: number;
  /** Scenes per subject count (2, 3, 4). */
  msp: number;
}

/** Held-out scenes start at this seed; training draws from seeded streams far below it. */
const HELD_OUT_SEED = 900_000_000;
const SKELETON_CLASSES = SUBJECT_CLASSES.filter((c) => CLASS_INFO[c].humanLike);

export interface EvaluationResult {
  figures: Record<string, number>;
  /**
   * Per class: single-subject images, how many the judge found and with the prompted colour, and
   * what it read instead in the others (its majority subject class, or 'nothing').
   */
  perClass: Record<string, { images: number; found: number; color: number; readAs: Record<string, number> }>;
  /** Per skeleton class: pose images and their summed silhouette IoUs (prompted class, any class). */
  posePerClass: Record<string, { images: number; iou: number; anyClassIou: number }>;
  /** The same figures read by the reference judge, when one was given. */
  referenceFigures?: Record<string, number>;
  /** Sample pictures for the grid: text-to-image, pose-controlled (with the skeleton's scene), MSP. */
  samples: {
    t2i: RgbImage[];
    pose: RgbImage[];
    poseControl: RgbImage[];
    msp: RgbImage[];
    baseline: RgbImage[];
  };
  seconds: number;
}

function render(
  sd: StableDiffusion,
  s: EvaluationSettings,
  seed: number,
  o: { prompt: string; segments?: ReturnType<typeof layoutSegments>; control?: RgbImage; size: number },
) {
  const f = sd.sizes.vaeScaleFactor;
  const plane = (o.size / f) ** 2;
  const segments = o.segments ?? [{ prompt: o.prompt, mask: new Float32Array(plane).fill(1) }];
  return generateComposite(sd, {
    prompt: o.prompt,
    negativePrompt: '',
    segments,
    steps: s.steps,
    scheduler: 'ddim',
    guidanceScale: s.guidanceScale,
    seed,
    width: o.size,
    height: o.size,
    scaffoldingSteps: o.segments ? Math.round(s.steps * s.scaffolding) : 0,
    globalDiffuserSteps: 0,
    globalDiffuserWeight: 1,
    ...(o.control ? { controlImage: o.control, controlnetScale: 1 } : {}),
  });
}

export async function evaluateTinyModel(o: {
  sd: StableDiffusion;
  settings: EvaluationSettings;
  counts: EvaluationCounts;
  segmentationDir?: string;
  /**
   * Another judge (a segmentation folder) that reads the same pictures too: its figures come back
   * as `referenceFigures`, so a change of judge can be told apart from a change of the models.
   */
  referenceJudgeDir?: string;
  log?: (line: string) => void;
}): Promise<EvaluationResult> {
  const started = performance.now();
  const log = o.log ?? (() => undefined);
  // 1. Load the judges first: a wrong folder fails before the long rendering
  const judgeDir = o.segmentationDir ?? join(o.sd.model.dir, 'segmentation');
  const judges = [await SegmentationJudge.load(judgeDir)];
  let judged: JudgedFigures;
  let reference: JudgedFigures | undefined;
  let set: EvaluationSet;
  try {
    if (o.referenceJudgeDir) judges.push(await SegmentationJudge.load(o.referenceJudgeDir));
    // 2. Render every picture once
    set = await renderEvaluationSet(o.sd, o.settings, o.counts, log);
    // 3. Judge them (and again with the reference judge)
    judged = await judgeSet(judges[0], judgeDir, set, log);
    if (o.referenceJudgeDir) reference = await judgeSet(judges[1], o.referenceJudgeDir, set, log);
  } finally {
    for (const judge of judges) await judge.release();
  }
  return {
    ...judged,
    ...(reference ? { referenceFigures: reference.figures } : {}),
    samples: {
      t2i: set.t2i.slice(0, 13).map((p) => p.image),
      pose: set.pose.slice(0, 8).map((p) => p.image),
      poseControl: set.pose.slice(0, 8).map((p) => p.scene.openpose),
      msp: set.msp.filter((p) => p.index < 3).map((p) => p.msp),
      baseline: set.msp.filter((p) => p.index < 3).map((p) => p.baseline),
    },
    seconds: (performance.now() - started) / 1000,
  };
}

const SIZE = 128;

interface EvaluationSet {
  /** Single-subject captions, classes in turn. */
  t2i: { className: string; scene: WorldScene; image: RgbImage }[];
  /** One skeleton-drawn subject through the ControlNet (empty without a ControlNet). */
  pose: { className: string; scene: WorldScene; image: RgbImage }[];
  /** MSP and the single-prompt baseline on the same 2-4 subject layouts. */
  msp: { n: number; index: number; layout: WorldLayout; msp: RgbImage; baseline: RgbImage }[];
}

async function renderEvaluationSet(
  sd: StableDiffusion,
  settings: EvaluationSettings,
  counts: EvaluationCounts,
  log: (line: string) => void,
): Promise<EvaluationSet> {
  const set: EvaluationSet = { t2i: [], pose: [], msp: [] };
  // 1. Text-to-image on single-subject captions, classes in turn
  for (let i = 0; i < counts.t2i; i++) {
    const className = SUBJECT_CLASSES[i % SUBJECT_CLASSES.length];
    const scene = generateScene(HELD_OUT_SEED + i, { size: SIZE, specs: [{ className }] });
    const { image } = await render(sd, settings, HELD_OUT_SEED + i, { prompt: scene.caption, size: SIZE });
    set.t2i.push({ className, scene, image });
    if ((i + 1) % 25 === 0) log(`evaluate: rendered t2i ${i + 1}/${counts.t2i}`);
  }
  // 2. Pose: one skeleton-drawn subject through the ControlNet
  if (sd.model.components.controlnet) {
    for (let i = 0; i < counts.pose; i++) {
      const seed = HELD_OUT_SEED + 100_000 + i;
      const className = SKELETON_CLASSES[i % SKELETON_CLASSES.length];
      const scene = generateScene(seed, { size: SIZE, specs: [{ className }] });
      const { image } = await render(sd, settings, seed, {
        prompt: scene.caption,
        control: scene.openpose,
        size: SIZE,
      });
      set.pose.push({ className, scene, image });
    }
    log(`evaluate: rendered ${counts.pose} pose pictures`);
  }
  // 3. MSP against the single-prompt baseline on 2-4 subject layouts
  for (const n of [2, 3, 4]) {
    for (let index = 0; index < counts.msp; index++) {
      const seed = HELD_OUT_SEED + 200_000 + n * 10_000 + index;
      const layout = layoutFromScene(generateScene(seed, { size: SIZE, subjects: n }));
      const msp = await render(sd, settings, seed, {
        prompt: layout.prompt,
        segments: layoutSegments(layout, sd.sizes.vaeScaleFactor),
        size: SIZE,
      });
      const baseline = await render(sd, settings, seed, { prompt: layout.prompt, size: SIZE });
      set.msp.push({ n, index, layout, msp: msp.image, baseline: baseline.image });
    }
    log(`evaluate: rendered ${counts.msp} MSP and baseline pictures at n=${n}`);
  }
  return set;
}

type JudgedFigures = Pick<EvaluationResult, 'figures' | 'perClass' | 'posePerClass'>;

/** The figures one judge gives the set; logs them with the judge's folder. */
async function judgeSet(
  judge: SegmentationJudge,
  dir: string,
  set: EvaluationSet,
  log: (line: string) => void,
): Promise<JudgedFigures> {
  const whole = new Uint8Array(SIZE * SIZE).fill(1);
  const figures: Record<string, number> = {};
  const perClass: EvaluationResult['perClass'] = {};
  const posePerClass: EvaluationResult['posePerClass'] = {};
  // 1. Text-to-image: the prompted class is found, and its pixels have the prompted colour
  let found = 0;
  let colorOk = 0;
  let colorAnySubject = 0;
  for (const { className, scene, image } of set.t2i) {
    const map = await judgeImage(judge, image);
    const c = (perClass[className] ??= { images: 0, found: 0, color: 0, readAs: {} });
    c.images++;
    if (classInRegion(map, whole, className)) {
      found++;
      c.found++;
    } else {
      const read = readRegion(map, whole).majorityClass ?? 'nothing';
      c.readAs[read] = (c.readAs[read] ?? 0) + 1;
    }
    if (mainColor(image, subjectPixels(map, whole, className)) === scene.subjects[0].color) {
      colorOk++;
      c.color++;
    }
    if (mainColor(image, subjectPixels(map, whole, null)) === scene.subjects[0].color) colorAnySubject++;
  }
  if (set.t2i.length > 0) {
    figures.t2i_class_acc = round(found / set.t2i.length);
    figures.t2i_color_acc = round(colorOk / set.t2i.length);
    figures.t2i_color_acc_any_subject = round(colorAnySubject / set.t2i.length);
  }

  // 2. Pose: the judge's pixels against the skeleton's silhouette
  let iouSum = 0;
  let anyClassSum = 0;
  let figureSum = 0;
  for (const { className, scene, image } of set.pose) {
    const map = await judgeImage(judge, image);
    const silhouette = skeletonSilhouette(scene.pose.people[0], SIZE, SIZE);
    const iou = silhouetteIoU(subjectPixels(map, whole, className), silhouette);
    const anyClass = subjectPixels(map, whole, null);
    const anyClassIou = silhouetteIoU(anyClass, silhouette);
    iouSum += iou;
    anyClassSum += anyClassIou;
    figureSum += silhouetteIoU(largestComponent(anyClass, SIZE, SIZE), silhouette);
    const c = (posePerClass[className] ??= { images: 0, iou: 0, anyClassIou: 0 });
    c.images++;
    c.iou += iou;
    c.anyClassIou += anyClassIou;
  }
  if (set.pose.length > 0) {
    figures.pose_silhouette_iou = round(iouSum / set.pose.length);
    figures.pose_silhouette_iou_any_class = round(anyClassSum / set.pose.length);
    figures.pose_silhouette_iou_figure = round(figureSum / set.pose.length);
  }

  // 3. MSP and baseline: each region's class inside its region
  for (const n of [2, 3, 4]) {
    const scenes = set.msp.filter((p) => p.n === n);
    if (scenes.length === 0) continue;
    let mspHits = 0;
    let baseHits = 0;
    let regions = 0;
    for (const { layout, msp, baseline } of scenes) {
      mspHits += countFound(await judgeImage(judge, msp), layout);
      baseHits += countFound(await judgeImage(judge, baseline), layout);
      regions += layout.regions.length;
    }
    figures[`msp_segment_class_acc_n${n}`] = round(mspHits / regions);
    figures[`baseline_segment_class_acc_n${n}`] = round(baseHits / regions);
    log(`evaluate (judge ${dir}) n=${n}: MSP ${mspHits}/${regions}, baseline ${baseHits}/${regions} regions`);
  }
  log(`evaluate (judge ${dir}): ${JSON.stringify(figures)}`);
  return { figures, perClass, posePerClass };
}

function countFound(map: Awaited<ReturnType<typeof judgeImage>>, layout: WorldLayout): number {
  return layout.regions.filter((r) => classInRegion(map, r.pixelMask, r.className)).length;
}

function round(v: number): number {
  return Number(v.toFixed(4));
}

/** A grid of equally sized pictures, `columns` wide, with a gutter of `gap` white pixels. */
export function imageGrid(rows: readonly (readonly RgbImage[])[], { gap = 2 } = {}): RgbImage {
  const cell = rows.flat()[0];
  if (!cell) throw new RangeError('imageGrid needs at least one picture');
  const { width: w, height: h } = cell;
  const columns = Math.max(...rows.map((r) => r.length));
  const width = columns * w + (columns - 1) * gap;
  const height = rows.length * h + (rows.length - 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  rows.forEach((row, r) =>
    row.forEach((img, c) => {
      if (img.width !== w || img.height !== h) throw new RangeError('imageGrid pictures differ in size');
      for (let y = 0; y < h; y++) {
        data.set(
          img.data.subarray(y * w * 3, (y + 1) * w * 3),
          ((r * (h + gap) + y) * width + c * (w + gap)) * 3,
        );
      }
    }),
  );
  return { width, height, data };
}
