/**
 * The tiny world: a deterministic procedural generator of cartoon scenes (characters posed by COCO-18
 * skeletons, animals, still objects, parametric backgrounds) with captions, segment masks and OpenPose
 * renderings, used to train and evaluate the embedded tiny models. Pure TypeScript, no Node imports;
 * the only randomness is `tensor/random.ts`'s {@link Rng}.
 *
 * @example
 * ```ts
 * import { generateScene, identityReferenceImages, renderWorldGrid } from './world.js';
 *
 * const scene = generateScene(42); // 128 x 128, 1-4 subjects
 * console.log(scene.caption); // e.g. 'a cartoon woman in a yellow dress waving on a beach'
 * const refs = identityReferenceImages(0); // 11 images of the comic man
 * const sheet = renderWorldGrid(1, 4, 6); // a contact sheet to look at
 * ```
 */
export { generateScene } from './scene.js';
export type {
  GenerateSceneOptions,
  PixelBox,
  SubjectSpec,
  WorldKeypoint,
  WorldScene,
  WorldSubject,
} from './scene.js';
export {
  CLASS_INFO,
  ORIENTATIONS,
  SUBJECT_CLASSES,
  WORLD_CLASSES,
  classIndex,
  isPerson,
  isWorldClass,
} from './classes.js';
export type { ClassInfo, ClassKind, Orientation, WorldClassName } from './classes.js';
export { COLORS, COLOR_NAMES, HAIR_COLORS, HAIR_COLOR_NAMES } from './palette.js';
export type { ColorName, HairColorName } from './palette.js';
export { defaultAttributes, sampleAttributes } from './appearance.js';
export type { DrawStyle, SubjectAttributes } from './appearance.js';
export {
  BACKGROUND_KINDS,
  BACKGROUND_PHRASES,
  BACKGROUND_VARIANTS,
  INDOOR_KINDS,
  renderBackground,
} from './backgrounds.js';
export type { BackgroundKind, BackgroundRef } from './backgrounds.js';
export { CAPTION_VOCABULARY, captionVocabulary, sceneCaption, subjectPhrase } from './captions.js';
export type { CaptionExtra, CaptionSubject } from './captions.js';
export { SIDE_COMPRESSION, SIDE_FORWARD, orientedSkeleton } from './skeleton.js';
export type { OrientedSkeleton } from './skeleton.js';
export { IDENTITY_SUBJECTS, identityReferenceImages } from './identity.js';
export type { IdentityCategory, IdentityReferenceOptions, IdentitySubject } from './identity.js';
export { classMaskImage, renderWorldGrid, sceneLayer, tileImages } from './grid.js';
export type { WorldGridOptions } from './grid.js';
