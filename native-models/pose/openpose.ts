/**
 * OpenPose (COCO-18 body) skeletons for ControlNet OpenPose conditioning: the standard keypoint order,
 * limb sequence and colour table, OpenPose JSON parsing/writing, pure editing functions for the studio's
 * pose editor, a small pose library, a deterministic rasterizer and a coarse body silhouette.
 *
 * This module is pure TypeScript with no Node or DOM imports, so the React renderer can import it too
 * (the pose editor draws with the same colours). File and image IO lives in `openpose-io.ts`.
 *
 * Coordinates in a {@link PoseDocument} are pixels of a `width` x `height` canvas, x to the right and y
 * down, using the OpenCV/OpenPose convention that pixel (i, j) is centred on coordinate (i, j).
 *
 * Standard definitions (checked against the ControlNet annotator / controlnet_aux `draw_bodypose` and the
 * OpenPose output-format documentation):
 * - keypoints: OpenPose COCO-18 order, see {@link KEYPOINT_NAMES};
 * - limbs: the 17 pairs of the annotator's `limbSeq` (0-based here), see {@link LIMBS};
 * - colours: the annotator's 18-entry table; limb `i` uses colour `i`, keypoint `j` uses colour `j`.
 *
 * @example
 * ```ts
 * import { addPerson, emptyPose, renderOpenPose } from './openpose.js';
 *
 * const doc = addPerson(emptyPose(512, 768), 'waving');
 * const control = renderOpenPose(doc, 512, 768); // RGB, black background, ready for ControlNet
 * ```
 */

// ---------------------------------------------------------------------------------------------------------
// Standard tables
// ---------------------------------------------------------------------------------------------------------

/** Number of keypoints in a COCO-18 OpenPose body. */
export const KEYPOINT_COUNT = 18;

/**
 * COCO-18 keypoint names in OpenPose order (index = keypoint id). "Right" and "left" are the person's own
 * sides, so in a front view the right-side keypoints are on the viewer's left.
 */
export const KEYPOINT_NAMES = Object.freeze([
  'nose',
  'neck',
  'right_shoulder',
  'right_elbow',
  'right_wrist',
  'left_shoulder',
  'left_elbow',
  'left_wrist',
  'right_hip',
  'right_knee',
  'right_ankle',
  'left_hip',
  'left_knee',
  'left_ankle',
  'right_eye',
  'left_eye',
  'right_ear',
  'left_ear',
] as const);

/** Name of a COCO-18 keypoint, see {@link KEYPOINT_NAMES}. */
export type KeypointName = (typeof KEYPOINT_NAMES)[number];

/** Keypoint index by name, e.g. `KEYPOINT.right_elbow === 3`. */
export const KEYPOINT: Readonly<Record<KeypointName, number>> = Object.freeze(
  Object.fromEntries(KEYPOINT_NAMES.map((name, i) => [name, i])) as Record<KeypointName, number>,
);

/** A limb: the indices of the two keypoints it joins. */
export type Limb = readonly [from: number, to: number];

/**
 * The 17 limbs of the standard OpenPose/ControlNet body drawing, in drawing order; limb `i` is drawn in
 * {@link OPENPOSE_COLORS}`[i]`. This is the annotator's `limbSeq` (first 17 entries, 1-based there).
 */
export const LIMBS: readonly Limb[] = Object.freeze(
  (
    [
      [1, 2], // neck - right shoulder
      [1, 5], // neck - left shoulder
      [2, 3], // right shoulder - right elbow
      [3, 4], // right elbow - right wrist
      [5, 6], // left shoulder - left elbow
      [6, 7], // left elbow - left wrist
      [1, 8], // neck - right hip
      [8, 9], // right hip - right knee
      [9, 10], // right knee - right ankle
      [1, 11], // neck - left hip
      [11, 12], // left hip - left knee
      [12, 13], // left knee - left ankle
      [1, 0], // neck - nose
      [0, 14], // nose - right eye
      [14, 16], // right eye - right ear
      [0, 15], // nose - left eye
      [15, 17], // left eye - left ear
    ] as const
  ).map((limb) => Object.freeze([limb[0], limb[1]] as const)),
);

/** An 8-bit RGB colour. */
export type RgbColor = readonly [r: number, g: number, b: number];

/** The 18 standard OpenPose/ControlNet colours (RGB). Keypoint `j` uses colour `j`; limb `i` uses colour `i`. */
export const OPENPOSE_COLORS: readonly RgbColor[] = Object.freeze(
  (
    [
      [255, 0, 0],
      [255, 85, 0],
      [255, 170, 0],
      [255, 255, 0],
      [170, 255, 0],
      [85, 255, 0],
      [0, 255, 0],
      [0, 255, 85],
      [0, 255, 170],
      [0, 255, 255],
      [0, 170, 255],
      [0, 85, 255],
      [0, 0, 255],
      [85, 0, 255],
      [170, 0, 255],
      [255, 0, 255],
      [255, 0, 170],
      [255, 0, 85],
    ] as const
  ).map((c) => Object.freeze([c[0], c[1], c[2]] as const)),
);

/** Opacity of limbs over the black background in the reference drawing. */
export const LIMB_OPACITY = 0.6;

/**
 * The colour a limb actually has in a rendered OpenPose image: {@link OPENPOSE_COLORS}`[i]` at 60% over
 * black, truncated like the reference's `(canvas * 0.6).astype(uint8)` (255 -> 153, 170 -> 102, 85 -> 51).
 */
export const LIMB_DRAW_COLORS: readonly RgbColor[] = Object.freeze(
  LIMBS.map((_, i) => {
    const [r, g, b] = OPENPOSE_COLORS[i];
    return Object.freeze([dim(r), dim(g), dim(b)] as const);
  }),
);

function dim(channel: number): number {
  // Math.round guards against 0.6 not being exact in binary; for 0/85/170/255 it equals numpy's truncation.
  return Math.round(channel * LIMB_OPACITY);
}

