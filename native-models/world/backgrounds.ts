/**
 * Parametric backgrounds: 10 scene kinds, each with {@link BACKGROUND_VARIANTS} variants. A variant is a
 * pure function of `(kind, variant)`: its parameters (sky gradient, ground line, props such as clouds,
 * sun, windows, tiles, stars) come from an {@link Rng} seeded by the pair, so the same variant always
 * looks the same and different variants differ.
 *
 * Background props are kept visibly different from the subject classes (no outlines, muted colours,
 * silhouettes or flat facades), so they do not read as an extra car, tree or house.
 *
 * @example
 * ```ts
 * const canvas = new Canvas(128, 2);
 * const horizon = renderBackground(canvas, 'beach', 17); // ground line in pixels
 * BACKGROUND_PHRASES.beach; // 'on a beach'
 * ```
 */
import { Rng } from '../tensor/random.js';
import { mix, shade } from './palette.js';
import type { Canvas, Rgb } from './raster.js';

/** Scene kinds, in a fixed order. */
export const BACKGROUND_KINDS = Object.freeze([
  'park',
  'beach',
  'street',
  'kitchen',
  'bedroom',
  'forest',
  'night-city',
  'snow',
  'desert',
  'classroom',
] as const);

/** A scene kind, see {@link BACKGROUND_KINDS}. */
export type BackgroundKind = (typeof BACKGROUND_KINDS)[number];

/** Distinct variants per kind (`variant` is an integer in `[0, BACKGROUND_VARIANTS)`). */
export const BACKGROUND_VARIANTS = 128;

/** The caption phrase for each kind. */
export const BACKGROUND_PHRASES: Readonly<Record<BackgroundKind, string>> = Object.freeze({
  park: 'in a park',
  beach: 'on a beach',
  street: 'on a street',
  kitchen: 'in a kitchen',
  bedroom: 'in a bedroom',
  forest: 'in a forest',
  'night-city': 'in a city at night',
  snow: 'in the snow',
  desert: 'in a desert',
  classroom: 'in a classroom',
});

/** Indoor kinds: cars, trees and houses are not placed in them by default. */
export const INDOOR_KINDS: readonly BackgroundKind[] = Object.freeze(['kitchen', 'bedroom', 'classroom']);

/** Which background a scene used. */
export interface BackgroundRef {
  kind: BackgroundKind;
  variant: number;
}

/**
 * Paints background `kind` variant `variant` over the whole canvas (instance 0, no parts) and returns
 * the ground line: the y (output pixels) where the floor or ground begins; subjects stand below it.
 *
 * @example
 * ```ts
 * const horizon = renderBackground(canvas, 'kitchen', 3);
 * ```
 */
export function renderBackground(canvas: Canvas, kind: BackgroundKind, variant: number): number {
  const k = BACKGROUND_KINDS.indexOf(kind);
  if (k < 0)
    throw new RangeError(
      `unknown background kind "${String(kind)}"; use one of ${BACKGROUND_KINDS.join(', ')}`,
    );
  if (!Number.isInteger(variant) || variant < 0 || variant >= BACKGROUND_VARIANTS) {
    throw new RangeError(
      `background variant must be an integer in [0, ${BACKGROUND_VARIANTS}), got ${variant}`,
    );
  }
  canvas.setInstance(0);
  canvas.endParts();
  canvas.setAlpha(1);
  const rng = new Rng(0x5eed_0000 + k * 4096 + variant);
  const S = canvas.size;
  const horizon = RENDERERS[kind](canvas, new Draw(rng, S));
  canvas.setAlpha(1);
  return horizon;
}

