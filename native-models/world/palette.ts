/**
 * The tiny world's named colours (the ones captions mention), hair colours, skin tones and the small
 * unnamed palettes for secondary parts (trousers, shoes, roofs, ...).
 *
 * @example
 * ```ts
 * import { COLORS, shade } from './palette.js';
 * const shirt = COLORS.red; // [214, 40, 40]
 * const shadowSide = shade(shirt, 0.8);
 * ```
 */
import type { Rgb } from './raster.js';

/** Main-colour names, in a fixed order (captions use these words). */
export const COLOR_NAMES = Object.freeze([
  'red',
  'blue',
  'green',
  'yellow',
  'purple',
  'orange',
  'pink',
  'white',
  'black',
  'brown',
  'gray',
] as const);

/** A main-colour name, see {@link COLOR_NAMES}. */
export type ColorName = (typeof COLOR_NAMES)[number];

/** RGB of each main colour: saturated and far apart, so a judge can tell them apart at 32x32. */
export const COLORS: Readonly<Record<ColorName, Rgb>> = Object.freeze({
  red: [214, 40, 40],
  blue: [40, 96, 214],
  green: [52, 168, 72],
  yellow: [244, 204, 36],
  purple: [136, 72, 190],
  orange: [242, 132, 32],
  pink: [240, 128, 180],
  white: [242, 242, 236],
  black: [40, 40, 46],
  brown: [128, 80, 44],
  gray: [138, 140, 146],
});

/** Hair-colour names (captions may say "with blond hair"). */
export const HAIR_COLOR_NAMES = Object.freeze(['black', 'brown', 'blond', 'red', 'gray'] as const);

/** A hair-colour name, see {@link HAIR_COLOR_NAMES}. */
export type HairColorName = (typeof HAIR_COLOR_NAMES)[number];

/** RGB of each hair colour. */
export const HAIR_COLORS: Readonly<Record<HairColorName, Rgb>> = Object.freeze({
  black: [34, 30, 30],
  brown: [112, 66, 32],
  blond: [238, 202, 104],
  red: [196, 84, 40],
  gray: [176, 176, 180],
});

/** Skin tones (never named in captions). */
export const SKIN_TONES: readonly Rgb[] = Object.freeze([
  [255, 220, 182],
  [240, 192, 148],
  [198, 140, 96],
  [140, 92, 60],
]);

/** Trouser colours for men and boys: denim, charcoal, khaki, brown, black. */
export const TROUSER_COLORS: readonly Rgb[] = Object.freeze([
  [62, 84, 146],
  [72, 72, 82],
  [186, 162, 112],
  [104, 72, 46],
  [44, 44, 50],
]);

/** Shoe colours. */
export const SHOE_COLORS: readonly Rgb[] = Object.freeze([
  [60, 40, 30],
  [34, 34, 38],
  [236, 236, 236],
  [150, 40, 40],
]);

/** Roof colours for houses. */
export const ROOF_COLORS: readonly Rgb[] = Object.freeze([
  [150, 48, 40],
  [92, 60, 48],
  [78, 80, 92],
  [48, 78, 128],
]);

/** Outline colour of the cartoon style. */
export const OUTLINE: Rgb = [26, 24, 30];

/** Window glass. */
export const GLASS: Rgb = [176, 220, 246];

/**
 * `c` scaled by `f` (below 1 darker, above 1 lighter), clamped.
 *
 * @example
 * ```ts
 * shade([200, 100, 50], 0.5); // [100, 50, 25]
 * ```
 */
export function shade(c: Rgb, f: number): Rgb {
  return [Math.min(255, c[0] * f), Math.min(255, c[1] * f), Math.min(255, c[2] * f)];
}

/**
 * Linear mix of two colours, `t = 0` gives `a`, `t = 1` gives `b`.
 *
 * @example
 * ```ts
 * mix([0, 0, 0], [255, 255, 255], 0.5); // [127.5, 127.5, 127.5]
 * ```
 */
export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/**
 * A lighter or darker tint of `c` for details drawn on it (darker for light colours, lighter for dark ones).
 *
 * @example
 * ```ts
 * contrastTint([40, 40, 46]); // lighter than black
 * ```
 */
export function contrastTint(c: Rgb, amount = 0.3): Rgb {
  const lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
  return lum > 110 ? mix(c, [0, 0, 0], amount) : mix(c, [255, 255, 255], amount);
}
