/**
 * Scene generation: 1-4 subjects on a background, with the caption, per-subject masks (after
 * occlusion), class and instance masks, COCO-18 keypoints of the human-like subjects and their OpenPose
 * rendering. Deterministic: everything random comes from one {@link Rng} (pass a seed or a generator).
 *
 * Layout and size rule: each subject gets a ground line (feet, wheels, base) below the background's
 * horizon; its height in pixels is `unit * relativeHeight(class) * depth`, where `depth` grows from 0.75
 * at the horizon to 1 at the bottom edge (nearer is bigger), and `unit` is chosen so the tallest subject
 * takes 45-70% of the image height; a lone subject instead takes 62-90% (people, robots) or 50-80%
 * (others) of it, or 92% of the width for wide ones. Subjects are packed left to right with
 * random gaps; their boxes may overlap by up to ~10% of their width. They are drawn far to near (by
 * ground line), so nearer subjects occlude farther ones, and `subjects` is returned in drawing order.
 *
 * @example
 * ```ts
 * const scene = generateScene(42, { subjects: 2 });
 * scene.caption; // e.g. 'a cartoon man in red walking and a black cat sitting on a street'
 * scene.subjects[0].mask; // 1 where subject 0 is visible
 * scene.openpose; // RGB skeletons of the human-like subjects, black when there are none
 * ```
 */
import { KEYPOINT_COUNT, renderOpenPose } from '../pose/openpose.js';
import type { PoseDocument, PoseTemplateName } from '../pose/openpose.js';
import type { RgbImage } from '../image/image.js';
import { Rng } from '../tensor/random.js';
import { animalDrawer } from './animals.js';
import { sampleAttributes } from './appearance.js';
import type { SubjectAttributes } from './appearance.js';
import { BACKGROUND_KINDS, BACKGROUND_VARIANTS, INDOOR_KINDS, renderBackground } from './backgrounds.js';
import type { BackgroundKind, BackgroundRef } from './backgrounds.js';
import { sceneCaption } from './captions.js';
import type { CaptionExtra, CaptionSubject } from './captions.js';
import { humanModel } from './characters.js';
import type { Appearance, HumanModel } from './characters.js';
import { CLASS_INFO, ORIENTATIONS, SUBJECT_CLASSES } from './classes.js';
import type { Orientation, WorldClassName } from './classes.js';
import { objectDrawer } from './objects.js';
import { COLOR_NAMES, OUTLINE } from './palette.js';
import type { ColorName } from './palette.js';
import { BoundsPen, Canvas, CanvasPen } from './raster.js';
import type { Extent, Pen } from './raster.js';

/** A keypoint in image pixels (OpenPose convention: pixel i is centred on coordinate i). */
export interface WorldKeypoint {
  x: number;
  y: number;
  /** False when the orientation hides it (far-side arm, face seen from the back); such points are not in the OpenPose image. */
  visible: boolean;
}

/** A pixel box, inclusive: `x0..x1`, `y0..y1`. */
export interface PixelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One subject of a generated scene. */
export interface WorldSubject {
  className: WorldClassName;
  /** Index in `WORLD_CLASSES` (the value in `classMask`). */
  classIndex: number;
  /** Main colour (the one the caption names). */
  color: ColorName;
  attributes: SubjectAttributes;
  /** Pose of a character (people, robot, cat, dog); null for objects. */
  pose: PoseTemplateName | null;
  /** Orientation (side views are named after the facing direction). */
  orientation: Orientation;
  /** 18 COCO keypoints for human-like subjects, else null. */
  keypoints: WorldKeypoint[] | null;
  /** Box of the whole (unoccluded) subject, clipped to the image. */
  bbox: PixelBox;
  /** `size * size`, 1 where this subject is visible (after occlusion by nearer subjects). */
  mask: Uint8Array;
  /** Number of visible pixels (sum of `mask`). */
  area: number;
  /** Ground point (x, y) and height in pixels of the subject's local unit. */
  placement: { x: number; y: number; scale: number };
}