/** Random helpers bound to the variant's generator and the canvas size. */
class Draw {
  constructor(
    readonly rng: Rng,
    readonly S: number,
  ) {}
  /** Uniform in [a, b). */
  u(a = 0, b = 1): number {
    return a + (b - a) * this.rng.nextFloat();
  }
  /** Integer in [a, b]. */
  i(a: number, b: number): number {
    return a + Math.floor(this.rng.nextFloat() * (b - a + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng.nextFloat() * items.length)];
  }
  /** A colour jittered by up to `amount` per channel. */
  jitter(c: Rgb, amount = 12): Rgb {
    return [c[0] + this.u(-amount, amount), c[1] + this.u(-amount, amount), c[2] + this.u(-amount, amount)];
  }
}

type Renderer = (c: Canvas, d: Draw) => number;

const SKIES: readonly [Rgb, Rgb][] = [
  [
    [104, 164, 232],
    [192, 226, 250],
  ],
  [
    [146, 186, 238],
    [250, 222, 190],
  ],
  [
    [96, 92, 170],
    [250, 164, 112],
  ],
  [
    [150, 160, 176],
    [208, 212, 218],
  ],
];

function sky(c: Canvas, d: Draw, h: number, skies: readonly [Rgb, Rgb][] = SKIES): number {
  const s = d.i(0, skies.length - 1);
  const [top, bottom] = skies[s];
  c.verticalGradient(-1, h, d.jitter(top), d.jitter(bottom));
  return s;
}

function cloud(c: Canvas, x: number, y: number, w: number, color: Rgb): void {
  c.setColor(color);
  c.ellipse(x, y, w * 0.5, w * 0.2);
  c.circle(x - w * 0.18, y - w * 0.1, w * 0.18);
  c.circle(x + w * 0.1, y - w * 0.14, w * 0.22);
}

function clouds(c: Canvas, d: Draw, maxY: number, count: number, color: Rgb = [250, 250, 252]): void {
  const S = d.S;
  for (let i = 0; i < count; i++)
    cloud(c, d.u(0, S), d.u(S * 0.08, Math.max(S * 0.1, maxY)), d.u(S * 0.12, S * 0.28), d.jitter(color, 4));
}

function sun(c: Canvas, d: Draw, maxY: number, color: Rgb = [255, 226, 96]): void {
  const S = d.S;
  const x = d.u(S * 0.1, S * 0.9);
  const y = d.u(S * 0.08, Math.max(S * 0.1, maxY));
  const r = d.u(S * 0.05, S * 0.09);
  c.setAlpha(0.35);
  c.setColor(color);
  c.circle(x, y, r * 1.5);
  c.setAlpha(1);
  c.circle(x, y, r);
}

function groundGradient(c: Canvas, d: Draw, h: number, top: Rgb, bottom: Rgb): void {
  c.verticalGradient(h, d.S, d.jitter(top), d.jitter(bottom));
}

/** Rolling hills: big flat ellipses centred on the horizon. */
function hills(c: Canvas, d: Draw, h: number, color: Rgb, count: number): void {
  const S = d.S;
  for (let i = 0; i < count; i++) {
    c.setColor(d.jitter(color, 10));
    c.ellipse(d.u(-0.1, 1.1) * S, h + S * 0.02, d.u(0.25, 0.5) * S, d.u(0.06, 0.14) * S);
  }
}

