/**
 * The cast file (`cast.json`): what `msp train-cast` reads and the studio writes for a cast — its
 * subjects, each with a rare identifier token, a class noun and reference images (and optional
 * masks), paths relative to the file:
 *
 *   {
 *     "name": "harbour story",
 *     "subjects": [
 *       { "name": "Captain", "identifier": "sks", "classNoun": "cartoon man",
 *         "images": ["captain/1.png", "captain/2.png", "captain/3.png"],
 *         "masks": ["captain/1-mask.png", null, null] },
 *       { "name": "Mog", "identifier": "zwx", "classNoun": "cat", "images": ["mog/1.png", ...] }
 *     ]
 *   }
 *
 * Every check that can fail happens here, before any training starts, and all problems of one kind
 * are reported together (every unreadable image, not just the first).
 *
 * @example
 * const cast = await readCastFile('cast.json');
 * checkCastForModel(cast, await readRareTokens(join(modelDir, 'tokenizer')));
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { decodeImage, type RgbImage } from '../image/image.js';
import { MIN_REFERENCE_IMAGES, type CastSubject } from './augment.js';

export class CastError extends Error {
  override name = 'CastError';
}

/** A cast ready for training: subjects with their decoded images and masks. */
export interface Cast {
  name: string;
  subjects: CastSubject[];
}

interface CastFileSubject {
  name?: string;
  identifier: string;
  classNoun: string;
  images: string[];
  masks?: (string | null)[];
}

/** An identifier: one lower-case word of letters and digits (what a tokenizer keeps as one token). */
const IDENTIFIER = /^[a-z][a-z0-9]{1,15}$/;

/**
 * Reads and checks a cast file and decodes every image and mask it names.
 *
 * @throws CastError naming the file and every problem: malformed JSON or fields, a subject with
 *   fewer than {@link MIN_REFERENCE_IMAGES} images, two subjects with one identifier, images or masks
 *   that cannot be read, a mask whose size differs from its image.
 */
export async function readCastFile(path: string): Promise<Cast> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CastError(`${path}: ${(e as Error).message}`);
  }
  const spec = parseCast(json, path);
  const base = dirname(resolve(path));
  const at = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const problems: string[] = [];
  const subjects: CastSubject[] = [];
  for (const s of spec.subjects) {
    const name = s.name ?? `${s.identifier} ${s.classNoun}`;
    const images: RgbImage[] = [];
    for (const file of s.images) {
      const image = await readPicture(at(file)).catch((e: unknown) => {
        problems.push(`subject '${name}': image ${file} cannot be read (${(e as Error).message})`);
      });
      if (image) images.push(image);
    }
    const masks: (Uint8Array | null)[] = [];
    for (const [i, file] of (s.masks ?? []).entries()) {
      if (file === null) {
        masks.push(null);
        continue;
      }
      const mask = await readPicture(at(file)).catch((e: unknown) => {
        problems.push(`subject '${name}': mask ${file} cannot be read (${(e as Error).message})`);
      });
      const image = images[i];
      if (mask && image && (mask.width !== image.width || mask.height !== image.height)) {
        problems.push(
          `subject '${name}': mask ${file} is ${mask.width}x${mask.height} but image ${s.images[i]} is ${image.width}x${image.height}`,
        );
      }
      masks.push(mask ? maskFromPicture(mask) : null);
    }
    subjects.push({
      name,
      identifier: s.identifier,
      classNoun: s.classNoun,
      images,
      ...(s.masks ? { masks } : {}),
    });
  }
  if (problems.length > 0) throw new CastError(`${path}:\n  ${problems.join('\n  ')}`);
  return { name: spec.name, subjects };
}

