/**
 * Still objects: car, tree, house, lamp, mug and chair, drawn in local units (height 1, ground at y = 0,
 * centred on x = 0; side views face right and the scene mirrors them for `left`).
 *
 * Each is built from the features a person names it by: a car has wheels, windows and lights; a tree a
 * trunk and a crown; a house walls, a roof, a door and windows; a lamp a shade on a stand; a mug a handle
 * and a rim; a chair a seat, a back and legs.
 *
 * @example
 * ```ts
 * const draw = objectDrawer({ className: 'car', color: 'red', attributes }, 'right');
 * draw(new CanvasPen(canvas, 64, 120, 50)); // a car 50 px tall, wheels on the ground at y = 120
 * ```
 */
import type { Appearance } from './characters.js';
import type { Orientation } from './classes.js';
import { COLORS, GLASS, ROOF_COLORS, contrastTint, mix, shade } from './palette.js';
import type { Pen, Rgb } from './raster.js';

const DARK: Rgb = [32, 32, 36];
const WOOD: Rgb = [118, 74, 40];

/**
 * A function drawing a still object in local units.
 *
 * @example
 * ```ts
 * objectDrawer({ className: 'house', color: 'blue', attributes }, 'front')(pen);
 * ```
 */
export function objectDrawer(appearance: Appearance, orientation: Orientation): (pen: Pen) => void {
  switch (appearance.className) {
    case 'car':
      return (pen) => drawCar(pen, appearance);
    case 'tree':
      return (pen) => drawTree(pen, appearance);
    case 'house':
      return (pen) => drawHouse(pen, appearance);
    case 'lamp':
      return (pen) => drawLamp(pen, appearance);
    case 'mug':
      return (pen) => drawMug(pen, appearance);
    case 'chair':
      return (pen) =>
        orientation === 'front' ? drawChairFront(pen, appearance) : drawChairSide(pen, appearance);
    default:
      throw new RangeError(`${appearance.className} is not an object class`);
  }
}

function drawCar(pen: Pen, a: Appearance): void {
  const body = COLORS[a.color];
  const v = a.attributes.variant;
  const w = v === 2 ? 0.8 : 0.95; // half length
  const roof = v === 1 ? -0.95 : -0.9;
  const wheelR = v === 2 ? 0.19 : 0.18;
  const wx = w * 0.6;
  // cabin
  pen.part();
  pen.color(body);
  if (v === 1) pen.polygon([-w + 0.04, -0.5, -w + 0.06, roof, w * 0.35, roof, w * 0.72, -0.5]);
  else pen.polygon([-w * 0.72, -0.5, -w * 0.52, roof, w * 0.28, roof, w * 0.58, -0.5]);
  // windows
  pen.part(false);
  pen.color(GLASS);
  if (v === 1) {
    pen.polygon([-w + 0.12, -0.55, -w + 0.13, roof + 0.06, -w * 0.3, roof + 0.06, -w * 0.3, -0.55]);
    pen.polygon([-w * 0.2, -0.55, -w * 0.2, roof + 0.06, w * 0.31, roof + 0.06, w * 0.62, -0.55]);
  } else {
    pen.polygon([-w * 0.63, -0.55, -w * 0.48, roof + 0.06, -w * 0.12, roof + 0.06, -w * 0.12, -0.55]);
    pen.polygon([-w * 0.03, -0.55, -w * 0.03, roof + 0.06, w * 0.25, roof + 0.06, w * 0.48, -0.55]);
  }
  pen.color([235, 245, 255]);
  pen.capsule(-w * 0.02, roof + 0.1, w * 0.08, roof + 0.1, 0.015);
  // lower body
  pen.part();
  pen.color(body);
  pen.polygon([
    -w,
    -0.16,
    -w - 0.02,
    -0.46,
    -w + 0.08,
    -0.53,
    w * 0.62,
    -0.53,
    w - 0.03,
    -0.46,
    w + 0.02,
    -0.34,
    w,
    -0.16,
  ]);
  pen.part(false);
  pen.color(shade(body, 0.7));
  pen.capsule(-w * 0.08, -0.5, -w * 0.08, -0.22, 0.012);
  pen.capsule(-w * 0.02, -0.4, w * 0.08, -0.4, 0.014);
  pen.color([255, 226, 90]);
  pen.ellipse(w - 0.04, -0.4, 0.05, 0.04);
  pen.color([220, 40, 40]);
  pen.rect(-w - 0.01, -0.44, -w + 0.04, -0.34);
  pen.color([150, 150, 158]);
  pen.rect(-w - 0.02, -0.2, -w + 0.1, -0.15);
  pen.rect(w - 0.1, -0.2, w + 0.03, -0.15);
  // wheels
  for (const x of [-wx, wx]) {
    pen.part();
    pen.color(DARK);
    pen.circle(x, -wheelR, wheelR);
    pen.part(false);
    pen.color([176, 178, 186]);
    pen.circle(x, -wheelR, wheelR * 0.48);
    pen.color([120, 122, 130]);
    pen.circle(x, -wheelR, wheelR * 0.16);
  }
}