const park: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.42, 0.62));
  const s = sky(c, d, h);
  if (s !== 3 && d.u() < 0.6) sun(c, d, h * 0.5);
  clouds(c, d, h * 0.6, d.i(0, 3));
  hills(c, d, h, [110, 170, 96], d.i(0, 3));
  const grass = d.pick<Rgb>([
    [104, 178, 76],
    [86, 160, 70],
    [124, 186, 88],
  ]);
  groundGradient(c, d, h, grass, shade(grass, 0.78));
  // low bushes along the horizon
  const bush = shade(grass, 0.7);
  for (let i = d.i(0, 5); i > 0; i--) {
    c.setColor(d.jitter(bush, 8));
    const x = d.u(0, S);
    const w = d.u(0.05, 0.1) * S;
    c.ellipse(x, h, w, w * 0.45);
  }
  if (d.u() < 0.5) {
    // path
    c.setColor(d.jitter([214, 196, 150], 10));
    const x = d.u(0.3, 0.7) * S;
    c.polygon([x - S * 0.03, h, x + S * 0.03, h, x + S * 0.22, S, x - S * 0.22, S]);
  }
  if (d.u() < 0.4) {
    // fence
    c.setColor(
      d.pick<Rgb>([
        [240, 240, 236],
        [150, 110, 70],
      ]),
    );
    const y = h + S * 0.02;
    c.rect(-1, y - S * 0.05, S, y - S * 0.04);
    c.rect(-1, y - S * 0.025, S, y - S * 0.015);
    for (let x = d.u(0, 8); x < S; x += S * 0.08) c.rect(x, y - S * 0.065, x + S * 0.012, y);
  }
  for (let i = d.i(0, 24); i > 0; i--) {
    c.setColor(
      d.pick<Rgb>([
        [250, 250, 250],
        [250, 220, 60],
        [240, 120, 160],
      ]),
    );
    c.circle(d.u(0, S), d.u(h + 2, S), S * 0.008);
  }
  return h;
};

const beach: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.5, 0.64));
  const seaTop = h - S * d.u(0.1, 0.18);
  sky(c, d, seaTop, SKIES.slice(0, 3));
  if (d.u() < 0.7) sun(c, d, seaTop * 0.6);
  clouds(c, d, seaTop * 0.6, d.i(0, 3));
  const sea = d.pick<Rgb>([
    [40, 120, 190],
    [30, 140, 170],
    [50, 100, 170],
  ]);
  c.verticalGradient(seaTop, h, d.jitter(shade(sea, 0.85)), d.jitter(mix(sea, [255, 255, 255], 0.3)));
  c.setColor([236, 246, 252]);
  for (let i = d.i(3, 10); i > 0; i--) {
    const y = d.u(seaTop + 2, h - 1);
    const x = d.u(0, S);
    c.rect(x, y, x + d.u(S * 0.03, S * 0.08), y + S * 0.006);
  }
  const sand = d.pick<Rgb>([
    [238, 214, 160],
    [230, 200, 140],
    [244, 226, 180],
  ]);
  groundGradient(c, d, h, sand, shade(sand, 0.9));
  // wet sand and foam line
  c.setColor(shade(sand, 0.86));
  c.rect(-1, h, S, h + S * 0.025);
  c.setColor([250, 250, 250]);
  c.rect(-1, h - S * 0.008, S, h + S * 0.004);
  for (let i = d.i(0, 6); i > 0; i--) {
    c.setColor(
      d.pick<Rgb>([
        [250, 240, 230],
        [240, 160, 120],
      ]),
    );
    c.ellipse(d.u(0, S), d.u(h + S * 0.06, S), S * 0.012, S * 0.008);
  }
  return h;
};