/** Checks the shape of a parsed cast file; `source` names it in messages. */
export function parseCast(json: unknown, source = 'cast'): { name: string; subjects: CastFileSubject[] } {
  const fail = (message: string): never => {
    throw new CastError(`${source}: ${message}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('expected a JSON object');
  const o = json as Record<string, unknown>;
  const name = o.name ?? 'cast';
  if (typeof name !== 'string' || name.trim() === '') fail('"name" must be a non-empty string');
  if (!Array.isArray(o.subjects) || o.subjects.length === 0)
    fail('"subjects" must list at least one subject');
  const subjects = (o.subjects as unknown[]).map((raw, i): CastFileSubject => {
    const where = `subjects[${i}]`;
    if (typeof raw !== 'object' || raw === null) fail(`${where} must be an object`);
    const s = raw as Record<string, unknown>;
    if (s.name !== undefined && (typeof s.name !== 'string' || s.name.trim() === ''))
      fail(`${where}.name must be a non-empty string`);
    if (typeof s.identifier !== 'string' || !IDENTIFIER.test(s.identifier))
      fail(`${where}.identifier must be one lower-case word of 2-16 letters or digits, like "sks"`);
    if (typeof s.classNoun !== 'string' || s.classNoun.trim() === '')
      fail(`${where}.classNoun must name the subject's class, like "cartoon man" or "cat"`);
    const label = typeof s.name === 'string' ? `'${s.name}'` : where;
    if (!Array.isArray(s.images) || !s.images.every((p) => typeof p === 'string'))
      fail(`${label}: "images" must be a list of file paths`);
    const images = s.images as string[];
    if (images.length < MIN_REFERENCE_IMAGES)
      fail(
        `subject ${label} has ${images.length} reference image${images.length === 1 ? '' : 's'}; a subject needs at least ${MIN_REFERENCE_IMAGES}`,
      );
    if (s.masks !== undefined) {
      if (!Array.isArray(s.masks) || !s.masks.every((p) => p === null || typeof p === 'string'))
        fail(`${label}: "masks" must be a list of file paths or nulls`);
      if ((s.masks as unknown[]).length !== images.length)
        fail(`${label}: "masks" has ${(s.masks as unknown[]).length} entries for ${images.length} images`);
    }
    return {
      ...(typeof s.name === 'string' ? { name: s.name } : {}),
      identifier: s.identifier as string,
      classNoun: (s.classNoun as string).trim(),
      images,
      ...(s.masks !== undefined ? { masks: s.masks as (string | null)[] } : {}),
    };
  });
  checkDistinctIdentifiers(subjects, source);
  return { name: (name as string).trim(), subjects };
}

/**
 * Checks a cast against the model it will be trained on, before any training starts.
 *
 * @param rareTokens the model's identifier tokens (`tokenizer/rare_tokens.json`); when the model
 *   lists none, any identifier is accepted.
 * @throws CastError for a subject with too few images, duplicate identifiers, a cast bigger than the
 *   model's token list, or an identifier the model does not reserve.
 */
export function checkCastForModel(cast: Cast, rareTokens: readonly string[]): void {
  const source = `cast '${cast.name}'`;
  for (const s of cast.subjects) {
    if (s.images.length < MIN_REFERENCE_IMAGES)
      throw new CastError(
        `${source}: subject '${s.name ?? s.identifier}' has ${s.images.length} reference images; a subject needs at least ${MIN_REFERENCE_IMAGES}`,
      );
  }
  checkDistinctIdentifiers(cast.subjects, source);
  if (rareTokens.length === 0) return;
  if (cast.subjects.length > rareTokens.length)
    throw new CastError(
      `${source}: ${cast.subjects.length} subjects, but the model reserves only ${rareTokens.length} identifier tokens; split the cast`,
    );
  for (const s of cast.subjects) {
    if (!rareTokens.includes(s.identifier))
      throw new CastError(
        `${source}: '${s.identifier}' (subject '${s.name ?? s.identifier}') is not one of the model's identifier tokens: ${rareTokens.join(', ')}`,
      );
  }
}

/** The identifier tokens a model folder's tokenizer reserves (`rare_tokens.json`), or none. */
export async function readRareTokens(tokenizerDir: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(tokenizerDir, 'rare_tokens.json'), 'utf8'));
  } catch {
    return [];
  }
  const list = (json as { identifiers?: unknown }).identifiers;
  return Array.isArray(list)
    ? list.filter((t): t is string => typeof t === 'string' && IDENTIFIER.test(t))
    : [];
}

function checkDistinctIdentifiers(
  subjects: readonly { name?: string | undefined; identifier: string }[],
  source: string,
): void {
  const seen = new Map<string, string>();
  subjects.forEach((s, i) => {
    const label = s.name ?? `subjects[${i}]`;
    const other = seen.get(s.identifier);
    if (other !== undefined)
      throw new CastError(
        `${source}: subjects '${other}' and '${label}' both use the identifier '${s.identifier}'; each subject needs its own`,
      );
    seen.set(s.identifier, label);
  });
}

async function readPicture(path: string): Promise<RgbImage> {
  const bytes = await readFile(path).catch((e: unknown) => {
    throw new Error((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);
  });
  return decodeImage(bytes, path);
}

/** A mask picture -> 0/1 per pixel: white (or any bright pixel) is the subject. */
function maskFromPicture(image: RgbImage): Uint8Array {
  const out = new Uint8Array(image.width * image.height);
  for (let p = 0; p < out.length; p++) {
    const d = image.data;
    out[p] = d[p * 3] + d[p * 3 + 1] + d[p * 3 + 2] > 3 * 127 ? 1 : 0;
  }
  return out;
}