/**
 * For each keypoint, its mirror-image counterpart (right <-> left); nose and neck map to themselves.
 *
 * @example
 * ```ts
 * MIRRORED_KEYPOINT[KEYPOINT.right_shoulder] === KEYPOINT.left_shoulder; // true
 * ```
 */
export const MIRRORED_KEYPOINT: readonly number[] = Object.freeze([
  0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16,
]);

/**
 * BODY_25 -> COCO-18 correspondence: COCO keypoint `j` is BODY_25 keypoint `BODY25_TO_COCO18[j]`.
 * BODY_25 is COCO-18 with MidHip inserted at 8 and six foot keypoints (19-24: big toes, small toes, heels)
 * appended; MidHip and the feet have no COCO-18 counterpart and are dropped.
 */
export const BODY25_TO_COCO18: readonly number[] = Object.freeze([
  0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
]);

/** Short side of the canvas the reference annotator draws on (`detect_resolution`). */
export const REFERENCE_RESOLUTION = 512;
/** The reference's `stickwidth`: half the limb thickness, in pixels at {@link REFERENCE_RESOLUTION}. */
export const REFERENCE_STICK_WIDTH = 4;
/** The reference's keypoint circle radius, in pixels at {@link REFERENCE_RESOLUTION}. */
export const REFERENCE_KEYPOINT_RADIUS = 4;

// ---------------------------------------------------------------------------------------------------------
// Document types
// ---------------------------------------------------------------------------------------------------------

/** A keypoint position in canvas pixels, or `null` when the keypoint is hidden/occluded (not drawn). */
export type Keypoint = Readonly<{ x: number; y: number; confidence: number }> | null;

/** One body. `keypoints` always has {@link KEYPOINT_COUNT} (18) entries in {@link KEYPOINT_NAMES} order. */
export interface Person {
  readonly keypoints: readonly Keypoint[];
}

/** The people on a `width` x `height` canvas (pixels). Editing functions never mutate a document. */
export interface PoseDocument {
  readonly width: number;
  readonly height: number;
  readonly people: readonly Person[];
}

/** An 8-bit RGB raster, row-major, 3 bytes per pixel (structurally an `RgbImage` of `image/image.ts`). */
export interface PoseRaster {
  width: number;
  height: number;
  /** RGB, row-major, 3 bytes per pixel. */
  data: Uint8Array;
}

/** A point in canvas pixels. */
export interface Point {
  x: number;
  y: number;
}

/** Thrown for OpenPose JSON that cannot be read; the message names the person and keypoint at fault. */
export class OpenPoseFormatError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OpenPoseFormatError';
  }
}

/**
 * An empty pose document.
 *
 * @example
 * ```ts
 * emptyPose(512, 512); // { width: 512, height: 512, people: [] }
 * ```
 */
export function emptyPose(width: number, height: number): PoseDocument {
  assertCanvasSize(width, height, 'pose canvas');
  return { width, height, people: [] };
}

/**
 * True for a {@link PoseDocument}-shaped value (as opposed to e.g. an RGB image returned by `readPose`).
 *
 * @example
 * ```ts
 * const pose = await readPose('panel-3.json');
 * const control = isPoseDocument(pose) ? renderOpenPose(pose, 512, 512) : pose;
 * ```
 */
export function isPoseDocument(value: unknown): value is PoseDocument {
  return isRecord(value) && Array.isArray(value.people) && typeof value.width === 'number';
}

// ---------------------------------------------------------------------------------------------------------
// OpenPose JSON
// ---------------------------------------------------------------------------------------------------------

/** The OpenPose JSON written by {@link toOpenPoseJson} (the `--write_json` format plus ControlNet's canvas size). */
export interface OpenPoseJson {
  version: number;
  people: { pose_keypoints_2d: number[] }[];
  canvas_width: number;
  canvas_height: number;
}

export interface ParseOpenPoseOptions {
  /**
   * Width of the resulting document. Defaults to the JSON's `canvas_width`. When both are given and differ,
   * pixel coordinates are rescaled from `canvas_width` to `width`. Required when the JSON has no canvas size.
   */
  width?: number;
  /** Height of the resulting document; see {@link ParseOpenPoseOptions.width}. */
  height?: number;
  /**
   * Whether coordinates are normalized to 0..1. Default: detected — normalized when every visible
   * coordinate lies in [0, 1] (a pixel pose that fits within 1 px of the top-left corner would be misread;
   * pass `false` to force pixels).
   */
  normalized?: boolean;
}

const OPENPOSE_JSON_VERSION = 1.3;
const BODY25_COUNT = 25;

/**
 * Reads OpenPose JSON into a {@link PoseDocument}.
 *
 * Accepted input (an object, or its JSON text):
 * - OpenPose `--write_json` output: `{ "people": [ { "pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...] } ] }`
 *   (the pre-1.0 key `pose_keypoints` is accepted too). Other keys (face, hands, `animals`) are ignored.
 * - the ControlNet / "openpose editor" variant, which adds `canvas_width` and `canvas_height`.
 * - 18 keypoints (COCO-18) or 25 (BODY_25, mapped by {@link BODY25_TO_COCO18}: MidHip and feet dropped).
 * - absolute pixel coordinates, or coordinates normalized to 0..1 (detected, see
 *   {@link ParseOpenPoseOptions.normalized}; ControlNet's own JSON export is normalized).
 * - confidence `<= 0` means hidden: the keypoint becomes `null`. Other confidences are kept as they are.
 *
 * @throws OpenPoseFormatError naming the person (and keypoint) at fault: missing `people`, wrong number of
 *   values, a non-numeric or non-finite value, an invalid canvas size, or no size at all.
 *
 * @example
 * ```ts
 * const doc = parseOpenPoseJson(JSON.parse(text), { width: 1024, height: 768 });
 * const fromControlNet = parseOpenPoseJson({ people: [...], canvas_width: 512, canvas_height: 512 });
 * ```
 */
