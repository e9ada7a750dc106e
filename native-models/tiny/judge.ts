/**
 * The independent judge of the tiny-model acceptance metrics: it looks at a picture with the tiny
 * segmentation model (a `segmentation/` folder in the SAL contract of pipelines/sal.ts) and answers
 * the questions the metrics ask, with the same rules for MSP and for the baseline:
 *
 *   judgeImage      picture -> per-pixel class map (the picture is resampled to the model's
 *                   training size, 128x128, and the map back to the picture's size)
 *   classInRegion   is the class found in a region? Found when the pixels predicted as some
 *                   subject class cover at least `minCoverage` (5%) of the region AND the requested
 *                   class is the most frequent subject class among them (majority non-background)
 *   subjectPixels   the pixels of a region the judge assigns to a class (its colour is read there)
 *   mainColor       the named colour (palette.ts) of those pixels: a shading-tolerant vote for the
 *                   nearest palette colour, see {@link mainColor}
 *   skeletonSilhouette + silhouetteIoU
 *                   the body a requested COCO-18 skeleton implies (limb capsules, torso, head disc:
 *                   pose/openpose.ts poseSilhouette) against the pixels the judge assigns to the
 *                   person
 *
 * Calibration on world renders (judge.test.ts measures it): mainColor on the ground-truth masks
 * of clean single-subject renders agrees with the world's `color` on 96-98% of them (99% on
 * renders degraded like a generator's output); the world's own people against their own
 * skeleton's silhouette have a mean IoU of about 0.74 (lowest about 0.57; 0.04 when the skeleton is
 * moved 48 px), so a person drawn over a requested pose scores well above 0.5, a misplaced one near 0.
 *
 * @example
 * const judge = await SegmentationJudge.load(join(modelDir, 'segmentation'));
 * const map = await judgeImage(judge, image);
 * const found = classInRegion(map, region, 'cat');
 * const color = mainColor(image, subjectPixels(map, region, 'cat'));
 * const iou = silhouetteIoU(subjectPixels(map, region, 'man'), skeletonSilhouette(person, 128, 128));
 * await judge.release();
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { imageToTensor, resizeImage, tensorToImage, type RgbImage } from '../image/image.js';
import { poseSilhouette, type Person, type PoseDocument } from '../pose/openpose.js';
import { COLORS, COLOR_NAMES, SKIN_TONES, type ColorName } from '../world/palette.js';

/** A picture as RGB values in [-1, 1], CHW (the VAE decoder's output space). */
export interface PixelValues {
  width: number;
  height: number;
  data: Float32Array;
}

/** What the judge looks at: RGB bytes or [-1, 1] pixel values. */
export type JudgeInput = RgbImage | PixelValues;

/** A per-pixel class map: `data[y * width + x]` indexes `classes` (0 is the background). */
export interface ClassMap {
  width: number;
  height: number;
  classes: readonly string[];
  data: Uint8Array;
}

export class JudgeError extends Error {
  override name = 'JudgeError';
}

