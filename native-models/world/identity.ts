/**
 * The identity set, after the paper's Subject-Dataset11: 11 fixed subjects (a comic man and woman, a
 * human-styled man and woman, three pets, four still objects), each fully specified so it is recognisably
 * the same individual in every picture, and 11 reference images of each in varied poses, orientations
 * and backgrounds, generated on demand (deterministic, never stored).
 *
 * @example
 * ```ts
 * const refs = identityReferenceImages(4); // 11 scenes of the ginger cat
 * refs[0].subjects[0].color; // 'orange', in all 11
 * IDENTITY_SUBJECTS[4].name; // 'ginger cat'
 * ```
 */
import type { PoseTemplateName } from '../pose/openpose.js';
import { Rng } from '../tensor/random.js';
import { defaultAttributes } from './appearance.js';
import type { SubjectAttributes } from './appearance.js';
import { BACKGROUND_KINDS, BACKGROUND_VARIANTS, INDOOR_KINDS } from './backgrounds.js';
import type { BackgroundKind } from './backgrounds.js';
import { subjectPhrase } from './captions.js';
import { CLASS_INFO } from './classes.js';
import type { Orientation, WorldClassName } from './classes.js';
import type { ColorName } from './palette.js';
import { generateScene } from './scene.js';
import type { WorldScene } from './scene.js';

/** The identity set's categories. */
export type IdentityCategory =
  'comic-male' | 'comic-female' | 'human-male' | 'human-female' | 'pet' | 'object';

/** One fixed subject of the identity set. */
export interface IdentitySubject {
  /** Stable identifier, e.g. `comic-male`. */
  id: string;
  /** Short human-readable name. */
  name: string;
  category: IdentityCategory;
  className: WorldClassName;
  color: ColorName;
  attributes: SubjectAttributes;
  /** The class-level phrase a prompt would use for it (long caption form, no pose). */
  classPhrase: string;
}

function identity(
  id: string,
  name: string,
  category: IdentityCategory,
  className: WorldClassName,
  color: ColorName,
  attributes: Partial<SubjectAttributes>,
): IdentitySubject {
  const full: SubjectAttributes = { ...defaultAttributes(), ...attributes };
  return Object.freeze({
    id,
    name,
    category,
    className,
    color,
    attributes: Object.freeze(full),
    classPhrase: subjectPhrase({ className, color, style: full.style }, 'long'),
  });
}

/** The 11 identities, in a fixed order (index = `subjectIndex` of {@link identityReferenceImages}). */
export const IDENTITY_SUBJECTS: readonly IdentitySubject[] = Object.freeze([
  identity('comic-male', 'comic man with glasses', 'comic-male', 'man', 'blue', {
    style: 'comic',
    variant: 1,
    hairColor: 'brown',
    skinTone: 0,
    secondary: 2,
    glasses: true,
  }),
  identity('comic-female', 'comic woman with a scarf', 'comic-female', 'woman', 'purple', {
    style: 'comic',
    variant: 0,
    hairColor: 'blond',
    skinTone: 1,
    secondary: 3,
    scarf: 'yellow',
  }),
  identity('human-male', 'human-styled man', 'human-male', 'man', 'green', {
    style: 'realistic',
    variant: 2,
    hairColor: 'black',
    skinTone: 2,
    secondary: 0,
    longSleeves: true,
  }),
  identity('human-female', 'human-styled woman', 'human-female', 'woman', 'red', {
    style: 'realistic',
    variant: 2,
    hairColor: 'brown',
    skinTone: 1,
    secondary: 1,
    hat: 'white',
  }),
  identity('ginger-cat', 'ginger cat', 'pet', 'cat', 'orange', { variant: 1, collar: 'blue' }),
  identity('brown-dog', 'brown dog', 'pet', 'dog', 'brown', { variant: 0, collar: 'red' }),
  identity('spotted-dog', 'white spotted dog', 'pet', 'dog', 'white', { variant: 1 }),
  identity('red-car', 'red car', 'object', 'car', 'red', { variant: 0 }),
  identity('yellow-mug', 'yellow dotted mug', 'object', 'mug', 'yellow', { variant: 2 }),
  identity('blue-chair', 'blue chair', 'object', 'chair', 'blue', { variant: 1 }),
  identity('pink-lamp', 'pink table lamp', 'object', 'lamp', 'pink', { variant: 1, secondary: 1 }),
]);