export function parseOpenPoseJson(json: unknown, options: ParseOpenPoseOptions = {}): PoseDocument {
  const root = typeof json === 'string' ? parseJsonText(json) : json;
  if (!isRecord(root) || Array.isArray(root)) {
    throw new OpenPoseFormatError('OpenPose JSON must be an object like { "people": [ ... ] }');
  }
  if (!Array.isArray(root.people)) {
    throw new OpenPoseFormatError(
      'OpenPose JSON has no "people" array; expected { "people": [ { "pose_keypoints_2d": [x0, y0, c0, ...] } ] }',
    );
  }
  const canvasWidth = optionalSize(root.canvas_width, 'canvas_width');
  const canvasHeight = optionalSize(root.canvas_height, 'canvas_height');
  const width = optionalSize(options.width, 'the width option') ?? canvasWidth;
  const height = optionalSize(options.height, 'the height option') ?? canvasHeight;
  if (width === undefined || height === undefined) {
    throw new OpenPoseFormatError(
      'OpenPose JSON has no canvas_width/canvas_height; pass { width, height } (the size of the image the keypoints belong to)',
    );
  }

  const raw = root.people.map((person: unknown, i: number) => readRawPerson(person, i));
  const normalized = options.normalized ?? looksNormalized(raw);
  const scaleX = normalized ? width : width / (canvasWidth ?? width);
  const scaleY = normalized ? height : height / (canvasHeight ?? height);

  const people = raw.map((values) => {
    const keypoints: Keypoint[] = [];
    for (let j = 0; j < KEYPOINT_COUNT; j++) {
      const [x, y, confidence] = [values[3 * j], values[3 * j + 1], values[3 * j + 2]];
      keypoints.push(confidence > 0 ? { x: x * scaleX, y: y * scaleY, confidence } : null);
    }
    return { keypoints };
  });
  return { width, height, people };
}

/**
 * Writes a document as OpenPose JSON (pixel coordinates, COCO-18, hidden keypoints as `0, 0, 0`, plus
 * `canvas_width`/`canvas_height`). {@link parseOpenPoseJson} reads it back to an equal document.
 *
 * @example
 * ```ts
 * const text = JSON.stringify(toOpenPoseJson(doc));
 * parseOpenPoseJson(text); // deep-equals doc
 * ```
 */
export function toOpenPoseJson(doc: PoseDocument): OpenPoseJson {
  return {
    version: OPENPOSE_JSON_VERSION,
    people: doc.people.map((person) => ({
      pose_keypoints_2d: person.keypoints.flatMap((k) => (k ? [k.x, k.y, k.confidence] : [0, 0, 0])),
    })),
    canvas_width: doc.width,
    canvas_height: doc.height,
  };
}

