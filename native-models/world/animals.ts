/**
 * Cats and dogs: four-legged cartoon shapes in side view (facing right; the scene mirrors them for
 * `left`), front view and back view, standing, walking, running or sitting.
 *
 * What tells them apart at a glance: a cat has pointed upright ears, a small round head with whiskers, a
 * slim body and a long thin tail curving up; a dog has a snout with a black nose, floppy ears in a
 * darker shade, thicker legs, a bigger body and a short tail.
 *
 * Local units: the animal's height (ear tips near y = -1), ground at y = 0, body centred on x = 0.
 *
 * @example
 * ```ts
 * const draw = animalDrawer({ className: 'cat', color: 'black', attributes }, 'sitting', 'front');
 * draw(new CanvasPen(canvas, 64, 120, 60)); // 60 px tall
 * ```
 */
import type { PoseTemplateName } from '../pose/openpose.js';
import type { Appearance } from './characters.js';
import type { Orientation } from './classes.js';
import { COLORS, contrastTint, mix, shade } from './palette.js';
import type { Pen, Rgb } from './raster.js';

interface Colors {
  fur: Rgb;
  dark: Rgb;
  light: Rgb;
  nose: Rgb;
}

function furColors(a: Appearance): Colors {
  const fur = COLORS[a.color];
  const light = a.color === 'white' ? ([255, 250, 244] as Rgb) : mix(fur, [255, 245, 235], 0.55);
  const dark = contrastTint(fur, 0.35);
  const nose: Rgb = a.className === 'cat' ? [236, 130, 150] : [26, 22, 24];
  return { fur, dark, light, nose };
}

/**
 * A function drawing a cat or dog (class from `appearance`) in local units; side views face right.
 * Poses other than standing, walking, running and sitting are drawn standing.
 *
 * @example
 * ```ts
 * animalDrawer(appearance, 'running', 'right')(pen);
 * ```
 */
export function animalDrawer(
  appearance: Appearance,
  pose: PoseTemplateName,
  orientation: Orientation,
): (pen: Pen) => void {
  const cat = appearance.className === 'cat';
  if (orientation === 'front' || orientation === 'back') {
    return (pen) => drawFront(pen, appearance, pose, orientation === 'back', cat);
  }
  return (pen) => drawSide(pen, appearance, pose, cat);
}

interface Leg {
  hip: [number, number];
  foot: [number, number];
}