/** The segmentation model behind the judge: one ONNX session and its class names. */
export class SegmentationJudge {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly classes: readonly string[],
    /** Side of the square pictures the model was trained on; pictures are resampled to it. */
    readonly inputSize: number,
  ) {}

  /** Loads `model.onnx`, `classes.json` and (optional) `config.json` (`image_size`) from a folder. */
  static async load(dir: string): Promise<SegmentationJudge> {
    let classes: unknown;
    try {
      classes = (JSON.parse(await readFile(join(dir, 'classes.json'), 'utf8')) as { classes?: unknown })
        .classes;
    } catch (e) {
      throw new JudgeError(`${join(dir, 'classes.json')}: ${(e as Error).message}`);
    }
    if (
      !Array.isArray(classes) ||
      !classes.every((c) => typeof c === 'string') ||
      classes[0] !== 'background'
    )
      throw new JudgeError(
        `${join(dir, 'classes.json')}: "classes" must list class names, "background" first`,
      );
    let size = 128;
    try {
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { image_size?: unknown };
      if (typeof config.image_size === 'number') size = config.image_size;
    } catch {
      // no config.json: the tiny model's training size
    }
    return SegmentationJudge.create(await readFile(join(dir, 'model.onnx')), classes as string[], size);
  }

  static async create(
    model: Uint8Array,
    classes: readonly string[],
    inputSize = 128,
  ): Promise<SegmentationJudge> {
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
    if (!session.inputNames.includes('image') || !session.outputNames.includes('logits'))
      throw new JudgeError(`the segmentation model needs input 'image' and output 'logits'`);
    if (inputSize % 16 !== 0) throw new JudgeError(`image_size must be a multiple of 16, got ${inputSize}`);
    return new SegmentationJudge(session, classes, inputSize);
  }

  /** Class maps of pictures of the model's input size (CHW [-1, 1], concatenated), by arg-max over the logits. */
  async classify(pixels: Float32Array, count: number): Promise<Uint8Array[]> {
    const S = this.inputSize;
    if (pixels.length !== count * 3 * S * S)
      throw new JudgeError(`expected ${count} pictures of 3x${S}x${S} values, got ${pixels.length} values`);
    const out = (await this.session.run({ image: new ort.Tensor('float32', pixels, [count, 3, S, S]) }))
      .logits;
    const [, K, h, w] = out.dims;
    if (K !== this.classes.length)
      throw new JudgeError(`the model gives ${K} classes, classes.json names ${this.classes.length}`);
    const logits = out.data as Float32Array;
    const plane = h * w;
    return Array.from({ length: count }, (_, n) => {
      const map = new Uint8Array(plane);
      const base = n * K * plane;
      for (let p = 0; p < plane; p++) {
        let best = 0;
        let bestValue = logits[base + p];
        for (let k = 1; k < K; k++) {
          const v = logits[base + k * plane + p];
          if (v > bestValue) {
            bestValue = v;
            best = k;
          }
        }
        map[p] = best;
      }
      return h === S && w === S ? map : resizeNearest(map, w, h, S, S);
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function isPixelValues(image: JudgeInput): image is PixelValues {
  return image.data instanceof Float32Array;
}

/**
 * The judge's per-pixel class map of a picture, at the picture's size.
 *
 * @example
 * const map = await judgeImage(judge, scene.image);
 * map.classes[map.data[64 * 128 + 64]]; // e.g. 'cat'
 */
export async function judgeImage(judge: SegmentationJudge, image: JudgeInput): Promise<ClassMap> {
  const { width, height } = image;
  const S = judge.inputSize;
  if (isPixelValues(image) && image.data.length !== 3 * width * height)
    throw new JudgeError(
      `a ${width}x${height} picture has ${3 * width * height} values, not ${image.data.length}`,
    );
  let pixels: Float32Array;
  if (width === S && height === S) pixels = isPixelValues(image) ? image.data : imageToTensor(image);
  else {
    const bytes = isPixelValues(image) ? tensorToImage(image.data, width, height) : image;
    pixels = imageToTensor(await resizeImage(bytes, S, S, { kernel: 'linear' }));
  }
  const [map] = await judge.classify(pixels, 1);
  const data = width === S && height === S ? map : resizeNearest(map, S, S, width, height);
  return { width, height, classes: judge.classes, data };
}

/** Nearest-neighbour resampling of a byte map. */
export function resizeNearest(
  map: Uint8Array,
  w: number,
  h: number,
  width: number,
  height: number,
): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / height));
    for (let x = 0; x < width; x++)
      out[y * width + x] = map[sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / width))];
  }
  return out;
}

function checkMask(map: ClassMap, mask: ArrayLike<number>): void {
  if (mask.length !== map.width * map.height)
    throw new JudgeError(
      `the mask has ${mask.length} pixels, the ${map.width}x${map.height} class map ${map.width * map.height}`,
    );
}

function classIndexOf(map: ClassMap, className: string): number {
  const k = map.classes.indexOf(className);
  if (k <= 0)
    throw new JudgeError(
      `the judge does not know the subject class '${className}' (it knows ${map.classes.slice(1).join(', ')})`,
    );
  return k;
}

/** What the judge sees in a region: its size, the pixels predicted as subject classes, their most frequent class. */
export interface RegionReading {
  /** Pixels of the region (mask > 0.5). */
  area: number;
  /** Fraction of the region predicted as some subject class (not background). */
  coverage: number;
  /** The most frequent subject class in the region, or null when there is none. */
  majorityClass: string | null;
  /** Pixels of the region predicted as each class, by class index. */
  counts: number[];
}

/** Counts the predicted classes inside a region (mask values above 0.5). */
export function readRegion(map: ClassMap, mask: ArrayLike<number>): RegionReading {
  checkMask(map, mask);
  const counts = new Array<number>(map.classes.length).fill(0);
  let area = 0;
  for (let p = 0; p < mask.length; p++) {
    if (mask[p] <= 0.5) continue;
    area++;
    counts[map.data[p]]++;
  }
  let best = 0;
  for (let k = 1; k < counts.length; k++) if (counts[k] > (best === 0 ? 0 : counts[best])) best = k;
  const subjectPixels = area - counts[0];
  return {
    area,
    coverage: area === 0 ? 0 : subjectPixels / area,
    majorityClass: best === 0 ? null : map.classes[best],
    counts,
  };
}