const street: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.55, 0.68));
  sky(c, d, h);
  clouds(c, d, S * 0.2, d.i(0, 2));
  // flat facades with window grids
  const facades: readonly Rgb[] = [
    [176, 96, 80],
    [210, 190, 150],
    [150, 156, 170],
    [120, 140, 170],
    [200, 160, 120],
    [170, 176, 150],
  ];
  let x = -d.u(0, S * 0.1);
  while (x < S) {
    const w = d.u(0.2, 0.38) * S;
    const top = d.u(0.08, 0.3) * S;
    const col = d.jitter(d.pick(facades), 10);
    c.setColor(col);
    c.rect(x, top, x + w - 1, h);
    c.setColor(shade(col, 0.8));
    c.rect(x, top, x + w - 1, top + S * 0.02);
    const win = d.pick<Rgb>([
      [70, 90, 120],
      [180, 210, 235],
      [90, 110, 140],
    ]);
    c.setColor(win);
    const cell = S * d.u(0.07, 0.1);
    for (let wy = top + cell * 0.6; wy + cell * 0.6 < h - S * 0.06; wy += cell) {
      for (let wx = x + cell * 0.4; wx + cell * 0.5 < x + w - 2; wx += cell) {
        c.rect(wx, wy, wx + cell * 0.5, wy + cell * 0.55);
      }
    }
    x += w;
  }
  // sidewalk and road
  const walk = d.jitter([196, 194, 188], 8);
  c.setColor(walk);
  const roadTop = h + S * d.u(0.1, 0.16);
  c.rect(-1, h, S, roadTop);
  c.setColor(shade(walk, 0.85));
  for (let tx = d.u(0, 10); tx < S; tx += S * 0.12) c.rect(tx, h, tx + S * 0.006, roadTop);
  c.setColor([150, 150, 150]);
  c.rect(-1, roadTop - S * 0.012, S, roadTop);
  c.verticalGradient(roadTop, S, d.jitter([84, 86, 92], 6), d.jitter([64, 66, 72], 6));
  c.setColor(
    d.pick<Rgb>([
      [240, 240, 240],
      [240, 210, 80],
    ]),
  );
  const laneY = roadTop + (S - roadTop) * d.u(0.4, 0.6);
  for (let lx = d.u(-S * 0.1, 0); lx < S; lx += S * 0.2) c.rect(lx, laneY, lx + S * 0.1, laneY + S * 0.014);
  return h;
};

const WALLS: readonly Rgb[] = [
  [244, 236, 214],
  [214, 232, 240],
  [220, 238, 214],
  [248, 232, 180],
  [244, 214, 220],
  [230, 226, 240],
];

function window_(c: Canvas, d: Draw, x: number, y: number, w: number, h: number, frame: Rgb): void {
  c.setColor(frame);
  c.rect(x - 2, y - 2, x + w + 2, y + h + 2);
  const sk = d.pick(SKIES);
  c.setColor(mix(sk[0], sk[1], 0.5));
  c.rect(x, y, x + w, y + h);
  c.setColor(frame);
  c.rect(x + w / 2 - 1, y, x + w / 2 + 1, y + h);
  c.rect(x, y + h / 2 - 1, x + w, y + h / 2 + 1);
}

const kitchen: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.55, 0.68));
  const wall = d.jitter(d.pick(WALLS), 6);
  c.setColor(wall);
  c.rect(-1, -1, S, h);
  const wood = d.jitter(
    d.pick<Rgb>([
      [170, 120, 80],
      [236, 236, 232],
      [120, 150, 180],
      [140, 170, 130],
    ]),
    8,
  );
  const counterTop = h - S * d.u(0.16, 0.22);
  // backsplash tiles
  const tile = shade(wall, 0.92);
  c.setColor(tile);
  const step = S * d.pick([0.05, 0.06, 0.08]);
  for (let ty = counterTop - S * 0.18; ty < counterTop; ty += step) c.rect(-1, ty, S, ty + 0.6);
  for (let tx = 0; tx < S; tx += step) c.rect(tx, counterTop - S * 0.18, tx + 0.6, counterTop);
  // upper cabinets
  const cabX = d.u(-0.2, 0.3) * S;
  const cabW = d.u(0.4, 0.7) * S;
  c.setColor(wood);
  c.rect(cabX, S * 0.04, cabX + cabW, S * 0.26);
  c.setColor(shade(wood, 0.8));
  for (let dx = cabX + cabW / 3; dx < cabX + cabW - 2; dx += cabW / 3) c.rect(dx, S * 0.04, dx + 1, S * 0.26);
  if (d.u() < 0.6) {
    const wx = cabX + cabW + S * 0.08 < S * 0.8 ? cabX + cabW + S * 0.08 : d.u(0.05, 0.2) * S;
    window_(c, d, wx, S * 0.08, S * 0.18, S * 0.16, [250, 250, 250]);
  }
  // counter
  c.setColor(wood);
  c.rect(-1, counterTop, S, h);
  c.setColor(d.jitter([120, 124, 130], 10));
  c.rect(-1, counterTop - S * 0.02, S, counterTop + S * 0.005);
  c.setColor(shade(wood, 0.75));
  for (let dx = d.u(0, S * 0.2); dx < S; dx += S * 0.2) {
    c.rect(dx, counterTop + S * 0.02, dx + 1, h);
    c.rect(dx + S * 0.08, counterTop + S * 0.05, dx + S * 0.12, counterTop + S * 0.065);
  }
  // checker floor
  const f1 = d.jitter(
    d.pick<Rgb>([
      [236, 236, 230],
      [200, 180, 150],
      [180, 200, 210],
    ]),
    6,
  );
  const f2 = shade(f1, d.u(0.6, 0.8));
  const cell = S * d.pick([0.08, 0.1, 0.125]);
  for (let ty = h, row = 0; ty < S; ty += cell, row++) {
    for (let tx = 0, col = 0; tx < S; tx += cell, col++) {
      c.setColor((row + col) % 2 === 0 ? f1 : f2);
      c.rect(tx, ty, tx + cell, ty + cell);
    }
  }
  return h;
};