function drawSide(pen: Pen, a: Appearance, pose: PoseTemplateName, cat: boolean): void {
  const c = furColors(a);
  const v = a.attributes.variant;
  const sitting = pose === 'sitting';
  const running = pose === 'running';
  const walking = pose === 'walking';
  const legR = cat ? 0.05 : 0.068;
  const bodyY = cat ? -0.42 : -0.5;
  const bodyRx = cat ? 0.4 : 0.42;
  const bodyRy = cat ? 0.16 : 0.19;
  const headR = cat ? 0.2 : 0.19;
  const legX = cat ? 0.26 : 0.27;
  let head: [number, number] = cat ? [0.42, -0.66] : [0.45, -0.79];

  if (sitting) {
    head = cat ? [0.2, -0.76] : [0.22, -0.79];
    // tail on the ground
    pen.part();
    pen.color(c.fur);
    if (cat) pen.polyline([-0.2, -0.1, -0.28, -0.03, -0.05, -0.025, 0.15, -0.04], 0.035);
    else pen.polyline([-0.22, -0.12, -0.36, -0.2, -0.42, -0.3], 0.035);
    // far front leg
    pen.part();
    pen.color(shade(c.fur, 0.78));
    pen.capsule(0.2, -0.42, 0.24, -0.02, legR * 0.9);
    // body leaning up
    pen.part();
    pen.color(c.fur);
    pen.ellipse(0.02, -0.36, cat ? 0.3 : 0.33, cat ? 0.17 : 0.2, -1.0);
    if (v === 2 || !cat) {
      pen.part(false);
      pen.color(c.light);
      pen.ellipse(0.14, -0.45, 0.07, 0.16, -0.3);
    }
    drawSpots(pen, a, cat, [
      [-0.02, -0.42],
      [-0.08, -0.3],
    ]);
    // haunch and hind paw
    pen.part();
    pen.color(c.fur);
    pen.ellipse(-0.1, -0.17, 0.17, 0.15);
    pen.ellipse(0.02, -0.035, 0.1, 0.04);
    // near front leg
    pen.part();
    pen.capsule(0.16, -0.42, 0.18, -0.02, legR);
    pen.ellipse(0.21, -0.03, legR * 1.3, 0.035);
  } else {
    const lift = running ? -0.06 : 0;
    const stretch = running ? 0.05 : 0;
    const by = bodyY + lift;
    const swing = walking ? 0.08 : 0;
    const far: Leg[] = [
      { hip: [legX + 0.04, by + 0.04], foot: running ? [legX + 0.26, -0.1] : [legX + 0.04 - swing, 0] },
      { hip: [-legX + 0.04, by + 0.04], foot: running ? [-legX - 0.22, -0.06] : [-legX + 0.04 + swing, 0] },
    ];
    const near: Leg[] = [
      { hip: [legX, by + 0.04], foot: running ? [legX + 0.2, -0.04] : [legX + swing, 0] },
      { hip: [-legX, by + 0.04], foot: running ? [-legX - 0.28, -0.1] : [-legX - swing, 0] },
    ];
    // tail
    pen.part();
    pen.color(c.fur);
    const tx = -bodyRx - stretch + 0.04;
    if (cat) {
      if (running) pen.polyline([tx, by - 0.03, tx - 0.18, by - 0.1, tx - 0.32, by - 0.08], 0.035);
      else
        pen.polyline([tx, by - 0.03, tx - 0.13, by - 0.12, tx - 0.18, by - 0.32, tx - 0.1, by - 0.48], 0.035);
    } else {
      pen.capsule(tx, by - 0.06, tx - 0.12, by - 0.3, 0.045, 0.03);
    }
    for (const l of far) drawLeg(pen, l, legR, shade(c.fur, 0.78));
    // body
    pen.part();
    pen.color(c.fur);
    pen.ellipse(0, by, bodyRx + stretch, bodyRy);
    if (cat && v === 1) {
      pen.part(false);
      pen.color(c.dark);
      for (const x of [-0.22, -0.08, 0.06, 0.2])
        pen.capsule(x, by - bodyRy * 0.95, x - 0.03, by - bodyRy * 0.2, 0.025);
    }
    if ((cat && v === 2) || !cat) {
      pen.part(false);
      pen.color(c.light);
      pen.ellipse(0.12, by + bodyRy * 0.55, bodyRx * 0.55, bodyRy * 0.38);
    }
    drawSpots(pen, a, cat, [
      [-0.15, by - 0.05],
      [0.12, by - 0.08],
      [-0.02, by + 0.05],
    ]);
    for (const l of near) drawLeg(pen, l, legR, c.fur);
    head = [head[0] + stretch, head[1] + lift + (running ? 0.06 : 0)];
  }
  drawSideHead(pen, a, c, head, headR, cat, running);
}

function drawLeg(pen: Pen, l: Leg, r: number, color: Rgb): void {
  pen.part();
  pen.color(color);
  pen.capsule(l.hip[0], l.hip[1], l.foot[0], l.foot[1], r * 1.1, r * 0.9);
  pen.ellipse(l.foot[0] + r * 0.35, l.foot[1] - r * 0.55, r * 1.2, r * 0.62);
}

function drawSpots(pen: Pen, a: Appearance, cat: boolean, at: readonly [number, number][]): void {
  if (cat || a.attributes.variant !== 1) return;
  pen.part(false);
  pen.color(contrastTint(COLORS[a.color], 0.45));
  at.forEach(([x, y], i) => pen.ellipse(x, y, 0.07 + 0.02 * (i % 2), 0.055));
}

