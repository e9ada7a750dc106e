/**
 * Human-like characters (man, woman, boy, girl, robot) drawn from a COCO-18 skeleton, so the drawn pose
 * follows the skeleton exactly: limbs are thick strokes along the bones, the torso is a quadrilateral
 * along the spine (neck to mid-hip), the head sits on the neck in the direction of the nose.
 *
 * Coordinates are template units (standing height 1, ground point between the feet at the origin, y
 * down), so a {@link Pen} with `scale` = the figure's height in pixels places it.
 *
 * - man / boy: shirt in the main colour (short or long sleeves), trousers, shoes, short or spiky hair.
 * - woman / girl: dress in the main colour (torso plus a trapezoid skirt that follows the knees), bare
 *   legs, long hair / bob / ponytail / pigtails.
 * - children: the layout draws them shorter (see `CLASS_INFO.relativeHeight`), and their heads are bigger.
 * - robot: boxy torso and head in the main colour, metal limbs with joints, an antenna.
 * - comic style: big head, bold outlines; realistic style: natural head size, no outlines, shaded parts.
 *
 * @example
 * ```ts
 * const model = humanModel({ className: 'woman', color: 'yellow', attributes }, 'waving', 'front');
 * model.draw(new CanvasPen(canvas, 64, 120, 100)); // 100 px tall, feet at (64, 120)
 * model.points[KEYPOINT.right_wrist]; // where the raised hand was drawn, template units
 * ```
 */
import { KEYPOINT } from '../pose/openpose.js';
import type { PoseTemplateName } from '../pose/openpose.js';
import type { SubjectAttributes } from './appearance.js';
import type { Orientation, WorldClassName } from './classes.js';
import {
  COLORS,
  GLASS,
  HAIR_COLORS,
  SHOE_COLORS,
  SKIN_TONES,
  TROUSER_COLORS,
  mix,
  shade,
} from './palette.js';
import type { ColorName } from './palette.js';
import type { Pen, Rgb } from './raster.js';
import { orientedSkeleton } from './skeleton.js';

/** Class, main colour and attributes: everything needed to draw a subject. */
export interface Appearance {
  className: WorldClassName;
  color: ColorName;
  attributes: SubjectAttributes;
}

/** A posed human-like character ready to draw. */
export interface HumanModel {
  /** 18 keypoints in template units; face points sit on the drawn head. */
  points: [number, number][];
  /** Whether each keypoint is visible from this orientation. */
  visible: boolean[];
  /** Draws the figure. */
  draw(pen: Pen): void;
  /** Draws the (background-level) seat a sitting figure rests on, or nothing for other poses. */
  drawSeat(pen: Pen): void;
}

interface Proportions {
  headR: number;
  neck: number;
  armR: number;
  legR: number;
  shoulderPad: number;
  hipPad: number;
  minShoulderHalf: number;
  minHipHalf: number;
}

function proportions(className: WorldClassName, realistic: boolean): Proportions {
  const child = className === 'boy' || className === 'girl';
  const female = className === 'woman' || className === 'girl';
  const headR = child ? (realistic ? 0.088 : 0.135) : realistic ? 0.066 : 0.1;
  const slim = realistic ? 0.85 : 1;
  return {
    headR,
    neck: child ? 0.01 : 0.018,
    armR: (female ? 0.028 : 0.033) * (child ? 1.15 : 1) * slim,
    legR: (female ? 0.032 : 0.044) * (child ? 1.1 : 1) * slim,
    shoulderPad: female ? 0.0 : 0.012,
    hipPad: female ? 0.03 : 0.028,
    minShoulderHalf: 0.055,
    minHipHalf: 0.05,
  };
}

type P = [number, number];
const K = KEYPOINT;

function sub(a: P, b: P): P {
  return [a[0] - b[0], a[1] - b[1]];
}
function add(a: P, b: P, s = 1): P {
  return [a[0] + b[0] * s, a[1] + b[1] * s];
}
function unit(v: P): P {
  const d = Math.hypot(v[0], v[1]) || 1;
  return [v[0] / d, v[1] / d];
}
function mid(a: P, b: P): P {
  return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
}

/**
 * Builds a human-like character in a pose and orientation (see `skeleton.ts` for the orientations).
 *
 * @example
 * ```ts
 * const m = humanModel({ className: 'robot', color: 'blue', attributes: defaultAttributes() }, 'walking', 'left');
 * m.visible[KEYPOINT.right_wrist]; // false: facing left, the right arm is the far one
 * ```
 */