/** A generated scene; see the file header. */
export interface WorldScene {
  image: RgbImage;
  caption: string;
  /** In drawing order (far to near): `instanceMask` value `i + 1` is `subjects[i]`. */
  subjects: WorldSubject[];
  /** `size * size` class index per pixel (0 = background). */
  classMask: Uint8Array;
  /** `size * size` instance per pixel: 0 = background, `i + 1` = `subjects[i]`. */
  instanceMask: Uint8Array;
  /** ControlNet OpenPose image of every human-like subject (black when there are none). */
  openpose: RgbImage;
  /** The same skeletons as an editable pose document (hidden keypoints are null). */
  pose: PoseDocument;
  background: BackgroundRef;
  /** The seed, when the scene was generated from one. */
  seed: number | null;
}

/**
 * Fixes some or all of one subject. A pose must be one the class has (`CLASS_INFO[c].poses`; objects
 * ignore it); people and animals take any orientation, objects only theirs (`CLASS_INFO[c].orientations`).
 */
export interface SubjectSpec {
  className?: WorldClassName;
  color?: ColorName;
  pose?: PoseTemplateName;
  orientation?: Orientation;
  /** Overrides of the randomly sampled attributes. */
  attributes?: Partial<SubjectAttributes>;
}

export interface GenerateSceneOptions {
  /** Image side in pixels (default 128). */
  size?: number;
  /** Number of subjects, 1-4 (default: uniformly random). Ignored when `specs` is given. */
  subjects?: number;
  /** Class pool for random subjects (default: all). */
  classes?: readonly WorldClassName[];
  /** Pose pool for characters (intersected with what the class supports). */
  poses?: readonly PoseTemplateName[];
  /** Orientation pool (intersected with what the class supports). */
  orientations?: readonly Orientation[];
  /** Main-colour pool (intersected with the class's colours). */
  colors?: readonly ColorName[];
  /** Background kind pool (default: all; indoor kinds are skipped for cars, trees and houses). */
  backgrounds?: readonly BackgroundKind[];
  /** A fixed background. */
  background?: BackgroundRef;
  /** One entry per subject, fixing class, colour, pose, orientation or attributes. */
  specs?: readonly SubjectSpec[];
  /** 2x2 supersampling (default true): smoother edges, about 3x the cost. */
  antialias?: boolean;
  /** Probability that a single-subject caption names accessories or hair colour (default 0.5). */
  captionExtras?: number;
  /**
   * Height range of a lone subject as a fraction of the image (default [0.62, 0.9] for people and robots,
   * [0.5, 0.8] otherwise; wide subjects are limited by the width instead).
   */
  heroSize?: readonly [number, number];
}

/** A subject after all random choices, ready for layout and drawing. */
interface Built {
  appearance: Appearance;
  pose: PoseTemplateName | null;
  orientation: Orientation;
  flip: boolean;
  draw: (pen: Pen) => void;
  human: HumanModel | null;
  /** Local extent with the flip applied. */
  extent: Extent;
}

interface Placed extends Built {
  x: number;
  y: number;
  scale: number;
}

const DEFAULT_SIZE = 128;

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng.nextFloat() * items.length)];
}

function within<T>(pool: readonly T[] | undefined, allowed: readonly T[]): readonly T[] {
  if (!pool) return allowed;
  const both = allowed.filter((x) => pool.includes(x));
  return both.length > 0 ? both : allowed;
}

/**
 * Builds the drawable model of a subject (no randomness).
 *
 * @example
 * ```ts
 * const built = buildSubject({ className: 'dog', color: 'brown', attributes }, 'sitting', 'left');
 * ```
 */
function buildSubject(
  appearance: Appearance,
  pose: PoseTemplateName | null,
  orientation: Orientation,
): Built {
  const info = CLASS_INFO[appearance.className];
  let draw: (pen: Pen) => void;
  let human: HumanModel | null = null;
  let flip = false;
  if (info.kind === 'human') {
    human = humanModel(appearance, pose ?? 'standing', orientation);
    draw = human.draw;
  } else if (info.kind === 'animal') {
    draw = animalDrawer(appearance, pose ?? 'standing', orientation);
    flip = orientation === 'left';
  } else {
    draw = objectDrawer(appearance, orientation);
    flip = orientation === 'left';
  }
  const bounds = new BoundsPen();
  draw(bounds);
  if (human) human.drawSeat(bounds);
  const e = bounds.extent();
  const extent = flip ? { minX: -e.maxX, maxX: -e.minX, minY: e.minY, maxY: e.maxY } : e;
  return { appearance, pose, orientation, flip, draw, human, extent };
}

