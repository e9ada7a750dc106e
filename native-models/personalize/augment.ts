/**
 * Training data for cast training (paper A.1): each subject's few reference images are cut out
 * and turned into many training samples by zooming out, occasional cropping, random translation
 * on a canvas, and merging onto a set of backgrounds. The same samples, with their masks, train
 * the cast's segmentation model (SAL, SAS).
 *
 *   1. cut out   every reference image gets a subject mask: the one the user gave, else the
 *                segmentation judge's non-background pixels, else a border-colour flood fill
 *                (rough: see {@link floodFillCutOut}). {@link CutOut.method} says which, so the UI
 *                can show the user what was cut.
 *   2. crop      with probability 0.1 the cut-out's bounding box is cropped to a window of
 *                0.65-0.95 of its width and height (a random part of the subject)
 *   3. zoom      the window is scaled so its longer side is s * canvas side, s in [0.4, 0.5]
 *   4. translate the scaled window is placed at a uniformly random position where it fits on the
 *                canvas (composites: within the subject's slot, see {@link CastAugmenter.composite})
 *   5. merge     it is composited (its mask as alpha, resampled with an antialiased linear filter)
 *                onto one of 100 world backgrounds (world/backgrounds.ts), or onto a plain canvas
 *   6. caption   'a sks cartoon man in a park': the subject template per subject, joined with
 *                ' and ', plus the background's phrase when merged onto a world background
 *
 * The mask after the transform is the resampled subject alpha thresholded at 0.5: a pixel is the
 * subject's exactly when it is at least half subject colour, so the mask covers the subject's
 * moved pixels. Everything random comes from the {@link Rng} passed in, so a seed reproduces a
 * sample bit for bit.
 *
 * @example
 * const cast = await cutOutCast(
 *   [{ identifier: 'sks', classNoun: 'cartoon man', images: manImages, masks: manMasks }],
 *   { judge },
 * );
 * const augmenter = new CastAugmenter(cast, { size: 128 });
 * const rng = new Rng(7);
 * const sample = augmenter.sample(rng, 0); // sample.image, sample.mask, sample.caption
 * const both = augmenter.composite(rng, [0, 1]); // both.instanceMask: 1 = subject 0, 2 = subject 1
 */
import { imageChannels, type RgbImage, type RgbTriplet } from '../image/image.js';
import { Rng } from '../tensor/random.js';
import { judgeImage, type SegmentationJudge } from '../tiny/judge.js';
import {
  BACKGROUND_KINDS,
  BACKGROUND_PHRASES,
  BACKGROUND_VARIANTS,
  renderBackground,
  type BackgroundRef,
} from '../world/backgrounds.js';
import { Canvas } from '../world/raster.js';
import type { PixelBox } from '../world/scene.js';

/** Reference images a subject needs at least (the paper used 11). */
export const MIN_REFERENCE_IMAGES = 3;

/** Backgrounds of the default set, as in the paper. */
export const DEFAULT_BACKGROUND_COUNT = 100;

export class AugmentError extends Error {
  override name = 'AugmentError';
}

/** One subject of a cast, as the user gives it. */
export interface CastSubject {
  /** The rare identifier token: 'sks'. */
  identifier: string;
  /** The class noun: 'cartoon man'. */
  classNoun: string;
  /** Name in messages and the UI (default `identifier classNoun`). */
  name?: string;
  images: readonly RgbImage[];
  /** Masks by image index (`width * height`, 1 = subject, 0 = not); a missing one is cut out automatically. */
  masks?: readonly (Uint8Array | null | undefined)[];
}

/** How a cut-out's mask came about. */
export type CutOutMethod = 'mask' | 'segmentation' | 'flood-fill';

/** A reference image's subject mask. */
export interface CutOut {
  /** Index of the reference image. */
  index: number;
  method: CutOutMethod;
  /** `width * height`, 1 = subject. */
  mask: Uint8Array;
  /** The mask's bounding box, inclusive. */
  box: PixelBox;
  /** Subject pixels. */
  area: number;
}