const bedroom: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.56, 0.68));
  const wall = d.jitter(d.pick(WALLS), 6);
  c.setColor(wall);
  c.rect(-1, -1, S, h);
  const pattern = d.i(0, 2);
  c.setColor(shade(wall, 0.92));
  if (pattern === 0) for (let x = d.u(0, 6); x < S; x += S * 0.08) c.rect(x, -1, x + S * 0.03, h);
  else if (pattern === 1) {
    for (let y = S * 0.05; y < h; y += S * 0.1)
      for (let x = (y * 7) % (S * 0.1); x < S; x += S * 0.1) c.circle(x, y, S * 0.01);
  }
  // window with curtains
  const wx = d.u(0.1, 0.6) * S;
  const ww = S * d.u(0.2, 0.28);
  window_(c, d, wx, S * 0.1, ww, S * 0.22, [250, 250, 250]);
  const curtain = d.jitter(
    d.pick<Rgb>([
      [200, 80, 90],
      [90, 120, 200],
      [120, 170, 110],
      [220, 180, 90],
    ]),
    10,
  );
  c.setColor(curtain);
  c.rect(wx - S * 0.06, S * 0.07, wx + S * 0.02, S * 0.36);
  c.rect(wx + ww - S * 0.02, S * 0.07, wx + ww + S * 0.06, S * 0.36);
  // picture frame
  if (d.u() < 0.6) {
    const px = wx > S * 0.45 ? d.u(0.05, 0.2) * S : d.u(0.7, 0.82) * S;
    c.setColor([120, 80, 50]);
    c.rect(px, S * 0.12, px + S * 0.14, S * 0.24);
    c.setColor(d.jitter([150, 200, 230], 20));
    c.rect(px + 2, S * 0.12 + 2, px + S * 0.14 - 2, S * 0.24 - 2);
  }
  // bed against the wall at one side
  const left = d.u() < 0.5;
  const bw = S * d.u(0.3, 0.42);
  const bx = left ? -S * 0.05 : S - bw + S * 0.05;
  const blanket = d.jitter(
    d.pick<Rgb>([
      [90, 130, 200],
      [200, 100, 120],
      [240, 200, 90],
      [130, 180, 130],
    ]),
    10,
  );
  c.setColor([130, 90, 60]);
  c.rect(left ? bx : bx + bw - S * 0.04, h - S * 0.2, left ? bx + S * 0.04 : bx + bw, h + S * 0.04);
  c.setColor([246, 246, 244]);
  c.rect(bx, h - S * 0.08, bx + bw, h - S * 0.03);
  c.setColor(blanket);
  c.rect(bx, h - S * 0.06, bx + bw, h + S * 0.04);
  // wooden floor
  const floor = d.jitter(
    d.pick<Rgb>([
      [176, 126, 84],
      [150, 104, 70],
      [196, 160, 120],
    ]),
    8,
  );
  c.verticalGradient(h, S, floor, shade(floor, 0.9));
  c.setColor(shade(floor, 0.82));
  for (let y = h + S * 0.06; y < S; y += S * 0.07) c.rect(-1, y, S, y + 0.6);
  if (d.u() < 0.5) {
    c.setColor(d.jitter([200, 90, 90], 40));
    c.ellipse(d.u(0.3, 0.7) * S, h + (S - h) * 0.6, S * 0.28, (S - h) * 0.22);
  }
  return h;
};