function chooseSubject(rng: Rng, spec: SubjectSpec, options: GenerateSceneOptions): Built {
  const className =
    spec.className ??
    pick(rng, options.classes && options.classes.length > 0 ? options.classes : SUBJECT_CLASSES);
  const info = CLASS_INFO[className];
  if (!info) throw new RangeError(`unknown subject class "${String(className)}"`);
  if (spec.color !== undefined && !COLOR_NAMES.includes(spec.color)) {
    throw new RangeError(`unknown colour "${String(spec.color)}"; use one of ${COLOR_NAMES.join(', ')}`);
  }
  if (spec.pose !== undefined && info.kind !== 'object' && !info.poses.includes(spec.pose)) {
    throw new RangeError(
      `a ${className} cannot be ${String(spec.pose)}; use one of ${info.poses.join(', ')}`,
    );
  }
  if (spec.orientation !== undefined) {
    // people and animals can be drawn from any side (animals face away only on request)
    const allowed = info.kind === 'object' ? info.orientations : ORIENTATIONS;
    if (!allowed.includes(spec.orientation)) {
      throw new RangeError(
        `a ${className} is drawn facing ${allowed.join(' or ')}, not ${String(spec.orientation)}`,
      );
    }
  }
  const color = spec.color ?? pick(rng, within(options.colors, info.colors));
  const pose = info.poses.length === 0 ? null : (spec.pose ?? pick(rng, within(options.poses, info.poses)));
  const orientation = spec.orientation ?? pick(rng, within(options.orientations, info.orientations));
  const attributes = { ...sampleAttributes(rng, className, color), ...spec.attributes };
  return buildSubject({ className, color, attributes }, pose, orientation);
}

function chooseBackground(rng: Rng, built: readonly Built[], options: GenerateSceneOptions): BackgroundRef {
  if (options.background) return options.background;
  let kinds: readonly BackgroundKind[] =
    options.backgrounds && options.backgrounds.length > 0 ? options.backgrounds : BACKGROUND_KINDS;
  const outdoorOnly = built.some((b) => ['car', 'tree', 'house'].includes(b.appearance.className));
  if (outdoorOnly) {
    const outdoor = kinds.filter((k) => !INDOOR_KINDS.includes(k));
    if (outdoor.length > 0) kinds = outdoor;
  }
  const kind = pick(rng, kinds);
  const variant = Math.floor(rng.nextFloat() * BACKGROUND_VARIANTS);
  return { kind, variant };
}