/** A subject with a cut-out per reference image, ready for {@link CastAugmenter}. */
export interface PreparedSubject {
  identifier: string;
  classNoun: string;
  name: string;
  images: readonly RgbImage[];
  cutOuts: CutOut[];
}

export interface CutOutOptions {
  /** The segmentation judge, for images without a mask; without it a flood fill is used. */
  judge?: SegmentationJudge;
  /** Colour distance (RGB, 0-441) the flood fill accepts as background (default 40). */
  floodFillTolerance?: number;
}

/**
 * Checks a cast and gives every reference image a subject mask (see the file header, step 1).
 *
 * @throws AugmentError when a subject has fewer than {@link MIN_REFERENCE_IMAGES} images, a mask
 *   does not match its image or is not 0/1, or a mask (given or cut out) is empty.
 * @example
 * const cast = await cutOutCast([{ identifier: 'sks', classNoun: 'cat', images }]);
 * cast[0].cutOuts.map((c) => c.method); // ['flood-fill', 'flood-fill', 'flood-fill']
 */
export async function cutOutCast(
  subjects: readonly CastSubject[],
  options: CutOutOptions = {},
): Promise<PreparedSubject[]> {
  if (subjects.length === 0) throw new AugmentError('the cast has no subjects');
  const out: PreparedSubject[] = [];
  for (const subject of subjects) {
    const name = subject.name ?? `${subject.identifier} ${subject.classNoun}`;
    const where = (i: number) => `subject '${name}', image ${i}`;
    if (subject.images.length < MIN_REFERENCE_IMAGES)
      throw new AugmentError(
        `subject '${name}' has ${subject.images.length} reference images; at least ${MIN_REFERENCE_IMAGES} are needed`,
      );
    const masks = subject.masks ?? [];
    if (masks.length > subject.images.length)
      throw new AugmentError(
        `subject '${name}' has ${masks.length} masks for ${subject.images.length} images`,
      );
    const cutOuts: CutOut[] = [];
    for (const [i, image] of subject.images.entries()) {
      try {
        imageChannels(image);
      } catch (e) {
        throw new AugmentError(`${where(i)}: ${(e as Error).message}`);
      }
      const given = masks[i];
      let mask: Uint8Array;
      let method: CutOutMethod;
      if (given) {
        checkMask(given, image, where(i));
        mask = given;
        method = 'mask';
      } else if (options.judge) {
        const map = await judgeImage(options.judge, image);
        mask = map.data.map((c) => (c > 0 ? 1 : 0));
        method = 'segmentation';
      } else {
        mask = floodFillCutOut(image, { tolerance: options.floodFillTolerance });
        method = 'flood-fill';
      }
      const box = maskBox(mask, image.width, image.height);
      if (!box)
        throw new AugmentError(
          method === 'mask'
            ? `${where(i)}: the mask is empty (no subject pixel)`
            : `${where(i)}: the ${method} cut-out found no subject; give a mask for this image`,
        );
      const { area, ...corners } = box;
      cutOuts.push({ index: i, method, mask, box: corners, area });
    }
    out.push({
      identifier: subject.identifier,
      classNoun: subject.classNoun,
      name,
      images: subject.images,
      cutOuts,
    });
  }
  return out;
}

function checkMask(mask: Uint8Array, image: RgbImage, where: string): void {
  if (!(mask instanceof Uint8Array))
    throw new AugmentError(`${where}: the mask must be a Uint8Array of 0 and 1`);
  if (mask.length !== image.width * image.height)
    throw new AugmentError(
      `${where}: the mask has ${mask.length} pixels, the ${image.width}x${image.height} image ${image.width * image.height}`,
    );
  const bad = mask.findIndex((v) => v > 1);
  if (bad >= 0)
    throw new AugmentError(`${where}: mask values must be 0 or 1, found ${mask[bad]} at pixel ${bad}`);
}