export function humanModel(
  appearance: Appearance,
  pose: PoseTemplateName,
  orientation: Orientation,
): HumanModel {
  const { className, attributes } = appearance;
  const sk = orientedSkeleton(pose, orientation);
  const robot = className === 'robot';
  const realistic = !robot && attributes.style === 'realistic';
  const pr = proportions(className, realistic);
  const points = sk.points;
  const neck = points[K.neck];
  const up = unit(sub(points[K.nose], neck));
  const headR = robot ? 0.1 : pr.headR;
  const head = add(neck, up, pr.neck + headR * (robot ? 1 : 0.88));
  placeFace(points, head, headR, orientation, sk.dir);

  const geo: Geometry = {
    points,
    head,
    headR,
    dir: sk.dir,
    orientation,
    far: sk.nearSide === 'right' ? 'left' : sk.nearSide === 'left' ? 'right' : null,
    pr,
    pose,
  };
  return {
    points,
    visible: sk.visible,
    draw: (pen) => (robot ? drawRobot(pen, geo, appearance) : drawPerson(pen, geo, appearance)),
    drawSeat: (pen) => {
      if (pose === 'sitting') drawSeat(pen, geo);
    },
  };
}

/** Puts nose, eyes and ears on the drawn head (see the file header of `skeleton.ts`). */
function placeFace(points: P[], c: P, r: number, orientation: Orientation, dir: number): void {
  const set = (j: number, dx: number, dy: number): void => {
    points[j] = [c[0] + dx * r, c[1] + dy * r];
  };
  if (orientation === 'front' || orientation === 'back') {
    const m = orientation === 'front' ? 1 : -1;
    set(K.nose, 0, 0.22);
    set(K.right_eye, -0.36 * m, -0.02);
    set(K.left_eye, 0.36 * m, -0.02);
    set(K.right_ear, -0.98 * m, 0.05);
    set(K.left_ear, 0.98 * m, 0.05);
    return;
  }
  const nearRight = dir > 0;
  set(K.nose, dir * 0.95, 0.2);
  set(nearRight ? K.right_eye : K.left_eye, dir * 0.5, -0.02);
  set(nearRight ? K.left_eye : K.right_eye, dir * 0.62, -0.02);
  set(nearRight ? K.right_ear : K.left_ear, -dir * 0.12, 0.05);
  set(nearRight ? K.left_ear : K.right_ear, -dir * 0.05, 0.05);
}

interface Geometry {
  points: P[];
  head: P;
  headR: number;
  dir: number;
  orientation: Orientation;
  far: 'left' | 'right' | null;
  pr: Proportions;
  pose: PoseTemplateName;
}

const SIDES = ['right', 'left'] as const;
type Side = (typeof SIDES)[number];

function arm(side: Side): [number, number, number] {
  return side === 'right'
    ? [K.right_shoulder, K.right_elbow, K.right_wrist]
    : [K.left_shoulder, K.left_elbow, K.left_wrist];
}
function leg(side: Side): [number, number, number] {
  return side === 'right'
    ? [K.right_hip, K.right_knee, K.right_ankle]
    : [K.left_hip, K.left_knee, K.left_ankle];
}

/** Torso quadrilateral along the spine: [top+, top-, bottom-, bottom+] corners plus spine frame. */
function torsoFrame(g: Geometry, extraTop = 0, extraBottom = 0) {
  const P = g.points;
  const neck = P[K.neck];
  const hip = mid(P[K.right_hip], P[K.left_hip]);
  const u = unit(sub(neck, hip)); // up the spine
  const n: P = [-u[1], u[0]];
  const proj = (a: P, b: P): number => Math.abs((a[0] - b[0]) * n[0] + (a[1] - b[1]) * n[1]) / 2;
  const top =
    Math.max(proj(P[K.right_shoulder], P[K.left_shoulder]) + g.pr.shoulderPad, g.pr.minShoulderHalf) +
    extraTop;
  const bottom = Math.max(proj(P[K.right_hip], P[K.left_hip]) + g.pr.hipPad, g.pr.minHipHalf) + extraBottom;
  return { neck, hip, u, n, top, bottom };
}