/** Places subjects (see the file header). Returns them sorted far to near. */
function layout(
  rng: Rng,
  built: readonly Built[],
  S: number,
  horizon: number,
  options: GenerateSceneOptions,
): Placed[] {
  const n = built.length;
  const margin = 1;
  const ground0 = Math.min(S - 4, horizon + (S - horizon) * 0.15);
  if (n === 1) {
    const b = built[0];
    const e = b.extent;
    const human = CLASS_INFO[b.appearance.className].kind === 'human';
    const [lo, hi] = options.heroSize ?? (human ? [0.62, 0.9] : [0.5, 0.8]);
    const target = S * (lo + (hi - lo) * rng.nextFloat());
    const h = e.maxY - e.minY;
    const w = e.maxX - e.minX;
    let scale = Math.min(target / h, (S * 0.92) / w);
    // ground line: below the horizon, and the subject must fit above it
    const yMin = Math.max(ground0, margin - scale * e.minY);
    const yMax = S - margin - scale * Math.max(0, e.maxY);
    let y: number;
    if (yMin <= yMax) y = yMin + (yMax - yMin) * rng.nextFloat();
    else {
      y = yMax;
      scale = Math.min(scale, (y - margin) / Math.max(1e-6, -e.minY));
      rng.nextFloat();
    }
    const xMin = margin - scale * e.minX;
    const xMax = S - 1 - margin - scale * e.maxX;
    const x = xMin <= xMax ? xMin + (xMax - xMin) * rng.nextFloat() : (xMin + xMax) / 2;
    return [{ ...b, x, y, scale }];
  }
  // several subjects
  const rel = built.map((b) => CLASS_INFO[b.appearance.className].relativeHeight);
  const maxRel = Math.max(...rel);
  const unit = (S * (0.45 + 0.25 * rng.nextFloat())) / maxRel;
  const feet = built.map(() => ground0 + (S - 2 - ground0) * rng.nextFloat());
  const scales = built.map((b, i) => {
    const depth = 0.75 + 0.25 * ((feet[i] - horizon) / Math.max(1, S - horizon));
    const h = b.extent.maxY - b.extent.minY;
    let s = (unit * rel[i] * depth) / Math.max(0.5, h);
    s = Math.min(s, (feet[i] - margin) / Math.max(1e-6, -b.extent.minY));
    return s;
  });
  const overlap = 0.9;
  const widths = built.map((b, i) => scales[i] * (b.extent.maxX - b.extent.minX) * overlap);
  const total = widths.reduce((a, w) => a + w, 0);
  const room = S * 0.98;
  if (total > room) {
    const f = room / total;
    for (let i = 0; i < n; i++) {
      scales[i] *= f;
      widths[i] *= f;
    }
  }
  const order = built.map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const free = Math.max(0, S - widths.reduce((a, w) => a + w, 0));
  const gapWeights = Array.from({ length: n + 1 }, () => 0.2 + rng.nextFloat());
  const gapSum = gapWeights.reduce((a, w) => a + w, 0);
  const placed: Placed[] = new Array<Placed>(n);
  let cursor = 0;
  order.forEach((i, k) => {
    cursor += (free * gapWeights[k]) / gapSum;
    const b = built[i];
    const s = scales[i];
    const centre = cursor + widths[i] / 2;
    let x = centre - (s * (b.extent.minX + b.extent.maxX)) / 2;
    x = Math.min(Math.max(x, margin - s * b.extent.minX), S - 1 - margin - s * b.extent.maxX);
    placed[i] = { ...b, x, y: feet[i], scale: s };
    cursor += widths[i];
  });
  return placed.sort((a, b) => a.y - b.y);
}

function captionExtras(rng: Rng, p: Placed, probability: number): CaptionExtra[] {
  const at = p.appearance.attributes;
  const roll = rng.nextFloat();
  const hairRoll = rng.nextFloat();
  if (CLASS_INFO[p.appearance.className].kind !== 'human' || p.appearance.className === 'robot') return [];
  const extras: CaptionExtra[] = [];
  if (roll < probability) {
    if (at.hat) extras.push({ kind: 'hat' });
    if (at.glasses) extras.push({ kind: 'glasses' });
    if (at.scarf) extras.push({ kind: 'scarf' });
  }
  if (hairRoll < probability * 0.5 && at.hairColor && !at.hat)
    extras.push({ kind: 'hair', color: at.hairColor });
  return extras;
}

/**
 * Generates one scene (see the file header and {@link GenerateSceneOptions}).
 *
 * @example
 * ```ts
 * const a = generateScene(7);
 * const b = generateScene(new Rng(7)); // same scene: a seed is shorthand for new Rng(seed)
 * const custom = generateScene(1, { specs: [{ className: 'woman', color: 'yellow', pose: 'waving' }], background: { kind: 'beach', variant: 3 } });
 * ```
 */