/** The inclusive bounding box and area of the mask's 1s, or null when there are none. */
function maskBox(
  mask: ArrayLike<number>,
  width: number,
  height: number,
): (PixelBox & { area: number }) | null {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  let area = 0;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] === 0) continue;
      area++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  return area === 0 ? null : { x0, y0, x1, y1, area };
}

/**
 * Rough background removal for references without a mask and without a segmentation model: the
 * background colour is the per-channel median of the border pixels, and the background is every
 * pixel connected (4-neighbourhood) to the border through pixels within `tolerance` (RGB distance)
 * of that colour. Everything else is the subject, including holes the fill cannot reach.
 *
 * Works for subjects on a plain, evenly lit background (drawings, product shots); it fails on
 * busy or graded backgrounds, on subjects that touch the border in the background's colour, and
 * on shadows. Show its result to the user and ask for a mask when it is wrong.
 *
 * @example
 * const mask = floodFillCutOut(image); // 1 = subject
 */
export function floodFillCutOut(
  image: RgbImage,
  { tolerance = 40 }: { tolerance?: number } = {},
): Uint8Array {
  imageChannels(image);
  const { width: W, height: H, data } = image;
  const border: number[] = [];
  for (let x = 0; x < W; x++) border.push(x, (H - 1) * W + x);
  for (let y = 1; y < H - 1; y++) border.push(y * W, y * W + W - 1);
  const median = (c: number) => {
    const values = border.map((p) => data[3 * p + c]).sort((a, b) => a - b);
    return values[values.length >> 1];
  };
  const bg = [median(0), median(1), median(2)];
  const near = (p: number) =>
    Math.hypot(data[3 * p] - bg[0], data[3 * p + 1] - bg[1], data[3 * p + 2] - bg[2]) <= tolerance;
  const background = new Uint8Array(W * H);
  const stack: number[] = [];
  for (const p of border)
    if (!background[p] && near(p)) {
      background[p] = 1;
      stack.push(p);
    }
  while (stack.length > 0) {
    const p = stack.pop() as number;
    const x = p % W;
    const y = (p - x) / W;
    const visit = (q: number) => {
      if (!background[q] && near(q)) {
        background[q] = 1;
        stack.push(q);
      }
    };
    if (x > 0) visit(p - 1);
    if (x < W - 1) visit(p + 1);
    if (y > 0) visit(p - W);
    if (y < H - 1) visit(p + W);
  }
  return background.map((b) => 1 - b);
}

/**
 * The reference image with what the cut-out removed dimmed to a third and tinted grey, so the UI
 * can show the user what was cut.
 */
export function cutOutPreview(image: RgbImage, cutOut: CutOut): RgbImage {
  const data = new Uint8Array(image.data);
  for (let p = 0; p < cutOut.mask.length; p++) {
    if (cutOut.mask[p]) continue;
    for (let c = 0; c < 3; c++) data[3 * p + c] = Math.round(image.data[3 * p + c] / 3 + 85);
  }
  return { width: image.width, height: image.height, data };
}

// ---------------------------------------------------------------------------------------------
// backgrounds

/**
 * `count` distinct world backgrounds chosen by `seed`: the kinds take turns (100 gives 10 of each
 * of the 10 kinds), each kind's variants drawn without repetition from its 128.
 *
 * @example
 * worldBackgroundSet(); // the default 100, seed 0
 */