function drawPerson(pen: Pen, g: Geometry, a: Appearance): void {
  const { className, attributes: at } = a;
  const P = g.points;
  const pr = g.pr;
  const female = className === 'woman' || className === 'girl';
  const child = className === 'boy' || className === 'girl';
  const realistic = at.style === 'realistic';
  const main = COLORS[a.color];
  const skin = SKIN_TONES[at.skinTone % SKIN_TONES.length];
  const hair = HAIR_COLORS[at.hairColor ?? 'brown'];
  const trousers = female ? skin : TROUSER_COLORS[at.secondary % TROUSER_COLORS.length];
  const shoes = female
    ? SHOE_COLORS[at.secondary % SHOE_COLORS.length]
    : SHOE_COLORS[(at.secondary + 1) % SHOE_COLORS.length];
  const longHair = female && !(className === 'woman' && at.variant === 1);
  const front = g.orientation === 'front';
  const back = g.orientation === 'back';
  const side = !front && !back;
  const soft = realistic ? 0.9 : 1; // realistic: parts separated by shading instead of outlines

  if (front && longHair) drawHairBehind(pen, g, a, hair);
  // boys in shorts when their trouser index is even
  const lower = !female && child && at.secondary % 2 === 0 ? skin : trousers;
  if (g.far) {
    drawArm(pen, g, g.far, main, skin, at.longSleeves, 0.78);
    drawLeg(pen, g, g.far, trousers, shoes, 0.78, lower);
  }
  for (const s of SIDES) if (s !== g.far) drawLeg(pen, g, s, trousers, shoes, 1, lower);

  const frame = torsoFrame(g);
  if (female) drawSkirt(pen, g, frame, shade(main, soft));
  else {
    pen.part();
    pen.color(TROUSER_COLORS[at.secondary % TROUSER_COLORS.length]);
    pen.capsule(P[K.right_hip][0], P[K.right_hip][1], P[K.left_hip][0], P[K.left_hip][1], pr.legR * 1.15);
  }
  // torso
  pen.part();
  pen.color(main);
  const { neck, hip, n, top, bottom } = frame;
  pen.polygon([
    neck[0] + n[0] * top,
    neck[1] + n[1] * top,
    neck[0] - n[0] * top,
    neck[1] - n[1] * top,
    hip[0] - n[0] * bottom,
    hip[1] - n[1] * bottom,
    hip[0] + n[0] * bottom,
    hip[1] + n[1] * bottom,
  ]);
  // shoulders rounded
  const sr = Math.min(top, pr.armR * 1.5);
  pen.circle(neck[0] + n[0] * (top - sr * 0.6), neck[1] + n[1] * (top - sr * 0.6) + sr * 0.5, sr);
  pen.circle(neck[0] - n[0] * (top - sr * 0.6), neck[1] - n[1] * (top - sr * 0.6) + sr * 0.5, sr);
  if (!female && front) {
    // belt
    pen.part(false);
    pen.color(shade(trousers, 0.7));
    pen.capsule(
      hip[0] + n[0] * bottom * 0.92,
      hip[1] - 0.012,
      hip[0] - n[0] * bottom * 0.92,
      hip[1] - 0.012,
      0.012,
    );
  }
  if (back && longHair) drawHairBehind(pen, g, a, hair);
  if (side && longHair) drawHairBehind(pen, g, a, hair);
  for (const s of SIDES) if (s !== g.far) drawArm(pen, g, s, shade(main, soft), skin, at.longSleeves, 1);
  if (at.scarf) drawScarf(pen, g, COLORS[at.scarf]);
  // neck
  pen.part();
  pen.color(shade(skin, 0.92));
  pen.capsule(neck[0], neck[1], g.head[0], g.head[1], pr.armR * 0.95);
  drawHead(pen, g, a, skin, hair);
}

function drawLeg(pen: Pen, g: Geometry, s: Side, color: Rgb, shoes: Rgb, f: number, lower: Rgb): void {
  const P = g.points;
  const [h, k, an] = leg(s);
  const r = g.pr.legR;
  pen.part();
  pen.color(shade(lower, f));
  pen.capsule(P[k][0], P[k][1], P[an][0], P[an][1], r * 0.95, r * 0.85);
  pen.color(shade(color, f));
  pen.capsule(P[h][0], P[h][1], P[k][0], P[k][1], r, lower === color ? r * 0.95 : r * 1.05);
  pen.part();
  pen.color(shade(shoes, f));
  if (g.dir === 0) pen.ellipse(P[an][0], P[an][1] + r * 0.35, r * 1.15, r * 0.72);
  else pen.ellipse(P[an][0] + g.dir * r * 0.75, P[an][1] + r * 0.35, r * 1.55, r * 0.7);
}

