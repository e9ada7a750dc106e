/**
 * The tiny world's classes: 7 characters and 6 objects, with stable indices (0 is `background`, the
 * segmentation convention), their kind, nominal size and the colours, poses and orientations each can take.
 *
 * @example
 * ```ts
 * import { WORLD_CLASSES, classIndex, CLASS_INFO } from './classes.js';
 * WORLD_CLASSES[classIndex('cat')]; // 'cat'
 * CLASS_INFO.woman.humanLike; // true: drawn from a COCO-18 skeleton
 * ```
 */
import type { PoseTemplateName } from '../pose/openpose.js';
import type { ColorName } from './palette.js';

/** Segmentation classes in index order; index 0 is the background. Never reorder (models depend on it). */
export const WORLD_CLASSES = Object.freeze([
  'background',
  'man',
  'woman',
  'boy',
  'girl',
  'cat',
  'dog',
  'robot',
  'car',
  'tree',
  'house',
  'lamp',
  'mug',
  'chair',
] as const);

/** A class a subject can have (every world class except `background`). */
export type WorldClassName = Exclude<(typeof WORLD_CLASSES)[number], 'background'>;

/** Subject classes in index order (`WORLD_CLASSES` without the background). */
export const SUBJECT_CLASSES: readonly WorldClassName[] = Object.freeze(
  WORLD_CLASSES.filter((c): c is WorldClassName => c !== 'background'),
);

/** Orientations a subject can be seen in. Side views are named after the direction the subject faces. */
export const ORIENTATIONS = Object.freeze(['front', 'back', 'left', 'right'] as const);

/** Where a subject faces, see {@link ORIENTATIONS}. */
export type Orientation = (typeof ORIENTATIONS)[number];

/** How a class is drawn: from a COCO-18 skeleton, as a four-legged animal, or as a still object. */
export type ClassKind = 'human' | 'animal' | 'object';

/** Static facts about one class. */
export interface ClassInfo {
  name: WorldClassName;
  /** Index in {@link WORLD_CLASSES}. */
  index: number;
  kind: ClassKind;
  /** True for the classes drawn from a skeleton (and rendered into the OpenPose image). */
  humanLike: boolean;
  /** Nominal height relative to an adult man, used by the layout's size rule. */
  relativeHeight: number;
  /** Main colours this class is drawn in. */
  colors: readonly ColorName[];
  /** Poses (captioned verbs); empty for objects. */
  poses: readonly PoseTemplateName[];
  /** Orientations the class is drawn in. */
  orientations: readonly Orientation[];
}

const CLOTHES: readonly ColorName[] = [
  'red',
  'blue',
  'green',
  'yellow',
  'purple',
  'orange',
  'pink',
  'white',
  'black',
];
const HUMAN_POSES: readonly PoseTemplateName[] = [
  'standing',
  'walking',
  'running',
  'sitting',
  'waving',
  'jumping',
];
const ANIMAL_POSES: readonly PoseTemplateName[] = ['standing', 'walking', 'running', 'sitting'];
const ALL_ORIENTATIONS: readonly Orientation[] = ORIENTATIONS;
/** Animals are drawn from the back only on request (a back view hides what tells cats from dogs). */
const ANIMAL_ORIENTATIONS: readonly Orientation[] = ['front', 'left', 'right'];

function info(
  name: WorldClassName,
  kind: ClassKind,
  relativeHeight: number,
  colors: readonly ColorName[],
  orientations: readonly Orientation[],
  humanLike = kind === 'human',
): ClassInfo {
  const poses = kind === 'human' ? HUMAN_POSES : kind === 'animal' ? ANIMAL_POSES : [];
  return Object.freeze({
    name,
    index: WORLD_CLASSES.indexOf(name),
    kind,
    humanLike,
    relativeHeight,
    colors: Object.freeze([...colors]),
    poses: Object.freeze([...poses]),
    orientations: Object.freeze([...orientations]),
  });
}

/** Per-class facts, see {@link ClassInfo}. */
export const CLASS_INFO: Readonly<Record<WorldClassName, ClassInfo>> = Object.freeze({
  man: info('man', 'human', 1, CLOTHES, ALL_ORIENTATIONS),
  woman: info('woman', 'human', 0.95, CLOTHES, ALL_ORIENTATIONS),
  boy: info('boy', 'human', 0.72, CLOTHES, ALL_ORIENTATIONS),
  girl: info('girl', 'human', 0.7, CLOTHES, ALL_ORIENTATIONS),
  cat: info('cat', 'animal', 0.5, ['black', 'white', 'orange', 'gray', 'brown'], ANIMAL_ORIENTATIONS),
  dog: info(
    'dog',
    'animal',
    0.56,
    ['brown', 'black', 'white', 'gray', 'orange', 'yellow'],
    ANIMAL_ORIENTATIONS,
  ),
  robot: info(
    'robot',
    'human',
    0.95,
    ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'white', 'gray'],
    ALL_ORIENTATIONS,
  ),
  car: info(
    'car',
    'object',
    0.8,
    ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'pink', 'white', 'black', 'gray'],
    ['left', 'right'],
  ),
  tree: info('tree', 'object', 1.3, ['green', 'orange', 'yellow', 'red', 'pink'], ['front']),
  house: info(
    'house',
    'object',
    1.35,
    ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'pink', 'white', 'brown', 'gray'],
    ['front'],
  ),
  lamp: info('lamp', 'object', 0.9, CLOTHES, ['front']),
  mug: info('mug', 'object', 0.42, CLOTHES, ['left', 'right']),
  chair: info(
    'chair',
    'object',
    0.62,
    ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'pink', 'white', 'black', 'brown'],
    ['front', 'left', 'right'],
  ),
});

/**
 * Index of a class in {@link WORLD_CLASSES}.
 *
 * @example
 * ```ts
 * classIndex('background'); // 0
 * classIndex('chair'); // 13
 * ```
 */
export function classIndex(name: (typeof WORLD_CLASSES)[number]): number {
  const i = WORLD_CLASSES.indexOf(name);
  if (i < 0)
    throw new RangeError(`unknown world class "${String(name)}"; use one of ${WORLD_CLASSES.join(', ')}`);
  return i;
}

/**
 * True for the classes drawn and captioned as a person ('a cartoon woman in a yellow dress'): the
 * human-like classes except the robot.
 */
export function isPerson(name: WorldClassName): boolean {
  return CLASS_INFO[name].kind === 'human' && name !== 'robot';
}

/** True for a subject class name. */
export function isWorldClass(name: string): name is WorldClassName {
  return name !== 'background' && (WORLD_CLASSES as readonly string[]).includes(name);
}