export function worldBackgroundSet(count = DEFAULT_BACKGROUND_COUNT, seed = 0): BackgroundRef[] {
  const max = BACKGROUND_KINDS.length * BACKGROUND_VARIANTS;
  if (!Number.isInteger(count) || count < 1 || count > max)
    throw new AugmentError(`a background set holds 1 to ${max} backgrounds, got ${count}`);
  const rng = new Rng(seed);
  const pools = BACKGROUND_KINDS.map(() => Array.from({ length: BACKGROUND_VARIANTS }, (_, v) => v));
  return Array.from({ length: count }, (_, i) => {
    const k = i % BACKGROUND_KINDS.length;
    const [variant] = pools[k].splice(Math.floor(rng.nextFloat() * pools[k].length), 1);
    return { kind: BACKGROUND_KINDS[k], variant };
  });
}

/** A world background as an image, rendered like the world's scenes (2x2 supersampled). */
export function renderWorldBackground(ref: BackgroundRef, size: number): RgbImage {
  const canvas = new Canvas(size, 2);
  renderBackground(canvas, ref.kind, ref.variant);
  return { width: size, height: size, data: canvas.finish([0, 0, 0], 0).rgb };
}

// ---------------------------------------------------------------------------------------------
// samples

export interface AugmentOptions {
  /** Side of the square samples (default 128, the tiny model's training size). */
  size?: number;
  /** Range of s: the window's longer side becomes s * size (default [0.4, 0.5]). */
  zoomRange?: readonly [number, number];
  /** Probability of cropping the subject (default 0.1). */
  cropProbability?: number;
  /** Range of the crop window's side, as a fraction of the subject box's side (default [0.65, 0.95]). */
  cropRange?: readonly [number, number];
  /** Probability of merging onto a world background rather than a plain canvas (default 1). */
  backgroundProbability?: number;
  /** The background set (default {@link worldBackgroundSet}()). */
  backgrounds?: readonly BackgroundRef[];
  /** Colour of the plain canvas (default white). */
  canvasColor?: RgbTriplet;
  /** The subject phrase, with `{identifier}` and `{class}` (default 'a {identifier} {class}'). */
  captionTemplate?: string;
}

/** Where one subject of a sample came from and where it went. */
export interface AugmentedSubject {
  /** Index in the cast. */
  subject: number;
  name: string;
  /** Index of the reference image used. */
  reference: number;
  /** The window's longer side over the canvas side. */
  zoom: number;
  /** The crop window's side fraction, or null when not cropped. */
  crop: number | null;
  /** Where the window landed on the canvas, inclusive. */
  box: PixelBox;
  /** Visible pixels of the subject (after occlusion by later subjects). */
  area: number;
}

export interface AugmentedSample {
  /** `size x size` RGB. */
  image: RgbImage;
  /** `size * size`, 1 where any subject is. */
  mask: Uint8Array;
  /** `size * size`: 0 background, `i + 1` = `subjects[i]` (later subjects occlude earlier ones). */
  instanceMask: Uint8Array;
  subjects: AugmentedSubject[];
  caption: string;
  /** The world background merged in, or null for the plain canvas. */
  background: BackgroundRef | null;
}

/** Overlap a composite's subject may have with each neighbouring slot, as a fraction of the slot. */
const SLOT_OVERLAP = 0.1;

/**
 * Draws augmented samples from a prepared cast (see the file header for the steps).
 *
 * @example
 * const augmenter = new CastAugmenter(await cutOutCast(subjects), { captionTemplate: 'a photo of {identifier} {class}' });
 * const samples = Array.from({ length: 100 }, (_, i) => augmenter.sample(new Rng(i), i % subjects.length));
 */
export class CastAugmenter {
  readonly size: number;
  readonly backgrounds: readonly BackgroundRef[];
  private readonly zoomRange: readonly [number, number];
  private readonly cropProbability: number;
  private readonly cropRange: readonly [number, number];
  private readonly backgroundProbability: number;
  private readonly canvasColor: RgbTriplet;
  private readonly captionTemplate: string;
  private readonly rendered = new Map<string, RgbImage>();