function drawArm(
  pen: Pen,
  g: Geometry,
  s: Side,
  sleeve: Rgb,
  skin: Rgb,
  longSleeves: boolean,
  f: number,
): void {
  const P = g.points;
  const [sh, el, wr] = arm(s);
  const r = g.pr.armR;
  pen.part();
  const handDir = unit(sub(P[wr], P[el]));
  pen.color(shade(longSleeves ? sleeve : skin, f));
  pen.capsule(P[el][0], P[el][1], P[wr][0], P[wr][1], r * 0.95, r * 0.85);
  pen.color(shade(skin, f));
  pen.circle(P[wr][0] + handDir[0] * r * 0.7, P[wr][1] + handDir[1] * r * 0.7, r * 1.2);
  pen.color(shade(sleeve, f));
  pen.capsule(P[sh][0], P[sh][1], P[el][0], P[el][1], r * 1.12, r * 1.02);
}

function drawSkirt(pen: Pen, g: Geometry, frame: ReturnType<typeof torsoFrame>, color: Rgb): void {
  const P = g.points;
  const { hip, n, u, bottom } = frame;
  const topY = 0.035;
  const tA: P = [hip[0] + n[0] * bottom + u[0] * topY, hip[1] + n[1] * bottom + u[1] * topY];
  const tB: P = [hip[0] - n[0] * bottom + u[0] * topY, hip[1] - n[1] * bottom + u[1] * topY];
  const kA = P[K.right_knee];
  const kB = P[K.left_knee];
  const flare = 0.06;
  const hem = (kn: P, other: P): P => {
    const away = Math.sign(kn[0] - other[0]) || (kn === kA ? -1 : 1);
    let y = Math.max(kn[1] + 0.03, hip[1] + 0.16);
    if (g.dir !== 0) y = Math.max(kn[1] + 0.04, hip[1] + 0.12);
    return [kn[0] + away * flare, y];
  };
  let hA = hem(kA, kB);
  let hB = hem(kB, kA);
  if (g.dir === 0) {
    // keep a minimum flare in front/back views
    const cx = (hA[0] + hB[0]) / 2;
    const half = Math.max(Math.abs(hA[0] - hB[0]) / 2, bottom * 1.7);
    const left = Math.min(hA[0], hB[0]) === hA[0];
    hA = [cx + (left ? -half : half), hA[1]];
    hB = [cx + (left ? half : -half), hB[1]];
  } else {
    // side view: the hem spans the knees plus the flare both ways
    const xs = [kA[0], kB[0], hip[0]];
    const lo = Math.min(...xs) - flare;
    const hi = Math.max(...xs) + flare;
    const y = Math.max(hA[1], hB[1]);
    hA = [lo, y];
    hB = [hi, y];
  }
  // order corners so the quadrilateral does not self-intersect
  const topLeft = tA[0] <= tB[0] ? tA : tB;
  const topRight = tA[0] <= tB[0] ? tB : tA;
  const botLeft = hA[0] <= hB[0] ? hA : hB;
  const botRight = hA[0] <= hB[0] ? hB : hA;
  pen.part();
  pen.color(color);
  pen.polygon([
    topLeft[0],
    topLeft[1],
    topRight[0],
    topRight[1],
    botRight[0],
    botRight[1],
    botLeft[0],
    botLeft[1],
  ]);
}

function drawHairBehind(pen: Pen, g: Geometry, a: Appearance, hair: Rgb): void {
  const [cx, cy] = g.head;
  const r = g.headR;
  const { className, attributes } = a;
  const v = attributes.variant;
  pen.part();
  pen.color(shade(hair, 0.9));
  const ponytail = v === 2;
  const pigtails = className === 'girl' && v === 0;
  if (g.dir === 0) {
    if (ponytail) {
      const m = g.orientation === 'front' ? 1 : -1;
      pen.ellipse(cx + m * 0.9 * r, cy + 0.5 * r, 0.38 * r, 0.75 * r, -0.4 * m);
    } else if (pigtails) {
      pen.circle(cx - 1.1 * r, cy + 0.2 * r, 0.42 * r);
      pen.circle(cx + 1.1 * r, cy + 0.2 * r, 0.42 * r);
      pen.capsule(cx - 1.15 * r, cy + 0.4 * r, cx - 1.2 * r, cy + 1.0 * r, 0.25 * r, 0.15 * r);
      pen.capsule(cx + 1.15 * r, cy + 0.4 * r, cx + 1.2 * r, cy + 1.0 * r, 0.25 * r, 0.15 * r);
    } else {
      const bottom = cy + (className === 'girl' ? 1.35 : 1.7) * r;
      pen.polygon([
        cx - 1.08 * r,
        cy - 0.2 * r,
        cx + 1.08 * r,
        cy - 0.2 * r,
        cx + 1.18 * r,
        bottom,
        cx - 1.18 * r,
        bottom,
      ]);
    }
  } else {
    const d = g.dir;
    if (ponytail) pen.ellipse(cx - d * 1.05 * r, cy + 0.25 * r, 0.35 * r, 0.7 * r, d * 0.5);
    else if (pigtails) {
      pen.circle(cx - d * 0.95 * r, cy + 0.25 * r, 0.42 * r);
      pen.capsule(cx - d * 1.0 * r, cy + 0.4 * r, cx - d * 1.05 * r, cy + 1.0 * r, 0.25 * r, 0.15 * r);
    } else {
      const bottom = cy + (className === 'girl' ? 1.3 : 1.6) * r;
      pen.polygon([
        cx - d * 0.2 * r,
        cy - 0.6 * r,
        cx - d * 1.02 * r,
        cy - 0.2 * r,
        cx - d * 1.12 * r,
        bottom,
        cx + d * 0.05 * r,
        bottom,
      ]);
    }
  }
}