/** Least fraction of a region that must be predicted as a subject class for anything to be found there. */
export const MIN_REGION_COVERAGE = 0.05;

/**
 * Whether `className` is found in a region: the pixels predicted as some subject class cover at
 * least `minCoverage` of the region, and `className` is the most frequent subject class among
 * them (majority non-background class; a tie goes to the class listed first). The region may be
 * looser than the subject (a layout box): the background inside it does not count against it.
 *
 * @example
 * classInRegion(map, scene.subjects[0].mask, scene.subjects[0].className); // true when recognized
 */
export function classInRegion(
  map: ClassMap,
  mask: ArrayLike<number>,
  className: string,
  { minCoverage = MIN_REGION_COVERAGE }: { minCoverage?: number } = {},
): boolean {
  classIndexOf(map, className);
  const r = readRegion(map, mask);
  return r.area > 0 && r.coverage >= minCoverage && r.majorityClass === className;
}

/**
 * The pixels of a region (mask > 0.5) that the judge predicts as `className` (or, with
 * `className` null, as any subject class), 1 / 0 per pixel.
 */
export function subjectPixels(map: ClassMap, mask: ArrayLike<number>, className: string | null): Uint8Array {
  checkMask(map, mask);
  const k = className === null ? -1 : classIndexOf(map, className);
  const out = new Uint8Array(mask.length);
  for (let p = 0; p < mask.length; p++) {
    const c = map.data[p];
    if (mask[p] > 0.5 && (k < 0 ? c > 0 : c === k)) out[p] = 1;
  }
  return out;
}

/** The mask shrunk by one pixel (4-neighbourhood): drops outlines and edge pixels mixed with the background. */
export function erodeMask(mask: ArrayLike<number>, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const o = y * width + x;
      if (
        mask[o] > 0.5 &&
        mask[o - 1] > 0.5 &&
        mask[o + 1] > 0.5 &&
        mask[o - width] > 0.5 &&
        mask[o + width] > 0.5
      )
        out[o] = 1;
    }
  }
  return out;
}

/**
 * The largest 8-connected part of a mask: one figure without the scattered pixels a judge reads
 * into a noisy background. Ties keep the part found first (top to bottom, left to right).
 */
export function largestComponent(mask: ArrayLike<number>, width: number, height: number): Uint8Array {
  if (mask.length !== width * height)
    throw new RangeError(`a ${width}x${height} mask needs ${width * height} values, got ${mask.length}`);
  const label = new Int32Array(mask.length).fill(-1);
  const stack: number[] = [];
  let best = -1;
  let bestSize = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!(mask[start] > 0.5) || label[start] >= 0) continue;
    label[start] = start;
    stack.push(start);
    let size = 0;
    while (stack.length > 0) {
      const p = stack.pop() as number;
      size++;
      const x = p % width;
      const y = (p - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const q = ny * width + nx;
          if (mask[q] > 0.5 && label[q] < 0) {
            label[q] = start;
            stack.push(q);
          }
        }
      }
    }
    if (size > bestSize) {
      best = start;
      bestSize = size;
    }
  }
  const out = new Uint8Array(mask.length);
  for (let p = 0; p < mask.length; p++) if (label[p] === best && best >= 0) out[p] = 1;
  return out;
}

/** Colours that outlines, shadows, hair, shoes, trousers and metal parts also take: their votes count half. */
const NEUTRAL_COLORS: ReadonlySet<ColorName> = new Set(['white', 'gray', 'black', 'brown']);
const NEUTRAL_VOTE = 0.5;
/** Shading the palette match tolerates: a pixel matches colour c when it is close to f * c for some f in this range. */
const SHADE_RANGE = [0.6, 1.1] as const;
/** Largest RGB distance (0-255 units) from a shaded palette colour for a pixel to vote. */
const MAX_COLOR_DISTANCE = 30;
/** Pixels this close to a skin tone do not vote (skin is never the named colour of a subject). */
const SKIN_DISTANCE = 25;