  constructor(
    readonly cast: readonly PreparedSubject[],
    options: AugmentOptions = {},
  ) {
    if (cast.length === 0) throw new AugmentError('the cast has no subjects');
    this.size = options.size ?? 128;
    if (!Number.isInteger(this.size) || this.size < 8 || this.size > 4096)
      throw new AugmentError(`sample size must be an integer in [8, 4096], got ${this.size}`);
    this.zoomRange = checkRange('zoomRange', options.zoomRange ?? [0.4, 0.5]);
    this.cropRange = checkRange('cropRange', options.cropRange ?? [0.65, 0.95]);
    this.cropProbability = checkProbability('cropProbability', options.cropProbability ?? 0.1);
    this.backgroundProbability = checkProbability(
      'backgroundProbability',
      options.backgroundProbability ?? 1,
    );
    this.backgrounds = options.backgrounds ?? worldBackgroundSet();
    if (this.backgrounds.length === 0 && this.backgroundProbability > 0)
      throw new AugmentError(
        'the background set is empty; give backgrounds or set backgroundProbability to 0',
      );
    this.canvasColor = options.canvasColor ?? [255, 255, 255];
    this.captionTemplate = options.captionTemplate ?? 'a {identifier} {class}';
    if (!this.captionTemplate.includes('{identifier}'))
      throw new AugmentError(`the caption template must contain {identifier}: '${this.captionTemplate}'`);
  }

  /** One sample of cast subject `subject` (single-subject training data). */
  sample(rng: Rng, subject: number): AugmentedSample {
    return this.composite(rng, [subject]);
  }

  /**
   * One sample holding several subjects of the cast, for the joint training and the cast's
   * segmentation model. The canvas is split into `n` vertical slots, one per subject in the given
   * order; a subject wider than its slot plus 10% on each side is shrunk to fit (its `zoom` then
   * falls below the range), and is placed at a random position inside that span. Later subjects
   * occlude earlier ones where they overlap; `area` counts what stays visible.
   */
  composite(rng: Rng, subjects: readonly number[]): AugmentedSample {
    const S = this.size;
    const n = subjects.length;
    if (n === 0) throw new AugmentError('a sample needs at least one subject');
    for (const s of subjects)
      if (!Number.isInteger(s) || s < 0 || s >= this.cast.length)
        throw new AugmentError(`subject ${s} is not in the cast of ${this.cast.length}`);

    // 1. the background (plain canvas or a world background)
    let background: BackgroundRef | null = null;
    if (rng.nextFloat() < this.backgroundProbability)
      background = this.backgrounds[Math.floor(rng.nextFloat() * this.backgrounds.length)];
    const canvas = new Float32Array(S * S * 3);
    canvas.set(this.backgroundImage(background).data);
    const instanceMask = new Uint8Array(S * S);

    // 2. each subject: reference, crop window, zoom, translation, compositing
    const placed = subjects.map((s, i) => {
      const subject = this.cast[s];
      const reference = Math.floor(rng.nextFloat() * subject.cutOuts.length);
      const cutOut = subject.cutOuts[reference];
      const image = subject.images[cutOut.index];
      const window = this.cropWindow(rng, cutOut, image.width);
      let zoom = lerp(this.zoomRange, rng.nextFloat());
      const slot = S / n;
      const span = [
        Math.max(0, i * slot - SLOT_OVERLAP * slot),
        Math.min(S, (i + 1) * slot + SLOT_OVERLAP * slot),
      ];
      const longer = Math.max(window.width, window.height);
      if (n > 1 && (zoom * S * window.width) / longer > span[1] - span[0])
        zoom = ((span[1] - span[0]) * longer) / (window.width * S);
      const scale = Math.max(1, Math.round(zoom * S)) / longer;
      const w = Math.min(S, Math.max(1, Math.round(window.width * scale)));
      const h = Math.min(S, Math.max(1, Math.round(window.height * scale)));
      const [lo, hi] = n === 1 ? [0, S - w] : [Math.ceil(span[0]), Math.floor(span[1]) - w];
      const x =
        hi >= lo ? lo + Math.floor(rng.nextFloat() * (hi - lo + 1)) : Math.round((span[0] + span[1] - w) / 2);
      const y = Math.floor(rng.nextFloat() * (S - h + 1));
      const layer = resamplePremultiplied(
        premultipliedWindow(image, cutOut.mask, window),
        window.width,
        window.height,
        w,
        h,
      );
      blendLayer(canvas, instanceMask, S, layer, w, h, x, y, i + 1);
      return {
        subject: s,
        name: subject.name,
        reference: cutOut.index,
        zoom: Math.max(w, h) / S,
        crop: window.crop,
        box: { x0: x, y0: y, x1: x + w - 1, y1: y + h - 1 },
        area: 0,
      };
    });

    // 3. masks, the image and the caption
    const mask = new Uint8Array(S * S);
    for (let p = 0; p < mask.length; p++) {
      const id = instanceMask[p];
      if (id === 0) continue;
      mask[p] = 1;
      placed[id - 1].area++;
    }
    const data = new Uint8Array(S * S * 3);
    for (let k = 0; k < data.length; k++) data[k] = Math.min(255, Math.max(0, Math.round(canvas[k])));
    const phrase = placed
      .map((p) =>
        this.captionTemplate
          .replaceAll('{identifier}', this.cast[p.subject].identifier)
          .replaceAll('{class}', this.cast[p.subject].classNoun),
      )
      .join(' and ');
    return {
      image: { width: S, height: S, data },
      mask,
      instanceMask,
      subjects: placed,
      caption: background ? `${phrase} ${BACKGROUND_PHRASES[background.kind]}` : phrase,
      background,
    };
  }