function drawHead(pen: Pen, g: Geometry, a: Appearance, skin: Rgb, hair: Rgb): void {
  const [cx, cy] = g.head;
  const r = g.headR;
  const { className, attributes: at } = a;
  const realistic = at.style === 'realistic';
  const male = className === 'man' || className === 'boy';
  const bob = className === 'woman' && at.variant === 1;
  const P = g.points;
  const d = g.dir;
  const dark: Rgb = [30, 26, 30];

  // skull
  pen.part();
  pen.color(skin);
  pen.circle(cx, cy, r);
  // hair mass
  pen.part();
  pen.color(hair);
  if (g.orientation === 'back') {
    pen.circle(cx, cy - 0.02 * r, r * 1.04);
    if (bob) pen.rect(cx - 1.08 * r, cy - 0.2 * r, cx + 1.08 * r, cy + 0.75 * r);
    if (male) {
      pen.part();
      pen.color(skin);
      pen.ellipse(cx - 0.98 * r, cy + 0.08 * r, 0.16 * r, 0.24 * r);
      pen.ellipse(cx + 0.98 * r, cy + 0.08 * r, 0.16 * r, 0.24 * r);
    }
    drawHat(pen, g, at);
    return;
  }
  if (d === 0) {
    pen.circle(cx, cy - 0.04 * r, r * 1.05);
    if (bob) pen.rect(cx - 1.1 * r, cy - 0.3 * r, cx + 1.1 * r, cy + 0.75 * r);
    if (male && at.variant === 1) {
      for (let i = -2; i <= 2; i++) {
        const x = cx + i * 0.38 * r;
        pen.polygon([
          x - 0.28 * r,
          cy - 0.75 * r,
          x + 0.28 * r,
          cy - 0.75 * r,
          x + i * 0.05 * r,
          cy - 1.32 * r,
        ]);
      }
    }
    // face
    pen.part();
    pen.color(skin);
    if (male && at.variant === 2) pen.ellipse(cx + 0.12 * r, cy + 0.2 * r, 0.9 * r, 0.8 * r);
    else pen.ellipse(cx, cy + (male ? 0.2 : 0.26) * r, 0.9 * r, male ? 0.8 * r : 0.74 * r);
    // ears
    if (male) {
      pen.ellipse(cx - 0.98 * r, cy + 0.1 * r, 0.16 * r, 0.24 * r);
      pen.ellipse(cx + 0.98 * r, cy + 0.1 * r, 0.16 * r, 0.24 * r);
    }
    // features
    pen.part(false);
    const eyeR = realistic ? 0.085 * r : 0.12 * r;
    for (const j of [K.right_eye, K.left_eye]) {
      pen.color(dark);
      pen.ellipse(P[j][0], P[j][1], eyeR, eyeR * 1.35);
      if (!realistic) {
        pen.color([255, 255, 255]);
        pen.circle(P[j][0] + eyeR * 0.35, P[j][1] - eyeR * 0.45, eyeR * 0.4);
      }
    }
    if (realistic) {
      pen.color(shade(hair, 0.8));
      pen.capsule(
        P[K.right_eye][0] - 0.14 * r,
        P[K.right_eye][1] - 0.24 * r,
        P[K.right_eye][0] + 0.12 * r,
        P[K.right_eye][1] - 0.27 * r,
        0.045 * r,
      );
      pen.capsule(
        P[K.left_eye][0] - 0.12 * r,
        P[K.left_eye][1] - 0.27 * r,
        P[K.left_eye][0] + 0.14 * r,
        P[K.left_eye][1] - 0.24 * r,
        0.045 * r,
      );
      pen.color(shade(skin, 0.78));
      pen.capsule(cx, cy + 0.05 * r, cx + 0.04 * r, cy + 0.3 * r, 0.05 * r);
      pen.color([170, 70, 70]);
      pen.capsule(cx - 0.2 * r, cy + 0.52 * r, cx + 0.2 * r, cy + 0.52 * r, 0.05 * r);
    } else {
      pen.color([120, 40, 40]);
      pen.polyline([cx - 0.26 * r, cy + 0.46 * r, cx, cy + 0.6 * r, cx + 0.26 * r, cy + 0.46 * r], 0.06 * r);
      if (!male) {
        pen.color(mix(skin, [240, 110, 120], 0.45));
        pen.circle(cx - 0.56 * r, cy + 0.36 * r, 0.14 * r);
        pen.circle(cx + 0.56 * r, cy + 0.36 * r, 0.14 * r);
      }
    }
    if (at.glasses) drawGlasses(pen, g, skin);
    drawHat(pen, g, at);
    return;
  }
  // side view
  pen.circle(cx - d * 0.03 * r, cy - 0.04 * r, r * 1.04);
  if (bob) pen.rect(cx - d * 1.08 * r, cy - 0.3 * r, cx + d * 0.2 * r, cy + 0.75 * r);
  if (male && at.variant === 1) {
    for (let i = -1; i <= 2; i++) {
      const x = cx - d * i * 0.35 * r;
      pen.polygon([x - 0.25 * r, cy - 0.78 * r, x + 0.25 * r, cy - 0.78 * r, x - d * 0.25 * r, cy - 1.3 * r]);
    }
  }
  pen.part();
  pen.color(skin);
  pen.ellipse(cx + d * 0.3 * r, cy + 0.22 * r, 0.74 * r, 0.76 * r);
  pen.circle(cx + d * 0.97 * r, cy + 0.14 * r, 0.15 * r); // nose
  if (male) pen.ellipse(P[d > 0 ? K.right_ear : K.left_ear][0], cy + 0.08 * r, 0.17 * r, 0.25 * r);
  pen.part(false);
  const eye = P[d > 0 ? K.right_eye : K.left_eye];
  const eyeR = realistic ? 0.085 * r : 0.12 * r;
  pen.color(dark);
  pen.ellipse(eye[0], eye[1], eyeR, eyeR * 1.35);
  pen.color(realistic ? [170, 70, 70] : [120, 40, 40]);
  pen.capsule(cx + d * 0.55 * r, cy + 0.52 * r, cx + d * 0.78 * r, cy + 0.48 * r, 0.055 * r);
  if (!male && !realistic) {
    pen.color(mix(skin, [240, 110, 120], 0.45));
    pen.circle(cx + d * 0.4 * r, cy + 0.36 * r, 0.13 * r);
  }
  if (at.glasses) drawGlasses(pen, g, skin);
  drawHat(pen, g, at);
}