function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new OpenPoseFormatError(`OpenPose JSON text is not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
}

/** Reads one person's keypoint array into 54 numbers (COCO-18 order), validating every value. */
function readRawPerson(person: unknown, index: number): number[] {
  if (!isRecord(person) || Array.isArray(person)) {
    throw new OpenPoseFormatError(`person ${index} is not an object with "pose_keypoints_2d"`);
  }
  const key = 'pose_keypoints_2d' in person ? 'pose_keypoints_2d' : 'pose_keypoints';
  const values = person[key];
  if (!Array.isArray(values)) {
    throw new OpenPoseFormatError(
      `person ${index}: pose_keypoints_2d is missing or not an array (expected x, y, confidence numbers)`,
    );
  }
  const count = values.length / 3;
  if (count !== KEYPOINT_COUNT && count !== BODY25_COUNT) {
    throw new OpenPoseFormatError(
      `person ${index}: pose_keypoints_2d has ${values.length} numbers; expected ${3 * KEYPOINT_COUNT} (18 COCO keypoints) or ${3 * BODY25_COUNT} (25 BODY_25 keypoints)`,
    );
  }
  const body25 = count === BODY25_COUNT;
  const out: number[] = [];
  for (let j = 0; j < KEYPOINT_COUNT; j++) {
    const source = body25 ? BODY25_TO_COCO18[j] : j;
    for (let c = 0; c < 3; c++) {
      const at = 3 * source + c;
      const value: unknown = values[at];
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        const what = ['x', 'y', 'confidence'][c];
        const got = typeof value === 'number' ? String(value) : value === null ? 'null' : typeof value;
        throw new OpenPoseFormatError(
          `person ${index}: ${KEYPOINT_NAMES[j]} ${what} (pose_keypoints_2d[${at}]) is ${got}; expected a finite number`,
        );
      }
      out.push(value);
    }
  }
  return out;
}

function looksNormalized(people: readonly number[][]): boolean {
  let visible = 0;
  for (const values of people) {
    for (let j = 0; j < KEYPOINT_COUNT; j++) {
      const [x, y, confidence] = [values[3 * j], values[3 * j + 1], values[3 * j + 2]];
      if (confidence <= 0) continue;
      visible++;
      if (x < 0 || x > 1 || y < 0 || y > 1) return false;
    }
  }
  return visible > 0;
}

function optionalSize(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new OpenPoseFormatError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Pose library
// ---------------------------------------------------------------------------------------------------------

/** Names of the built-in poses, see {@link POSE_TEMPLATES}. */
export const POSE_TEMPLATE_NAMES = Object.freeze([
  'standing',
  'walking',
  'running',
  'sitting',
  'waving',
  'jumping',
] as const);

export type PoseTemplateName = (typeof POSE_TEMPLATE_NAMES)[number];

/**
 * A normalized COCO-18 skeleton: 18 `[x, y]` points (or `null` for a hidden keypoint) in units of the
 * figure's standing height. The origin is the ground point between the feet, x to the right (0 = body
 * centre line), y down: a standing figure spans y = -1 (top of the head) to 0 (soles).
 */
export type PoseTemplate = readonly (readonly [x: number, y: number] | null)[];

type Xy = readonly [number, number];

function template(points: Xy[]): PoseTemplate {
  if (points.length !== KEYPOINT_COUNT) throw new Error(`pose template needs ${KEYPOINT_COUNT} points`);
  return Object.freeze(points.map((p) => Object.freeze([p[0], p[1]] as const)));
}

/**
 * Front-view poses for the editor and the procedural world, in the {@link PoseTemplate} space (standing
 * height 1, feet at the origin; the person's right side at negative x, i.e. on the viewer's left).
 * Place one with {@link personFromTemplate} or {@link addPerson}.
 *
 * - `standing`: relaxed, arms down. `walking`: mid-stride, right leg forward, arms swinging.
 * - `running`: right knee raised, elbows bent. `sitting`: on a chair seen from the front, hands on knees.
 * - `waving`: standing, right hand raised above the head. `jumping`: star jump in the air, arms up.
 */
export const POSE_TEMPLATES: Readonly<Record<PoseTemplateName, PoseTemplate>> = Object.freeze({
  standing: template([
    [0, -0.915],
    [0, -0.82],
    [-0.11, -0.82],
    [-0.135, -0.65],
    [-0.145, -0.49],
    [0.11, -0.82],
    [0.135, -0.65],
    [0.145, -0.49],
    [-0.065, -0.5],
    [-0.07, -0.27],
    [-0.07, -0.04],
    [0.065, -0.5],
    [0.07, -0.27],
    [0.07, -0.04],
    [-0.03, -0.94],
    [0.03, -0.94],
    [-0.065, -0.925],
    [0.065, -0.925],
  ]),
  walking: template([
    [0, -0.905],
    [0, -0.81],
    [-0.11, -0.81],
    [-0.145, -0.645],
    [-0.16, -0.5],
    [0.11, -0.81],
    [0.13, -0.65],
    [0.1, -0.53],
    [-0.065, -0.49],
    [-0.06, -0.26],
    [-0.055, -0.02],
    [0.065, -0.49],
    [0.075, -0.27],
    [0.085, -0.08],
    [-0.03, -0.93],
    [0.03, -0.93],
    [-0.065, -0.915],
    [0.065, -0.915],
  ]),
  running: template([
    [0.01, -0.895],
    [0, -0.8],
    [-0.11, -0.8],
    [-0.17, -0.66],
    [-0.09, -0.6],
    [0.11, -0.8],
    [0.16, -0.64],
    [0.19, -0.52],
    [-0.065, -0.48],
    [-0.08, -0.36],
    [-0.09, -0.16],
    [0.065, -0.48],
    [0.08, -0.25],
    [0.085, -0.02],
    [-0.02, -0.92],
    [0.04, -0.92],
    [-0.055, -0.905],
    [0.075, -0.905],
  ]),
  sitting: template([
    [0, -0.715],
    [0, -0.62],
    [-0.11, -0.62],
    [-0.14, -0.45],
    [-0.095, -0.29],
    [0.11, -0.62],
    [0.14, -0.45],
    [0.095, -0.29],
    [-0.065, -0.3],
    [-0.09, -0.26],
    [-0.09, -0.03],
    [0.065, -0.3],
    [0.09, -0.26],
    [0.09, -0.03],
    [-0.03, -0.74],
    [0.03, -0.74],
    [-0.065, -0.725],
    [0.065, -0.725],
  ]),
  waving: template([
    [0, -0.915],
    [0, -0.82],
    [-0.11, -0.82],
    [-0.27, -0.84],
    [-0.28, -1.0],
    [0.11, -0.82],
    [0.135, -0.65],
    [0.145, -0.49],
    [-0.065, -0.5],
    [-0.07, -0.27],
    [-0.07, -0.04],
    [0.065, -0.5],
    [0.07, -0.27],
    [0.07, -0.04],
    [-0.03, -0.94],
    [0.03, -0.94],
    [-0.065, -0.925],
    [0.065, -0.925],
  ]),
  jumping: template([
    [0, -1.015],
    [0, -0.92],
    [-0.11, -0.92],
    [-0.2, -1.05],
    [-0.27, -1.19],
    [0.11, -0.92],
    [0.2, -1.05],
    [0.27, -1.19],
    [-0.065, -0.6],
    [-0.13, -0.38],
    [-0.19, -0.16],
    [0.065, -0.6],
    [0.13, -0.38],
    [0.19, -0.16],
    [-0.03, -1.04],
    [0.03, -1.04],
    [-0.065, -1.025],
    [0.065, -1.025],
  ]),
});

/** Where a template goes: `(x, y)` is the ground point between the feet, `scale` the standing height (px). */
export interface Placement {
  x: number;
  y: number;
  scale: number;
}

/**
 * A person in a template pose: template point `(tx, ty)` lands at `(at.x + tx * at.scale, at.y + ty * at.scale)`
 * with confidence 1.
 *
 * @example
 * ```ts
 * // a 400 px tall figure standing at the bottom centre of a 512 x 512 panel
 * const person = personFromTemplate('standing', { x: 256, y: 480, scale: 400 });
 * ```
 */
export function personFromTemplate(pose: PoseTemplateName | PoseTemplate, at: Placement): Person {
  const points = resolveTemplate(pose);
  assertFinite(at.x, 'placement x');
  assertFinite(at.y, 'placement y');
  assertPositive(at.scale, 'placement scale');
  return {
    keypoints: points.map((p) =>
      p ? { x: at.x + p[0] * at.scale, y: at.y + p[1] * at.scale, confidence: 1 } : null,
    ),
  };
}

function resolveTemplate(pose: PoseTemplateName | PoseTemplate): PoseTemplate {
  if (typeof pose === 'string') {
    if (!Object.hasOwn(POSE_TEMPLATES, pose)) {
      throw new RangeError(`unknown pose template "${pose}"; use one of ${POSE_TEMPLATE_NAMES.join(', ')}`);
    }
    return POSE_TEMPLATES[pose];
  }
  if (pose.length !== KEYPOINT_COUNT) {
    throw new RangeError(`a pose template needs ${KEYPOINT_COUNT} points, got ${pose.length}`);
  }
  return pose;
}

/**
 * The placement that best fits a person to a template (least squares over the visible keypoints, uniform
 * scale and translation, no rotation), or `undefined` when fewer than two keypoints are visible or they
 * do not determine a positive scale.
 *
 * @example
 * ```ts
 * const at = fitPlacement(doc.people[0]); // { x, y, scale } of the standing figure it best matches
 * ```
 */
export function fitPlacement(
  person: Person,
  pose: PoseTemplateName | PoseTemplate = 'standing',
): Placement | undefined {
  const points = resolveTemplate(pose);
  const pairs: [Xy, Point][] = [];
  person.keypoints.forEach((k, j) => {
    const t = points[j];
    if (k && t) pairs.push([t, k]);
  });
  if (pairs.length < 2) return undefined;
  let tx = 0;
  let ty = 0;
  let px = 0;
  let py = 0;
  for (const [t, p] of pairs) {
    tx += t[0];
    ty += t[1];
    px += p.x;
    py += p.y;
  }
  const n = pairs.length;
  [tx, ty, px, py] = [tx / n, ty / n, px / n, py / n];
  let num = 0;
  let den = 0;
  for (const [t, p] of pairs) {
    num += (t[0] - tx) * (p.x - px) + (t[1] - ty) * (p.y - py);
    den += (t[0] - tx) ** 2 + (t[1] - ty) ** 2;
  }
  const scale = den > 0 ? num / den : 0;
  if (!(scale > 0) || !Number.isFinite(scale)) return undefined;
  return { x: px - scale * tx, y: py - scale * ty, scale };
}

// ---------------------------------------------------------------------------------------------------------
// Editing (pure: every function returns a new document and never mutates its input)
// ---------------------------------------------------------------------------------------------------------

/**
 * Adds a person in a template pose. `at` defaults to a figure 80% of the canvas height standing at
 * x = centre, y = 90% of the height.
 *
 * @example
 * ```ts
 * let doc = emptyPose(768, 512);
 * doc = addPerson(doc, 'walking', { x: 200, y: 480, scale: 380 });
 * doc = addPerson(doc, 'waving', { x: 560, y: 470, scale: 360 });
 * ```
 */
export function addPerson(
  doc: PoseDocument,
  pose: PoseTemplateName | PoseTemplate = 'standing',
  at: Partial<Placement> = {},
): PoseDocument {
  const placement: Placement = {
    x: at.x ?? doc.width / 2,
    y: at.y ?? doc.height * 0.9,
    scale: at.scale ?? doc.height * 0.8,
  };
  return { ...doc, people: [...doc.people, personFromTemplate(pose, placement)] };
}

/**
 * Removes person `person` (0-based); later people move down one index.
 *
 * @example
 * ```ts
 * const next = removePerson(doc, 1);
 * ```
 */
export function removePerson(doc: PoseDocument, person: number): PoseDocument {
  assertPerson(doc, person);
  return { ...doc, people: doc.people.filter((_, i) => i !== person) };
}

/**
 * Moves one keypoint to `(x, y)` (canvas pixels; positions outside the canvas are allowed). A hidden
 * keypoint becomes visible with confidence 1; a visible one keeps its confidence.
 *
 * @example
 * ```ts
 * const next = moveKeypoint(doc, 0, KEYPOINT.right_wrist, 140, 90);
 * ```
 */
export function moveKeypoint(
  doc: PoseDocument,
  person: number,
  index: number,
  x: number,
  y: number,
): PoseDocument {
  assertPerson(doc, person);
  assertKeypointIndex(index);
  assertFinite(x, 'keypoint x');
  assertFinite(y, 'keypoint y');
  const confidence = doc.people[person].keypoints[index]?.confidence ?? 1;
  return updateKeypoints(doc, person, (kps) => kps.map((k, j) => (j === index ? { x, y, confidence } : k)));
}

/**
 * Hides (`null`) or shows a keypoint. Hidden keypoints and the limbs touching them are not drawn. Since a
 * hidden keypoint keeps no position, showing one places it where the standing template fitted to the
 * person's visible keypoints puts it (see {@link fitPlacement}); with fewer than two visible keypoints, a
 * default standing figure in the middle of the canvas is used. Already-visible keypoints are unchanged.
 *
 * @example
 * ```ts
 * const occluded = setKeypointVisible(doc, 0, KEYPOINT.left_elbow, false);
 * ```
 */
export function setKeypointVisible(
  doc: PoseDocument,
  person: number,
  index: number,
  visible: boolean,
): PoseDocument {
  assertPerson(doc, person);
  assertKeypointIndex(index);
  const current = doc.people[person].keypoints[index];
  if (!visible)
    return current === null ? doc : updateKeypoints(doc, person, (kps) => replaceAt(kps, index, null));
  if (current !== null) return doc;
  const standing = POSE_TEMPLATES.standing;
  const at = fitPlacement(doc.people[person]) ?? {
    x: doc.width / 2,
    y: doc.height * 0.9,
    scale: doc.height * 0.8,
  };
  const t = standing[index] ?? [0, -0.5];
  const restored = { x: at.x + t[0] * at.scale, y: at.y + t[1] * at.scale, confidence: 1 };
  return updateKeypoints(doc, person, (kps) => replaceAt(kps, index, restored));
}

export interface MirrorOptions {
  /**
   * Also swap left and right keypoints (default `true`), so the mirrored figure keeps anatomically
   * correct colours: a front view stays a front view. With `false` only the positions are reflected,
   * which ControlNet reads as the person turned around (back view).
   */
  swapSides?: boolean;
}

/**
 * Mirrors a person horizontally about the centre of its visible keypoints' bounding box, and (by default)
 * swaps left/right keypoints: new keypoint `j` is the reflection of old keypoint `MIRRORED_KEYPOINT[j]`.
 * So the right shoulder (keypoint 2, colour 2) ends up at the mirror image of where the left shoulder
 * was. A symmetric front-view pose is unchanged; an asymmetric one (e.g. `waving`) changes hands.
 *
 * @example
 * ```ts
 * const facingOtherWay = mirrorPerson(doc, 0);
 * ```
 */
export function mirrorPerson(doc: PoseDocument, person: number, options: MirrorOptions = {}): PoseDocument {
  assertPerson(doc, person);
  const bounds = personBounds(doc.people[person]);
  if (!bounds) return doc;
  const axis2 = bounds.minX + bounds.maxX;
  const swap = options.swapSides ?? true;
  return updateKeypoints(doc, person, (kps) =>
    kps.map((_, j) => {
      const k = kps[swap ? MIRRORED_KEYPOINT[j] : j];
      return k ? { x: axis2 - k.x, y: k.y, confidence: k.confidence } : null;
    }),
  );
}

/**
 * Moves every visible keypoint of a person by `(dx, dy)` pixels.
 *
 * @example
 * ```ts
 * const next = translatePerson(doc, 0, 25, -10);
 * ```
 */
export function translatePerson(doc: PoseDocument, person: number, dx: number, dy: number): PoseDocument {
  assertPerson(doc, person);
  assertFinite(dx, 'dx');
  assertFinite(dy, 'dy');
  return updateKeypoints(doc, person, (kps) =>
    kps.map((k) => (k ? { ...k, x: k.x + dx, y: k.y + dy } : null)),
  );
}

/**
 * Scales a person by `factor` (> 0) about `origin`, which defaults to the centre of its visible
 * keypoints' bounding box.
 *
 * @example
 * ```ts
 * const bigger = scalePerson(doc, 0, 1.25);
 * const shrunkTowardsFeet = scalePerson(doc, 0, 0.8, { x: 256, y: 480 });
 * ```
 */
export function scalePerson(doc: PoseDocument, person: number, factor: number, origin?: Point): PoseDocument {
  assertPerson(doc, person);
  assertPositive(factor, 'scale factor');
  const bounds = personBounds(doc.people[person]);
  if (!bounds) return doc;
  const ox = origin?.x ?? (bounds.minX + bounds.maxX) / 2;
  const oy = origin?.y ?? (bounds.minY + bounds.maxY) / 2;
  assertFinite(ox, 'origin x');
  assertFinite(oy, 'origin y');
  return updateKeypoints(doc, person, (kps) =>
    kps.map((k) => (k ? { ...k, x: ox + (k.x - ox) * factor, y: oy + (k.y - oy) * factor } : null)),
  );
}

/**
 * Replaces a person's pose with a template, keeping its place and size (fitted with {@link fitPlacement};
 * with fewer than two visible keypoints the default placement of {@link addPerson} is used).
 *
 * @example
 * ```ts
 * const nowRunning = applyTemplate(doc, 0, 'running');
 * ```
 */
export function applyTemplate(
  doc: PoseDocument,
  person: number,
  pose: PoseTemplateName | PoseTemplate,
): PoseDocument {
  assertPerson(doc, person);
  const at = fitPlacement(doc.people[person]) ?? {
    x: doc.width / 2,
    y: doc.height * 0.9,
    scale: doc.height * 0.8,
  };
  const next = personFromTemplate(pose, at);
  return { ...doc, people: doc.people.map((p, i) => (i === person ? next : p)) };
}

/** Axis-aligned bounds of a person's visible keypoints, or `undefined` if none is visible. */
export interface Bounds {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/**
 * Bounding box of a person's visible keypoints.
 *
 * @example
 * ```ts
 * const box = personBounds(doc.people[0]); // { minX, minY, maxX, maxY } or undefined
 * ```
 */
export function personBounds(person: Person): Bounds | undefined {
  let bounds: Bounds | undefined;
  for (const k of person.keypoints) {
    if (!k) continue;
    if (!bounds) bounds = { minX: k.x, minY: k.y, maxX: k.x, maxY: k.y };
    else {
      bounds.minX = Math.min(bounds.minX, k.x);
      bounds.minY = Math.min(bounds.minY, k.y);
      bounds.maxX = Math.max(bounds.maxX, k.x);
      bounds.maxY = Math.max(bounds.maxY, k.y);
    }
  }
  return bounds;
}

function updateKeypoints(
  doc: PoseDocument,
  person: number,
  update: (keypoints: readonly Keypoint[]) => Keypoint[],
): PoseDocument {
  return {
    ...doc,
    people: doc.people.map((p, i) => (i === person ? { ...p, keypoints: update(p.keypoints) } : p)),
  };
}

function replaceAt(keypoints: readonly Keypoint[], index: number, value: Keypoint): Keypoint[] {
  return keypoints.map((k, j) => (j === index ? value : k));
}

function assertPerson(doc: PoseDocument, person: number): void {
  if (!Number.isInteger(person) || person < 0 || person >= doc.people.length) {
    const count = doc.people.length;
    throw new RangeError(
      `person ${person} does not exist; the pose has ${count} ${count === 1 ? 'person' : 'people'} (indices 0-${count - 1})`,
    );
  }
}

function assertKeypointIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= KEYPOINT_COUNT) {
    throw new RangeError(`keypoint index ${index} is out of range; use 0-17 (see KEYPOINT_NAMES)`);
  }
}

function assertFinite(value: number, name: string): void {
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a finite number, got ${value}`);
}