  /**
   * The cut-out's box, or with probability `cropProbability` a random window of 0.65-0.95 of its
   * width and height (the whole box again in the rare case the window holds no subject pixel,
   * which only hollow shapes allow).
   */
  private cropWindow(rng: Rng, cutOut: CutOut, imageWidth: number) {
    const { x0, y0, x1, y1 } = cutOut.box;
    const bw = x1 - x0 + 1;
    const bh = y1 - y0 + 1;
    const whole = { x: x0, y: y0, width: bw, height: bh, crop: null };
    if (rng.nextFloat() >= this.cropProbability) return whole;
    const crop = lerp(this.cropRange, rng.nextFloat());
    const width = Math.max(1, Math.round(crop * bw));
    const height = Math.max(1, Math.round(crop * bh));
    const x = x0 + Math.floor(rng.nextFloat() * (bw - width + 1));
    const y = y0 + Math.floor(rng.nextFloat() * (bh - height + 1));
    for (let j = y; j < y + height; j++)
      for (let i = x; i < x + width; i++)
        if (cutOut.mask[j * imageWidth + i]) return { x, y, width, height, crop };
    return whole;
  }

  /** A world background (rendered once, then cached) or, for null, the plain canvas. */
  private backgroundImage(ref: BackgroundRef | null): RgbImage {
    const key = ref ? `${ref.kind}/${ref.variant}` : 'plain';
    let image = this.rendered.get(key);
    if (!image) {
      if (ref) image = renderWorldBackground(ref, this.size);
      else {
        const data = new Uint8Array(this.size * this.size * 3);
        for (let k = 0; k < data.length; k++) data[k] = this.canvasColor[k % 3];
        image = { width: this.size, height: this.size, data };
      }
      this.rendered.set(key, image);
    }
    return image;
  }
}

function lerp([a, b]: readonly [number, number], t: number): number {
  return a + (b - a) * t;
}

function checkRange(name: string, range: readonly [number, number]): readonly [number, number] {
  const [a, b] = range;
  if (!(a > 0 && a <= b && b <= 1))
    throw new AugmentError(`${name} must satisfy 0 < min <= max <= 1, got [${a}, ${b}]`);
  return range;
}