function drawGlasses(pen: Pen, g: Geometry, skin: Rgb): void {
  const P = g.points;
  const r = g.headR;
  const frame: Rgb = [24, 24, 28];
  const lens = mix(skin, GLASS, 0.55);
  const eyes = g.dir === 0 ? [K.right_eye, K.left_eye] : [g.dir > 0 ? K.right_eye : K.left_eye];
  pen.part(false);
  for (const j of eyes) {
    pen.color(frame);
    pen.circle(P[j][0], P[j][1], 0.3 * r);
  }
  if (g.dir === 0)
    pen.capsule(P[K.right_eye][0], P[K.right_eye][1], P[K.left_eye][0], P[K.left_eye][1], 0.06 * r);
  else pen.capsule(P[eyes[0]][0], P[eyes[0]][1], g.head[0] - g.dir * 0.2 * r, g.head[1], 0.06 * r);
  for (const j of eyes) {
    pen.color(lens);
    pen.circle(P[j][0], P[j][1], 0.2 * r);
    pen.color([30, 26, 30]);
    pen.circle(P[j][0], P[j][1], 0.09 * r);
  }
}

function drawHat(pen: Pen, g: Geometry, at: SubjectAttributes): void {
  if (!at.hat) return;
  const [cx, cy] = g.head;
  const r = g.headR;
  const c = COLORS[at.hat];
  const shift = g.dir * 0.15 * r;
  pen.part();
  pen.color(c);
  pen.polygon([
    cx - 0.78 * r,
    cy - 0.6 * r,
    cx - 0.7 * r,
    cy - 1.38 * r,
    cx + 0.7 * r,
    cy - 1.38 * r,
    cx + 0.78 * r,
    cy - 0.6 * r,
  ]);
  pen.color(shade(c, 0.6));
  pen.rect(cx - 0.78 * r, cy - 0.82 * r, cx + 0.78 * r, cy - 0.64 * r);
  pen.part();
  pen.color(c);
  pen.ellipse(cx + shift, cy - 0.62 * r, 1.42 * r, 0.2 * r);
}