/** The palette colour a pixel matches (index into COLOR_NAMES) and its distance, shading allowed. */
export function nearestPaletteColor(r: number, g: number, b: number): { index: number; distance: number } {
  let index = 0;
  let distance = Infinity;
  COLOR_NAMES.forEach((name, k) => {
    const c = COLORS[name];
    const f = Math.min(
      SHADE_RANGE[1],
      Math.max(SHADE_RANGE[0], (r * c[0] + g * c[1] + b * c[2]) / (c[0] * c[0] + c[1] * c[1] + c[2] * c[2])),
    );
    const d = Math.hypot(
      r - Math.min(255, f * c[0]),
      g - Math.min(255, f * c[1]),
      b - Math.min(255, f * c[2]),
    );
    if (d < distance) {
      distance = d;
      index = k;
    }
  });
  return { index, distance };
}

/**
 * The named colour of the pixels in `mask` (e.g. {@link subjectPixels}), or null when none of them
 * looks like a palette colour.
 *
 * Rule: the mask is shrunk by one pixel (outlines, edges) unless that would leave under a quarter
 * of it; pixels near a skin tone are skipped; every other pixel votes for the palette colour it
 * matches, allowing shading (any f * colour with f in [0.6, 1.1]) within an RGB distance of 30;
 * white, gray, black and brown votes count half, since outlines, shadows, hair, shoes, trousers and
 * metal parts take those colours too. The colour with the most votes wins.
 *
 * @example
 * mainColor(scene.image, scene.subjects[0].mask); // e.g. 'red'
 */
export function mainColor(image: JudgeInput, mask: ArrayLike<number>): ColorName | null {
  const { width, height } = image;
  if (mask.length !== width * height)
    throw new JudgeError(
      `the mask has ${mask.length} pixels, the ${width}x${height} picture ${width * height}`,
    );
  const bytes = isPixelValues(image) ? tensorToImage(image.data, width, height).data : image.data;
  let area = 0;
  for (let p = 0; p < mask.length; p++) if (mask[p] > 0.5) area++;
  const eroded = erodeMask(mask, width, height);
  const keptArea = eroded.reduce((n, v) => n + v, 0);
  const use: ArrayLike<number> = keptArea >= area / 4 && keptArea > 0 ? eroded : mask;
  const votes = new Float64Array(COLOR_NAMES.length);
  // a pixel's vote by its RGB value (pictures repeat a few colours many times); -1: no vote
  const voteOf = new Map<number, number>();
  for (let p = 0; p < use.length; p++) {
    if (use[p] <= 0.5) continue;
    const r = bytes[3 * p];
    const g = bytes[3 * p + 1];
    const b = bytes[3 * p + 2];
    const key = (r << 16) | (g << 8) | b;
    let vote = voteOf.get(key);
    if (vote === undefined) {
      const { index, distance } = nearestPaletteColor(r, g, b);
      const skin = SKIN_TONES.some((t) => Math.hypot(r - t[0], g - t[1], b - t[2]) < SKIN_DISTANCE);
      vote = skin || distance > MAX_COLOR_DISTANCE ? -1 : index;
      voteOf.set(key, vote);
    }
    if (vote >= 0) votes[vote] += NEUTRAL_COLORS.has(COLOR_NAMES[vote]) ? NEUTRAL_VOTE : 1;
  }
  let best = -1;
  for (let k = 0; k < votes.length; k++) if (votes[k] > 0 && (best < 0 || votes[k] > votes[best])) best = k;
  return best < 0 ? null : COLOR_NAMES[best];
}

/**
 * The body silhouette a requested COCO-18 skeleton implies, `width * height` bytes (1 inside):
 * pose/openpose.ts {@link poseSilhouette} (limb capsules 8% of the standing height wide, the torso
 * filled, a head disc). A single person is taken in `width` x `height` pixels; a pose document is
 * scaled from its canvas.
 *
 * @example
 * const silhouette = skeletonSilhouette(scene.pose.people[0], 128, 128);
 */
export function skeletonSilhouette(pose: Person | PoseDocument, width: number, height: number): Uint8Array {
  const doc: PoseDocument = 'people' in pose ? pose : { width, height, people: [pose] };
  return poseSilhouette(doc, width, height);
}

/** Intersection over union of two masks (values above 0.5 are inside); 0 when both are empty. */
export function silhouetteIoU(predicted: ArrayLike<number>, skeleton: ArrayLike<number>): number {
  if (predicted.length !== skeleton.length)
    throw new JudgeError(`the masks differ in size: ${predicted.length} and ${skeleton.length} pixels`);
  let inter = 0;
  let union = 0;
  for (let p = 0; p < predicted.length; p++) {
    const a = predicted[p] > 0.5;
    const b = skeleton[p] > 0.5;
    if (a && b) inter++;
    if (a || b) union++;
  }
  return union === 0 ? 0 : inter / union;
}