export function generateScene(rngOrSeed: Rng | number, options: GenerateSceneOptions = {}): WorldScene {
  const seed = typeof rngOrSeed === 'number' ? rngOrSeed : null;
  const rng = typeof rngOrSeed === 'number' ? new Rng(rngOrSeed) : rngOrSeed;
  const S = options.size ?? DEFAULT_SIZE;
  if (!Number.isInteger(S) || S < 16 || S > 2048)
    throw new RangeError(`scene size must be an integer in [16, 2048], got ${S}`);
  let specs: readonly SubjectSpec[];
  if (options.specs && options.specs.length > 0) specs = options.specs;
  else {
    const n = options.subjects ?? 1 + Math.floor(rng.nextFloat() * 4);
    if (!Number.isInteger(n) || n < 1 || n > 4)
      throw new RangeError(`a scene holds 1 to 4 subjects, got ${n}`);
    specs = Array.from({ length: n }, () => ({}));
  }
  if (specs.length > 4) throw new RangeError(`a scene holds 1 to 4 subjects, got ${specs.length}`);
  const built = specs.map((spec) => chooseSubject(rng, spec, options));
  const background = chooseBackground(rng, built, options);

  const canvas = new Canvas(S, options.antialias === false ? 1 : 2);
  const horizon = renderBackground(canvas, background.kind, background.variant);
  const placed = layout(rng, built, S, horizon, options);

  // shadows first (background level), then subjects far to near
  canvas.setInstance(0);
  canvas.setColor([0, 0, 0]);
  canvas.setAlpha(0.22);
  for (const p of placed) {
    const w = (p.extent.maxX - p.extent.minX) * p.scale;
    canvas.ellipse(
      p.x + ((p.extent.minX + p.extent.maxX) / 2) * p.scale,
      p.y,
      w * 0.42,
      Math.max(1, p.scale * 0.035),
    );
  }
  canvas.setAlpha(1);
  placed.forEach((p, i) => {
    const outlines = p.appearance.attributes.style !== 'realistic';
    if (p.human && p.pose === 'sitting') {
      canvas.setInstance(0);
      p.human.drawSeat(new CanvasPen(canvas, p.x, p.y, p.scale, false, false));
    }
    canvas.setInstance(i + 1);
    p.draw(new CanvasPen(canvas, p.x, p.y, p.scale, p.flip, outlines));
  });
  canvas.endParts();
  const { rgb, ids } = canvas.finish(OUTLINE, Math.max(1, Math.round(S / 128)));

  const classMask = new Uint8Array(S * S);
  const classOf = [0, ...placed.map((p) => CLASS_INFO[p.appearance.className].index)];
  const masks = placed.map(() => new Uint8Array(S * S));
  const areas = placed.map(() => 0);
  for (let o = 0; o < ids.length; o++) {
    const id = ids[o];
    if (id === 0) continue;
    classMask[o] = classOf[id];
    masks[id - 1][o] = 1;
    areas[id - 1]++;
  }

  const people: PoseDocument['people'][number][] = [];
  const subjects: WorldSubject[] = placed.map((p, i) => {
    let keypoints: WorldKeypoint[] | null = null;
    if (p.human) {
      keypoints = p.human.points.map(([x, y], j) => ({
        x: p.x + x * p.scale,
        y: p.y + y * p.scale,
        visible: p.human?.visible[j] ?? false,
      }));
      people.push({
        keypoints: keypoints.map((k) => (k.visible ? { x: k.x, y: k.y, confidence: 1 } : null)),
      });
    }
    const e = p.extent;
    const bbox: PixelBox = {
      x0: clampInt(Math.floor(p.x + e.minX * p.scale), 0, S - 1),
      y0: clampInt(Math.floor(p.y + e.minY * p.scale), 0, S - 1),
      x1: clampInt(Math.ceil(p.x + e.maxX * p.scale), 0, S - 1),
      y1: clampInt(Math.ceil(p.y + e.maxY * p.scale), 0, S - 1),
    };
    return {
      className: p.appearance.className,
      classIndex: CLASS_INFO[p.appearance.className].index,
      color: p.appearance.color,
      attributes: p.appearance.attributes,
      pose: p.pose,
      orientation: p.orientation,
      keypoints,
      bbox,
      mask: masks[i],
      area: areas[i],
      placement: { x: p.x, y: p.y, scale: p.scale },
    };
  });
  if (people.some((person) => person.keypoints.length !== KEYPOINT_COUNT))
    throw new Error('bad keypoint count');
  const pose: PoseDocument = { width: S, height: S, people };
  const openpose =
    people.length > 0 ? renderOpenPose(pose, S, S) : { width: S, height: S, data: new Uint8Array(S * S * 3) };

  // caption: left to right
  const probability = options.captionExtras ?? 0.5;
  const captionSubjects: CaptionSubject[] = placed
    .map((p) => ({ p, extras: captionExtras(rng, p, probability) }))
    .sort((a, b) => a.p.x - b.p.x)
    .map(({ p, extras }) => ({
      className: p.appearance.className,
      color: p.appearance.color,
      style: p.appearance.attributes.style,
      pose: p.pose,
      orientation: p.orientation,
      extras,
    }));
  const caption = sceneCaption(captionSubjects, background.kind);

  return {
    image: { width: S, height: S, data: rgb },
    caption,
    subjects,
    classMask,
    instanceMask: ids,
    openpose,
    pose,
    background,
    seed,
  };
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