function drawScarf(pen: Pen, g: Geometry, color: Rgb): void {
  const neck = g.points[K.neck];
  const w = g.orientation === 'front' || g.orientation === 'back' ? 0.075 : 0.05;
  const r = 0.032;
  pen.part();
  pen.color(color);
  pen.capsule(neck[0] - w, neck[1] + 0.005, neck[0] + w, neck[1] + 0.005, r);
  if (g.orientation === 'front') {
    pen.capsule(neck[0] + 0.035, neck[1] + 0.01, neck[0] + 0.045, neck[1] + 0.17, r * 0.8, r * 0.75);
    pen.color(shade(color, 0.75));
    pen.rect(neck[0] + 0.02, neck[1] + 0.13, neck[0] + 0.07, neck[1] + 0.145);
  } else if (g.dir !== 0) {
    pen.capsule(
      neck[0] - g.dir * 0.03,
      neck[1] + 0.01,
      neck[0] - g.dir * 0.09,
      neck[1] + 0.13,
      r * 0.8,
      r * 0.7,
    );
  }
}

function drawSeat(pen: Pen, g: Geometry): void {
  const P = g.points;
  const hip = mid(P[K.right_hip], P[K.left_hip]);
  const top = hip[1] + g.pr.legR * 0.9;
  const stone: Rgb = [146, 146, 152];
  const [x0, x1] =
    g.dir === 0 ? [hip[0] - 0.17, hip[0] + 0.17] : [hip[0] - g.dir * 0.14, hip[0] + g.dir * 0.13];
  pen.part(false);
  pen.color(shade(stone, 0.8));
  pen.rect(Math.min(x0, x1), top, Math.max(x0, x1), 0);
  pen.color(stone);
  pen.rect(Math.min(x0, x1), top, Math.max(x0, x1), top + 0.035);
}

// ---------------------------------------------------------------------------------------------------------
// Robot
// ---------------------------------------------------------------------------------------------------------

const ROBOT_METAL: readonly Rgb[] = [
  [160, 166, 176],
  [110, 116, 128],
  [196, 176, 120],
];