function assertPositive(value: number, name: string): void {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number, got ${value}`);
}

function assertCanvasSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what} size must be positive integers, got ${width}x${height}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------

export interface RenderOpenPoseOptions {
  /**
   * Full limb thickness in pixels (the reference's `2 * stickwidth`). Default `8 * min(width, height) / 512`
   * (stickwidth 4 at 512, as the annotator draws at its 512 px detect resolution), at least 2.
   */
  lineWidth?: number;
  /** Keypoint circle radius in pixels. Default `4 * min(width, height) / 512`, at least 1. */
  radius?: number;
}

/**
 * Rasterizes a document as a ControlNet OpenPose image of `width` x `height` (the document is scaled to it).
 *
 * Matches the controlnet_aux / sd-webui-controlnet `draw_bodypose`:
 * 1. black background;
 * 2. limbs, in {@link LIMBS} order (all people per limb), as filled ellipses whose major axis joins the
 *    two keypoints and whose minor semi-axis is `lineWidth / 2`; later limbs overwrite earlier ones;
 * 3. the whole limb layer at 60% over black, i.e. limbs end up in {@link LIMB_DRAW_COLORS};
 * 4. keypoints as filled circles in the full {@link OPENPOSE_COLORS}, on top.
 *
 * Not anti-aliased, like the reference (cv2 fill with 8-connected edges): every pixel is black, a limb
 * draw colour or a keypoint colour, which keeps the output deterministic and easy to analyse. A pixel is
 * painted when its centre lies inside the shape. Sub-pixel positions are kept (the reference truncates
 * to whole pixels), and zero-length limbs are skipped. Hidden keypoints and limbs touching them are not
 * drawn. (The original ControlNet 1.0 annotator instead blended each limb at 0.6 over the image so far,
 * circles included; the controlnet_aux order used here is what current pipelines produce.)
 *
 * @example
 * ```ts
 * const img = renderOpenPose(doc, 768, 512); // { width: 768, height: 512, data: Uint8Array(768 * 512 * 3) }
 * await writeFile('control.png', await encodePng(img));
 * ```
 */
export function renderOpenPose(
  doc: PoseDocument,
  width: number,
  height: number,
  options: RenderOpenPoseOptions = {},
): PoseRaster {
  assertCanvasSize(width, height, 'render');
  const unit = Math.min(width, height) / REFERENCE_RESOLUTION;
  const lineWidth = options.lineWidth ?? Math.max(2, 2 * REFERENCE_STICK_WIDTH * unit);
  const radius = options.radius ?? Math.max(1, REFERENCE_KEYPOINT_RADIUS * unit);
  assertPositive(lineWidth, 'lineWidth');
  assertPositive(radius, 'radius');

  const raster: PoseRaster = { width, height, data: new Uint8Array(width * height * 3) };
  const people = scaledPeople(doc, width, height);
  LIMBS.forEach(([from, to], i) => {
    for (const points of people) {
      const a = points[from];
      const b = points[to];
      if (a && b) fillLimbEllipse(raster, a, b, lineWidth / 2, LIMB_DRAW_COLORS[i]);
    }
  });
  for (let j = 0; j < KEYPOINT_COUNT; j++) {
    for (const points of people) {
      const p = points[j];
      if (p)
        fillDisc(raster.width, raster.height, p.x, p.y, radius, (o) => paint(raster, o, OPENPOSE_COLORS[j]));
    }
  }
  return raster;
}

/** The document's visible keypoints in render pixels (null = hidden). */
function scaledPeople(doc: PoseDocument, width: number, height: number): (Point | null)[][] {
  const sx = width / doc.width;
  const sy = height / doc.height;
  return doc.people.map((p) => p.keypoints.map((k) => (k ? { x: k.x * sx, y: k.y * sy } : null)));
}

function paint(raster: PoseRaster, offset: number, color: RgbColor): void {
  raster.data[3 * offset] = color[0];
  raster.data[3 * offset + 1] = color[1];
  raster.data[3 * offset + 2] = color[2];
}

function fillLimbEllipse(raster: PoseRaster, a: Point, b: Point, halfWidth: number, color: RgbColor): void {
  const length = Math.hypot(b.x - a.x, b.y - a.y);
  if (length === 0) return;
  const ux = (b.x - a.x) / length;
  const uy = (b.y - a.y) / length;
  const cx = (a.x + b.x) / 2;
  const cy = (a.y + b.y) / 2;
  const major = length / 2;
  const extentX = Math.hypot(major * ux, halfWidth * uy);
  const extentY = Math.hypot(major * uy, halfWidth * ux);
  const { width, height } = raster;
  const x0 = Math.max(0, Math.ceil(cx - extentX));
  const x1 = Math.min(width - 1, Math.floor(cx + extentX));
  const y0 = Math.max(0, Math.ceil(cy - extentY));
  const y1 = Math.min(height - 1, Math.floor(cy + extentY));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const along = (dx * ux + dy * uy) / major;
      const across = (-dx * uy + dy * ux) / halfWidth;
      if (along * along + across * across <= 1) paint(raster, y * width + x, color);
    }
  }
}

/** Calls `visit(y * width + x)` for every pixel whose centre is within `r` of `(cx, cy)`. */
function fillDisc(
  width: number,
  height: number,
  cx: number,
  cy: number,
  r: number,
  visit: (o: number) => void,
): void {
  const x0 = Math.max(0, Math.ceil(cx - r));
  const x1 = Math.min(width - 1, Math.floor(cx + r));
  const y0 = Math.max(0, Math.ceil(cy - r));
  const y1 = Math.min(height - 1, Math.floor(cy + r));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) visit(y * width + x);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Silhouette
// ---------------------------------------------------------------------------------------------------------

export interface SilhouetteOptions {
  /**
   * Limb thickness in render pixels. Default per person: 8% of its estimated standing height (torso
   * neck-to-hips = 0.32 of it, else {@link fitPlacement}), at least 2; 2 when the size cannot be estimated.
   */
  thickness?: number;
}

/** Neck-to-mid-hip length of the standing template, as a fraction of the standing height. */
const TORSO_FRACTION = 0.32;
const SILHOUETTE_THICKNESS_FRACTION = 0.08;
const HEAD_RADIUS_FRACTION = 0.7;

/**
 * A coarse body mask implied by the skeleton, `width * height` bytes, row-major, 1 inside / 0 outside.
 *
 * Per person (scaled to `width` x `height` like {@link renderOpenPose}): every drawable limb is a capsule
 * of diameter `thickness`; the torso quadrilateral (shoulders and hips) is filled; the head is a disc
 * around the mean of the visible face keypoints, of radius 0.7 x its distance to the neck (at least
 * `thickness / 2`). Hidden keypoints contribute nothing. It approximates where a body drawn over the pose
 * will be, for IoU-style comparisons, not a pixel-exact segmentation. With `thickness` at least the render
 * `lineWidth` and `2 * radius`, it covers every pixel {@link renderOpenPose} paints.
 *
 * @example
 * ```ts
 * const mask = poseSilhouette(doc, 512, 512);
 * const area = mask.reduce((n, v) => n + v, 0);
 * ```
 */
export function poseSilhouette(
  doc: PoseDocument,
  width: number,
  height: number,
  options: SilhouetteOptions = {},
): Uint8Array {
  assertCanvasSize(width, height, 'silhouette');
  if (options.thickness !== undefined) assertPositive(options.thickness, 'thickness');
  const mask = new Uint8Array(width * height);
  const set = (o: number): void => {
    mask[o] = 1;
  };
  for (const points of scaledPeople(doc, width, height)) {
    const thickness = options.thickness ?? defaultThickness(points);
    const r = thickness / 2;
    for (const [from, to] of LIMBS) {
      const a = points[from];
      const b = points[to];
      if (a && b) fillCapsule(width, height, a, b, r, set);
    }
    for (const p of points) if (p) fillDisc(width, height, p.x, p.y, r, set);
    const torso = [2, 5, 11, 8].map((j) => points[j]);
    if (torso.every((p) => p !== null)) fillPolygon(width, height, torso as Point[], set);
    const face = [0, 14, 15, 16, 17].map((j) => points[j]).filter((p) => p !== null);
    if (face.length > 0) {
      const hx = face.reduce((s, p) => s + p.x, 0) / face.length;
      const hy = face.reduce((s, p) => s + p.y, 0) / face.length;
      const neck = points[1];
      const headRadius = Math.max(r, neck ? HEAD_RADIUS_FRACTION * Math.hypot(hx - neck.x, hy - neck.y) : r);
      fillDisc(width, height, hx, hy, headRadius, set);
    }
  }
  return mask;
}

function defaultThickness(points: readonly (Point | null)[]): number {
  const neck = points[1];
  const hips = [points[8], points[11]].filter((p) => p !== null);
  let standingHeight: number | undefined;
  if (neck && hips.length > 0) {
    const mx = hips.reduce((s, p) => s + p.x, 0) / hips.length;
    const my = hips.reduce((s, p) => s + p.y, 0) / hips.length;
    const torso = Math.hypot(mx - neck.x, my - neck.y);
    if (torso > 0) standingHeight = torso / TORSO_FRACTION;
  }
  standingHeight ??= fitPlacement({
    keypoints: points.map((p) => (p ? { ...p, confidence: 1 } : null)),
  })?.scale;
  return Math.max(2, (standingHeight ?? 0) * SILHOUETTE_THICKNESS_FRACTION);
}

function fillCapsule(
  width: number,
  height: number,
  a: Point,
  b: Point,
  r: number,
  visit: (o: number) => void,
): void {
  const x0 = Math.max(0, Math.ceil(Math.min(a.x, b.x) - r));
  const x1 = Math.min(width - 1, Math.floor(Math.max(a.x, b.x) + r));
  const y0 = Math.max(0, Math.ceil(Math.min(a.y, b.y) - r));
  const y1 = Math.min(height - 1, Math.floor(Math.max(a.y, b.y) + r));
  const vx = b.x - a.x;
  const vy = b.y - a.y;
  const len2 = vx * vx + vy * vy;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const t = len2 > 0 ? Math.min(1, Math.max(0, ((x - a.x) * vx + (y - a.y) * vy) / len2)) : 0;
      const dx = x - (a.x + t * vx);
      const dy = y - (a.y + t * vy);
      if (dx * dx + dy * dy <= r * r) visit(y * width + x);
    }
  }
}

/** Even-odd fill of a simple polygon, sampling pixel centres. */
function fillPolygon(
  width: number,
  height: number,
  poly: readonly Point[],
  visit: (o: number) => void,
): void {
  const ys = poly.map((p) => p.y);
  const y0 = Math.max(0, Math.ceil(Math.min(...ys)));
  const y1 = Math.min(height - 1, Math.floor(Math.max(...ys)));
  for (let y = y0; y <= y1; y++) {
    const crossings: number[] = [];
    for (let i = 0; i < poly.length; i++) {
      const p = poly[i];
      const q = poly[(i + 1) % poly.length];
      if (p.y <= y !== q.y <= y) crossings.push(p.x + ((y - p.y) / (q.y - p.y)) * (q.x - p.x));
    }
    crossings.sort((m, n) => m - n);
    for (let i = 0; i + 1 < crossings.length; i += 2) {
      const xa = Math.max(0, Math.ceil(crossings[i]));
      const xb = Math.min(width - 1, Math.floor(crossings[i + 1]));
      for (let x = xa; x <= xb; x++) visit(y * width + x);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// OpenPose images
// ---------------------------------------------------------------------------------------------------------

/** Fraction of near-black pixels below which an image does not look like an OpenPose rendering. */
export const OPENPOSE_IMAGE_MIN_BLACK = 0.75;
const NEAR_BLACK = 24;

/**
 * Checks that an RGB image looks like an OpenPose rendering (mostly black, with something drawn) and
 * returns a warning sentence if not, `undefined` if it does. Pure heuristic; never throws.
 *
 * @example
 * ```ts
 * const warning = openPoseImageWarning(img, 'pose.png');
 * if (warning) console.warn(warning);
 * ```
 */
export function openPoseImageWarning(image: PoseRaster, source = 'the image'): string | undefined {
  const pixels = image.width * image.height;
  if (pixels === 0 || image.data.length < pixels * 3)
    return `${source} has no pixels to use as an OpenPose image`;
  let black = 0;
  for (let o = 0; o < pixels; o++) {
    const d = image.data;
    if (Math.max(d[3 * o], d[3 * o + 1], d[3 * o + 2]) < NEAR_BLACK) black++;
  }
  const fraction = black / pixels;
  if (fraction === 1) return `${source} is entirely black: it has no skeleton, so ControlNet gets no pose`;
  if (fraction < OPENPOSE_IMAGE_MIN_BLACK) {
    return `${source} does not look like an OpenPose rendering (only ${Math.round(fraction * 100)}% of it is black; expected a mostly black image with coloured limbs); it is used as the ControlNet input as is`;
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