function drawSideHead(
  pen: Pen,
  a: Appearance,
  c: Colors,
  [hx, hy]: [number, number],
  r: number,
  cat: boolean,
  running: boolean,
): void {
  const v = a.attributes.variant;
  if (cat) {
    // ears
    pen.part();
    pen.color(c.fur);
    pen.polygon([hx - 0.16, hy - 0.08, hx - 0.12, hy - 0.34, hx - 0.01, hy - 0.17]);
    pen.polygon([hx + 0.01, hy - 0.18, hx + 0.12, hy - 0.33, hx + 0.17, hy - 0.1]);
    pen.part(false);
    pen.color([236, 150, 170]);
    pen.polygon([hx + 0.04, hy - 0.18, hx + 0.11, hy - 0.27, hx + 0.13, hy - 0.13]);
  } else {
    // far ear
    pen.part();
    pen.color(shade(c.dark, 0.85));
    pen.ellipse(hx - 0.02, hy + 0.02, 0.06, v === 2 ? 0.2 : 0.15, 0.2);
  }
  pen.part();
  pen.color(c.fur);
  pen.circle(hx, hy, r);
  if (!cat) {
    // snout
    pen.ellipse(hx + 0.17, hy + 0.06, 0.14, 0.09);
    pen.part(false);
    pen.color(c.light);
    pen.ellipse(hx + 0.2, hy + 0.09, 0.1, 0.055);
    pen.color(c.nose);
    pen.circle(hx + 0.3, hy + 0.03, 0.042);
    if (running) {
      pen.color([236, 100, 120]);
      pen.ellipse(hx + 0.19, hy + 0.17, 0.035, 0.05);
    }
    pen.color([26, 22, 24]);
    pen.circle(hx + 0.07, hy - 0.06, 0.032);
    pen.color([255, 255, 255]);
    pen.circle(hx + 0.08, hy - 0.07, 0.011);
    // near ear, floppy
    pen.part();
    pen.color(c.dark);
    pen.ellipse(hx - 0.09, hy + 0.03, 0.065, v === 2 ? 0.21 : 0.16, 0.25);
  } else {
    pen.part(false);
    pen.color(c.light);
    pen.ellipse(hx + 0.13, hy + 0.08, 0.08, 0.06);
    pen.color(c.nose);
    pen.polygon([hx + 0.17, hy + 0.01, hx + 0.21, hy + 0.02, hx + 0.18, hy + 0.06]);
    // eye: almond with slit pupil
    pen.color([150, 210, 70]);
    pen.ellipse(hx + 0.08, hy - 0.04, 0.045, 0.055);
    pen.color([20, 20, 20]);
    pen.ellipse(hx + 0.09, hy - 0.04, 0.015, 0.05);
    // whiskers
    pen.color(a.color === 'white' ? [90, 90, 90] : [238, 238, 238]);
    pen.capsule(hx + 0.14, hy + 0.09, hx + 0.32, hy + 0.05, 0.009);
    pen.capsule(hx + 0.14, hy + 0.1, hx + 0.32, hy + 0.13, 0.009);
  }
  if (a.attributes.collar) {
    pen.part();
    pen.color(COLORS[a.attributes.collar]);
    pen.capsule(hx - 0.08, hy + r * 0.75, hx + 0.02, hy + r * 1.05, 0.03);
  }
}

