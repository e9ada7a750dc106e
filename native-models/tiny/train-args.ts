/**
 * The command line of `npm run train:tiny`: which flags exist, which stages read each one, and
 * what values they take. A flag a stage would ignore, a misspelt flag or a value out of range is
 * refused with a sentence naming it, before anything loads or trains, so a long background run
 * never starts with a setting that silently does nothing.
 */
import { parseArgs } from 'node:util';

export const STAGE_NAMES = [
  'tokenizer',
  'vae',
  'vae-decoder',
  'vae-encoder',
  'clip',
  'unet',
  'controlnet',
  'segmentation',
  'evaluate',
] as const;

export type StageName = (typeof STAGE_NAMES)[number];

export interface StageOptions {
  steps?: number;
  batch?: number;
  resume: boolean;
  out: string;
  work: string;
  /** evaluate: classifier-free guidance scale (default the studio's). */
  guidance?: number;
  /** evaluate: a quarter of the counts, printed only (metrics.json and the grid stay as they are). */
  sweep?: boolean;
  /** evaluate: another judge's segmentation folder; its figures on the same pictures are logged too. */
  referenceJudge?: string;
  /** clip: also replace text_encoder/ when a UNet trained on the old one is in the folder. */
  textEncoder?: boolean;
  /** unet: share of regional samples (MSP segments with their own prompts; default 0). */
  regional?: number;
  /** unet: extra weight of subject pixels in plain samples (default 0: every pixel alike). */
  subjectWeight?: number;
  /** unet: share of samples drawn from the scenes naming a person (default 0: every scene alike). */
  personShare?: number;
  /** unet: weight of the caption contrast, man/boy and woman/girl swapped (default 0: none). */
  contrast?: number;
  /** unet, controlnet: share of samples trained on the empty prompt (default 0.1). */
  captionDropout?: number;
  /** unet, controlnet: training scenes encoded once and cached (default 32,000 and 4,000). */
  datasetSize?: number;
  /** unet: train the text encoder with the UNet (its own checkpoints, unet-text/; writes text_encoder/ too). */
  trainTextEncoder?: boolean;
  /**
   * unet: resnets per level, one count or one per level (default the folder's); more than the
   * folder's UNet has grows it without changing its output, and trains on from there.
   */
  layersPerBlock?: number | number[];
  /**
   * segmentation: start from the folder's judge (a fifth of the learning rate, scenes of another
   * seed, its own checkpoints in segmentation-fine-tune/) instead of from scratch.
   */
  fineTune?: boolean;
  /** vae-encoder: weight of the anchor to the original posterior means (default 0.1). */
  anchor?: number;
  /** vae-encoder: resnets per encoder level (default the folder's; more grows the encoder). */
  encoderResnets?: number;
}

type NumberKey =
  | 'steps'
  | 'batch'
  | 'guidance'
  | 'regional'
  | 'subjectWeight'
  | 'personShare'
  | 'contrast'
  | 'captionDropout'
  | 'datasetSize'
  | 'anchor'
  | 'encoderResnets';

interface NumberFlag {
  key: NumberKey;
  /** Stages that read it (undefined: every stage). */
  stages?: readonly StageName[];
  integer: boolean;
  min: number;
  max?: number;
  /** The range in words, for the error. */
  range: string;
}

const NUMBER_FLAGS: Record<string, NumberFlag> = {
  steps: { key: 'steps', integer: true, min: 1, range: 'a whole number of at least 1' },
  batch: {
    key: 'batch',
    stages: ['vae', 'vae-decoder', 'vae-encoder', 'clip', 'unet', 'controlnet', 'segmentation'],
    integer: true,
    min: 1,
    range: 'a whole number of at least 1',
  },
  guidance: {
    key: 'guidance',
    stages: ['evaluate'],
    integer: false,
    min: 1,
    range: 'a number of at least 1',
  },
  regional: {
    key: 'regional',
    stages: ['unet'],
    integer: false,
    min: 0,
    max: 1,
    range: 'a share from 0 to 1',
  },
  'subject-weight': {
    key: 'subjectWeight',
    stages: ['unet'],
    integer: false,
    min: 0,
    max: 20,
    range: 'a number from 0 to 20',
  },
  'person-share': {
    key: 'personShare',
    stages: ['unet'],
    integer: false,
    min: 0,
    max: 1,
    range: 'a share from 0 to 1',
  },
  contrast: {
    key: 'contrast',
    stages: ['unet'],
    integer: false,
    min: 0,
    max: 10,
    range: 'a number from 0 to 10',
  },
  'caption-dropout': {
    key: 'captionDropout',
    stages: ['unet', 'controlnet'],
    integer: false,
    min: 0,
    max: 0.5,
    range: 'a share from 0 to 0.5',
  },
  'dataset-size': {
    key: 'datasetSize',
    stages: ['unet', 'controlnet'],
    integer: true,
    min: 1,
    range: 'a whole number of at least 1',
  },
  anchor: { key: 'anchor', stages: ['vae-encoder'], integer: false, min: 0, range: 'a number of at least 0' },
  'encoder-resnets': {
    key: 'encoderResnets',
    stages: ['vae-encoder'],
    integer: true,
    min: 1,
    range: 'a whole number of at least 1',
  },
};

