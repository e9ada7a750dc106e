/**
 * What a subject looks like beyond its class and main colour: drawing style, shape variant, hair,
 * skin, secondary colours and accessories. {@link sampleAttributes} draws them at random (from the world's
 * {@link Rng} only); the identity set fixes them.
 *
 * @example
 * ```ts
 * const attributes = sampleAttributes(new Rng(1), 'woman');
 * attributes.hairColor; // e.g. 'blond'
 * ```
 */
import type { Rng } from '../tensor/random.js';
import { CLASS_INFO } from './classes.js';
import type { WorldClassName } from './classes.js';
import {
  COLOR_NAMES,
  HAIR_COLOR_NAMES,
  ROOF_COLORS,
  SHOE_COLORS,
  SKIN_TONES,
  TROUSER_COLORS,
} from './palette.js';
import type { ColorName, HairColorName } from './palette.js';

/**
 * Drawing style: `comic` has bold dark outlines and big heads; `realistic` ("human-styled") has natural
 * proportions (smaller heads, slimmer limbs), no outlines and soft shading between parts.
 */
export type DrawStyle = 'comic' | 'realistic';

/**
 * Everything about a subject's look except class and main colour. Fields that do not apply to a class
 * hold their neutral value (`null`, `false`, 0).
 *
 * `variant` (class-specific shape variant):
 * - man, boy: hair 0 short, 1 spiky, 2 side parting. woman: 0 long, 1 bob, 2 ponytail. girl: 0 pigtails,
 *   1 long, 2 ponytail. robot: 0 ball antenna, 1 twin antennas, 2 dome head.
 * - cat: 0 plain, 1 striped, 2 white-bellied. dog: 0 plain, 1 spotted, 2 long-eared.
 * - car: 0 sedan, 1 van, 2 compact. tree: 0 round, 1 pine, 2 cluster. house: 0 plain, 1 two storeys,
 *   2 with porch. lamp: 0 floor lamp, 1 table lamp, 2 desk lamp. mug: 0 plain, 1 striped, 2 dotted.
 *   chair: 0 wooden, 1 with slats, 2 armchair.
 *
 * `secondary` indexes a class-specific unnamed palette: trousers ({@link TROUSER_COLORS}) for men and
 * boys, the roof ({@link ROOF_COLORS}) for houses, the limb metal for robots, shoes for women and girls.
 */
export interface SubjectAttributes {
  style: DrawStyle;
  variant: number;
  hairColor: HairColorName | null;
  /** Index into {@link SKIN_TONES} (humans), else 0. */
  skinTone: number;
  secondary: number;
  /** Long sleeves (men, boys, women and girls). */
  longSleeves: boolean;
  /** Hat colour, or null for no hat. */
  hat: ColorName | null;
  glasses: boolean;
  /** Scarf colour, or null for no scarf. */
  scarf: ColorName | null;
  /** Collar colour for dogs and cats, or null. */
  collar: ColorName | null;
}

/** Number of shape variants per class (see {@link SubjectAttributes.variant}). */
export const VARIANT_COUNT = 3;

/** Secondary palette size per class. */
export function secondaryCount(className: WorldClassName): number {
  switch (className) {
    case 'man':
    case 'boy':
      return TROUSER_COLORS.length;
    case 'woman':
    case 'girl':
      return SHOE_COLORS.length;
    case 'house':
      return ROOF_COLORS.length;
    default:
      return 3;
  }
}

/** Neutral attributes (comic style, variant 0, nothing optional). */
export function defaultAttributes(): SubjectAttributes {
  return {
    style: 'comic',
    variant: 0,
    hairColor: null,
    skinTone: 0,
    secondary: 0,
    longSleeves: false,
    hat: null,
    glasses: false,
    scarf: null,
    collar: null,
  };
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng.nextFloat() * items.length)];
}

/**
 * Random attributes for a subject of class `className` whose main colour is `color` (accessory colours
 * avoid it). Consumes a fixed number of draws from `rng` per class, so streams stay aligned.
 *
 * @example
 * ```ts
 * const a = sampleAttributes(rng, 'man', 'red'); // e.g. { style: 'comic', hairColor: 'brown', hat: null, ... }
 * ```
 */
export function sampleAttributes(rng: Rng, className: WorldClassName, color: ColorName): SubjectAttributes {
  const a = defaultAttributes();
  const kind = CLASS_INFO[className].kind;
  a.variant = Math.floor(rng.nextFloat() * VARIANT_COUNT);
  a.secondary = Math.floor(rng.nextFloat() * secondaryCount(className));
  const others = COLOR_NAMES.filter((c) => c !== color && c !== 'brown' && c !== 'gray');
  if (kind === 'human' && className !== 'robot') {
    a.style = rng.nextFloat() < 0.2 ? 'realistic' : 'comic';
    a.hairColor = pick(
      rng,
      className === 'boy' || className === 'girl' ? HAIR_COLOR_NAMES.slice(0, 4) : HAIR_COLOR_NAMES,
    );
    a.skinTone = Math.floor(rng.nextFloat() * SKIN_TONES.length);
    a.longSleeves = rng.nextFloat() < 0.5;
    const hat = rng.nextFloat();
    const glasses = rng.nextFloat();
    const scarf = rng.nextFloat();
    const hatColor = pick(rng, others);
    const scarfColor = pick(rng, others);
    a.hat = hat < 0.15 ? hatColor : null;
    a.glasses = glasses < 0.15;
    a.scarf = scarf < 0.12 ? scarfColor : null;
  } else if (kind === 'animal') {
    const collar = rng.nextFloat();
    const collarColor = pick(rng, ['red', 'blue', 'green', 'yellow', 'pink'] as const);
    a.collar = collar < 0.35 && collarColor !== color ? collarColor : null;
  }
  return a;
}