function drawTree(pen: Pen, a: Appearance): void {
  const leaf = COLORS[a.color];
  const v = a.attributes.variant;
  const bark: Rgb = [112, 72, 40];
  pen.part();
  pen.color(bark);
  if (v === 1) {
    pen.polygon([-0.07, 0, 0.07, 0, 0.05, -0.3, -0.05, -0.3]);
    pen.part();
    pen.color(shade(leaf, 0.85));
    const tiers: [number, number, number][] = [
      [-0.15, -0.55, 0.36],
      [-0.4, -0.78, 0.29],
      [-0.62, -1.0, 0.21],
    ];
    for (const [yb, yt, hw] of tiers) {
      pen.part();
      pen.color(leaf);
      pen.polygon([-hw, yb, hw, yb, 0, yt]);
      pen.part(false);
      pen.color(shade(leaf, 0.8));
      pen.polygon([hw * 0.15, yb, hw, yb, hw * 0.2, yt + (yb - yt) * 0.35]);
    }
    return;
  }
  pen.polygon([-0.08, 0, 0.08, 0, 0.055, -0.5, -0.055, -0.5]);
  pen.capsule(0.02, -0.42, 0.14, -0.56, 0.025);
  pen.part();
  pen.color(leaf);
  if (v === 0) {
    pen.circle(0, -0.7, 0.3);
    pen.circle(-0.2, -0.58, 0.18);
    pen.circle(0.2, -0.58, 0.18);
  } else {
    pen.circle(-0.16, -0.55, 0.19);
    pen.circle(0.17, -0.57, 0.2);
    pen.circle(-0.1, -0.8, 0.2);
    pen.circle(0.12, -0.82, 0.18);
    pen.circle(0.0, -0.66, 0.22);
  }
  pen.part(false);
  pen.color(mix(leaf, [255, 255, 255], 0.25));
  pen.circle(-0.1, -0.82, 0.07);
  pen.circle(0.08, -0.88, 0.04);
  pen.color(shade(leaf, 0.8));
  pen.circle(0.12, -0.56, 0.08);
  pen.circle(-0.18, -0.55, 0.06);
}

function drawHouse(pen: Pen, a: Appearance): void {
  const wall = COLORS[a.color];
  const v = a.attributes.variant;
  const roofColor = ROOF_COLORS[a.attributes.secondary % ROOF_COLORS.length];
  const hw = v === 1 ? 0.36 : 0.42;
  const top = v === 1 ? -0.68 : -0.56;
  // chimney
  pen.part();
  pen.color(shade(roofColor, 0.8));
  pen.rect(hw * 0.45, top - 0.4, hw * 0.7, top - 0.12);
  // walls
  pen.part();
  pen.color(wall);
  pen.rect(-hw, top, hw, 0);
  // roof
  pen.part();
  pen.color(roofColor);
  pen.polygon([-hw - 0.1, top + 0.02, hw + 0.1, top + 0.02, 0, -1]);
  pen.part(false);
  pen.color(shade(roofColor, 0.78));
  pen.rect(-hw - 0.06, top - 0.01, hw + 0.06, top + 0.02);
  // door
  pen.part();
  pen.color(WOOD);
  pen.rect(-0.09, -0.3, 0.09, 0);
  pen.part(false);
  pen.color([240, 200, 80]);
  pen.circle(0.055, -0.14, 0.018);
  if (v === 2) {
    pen.part();
    pen.color(shade(wall, 0.75));
    pen.polygon([-0.16, -0.3, 0.16, -0.3, 0.12, -0.38, -0.12, -0.38]);
  }
  // windows
  const windows: [number, number][] = [
    [-hw * 0.62, -0.4],
    [hw * 0.62, -0.4],
  ];
  if (v === 1) windows.push([-hw * 0.5, -0.6], [hw * 0.5, -0.6]);
  const s = 0.085;
  for (const [x, y] of windows) {
    pen.part();
    pen.color(GLASS);
    pen.rect(x - s, y - s, x + s, y + s);
    pen.part(false);
    pen.color([250, 250, 250]);
    pen.rect(x - 0.012, y - s, x + 0.012, y + s);
    pen.rect(x - s, y - 0.012, x + s, y + 0.012);
  }
  // round attic window
  pen.part();
  pen.color(GLASS);
  pen.circle(0, top - 0.15, 0.06);
}