function drawRobot(pen: Pen, g: Geometry, a: Appearance): void {
  const P = g.points;
  const at = a.attributes;
  const main = COLORS[a.color];
  const metal = ROBOT_METAL[at.secondary % ROBOT_METAL.length];
  const joint = shade(metal, 0.65);
  const limbR = 0.026;
  const legR = 0.032;
  const limb = (j: [number, number, number], r: number, f: number, foot: boolean): void => {
    pen.part();
    pen.color(shade(metal, f));
    pen.capsule(P[j[0]][0], P[j[0]][1], P[j[1]][0], P[j[1]][1], r);
    pen.capsule(P[j[1]][0], P[j[1]][1], P[j[2]][0], P[j[2]][1], r);
    pen.color(shade(joint, f));
    pen.circle(P[j[1]][0], P[j[1]][1], r * 1.35);
    const end = P[j[2]];
    if (foot) {
      pen.color(shade(main, f * 0.8));
      const fw = g.dir === 0 ? 0.055 : 0.07;
      const fx = end[0] + g.dir * 0.025;
      pen.rect(fx - fw, end[1] - 0.03, fx + fw, end[1] + 0.025);
    } else {
      pen.color(shade(joint, f));
      pen.circle(end[0], end[1], r * 1.5);
    }
  };
  if (g.far) {
    limb(arm(g.far), limbR, 0.75, false);
    limb(leg(g.far), legR, 0.75, true);
  }
  for (const s of SIDES) if (s !== g.far) limb(leg(s), legR, 1, true);
  // hips block
  pen.part();
  pen.color(shade(metal, 0.85));
  pen.capsule(P[K.right_hip][0], P[K.right_hip][1], P[K.left_hip][0], P[K.left_hip][1], 0.045);
  // torso box
  const { neck, hip, n, u, top, bottom } = torsoFrame(g, 0.025, 0.035);
  const w = Math.max(top, bottom);
  const t0: P = add(neck, u, -0.02);
  const b0: P = add(hip, u, 0.04);
  pen.part();
  pen.color(main);
  pen.polygon([
    t0[0] + n[0] * w,
    t0[1] + n[1] * w,
    t0[0] - n[0] * w,
    t0[1] - n[1] * w,
    b0[0] - n[0] * w,
    b0[1] - n[1] * w,
    b0[0] + n[0] * w,
    b0[1] + n[1] * w,
  ]);
  if (g.orientation !== 'back') {
    // chest panel and lights
    pen.part(false);
    const c = mid(t0, b0);
    const pw = g.dir === 0 ? w * 0.55 : w * 0.45;
    const px = c[0] + g.dir * w * 0.15;
    pen.color(shade(main, 0.7));
    pen.rect(px - pw, c[1] - 0.07, px + pw, c[1] + 0.05);
    pen.color([250, 230, 90]);
    pen.circle(px - pw * 0.45, c[1] - 0.02, 0.018);
    pen.color([90, 230, 120]);
    pen.circle(px + pw * 0.45, c[1] - 0.02, 0.018);
  }
  for (const s of SIDES) {
    if (s === g.far) continue;
    limb(arm(s), limbR, 1, false);
    pen.part();
    pen.color(shade(main, 0.85));
    const sh = P[arm(s)[0]];
    pen.circle(sh[0], sh[1] + 0.01, 0.04);
  }
  // neck
  pen.part();
  pen.color(joint);
  pen.capsule(neck[0], neck[1], g.head[0], g.head[1], 0.025);
  // antenna
  const [cx, cy] = g.head;
  const h = g.headR;
  pen.part();
  pen.color(joint);
  if (at.variant === 1) {
    pen.capsule(cx - 0.5 * h, cy - h, cx - 0.75 * h, cy - 1.75 * h, 0.012);
    pen.capsule(cx + 0.5 * h, cy - h, cx + 0.75 * h, cy - 1.75 * h, 0.012);
    pen.color([230, 60, 60]);
    pen.circle(cx - 0.75 * h, cy - 1.75 * h, 0.025);
    pen.circle(cx + 0.75 * h, cy - 1.75 * h, 0.025);
  } else {
    pen.capsule(cx, cy - h, cx, cy - 1.7 * h, 0.013);
    pen.color([230, 60, 60]);
    pen.circle(cx, cy - 1.75 * h, 0.03);
  }
  // head box
  pen.part();
  pen.color(main);
  const hw = g.dir === 0 ? h : h * 0.85;
  if (at.variant === 2) {
    pen.rect(cx - hw, cy - 0.35 * h, cx + hw, cy + 0.9 * h);
    pen.ellipse(cx, cy - 0.35 * h, hw, 0.7 * h);
  } else pen.rect(cx - hw, cy - h, cx + hw, cy + 0.9 * h);
  // ear bolts
  pen.color(joint);
  if (g.dir === 0) {
    pen.rect(cx - hw - 0.025, cy - 0.2 * h, cx - hw, cy + 0.35 * h);
    pen.rect(cx + hw, cy - 0.2 * h, cx + hw + 0.025, cy + 0.35 * h);
  } else pen.circle(cx - g.dir * 0.2 * h, cy + 0.1 * h, 0.3 * h);
  if (g.orientation === 'back') return;
  pen.part(false);
  pen.color([28, 34, 48]);
  const vx0 = g.dir === 0 ? cx - 0.78 * h : cx + g.dir * 0.1 * h;
  const vx1 = g.dir === 0 ? cx + 0.78 * h : cx + g.dir * (hw + 0.001);
  pen.rect(Math.min(vx0, vx1), cy - 0.4 * h, Math.max(vx0, vx1), cy + 0.25 * h);
  pen.color([90, 230, 250]);
  const eyes = g.dir === 0 ? [P[K.right_eye], P[K.left_eye]] : [P[g.dir > 0 ? K.right_eye : K.left_eye]];
  for (const e of eyes) pen.circle(e[0], cy - 0.08 * h, 0.17 * h);
  pen.color(shade(main, 0.6));
  const mx = g.dir === 0 ? cx : cx + g.dir * 0.55 * h;
  pen.rect(mx - 0.3 * h, cy + 0.5 * h, mx + 0.3 * h, cy + 0.62 * h);
}