const forest: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.52, 0.66));
  sky(c, d, h, SKIES.slice(0, 2));
  // two layers of muted pine silhouettes
  for (const [color, scale] of [
    [d.jitter([96, 140, 120], 10), 0.8],
    [d.jitter([56, 100, 76], 10), 1],
  ] as const) {
    c.setColor(color);
    for (let x = -d.u(0, S * 0.05); x < S + S * 0.05; x += S * d.u(0.06, 0.1)) {
      const th = S * d.u(0.2, 0.36) * scale;
      const w = th * 0.32;
      c.polygon([x - w, h + 1, x + w, h + 1, x, h - th]);
    }
  }
  const ground = d.pick<Rgb>([
    [70, 120, 60],
    [96, 130, 64],
    [110, 96, 60],
  ]);
  groundGradient(c, d, h, ground, shade(ground, 0.8));
  for (let i = d.i(4, 20); i > 0; i--) {
    c.setColor(
      d.pick<Rgb>([
        [200, 120, 40],
        [170, 70, 40],
        [220, 180, 60],
      ]),
    );
    c.ellipse(d.u(0, S), d.u(h + 2, S), S * 0.012, S * 0.006);
  }
  if (d.u() < 0.5) {
    for (let i = d.i(1, 3); i > 0; i--) {
      const x = d.u(0, S);
      const y = d.u(h + S * 0.05, S - 2);
      c.setColor([240, 236, 220]);
      c.rect(x - S * 0.006, y - S * 0.02, x + S * 0.006, y);
      c.setColor([210, 50, 40]);
      c.ellipse(x, y - S * 0.02, S * 0.02, S * 0.012);
    }
  }
  return h;
};

const nightCity: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.58, 0.7));
  c.verticalGradient(-1, h, d.jitter([14, 18, 52], 6), d.jitter([60, 48, 110], 12));
  c.setColor([250, 250, 230]);
  for (let i = d.i(15, 50); i > 0; i--) c.circle(d.u(0, S), d.u(0, h * 0.7), S * d.u(0.003, 0.008));
  if (d.u() < 0.75) {
    const mx = d.u(0.1, 0.9) * S;
    const my = d.u(0.08, 0.25) * S;
    const mr = S * d.u(0.04, 0.07);
    c.setColor([250, 246, 210]);
    c.circle(mx, my, mr);
    if (d.u() < 0.5) {
      c.setColor([22, 24, 62]);
      c.circle(mx + mr * 0.45, my - mr * 0.2, mr * 0.85);
    }
  }
  // skyline
  let x = -d.u(0, S * 0.05);
  const lit: Rgb = [250, 220, 110];
  while (x < S) {
    const w = d.u(0.1, 0.22) * S;
    const top = h - d.u(0.15, 0.45) * S;
    const col = d.jitter([30, 32, 56], 6);
    c.setColor(col);
    c.rect(x, top, x + w - 1, h);
    const cell = S * 0.05;
    for (let wy = top + cell * 0.5; wy < h - cell; wy += cell) {
      for (let wx = x + cell * 0.4; wx < x + w - cell * 0.6; wx += cell) {
        if (d.u() < 0.45) {
          c.setColor(d.jitter(lit, 10));
          c.rect(wx, wy, wx + cell * 0.4, wy + cell * 0.45);
        }
      }
    }
    x += w;
  }
  c.verticalGradient(h, S, d.jitter([46, 46, 60], 6), d.jitter([28, 28, 38], 4));
  c.setColor([90, 90, 100]);
  const laneY = h + (S - h) * d.u(0.4, 0.6);
  for (let lx = d.u(-S * 0.1, 0); lx < S; lx += S * 0.2) c.rect(lx, laneY, lx + S * 0.1, laneY + S * 0.012);
  return h;
};