const BOOLEAN_FLAGS: Record<string, { stages?: readonly StageName[] }> = {
  resume: {},
  sweep: { stages: ['evaluate'] },
  'text-encoder': { stages: ['clip'] },
  'train-text-encoder': { stages: ['unet'] },
  'fine-tune': { stages: ['segmentation'] },
};

/** The most UNet levels a per-level --layers-per-block list may name. */
const MAX_LEVELS = 6;

export type ParsedTrainArgs = { stage: StageName; options: StageOptions } | { error: string };

/** Reads `argv` (without node and the script); `out` and `work` are the folders used when not given. */
export function parseTrainArgs(
  argv: readonly string[],
  defaults: { out: string; work: string },
): ParsedTrainArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        stage: { type: 'string' },
        out: { type: 'string' },
        'layers-per-block': { type: 'string' },
        'reference-judge': { type: 'string' },
        work: { type: 'string' },
        ...Object.fromEntries(Object.keys(NUMBER_FLAGS).map((f) => [f, { type: 'string' as const }])),
        ...Object.fromEntries(Object.keys(BOOLEAN_FLAGS).map((f) => [f, { type: 'boolean' as const }])),
      },
    }));
  } catch (e) {
    return { error: (e as Error).message };
  }
  const stage = values.stage;
  if (typeof stage !== 'string' || !(STAGE_NAMES as readonly string[]).includes(stage)) {
    return {
      error: `--stage must be one of ${STAGE_NAMES.join(', ')}${typeof stage === 'string' ? ` (got '${stage}')` : ''}`,
    };
  }
  const name = stage as StageName;
  const options: StageOptions = {
    resume: values.resume === true,
    out: typeof values.out === 'string' ? values.out : defaults.out,
    work: typeof values.work === 'string' ? values.work : defaults.work,
  };
  for (const [flag, spec] of Object.entries(BOOLEAN_FLAGS)) {
    if (values[flag] === undefined) continue;
    if (spec.stages && !spec.stages.includes(name)) return { error: notRead(flag, spec.stages, name) };
  }
  if (values.sweep === true) options.sweep = true;
  if (values['text-encoder'] === true) options.textEncoder = true;
  if (values['train-text-encoder'] === true) options.trainTextEncoder = true;
  if (values['fine-tune'] === true) options.fineTune = true;
  const reference = values['reference-judge'];
  if (typeof reference === 'string') {
    if (name !== 'evaluate') return { error: notRead('reference-judge', ['evaluate'], name) };
    if (reference.trim() === '') return { error: '--reference-judge must name a segmentation folder' };
    options.referenceJudge = reference;
  }
  const layers = values['layers-per-block'];
  if (typeof layers === 'string') {
    if (name !== 'unet') return { error: notRead('layers-per-block', ['unet'], name) };
    const counts = layers.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v)));
    if (counts.length > MAX_LEVELS || !counts.every((n) => Number.isInteger(n) && n >= 1 && n <= 4))
      return {
        error: `--layers-per-block must be a whole number from 1 to 4, or one per level separated by commas (got '${layers}')`,
      };
    options.layersPerBlock = counts.length === 1 ? counts[0] : counts;
  }
  for (const [flag, spec] of Object.entries(NUMBER_FLAGS)) {
    const raw = values[flag];
    if (typeof raw !== 'string') continue;
    if (spec.stages && !spec.stages.includes(name)) return { error: notRead(flag, spec.stages, name) };
    const value = raw.trim() === '' ? Number.NaN : Number(raw);
    const ok =
      Number.isFinite(value) &&
      (!spec.integer || Number.isInteger(value)) &&
      value >= spec.min &&
      (spec.max === undefined || value <= spec.max);
    if (!ok) return { error: `--${flag} must be ${spec.range} (got '${raw}')` };
    options[spec.key] = value;
  }
  return { stage: name, options };
}

function notRead(flag: string, stages: readonly StageName[], stage: StageName): string {
  return `--${flag} is read by the ${stages.join(', ')} stage${stages.length > 1 ? 's' : ''}, not by ${stage}`;
}