function drawLamp(pen: Pen, a: Appearance): void {
  const shadeColor = COLORS[a.color];
  const v = a.attributes.variant;
  const metal: Rgb = [[80, 80, 88] as Rgb, [190, 170, 110] as Rgb, [150, 150, 160] as Rgb][
    a.attributes.secondary % 3
  ];
  const glow: Rgb = [255, 240, 150];
  if (v === 2) {
    // desk lamp: base, two arm segments, cone head
    pen.part();
    pen.color(metal);
    pen.ellipse(0, -0.04, 0.22, 0.05);
    pen.polyline([0, -0.06, 0.1, -0.5, -0.12, -0.78], 0.03);
    pen.circle(0.1, -0.5, 0.045);
    pen.part();
    pen.color(shadeColor);
    pen.polygon([-0.12, -0.86, -0.05, -0.72, 0.12, -0.48, 0.28, -0.62]);
    pen.circle(-0.1, -0.8, 0.08);
    pen.part(false);
    pen.color(glow);
    pen.ellipse(0.2, -0.55, 0.09, 0.04, 0.7);
    return;
  }
  const table = v === 1;
  const shadeBottom = table ? -0.52 : -0.66;
  pen.part();
  pen.color(metal);
  if (table) {
    pen.ellipse(0, -0.17, 0.17, 0.17);
    pen.rect(-0.12, -0.06, 0.12, 0);
    pen.rect(-0.025, shadeBottom, 0.025, -0.3);
  } else {
    pen.ellipse(0, -0.03, 0.2, 0.04);
    pen.rect(-0.022, shadeBottom, 0.022, -0.03);
  }
  pen.part(false);
  pen.color(glow);
  pen.ellipse(0, shadeBottom + 0.02, 0.08, 0.05);
  pen.part();
  pen.color(shadeColor);
  const bw = table ? 0.3 : 0.24;
  const tw = table ? 0.16 : 0.13;
  pen.polygon([-bw, shadeBottom, bw, shadeBottom, tw, -1, -tw, -1]);
  pen.part(false);
  pen.color(contrastTint(shadeColor, 0.25));
  pen.polygon([
    -bw,
    shadeBottom,
    bw,
    shadeBottom,
    bw - 0.012,
    shadeBottom - 0.05,
    -bw + 0.012,
    shadeBottom - 0.05,
  ]);
}

function drawMug(pen: Pen, a: Appearance): void {
  const c = COLORS[a.color];
  const v = a.attributes.variant;
  // handle: a thick C on the right
  pen.part();
  pen.color(c);
  pen.polyline([0.3, -0.72, 0.52, -0.7, 0.6, -0.5, 0.52, -0.28, 0.3, -0.26], 0.075);
  pen.part();
  pen.color(c);
  pen.polygon([-0.4, -0.9, 0.4, -0.9, 0.37, -0.06, -0.37, -0.06]);
  pen.ellipse(0, -0.06, 0.37, 0.06);
  pen.part(false);
  const deco = contrastTint(c, 0.45);
  if (v === 1) {
    pen.color(deco);
    pen.rect(-0.39, -0.62, 0.39, -0.52);
    pen.rect(-0.38, -0.4, 0.38, -0.3);
  } else if (v === 2) {
    pen.color(deco);
    for (const [x, y] of [
      [-0.2, -0.65],
      [0.15, -0.55],
      [-0.1, -0.35],
      [0.22, -0.25],
      [-0.25, -0.2],
    ] as const) {
      pen.circle(x, y, 0.055);
    }
  }
  // rim and coffee
  pen.part();
  pen.color(shade(c, 0.85));
  pen.ellipse(0, -0.9, 0.4, 0.08);
  pen.part(false);
  pen.color([96, 58, 30]);
  pen.ellipse(0, -0.895, 0.33, 0.055);
}