const snow: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.48, 0.64));
  sky(c, d, h, [
    [
      [170, 196, 226],
      [226, 236, 246],
    ],
    [
      [150, 160, 180],
      [220, 224, 232],
    ],
    [
      [120, 170, 226],
      [210, 230, 250],
    ],
  ]);
  if (d.u() < 0.5) {
    // distant mountains with snow caps
    for (let i = d.i(1, 3); i > 0; i--) {
      const x = d.u(0, S);
      const mh = d.u(0.15, 0.3) * S;
      const w = mh * d.u(1, 1.6);
      c.setColor(d.jitter([150, 166, 190], 8));
      c.polygon([x - w, h + 1, x + w, h + 1, x, h - mh]);
      c.setColor([250, 252, 255]);
      c.polygon([x - w * 0.3, h - mh * 0.7, x + w * 0.3, h - mh * 0.7, x, h - mh]);
    }
  }
  hills(c, d, h, [236, 242, 250], d.i(1, 3));
  groundGradient(c, d, h, [244, 248, 252], [214, 226, 240]);
  if (d.u() < 0.5) {
    for (let i = d.i(2, 5); i > 0; i--) {
      const x = d.u(0, S);
      const th = S * d.u(0.08, 0.14);
      c.setColor([80, 110, 100]);
      c.polygon([x - th * 0.3, h + 1, x + th * 0.3, h + 1, x, h - th]);
      c.setColor([246, 250, 255]);
      c.polygon([x - th * 0.15, h - th * 0.5, x + th * 0.15, h - th * 0.5, x, h - th]);
    }
  }
  c.setColor([255, 255, 255]);
  for (let i = d.i(10, 50); i > 0; i--) c.circle(d.u(0, S), d.u(0, S), S * d.u(0.004, 0.01));
  return h;
};

const desert: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.5, 0.64));
  sky(c, d, h, [
    [
      [120, 170, 226],
      [250, 230, 190],
    ],
    [
      [240, 170, 90],
      [252, 226, 160],
    ],
    [
      [90, 150, 220],
      [220, 230, 240],
    ],
  ]);
  sun(c, d, h * 0.5, [255, 236, 150]);
  if (d.u() < 0.5) {
    // mesas
    for (let i = d.i(1, 2); i > 0; i--) {
      const x = d.u(0, S);
      const mh = d.u(0.08, 0.16) * S;
      const w = d.u(0.1, 0.2) * S;
      c.setColor(d.jitter([190, 110, 80], 10));
      c.polygon([x - w - mh * 0.5, h + 1, x - w, h - mh, x + w, h - mh, x + w + mh * 0.5, h + 1]);
    }
  }
  const sand = d.pick<Rgb>([
    [232, 196, 130],
    [222, 176, 110],
    [240, 210, 150],
  ]);
  groundGradient(c, d, h, sand, shade(sand, 0.88));
  // dunes
  for (let layer = 0; layer < 2; layer++) {
    const color = shade(sand, 0.92 + layer * 0.05);
    c.setColor(color);
    const amp = S * d.u(0.02, 0.05);
    const y0 = h + (S - h) * (0.15 + 0.3 * layer);
    const phase = d.u(0, 6.28);
    const freq = d.u(1.5, 3) / S;
    const pts: number[] = [];
    for (let x = -2; x <= S + 2; x += S / 16) pts.push(x, y0 - amp * Math.sin(phase + x * freq * 6.28));
    pts.push(S + 2, S + 2, -2, S + 2);
    c.polygon(pts);
  }
  for (let i = d.i(0, 3); i > 0; i--) {
    const x = d.u(0, S);
    const ch = S * d.u(0.06, 0.12);
    const y = h + S * d.u(0.0, 0.04);
    c.setColor([76, 140, 80]);
    c.capsule(x, y, x, y - ch, ch * 0.14);
    c.capsule(x, y - ch * 0.45, x - ch * 0.3, y - ch * 0.5, ch * 0.08);
    c.capsule(x - ch * 0.3, y - ch * 0.5, x - ch * 0.3, y - ch * 0.8, ch * 0.08);
  }
  return h;
};

