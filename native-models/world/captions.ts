/**
 * Caption templates with a small, regular vocabulary (the tiny text encoder learns from it).
 *
 * One subject, long form:
 * `a [cartoon] <class> in a <color> <shirt|dress> [with <extras>] <pose> [facing left|right|away] <place>`
 * for people, `a <color> robot <pose> ...`, `a <color> cat <pose> ...`, `a <color> car <place>` for the
 * rest ("a cartoon woman in a yellow dress waving on a beach", "an orange cat sitting facing left in the
 * snow", "a red car on a street"). "cartoon" marks the comic style; realistic people omit it.
 *
 * Several subjects, short form, left to right, joined by "and":
 * "a cartoon man in red walking and a black cat sitting and a red car on a street".
 *
 * @example
 * ```ts
 * subjectPhrase({ className: 'woman', color: 'yellow', style: 'comic', pose: 'waving' }, 'long');
 * // 'a cartoon woman in a yellow dress waving'
 * captionVocabulary().includes('dress'); // true
 * ```
 */
import type { PoseTemplateName } from '../pose/openpose.js';
import type { DrawStyle } from './appearance.js';
import { BACKGROUND_KINDS, BACKGROUND_PHRASES } from './backgrounds.js';
import type { Orientation, WorldClassName } from './classes.js';
import { POSE_TEMPLATE_NAMES } from '../pose/openpose.js';
import { COLOR_NAMES, HAIR_COLOR_NAMES } from './palette.js';
import type { ColorName, HairColorName } from './palette.js';
import { isPerson, SUBJECT_CLASSES } from './classes.js';

/** What a caption says about one subject. */
export interface CaptionSubject {
  className: WorldClassName;
  color: ColorName;
  style?: DrawStyle;
  pose?: PoseTemplateName | null;
  orientation?: Orientation | null;
  /** Extras named in the long form ("with a hat and glasses"); empty or omitted for none. */
  extras?: readonly CaptionExtra[];
}

/** Optional details a long caption can name. */
export type CaptionExtra =
  { kind: 'hat' } | { kind: 'glasses' } | { kind: 'scarf' } | { kind: 'hair'; color: HairColorName };

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/**
 * The phrase naming one subject, `long` (single-subject captions) or `short` (several subjects).
 *
 * @example
 * ```ts
 * subjectPhrase({ className: 'man', color: 'red', pose: 'walking' }, 'short'); // 'a cartoon man in red walking'
 * subjectPhrase({ className: 'mug', color: 'orange' }, 'long'); // 'an orange mug'
 * ```
 */
export function subjectPhrase(s: CaptionSubject, form: 'long' | 'short'): string {
  const words: string[] = [];
  if (isPerson(s.className)) {
    const cartoon = (s.style ?? 'comic') === 'comic';
    words.push('a');
    if (cartoon) words.push('cartoon');
    words.push(s.className, 'in');
    if (form === 'long')
      words.push(
        article(s.color),
        s.color,
        s.className === 'woman' || s.className === 'girl' ? 'dress' : 'shirt',
      );
    else words.push(s.color);
  } else {
    words.push(article(s.color), s.color, s.className);
  }
  if (form === 'long' && s.extras && s.extras.length > 0) {
    const parts = s.extras.map((e) =>
      e.kind === 'hat'
        ? 'a hat'
        : e.kind === 'scarf'
          ? 'a scarf'
          : e.kind === 'glasses'
            ? 'glasses'
            : `${e.color} hair`,
    );
    words.push('with', parts.join(' and '));
  }
  if (s.pose) words.push(s.pose);
  if (form === 'long' && s.pose && s.orientation && s.orientation !== 'front') {
    words.push('facing', s.orientation === 'back' ? 'away' : s.orientation);
  }
  return words.join(' ');
}

/**
 * A full caption: one subject in the long form, several in the short form joined by "and", then the place.
 *
 * @example
 * ```ts
 * sceneCaption([{ className: 'woman', color: 'yellow', pose: 'waving' }], 'beach');
 * // 'a cartoon woman in a yellow dress waving on a beach'
 * ```
 */
export function sceneCaption(
  subjects: readonly CaptionSubject[],
  place: keyof typeof BACKGROUND_PHRASES,
): string {
  const form = subjects.length === 1 ? 'long' : 'short';
  const phrases = subjects.map((s) => subjectPhrase(s, form));
  return `${phrases.join(' and ')} ${BACKGROUND_PHRASES[place]}`;
}

/**
 * Every word a caption can contain, sorted (lower case, split on spaces; captions have no punctuation).
 *
 * @example
 * ```ts
 * captionVocabulary().length; // about 60 words
 * ```
 */
export function captionVocabulary(): string[] {
  const words = new Set<string>([
    'a',
    'an',
    'cartoon',
    'in',
    'shirt',
    'dress',
    'with',
    'hat',
    'glasses',
    'scarf',
    'hair',
    'and',
    'facing',
    'left',
    'right',
    'away',
  ]);
  for (const c of SUBJECT_CLASSES) words.add(c);
  for (const c of COLOR_NAMES) words.add(c);
  for (const c of HAIR_COLOR_NAMES) words.add(c);
  for (const p of POSE_TEMPLATE_NAMES) words.add(p);
  for (const k of BACKGROUND_KINDS) for (const w of BACKGROUND_PHRASES[k].split(' ')) words.add(w);
  return [...words].sort();
}

/** {@link captionVocabulary} as a frozen constant. */
export const CAPTION_VOCABULARY: readonly string[] = Object.freeze(captionVocabulary());
