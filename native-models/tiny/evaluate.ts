/**
 * The embedded model's acceptance figures, measured by the independent judge (the segmentation
 * model, never used for conditioning here) on held-out world scenes (seeds far from every training
 * seed), with one set of generation settings:
 *
 *   t2i_class_acc / t2i_color_acc   single-subject captions: the prompted class is found in the
 *                                   picture, and the judge's pixels of it have the prompted colour
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
import { generateScene } from '../world/scene.js';
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
  log?: (line: string) => void;
}): Promise<EvaluationResult> {
  const started = performance.now();
  const { sd, settings } = o;
  const log = o.log ?? (() => undefined);
  const size = 128;
  const judge = await SegmentationJudge.load(o.segmentationDir ?? join(sd.model.dir, 'segmentation'));
  const whole = new Uint8Array(size * size).fill(1);
  const figures: Record<string, number> = {};
  const perClass: EvaluationResult['perClass'] = {};
  const posePerClass: EvaluationResult['posePerClass'] = {};
  const samples: EvaluationResult['samples'] = { t2i: [], pose: [], poseControl: [], msp: [], baseline: [] };
  try {
    // 1. Text-to-image on single-subject captions, classes in turn
    let found = 0;
    let colorOk = 0;
    for (let i = 0; i < o.counts.t2i; i++) {
      const className = SUBJECT_CLASSES[i % SUBJECT_CLASSES.length];
      const scene = generateScene(HELD_OUT_SEED + i, { size, specs: [{ className }] });
      const subject = scene.subjects[0];
      const { image } = await render(sd, settings, HELD_OUT_SEED + i, { prompt: scene.caption, size });
      const map = await judgeImage(judge, image);
      const isFound = classInRegion(map, whole, className);
      const color = mainColor(image, subjectPixels(map, whole, className));
      const c = (perClass[className] ??= { images: 0, found: 0, color: 0, readAs: {} });
      c.images++;
      if (isFound) {
        found++;
        c.found++;
      } else {
        const read = readRegion(map, whole).majorityClass ?? 'nothing';
        c.readAs[read] = (c.readAs[read] ?? 0) + 1;
      }
      if (color === subject.color) {
        colorOk++;
        c.color++;
      }
      if (i < 13) samples.t2i.push(image);
      if ((i + 1) % 25 === 0) log(`evaluate t2i ${i + 1}/${o.counts.t2i}: class ${found}, colour ${colorOk}`);
    }
    figures.t2i_class_acc = round(found / o.counts.t2i);
    figures.t2i_color_acc = round(colorOk / o.counts.t2i);

    // 2. Pose: one skeleton-drawn subject through the ControlNet
    if (sd.model.components.controlnet && o.counts.pose > 0) {
      let iouSum = 0;
      let anyClassSum = 0;
      let figureSum = 0;
      for (let i = 0; i < o.counts.pose; i++) {
        const seed = HELD_OUT_SEED + 100_000 + i;
        const className = SKELETON_CLASSES[i % SKELETON_CLASSES.length];
        const scene = generateScene(seed, { size, specs: [{ className }] });
        const { image } = await render(sd, settings, seed, {
          prompt: scene.caption,
          control: scene.openpose,
          size,
        });
        const map = await judgeImage(judge, image);
        const silhouette = skeletonSilhouette(scene.pose.people[0], size, size);
        const iou = silhouetteIoU(subjectPixels(map, whole, className), silhouette);
        const anyClass = subjectPixels(map, whole, null);
        const anyClassIou = silhouetteIoU(anyClass, silhouette);
        iouSum += iou;
        anyClassSum += anyClassIou;
        const c = (posePerClass[className] ??= { images: 0, iou: 0, anyClassIou: 0 });
        c.images++;
        c.iou += iou;
        c.anyClassIou += anyClassIou;
        figureSum += silhouetteIoU(largestComponent(anyClass, size, size), silhouette);
        if (i < 8) {
          samples.pose.push(image);
          samples.poseControl.push(scene.openpose);
        }
      }
      figures.pose_silhouette_iou = round(iouSum / o.counts.pose);
      figures.pose_silhouette_iou_any_class = round(anyClassSum / o.counts.pose);
      figures.pose_silhouette_iou_figure = round(figureSum / o.counts.pose);
      log(
        `evaluate pose: mean silhouette IoU ${figures.pose_silhouette_iou} (any class ${figures.pose_silhouette_iou_any_class}, largest figure ${figures.pose_silhouette_iou_figure}) over ${o.counts.pose} images`,
      );
    }

    // 3. MSP against the single-prompt baseline on 2-4 subject layouts
    for (const n of [2, 3, 4]) {
      let mspHits = 0;
      let baseHits = 0;
      let regions = 0;
      for (let i = 0; i < o.counts.msp; i++) {
        const seed = HELD_OUT_SEED + 200_000 + n * 10_000 + i;
        const layout = layoutFromScene(generateScene(seed, { size, subjects: n }));
        const msp = await render(sd, settings, seed, {
          prompt: layout.prompt,
          segments: layoutSegments(layout, sd.sizes.vaeScaleFactor),
          size,
        });
        const base = await render(sd, settings, seed, { prompt: layout.prompt, size });
        mspHits += countFound(await judgeImage(judge, msp.image), layout);
        baseHits += countFound(await judgeImage(judge, base.image), layout);
        regions += layout.regions.length;
        if (i < 3) {
          samples.msp.push(msp.image);
          samples.baseline.push(base.image);
        }
      }
      figures[`msp_segment_class_acc_n${n}`] = round(mspHits / regions);
      figures[`baseline_segment_class_acc_n${n}`] = round(baseHits / regions);
      log(`evaluate n=${n}: MSP ${mspHits}/${regions}, baseline ${baseHits}/${regions} regions`);
    }
  } finally {
    await judge.release();
  }
  return { figures, perClass, posePerClass, samples, seconds: (performance.now() - started) / 1000 };
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