function checkProbability(name: string, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new AugmentError(`${name} must be in [0, 1], got ${p}`);
  return p;
}

/** A window of the image as premultiplied RGBA floats (alpha = the mask). */
function premultipliedWindow(
  image: RgbImage,
  mask: Uint8Array,
  w: { x: number; y: number; width: number; height: number },
): Float32Array {
  const out = new Float32Array(w.width * w.height * 4);
  for (let y = 0; y < w.height; y++)
    for (let x = 0; x < w.width; x++) {
      const p = (w.y + y) * image.width + w.x + x;
      if (mask[p] === 0) continue;
      const o = 4 * (y * w.width + x);
      out[o] = image.data[3 * p];
      out[o + 1] = image.data[3 * p + 1];
      out[o + 2] = image.data[3 * p + 2];
      out[o + 3] = 1;
    }
  return out;
}

/**
 * Taps of a linear (triangle) filter from `src` to `dst` samples: half-pixel centres, the filter
 * widened by the reduction factor when shrinking (so it averages instead of aliasing), edges clamped.
 */
function linearTaps(src: number, dst: number): { index: Int32Array; weight: Float32Array }[] {
  const scale = dst / src;
  const support = scale < 1 ? 1 / scale : 1;
  return Array.from({ length: dst }, (_, o) => {
    const centre = (o + 0.5) / scale - 0.5;
    const first = Math.ceil(centre - support);
    const last = Math.floor(centre + support);
    const index: number[] = [];
    const weight: number[] = [];
    let sum = 0;
    for (let i = first; i <= last; i++) {
      const w = Math.max(0, 1 - Math.abs(i - centre) / support);
      if (w === 0) continue;
      index.push(Math.min(src - 1, Math.max(0, i)));
      weight.push(w);
      sum += w;
    }
    return { index: Int32Array.from(index), weight: Float32Array.from(weight, (w) => w / sum) };
  });
}

/** Separable linear resampling of premultiplied RGBA floats. */
function resamplePremultiplied(
  src: Float32Array,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
): Float32Array {
  const xs = linearTaps(sw, dw);
  const ys = linearTaps(sh, dh);
  const rows = new Float32Array(sh * dw * 4);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < dw; x++) {
      const { index, weight } = xs[x];
      const o = 4 * (y * dw + x);
      for (let t = 0; t < index.length; t++) {
        const s = 4 * (y * sw + index[t]);
        for (let c = 0; c < 4; c++) rows[o + c] += weight[t] * src[s + c];
      }
    }
  const out = new Float32Array(dh * dw * 4);
  for (let y = 0; y < dh; y++) {
    const { index, weight } = ys[y];
    for (let x = 0; x < dw; x++) {
      const o = 4 * (y * dw + x);
      for (let t = 0; t < index.length; t++) {
        const s = 4 * (index[t] * dw + x);
        for (let c = 0; c < 4; c++) out[o + c] += weight[t] * rows[s + c];
      }
    }
  }
  return out;
}

/** Blends a premultiplied layer over the canvas at (x, y); where its alpha is at least 0.5 the pixel becomes instance `id`. */
function blendLayer(
  canvas: Float32Array,
  instanceMask: Uint8Array,
  S: number,
  layer: Float32Array,
  w: number,
  h: number,
  x: number,
  y: number,
  id: number,
): void {
  for (let j = 0; j < h; j++) {
    const cy = y + j;
    if (cy < 0 || cy >= S) continue;
    for (let i = 0; i < w; i++) {
      const cx = x + i;
      if (cx < 0 || cx >= S) continue;
      const l = 4 * (j * w + i);
      const a = Math.min(1, layer[l + 3]);
      if (a <= 0) continue;
      const p = cy * S + cx;
      for (let c = 0; c < 3; c++) canvas[3 * p + c] = canvas[3 * p + c] * (1 - a) + layer[l + c];
      if (a >= 0.5) instanceMask[p] = id;
    }
  }
}