const classroom: Renderer = (c, d) => {
  const S = d.S;
  const h = Math.round(S * d.u(0.6, 0.7));
  const wall = d.jitter(d.pick(WALLS), 6);
  c.setColor(wall);
  c.rect(-1, -1, S, h);
  // chalkboard
  const bx = d.u(0.05, 0.35) * S;
  const bw = d.u(0.45, 0.6) * S;
  const by = S * d.u(0.08, 0.14);
  const bh = S * d.u(0.22, 0.3);
  c.setColor([140, 96, 60]);
  c.rect(bx - 3, by - 3, bx + bw + 3, by + bh + 3);
  c.setColor(
    d.pick<Rgb>([
      [40, 80, 60],
      [34, 38, 42],
      [30, 70, 80],
    ]),
  );
  c.rect(bx, by, bx + bw, by + bh);
  c.setColor([230, 230, 226]);
  for (let i = d.i(2, 5), y = by + bh * 0.2; i > 0 && y < by + bh - 3; i--, y += bh * 0.2) {
    const lx = bx + d.u(3, bw * 0.2);
    c.rect(lx, y, lx + d.u(bw * 0.2, bw * 0.6), y + S * 0.008);
  }
  c.setColor([200, 200, 200]);
  c.rect(bx, by + bh + 3, bx + bw, by + bh + 5);
  // clock
  if (d.u() < 0.7) {
    const cx = bx + bw + S * 0.12 < S - S * 0.06 ? bx + bw + S * 0.12 : bx - S * 0.1;
    const cy = S * 0.14;
    c.setColor([40, 40, 40]);
    c.circle(cx, cy, S * 0.055);
    c.setColor([250, 250, 250]);
    c.circle(cx, cy, S * 0.045);
    c.setColor([40, 40, 40]);
    c.capsule(cx, cy, cx, cy - S * 0.035, S * 0.005);
    c.capsule(cx, cy, cx + S * 0.025, cy, S * 0.005);
  }
  // alphabet strip
  if (d.u() < 0.5) {
    const colors: readonly Rgb[] = [
      [230, 90, 90],
      [90, 140, 230],
      [240, 200, 70],
      [110, 190, 110],
    ];
    for (let x = 2, i = 0; x < S - 4; x += S * 0.07, i++) {
      c.setColor(colors[i % colors.length]);
      c.rect(x, S * 0.015, x + S * 0.05, S * 0.055);
    }
  }
  c.setColor(shade(wall, 0.8));
  c.rect(-1, h - S * 0.03, S, h);
  const floor = d.jitter(
    d.pick<Rgb>([
      [190, 150, 110],
      [170, 170, 176],
      [150, 120, 90],
    ]),
    8,
  );
  c.verticalGradient(h, S, floor, shade(floor, 0.88));
  c.setColor(shade(floor, 0.85));
  for (let x = d.u(0, S * 0.15); x < S; x += S * 0.15) c.rect(x, h, x + 0.6, S);
  return h;
};

const RENDERERS: Readonly<Record<BackgroundKind, Renderer>> = {
  park,
  beach,
  street,
  kitchen,
  bedroom,
  forest,
  'night-city': nightCity,
  snow,
  desert,
  classroom,
};