function drawChairSide(pen: Pen, a: Appearance): void {
  const c = COLORS[a.color];
  const v = a.attributes.variant;
  const far = shade(c, 0.72);
  const seatY = -0.48;
  if (v === 2) {
    // armchair: padded back, seat and arm on short legs
    pen.part();
    pen.color(shade(c, 0.85));
    pen.polygon([-0.34, -0.2, -0.36, -1, -0.16, -1, -0.12, -0.2]);
    pen.part();
    pen.color(c);
    pen.rect(-0.32, -0.48, 0.3, -0.18);
    pen.part();
    pen.color(shade(c, 1.1));
    pen.rect(-0.28, -0.66, 0.32, -0.5);
    pen.part();
    pen.color(WOOD);
    pen.rect(-0.3, -0.18, -0.24, 0);
    pen.rect(0.22, -0.18, 0.28, 0);
    return;
  }
  // far legs, slightly offset
  pen.part();
  pen.color(far);
  pen.rect(-0.2, seatY, -0.14, 0);
  pen.rect(0.24, seatY, 0.3, 0);
  // back post (one piece with the back leg) and back rest
  pen.part();
  pen.color(c);
  pen.rect(-0.26, -1, -0.19, 0);
  if (v === 1) {
    pen.rect(-0.3, -1, -0.17, -0.92);
    pen.rect(-0.3, -0.84, -0.19, -0.78);
    pen.rect(-0.3, -0.72, -0.19, -0.66);
  } else pen.rect(-0.3, -0.98, -0.16, -0.66);
  // seat and front leg
  pen.part();
  pen.color(c);
  pen.rect(0.18, seatY, 0.25, 0);
  pen.rect(-0.26, seatY - 0.06, 0.27, seatY + 0.02);
  pen.part(false);
  pen.color(shade(c, 0.78));
  pen.rect(-0.19, seatY, 0.27, seatY + 0.02);
}

function drawChairFront(pen: Pen, a: Appearance): void {
  const c = COLORS[a.color];
  const v = a.attributes.variant;
  const far = shade(c, 0.72);
  const seatY = -0.46;
  if (v === 2) {
    pen.part();
    pen.color(shade(c, 0.85));
    pen.rect(-0.36, -1, 0.36, -0.4);
    pen.part();
    pen.color(c);
    pen.rect(-0.42, -0.7, -0.3, -0.18);
    pen.rect(0.3, -0.7, 0.42, -0.18);
    pen.part();
    pen.color(shade(c, 1.1));
    pen.rect(-0.3, -0.5, 0.3, -0.18);
    pen.part();
    pen.color(WOOD);
    pen.rect(-0.38, -0.18, -0.32, 0);
    pen.rect(0.32, -0.18, 0.38, 0);
    return;
  }
  // back rest behind the seat
  pen.part();
  pen.color(c);
  pen.rect(-0.3, -1, -0.23, seatY);
  pen.rect(0.23, -1, 0.3, seatY);
  pen.rect(-0.3, -1, 0.3, -0.88);
  if (v === 1) {
    for (const x of [-0.1, 0.035]) pen.rect(x, -0.9, x + 0.065, seatY);
  } else pen.rect(-0.3, -0.8, 0.3, -0.7);
  // back legs (shorter, further away)
  pen.part();
  pen.color(far);
  pen.rect(-0.27, seatY, -0.21, -0.05);
  pen.rect(0.21, seatY, 0.27, -0.05);
  // seat seen slightly from above
  pen.part();
  pen.color(shade(c, 1.12));
  pen.polygon([-0.3, seatY - 0.05, 0.3, seatY - 0.05, 0.36, seatY + 0.03, -0.36, seatY + 0.03]);
  pen.part();
  pen.color(c);
  pen.rect(-0.36, seatY + 0.03, 0.36, seatY + 0.08);
  // front legs
  pen.part();
  pen.color(c);
  pen.rect(-0.35, seatY + 0.06, -0.28, 0);
  pen.rect(0.28, seatY + 0.06, 0.35, 0);
}