const HUMAN_VIEWS: readonly [PoseTemplateName, Orientation][] = [
  ['standing', 'front'],
  ['walking', 'right'],
  ['waving', 'front'],
  ['running', 'left'],
  ['sitting', 'front'],
  ['jumping', 'front'],
  ['standing', 'back'],
  ['walking', 'left'],
  ['sitting', 'right'],
  ['waving', 'left'],
  ['standing', 'right'],
];

const ANIMAL_VIEWS: readonly [PoseTemplateName, Orientation][] = [
  ['standing', 'right'],
  ['sitting', 'front'],
  ['walking', 'left'],
  ['running', 'right'],
  ['sitting', 'left'],
  ['standing', 'front'],
  ['walking', 'right'],
  ['running', 'left'],
  ['sitting', 'right'],
  ['standing', 'left'],
  ['walking', 'front'],
];

/** Options of {@link identityReferenceImages}. */
export interface IdentityReferenceOptions {
  /** Number of images (default 11). */
  count?: number;
  /** Image side (default 128). */
  size?: number;
  /** 2x2 supersampling (default true). */
  antialias?: boolean;
}

/**
 * `count` single-subject scenes of identity `subjectIndex`, with varied poses, orientations and
 * backgrounds; the same arguments always give the same images.
 *
 * @example
 * ```ts
 * const refs = identityReferenceImages(0, { count: 11, size: 128 });
 * refs.map((s) => s.caption); // 'a cartoon man in a blue shirt standing in a park', ...
 * ```
 */
export function identityReferenceImages(
  subjectIndex: number,
  options: IdentityReferenceOptions = {},
): WorldScene[] {
  const subject = IDENTITY_SUBJECTS[subjectIndex];
  if (!Number.isInteger(subjectIndex) || !subject) {
    throw new RangeError(
      `identity subject index must be 0-${IDENTITY_SUBJECTS.length - 1}, got ${subjectIndex}`,
    );
  }
  const count = options.count ?? 11;
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`count must be a positive integer, got ${count}`);
  const info = CLASS_INFO[subject.className];
  const outdoor = ['car', 'tree', 'house'].includes(subject.className);
  const kinds: readonly BackgroundKind[] = outdoor
    ? BACKGROUND_KINDS.filter((k) => !INDOOR_KINDS.includes(k))
    : BACKGROUND_KINDS;
  const scenes: WorldScene[] = [];
  for (let k = 0; k < count; k++) {
    const rng = new Rng(0x1d_0000 + subjectIndex * 1000 + k);
    let pose: PoseTemplateName | undefined;
    let orientation: Orientation;
    if (info.kind === 'human') [pose, orientation] = HUMAN_VIEWS[k % HUMAN_VIEWS.length];
    else if (info.kind === 'animal') [pose, orientation] = ANIMAL_VIEWS[k % ANIMAL_VIEWS.length];
    else orientation = info.orientations[k % info.orientations.length];
    const kind = kinds[(k * 3 + subjectIndex) % kinds.length];
    const variant = Math.floor(rng.nextFloat() * BACKGROUND_VARIANTS);
    scenes.push(
      generateScene(rng, {
        size: options.size ?? 128,
        antialias: options.antialias,
        specs: [
          {
            className: subject.className,
            color: subject.color,
            pose,
            orientation,
            attributes: subject.attributes,
          },
        ],
        background: { kind, variant },
      }),
    );
  }
  return scenes;
}