function drawFront(pen: Pen, a: Appearance, pose: PoseTemplateName, back: boolean, cat: boolean): void {
  const c = furColors(a);
  const v = a.attributes.variant;
  const sitting = pose === 'sitting';
  const step = pose === 'walking' ? 0.03 : pose === 'running' ? 0.06 : 0;
  const legR = cat ? 0.055 : 0.07;
  const bodyRx = cat ? 0.24 : 0.27;
  const bodyRy = sitting ? 0.32 : 0.26;
  const bodyY = sitting ? -0.36 : -0.42;
  const headY = cat ? -0.72 : -0.74;
  const headR = cat ? 0.23 : 0.24;
  // tail
  pen.part();
  pen.color(c.fur);
  if (back) {
    if (cat) pen.polyline([0, bodyY + 0.1, 0.05, bodyY - 0.15, 0.0, bodyY - 0.35, 0.08, bodyY - 0.45], 0.035);
    else pen.capsule(0, bodyY + 0.05, 0.04, bodyY - 0.22, 0.045, 0.03);
  } else if (cat) pen.polyline([0.15, -0.06, 0.32, -0.1, 0.36, -0.3, 0.3, -0.45], 0.035);
  else pen.capsule(0.2, bodyY + 0.05, 0.34, bodyY - 0.12, 0.04, 0.028);
  if (!sitting) {
    // hind legs peeking out
    pen.part();
    pen.color(shade(c.fur, 0.78));
    pen.capsule(-0.15, bodyY + 0.1, -0.17, -0.02, legR);
    pen.capsule(0.15, bodyY + 0.1, 0.17, -0.02, legR);
  }
  pen.part();
  pen.color(c.fur);
  pen.ellipse(0, bodyY, bodyRx, bodyRy);
  if (!back && (!cat || v === 2)) {
    pen.part(false);
    pen.color(c.light);
    pen.ellipse(0, bodyY - bodyRy * 0.1, bodyRx * 0.5, bodyRy * 0.6);
  }
  if (cat && v === 1) {
    pen.part(false);
    pen.color(c.dark);
    pen.capsule(-bodyRx * 0.9, bodyY - 0.05, -bodyRx * 0.55, bodyY - 0.02, 0.022);
    pen.capsule(bodyRx * 0.9, bodyY - 0.05, bodyRx * 0.55, bodyY - 0.02, 0.022);
  }
  if (!back) drawSpots(pen, a, cat, [[-0.12, bodyY + 0.06]]);
  // front legs
  for (const [x, dy] of [
    [-0.1, -step],
    [0.1, step],
  ] as const) {
    pen.part();
    pen.color(c.fur);
    const fy = Math.min(0, -0.02 + dy);
    pen.capsule(x, bodyY + 0.02, x * 1.05, fy, legR * 1.05, legR * 0.95);
    pen.ellipse(x * 1.05, fy - legR * 0.3, legR * 1.25, legR * 0.7);
  }
  // head
  if (cat) {
    pen.part();
    pen.color(c.fur);
    pen.polygon([-0.21, headY - 0.08, -0.17, headY - 0.33, -0.04, headY - 0.18]);
    pen.polygon([0.21, headY - 0.08, 0.17, headY - 0.33, 0.04, headY - 0.18]);
    if (!back) {
      pen.part(false);
      pen.color([236, 150, 170]);
      pen.polygon([-0.17, headY - 0.12, -0.15, headY - 0.25, -0.08, headY - 0.16]);
      pen.polygon([0.17, headY - 0.12, 0.15, headY - 0.25, 0.08, headY - 0.16]);
    }
  }
  pen.part();
  pen.color(c.fur);
  pen.circle(0, headY, headR);
  if (!cat) {
    // floppy ears hang at the sides
    pen.part();
    pen.color(c.dark);
    const len = v === 2 ? 0.21 : 0.16;
    pen.ellipse(-headR * 0.98, headY + 0.06, 0.07, len, 0.25);
    pen.ellipse(headR * 0.98, headY + 0.06, 0.07, len, -0.25);
  }
  if (a.attributes.collar) {
    pen.part();
    pen.color(COLORS[a.attributes.collar]);
    pen.capsule(-0.12, headY + headR * 0.95, 0.12, headY + headR * 0.95, 0.032);
  }
  if (back) return;
  pen.part(false);
  if (cat) {
    pen.color([150, 210, 70]);
    pen.ellipse(-0.085, headY - 0.03, 0.045, 0.055);
    pen.ellipse(0.085, headY - 0.03, 0.045, 0.055);
    pen.color([20, 20, 20]);
    pen.ellipse(-0.085, headY - 0.03, 0.015, 0.05);
    pen.ellipse(0.085, headY - 0.03, 0.015, 0.05);
    pen.color(c.light);
    pen.ellipse(-0.045, headY + 0.09, 0.06, 0.05);
    pen.ellipse(0.045, headY + 0.09, 0.06, 0.05);
    pen.color(c.nose);
    pen.polygon([-0.03, headY + 0.04, 0.03, headY + 0.04, 0, headY + 0.08]);
    pen.color(a.color === 'white' ? [90, 90, 90] : [238, 238, 238]);
    for (const s of [-1, 1]) {
      pen.capsule(s * 0.08, headY + 0.08, s * 0.3, headY + 0.04, 0.009);
      pen.capsule(s * 0.08, headY + 0.1, s * 0.3, headY + 0.13, 0.009);
    }
  } else {
    pen.color(c.light);
    pen.ellipse(0, headY + 0.1, 0.13, 0.09);
    pen.color(c.nose);
    pen.ellipse(0, headY + 0.05, 0.05, 0.038);
    pen.color([26, 22, 24]);
    pen.circle(-0.09, headY - 0.05, 0.033);
    pen.circle(0.09, headY - 0.05, 0.033);
    pen.color([255, 255, 255]);
    pen.circle(-0.08, headY - 0.06, 0.011);
    pen.circle(0.1, headY - 0.06, 0.011);
    if (pose === 'running' || pose === 'walking') {
      pen.color([236, 100, 120]);
      pen.ellipse(0, headY + 0.17, 0.04, 0.05);
    }
  }
}
