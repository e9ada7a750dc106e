/**
 * The MSP `GenerationRequest`: everything that determines one panel render, saved beside every
 * result. It is also a user-facing file format, the *scene file*: this JSON plus the images it
 * names by path (relative paths are relative to the scene file's folder).
 *
 * ```json
 * {
 *   "version": 1,
 *   "prompt": "two friends at a picnic, comic style",
 *   "negativePrompt": "blurry",
 *   "segmentMap": "segments.png",
 *   "backgroundColor": "#000000",
 *   "backgroundPrompt": "a park with trees",
 *   "segments": [
 *     { "color": "#ff0000", "prompt": "sks male cartoon waving", "subject": "mara" },
 *     { "color": "#00ff00", "prompt": "a red car" }
 *   ],
 *   "pose": "pose.json",
 *   "scaffolding": { "image": "scaffold.png" },
 *   "steps": 50, "scheduler": "ddim", "guidanceScale": 7.5,
 *   "scaffoldingSteps": 10, "globalDiffuserSteps": 2, "globalDiffuserWeight": 1.0,
 *   "controlnetScale": 1.0, "sal": { "weight": 0.0 },
 *   "seed": 42, "width": 512, "height": 512
 * }
 * ```
 *
 * Fields and defaults (see {@link REQUEST_DEFAULTS}):
 * - `version` (required): the format version, 1. Files from a newer MSP Studio are refused with a
 *   message saying so; {@link upgradeRequest} is the one place where older versions will migrate.
 * - `prompt` (required): the global prompt. `backgroundPrompt` (for pixels no segment claims)
 *   defaults to it. `negativePrompt` defaults to "".
 * - `segmentMap` (required): path of an image (PNG) whose colors mark the regions.
 *   `backgroundColor` (default `#000000`) is the color of unpainted area; transparent pixels are
 *   background too. Colors are `#rrggbb` or `#rgb`, any case; they are stored as lowercase `#rrggbb`.
 * - `segments`: one entry per region color: `color`, local `prompt`, and optionally the `subject`
 *   id of a taught cast member. Colors must be distinct and differ from `backgroundColor`.
 * - `pose` (optional): path of an OpenPose JSON file (`.json`) or an OpenPose image (`.png`, `.jpg`).
 * - `scaffolding` (optional): `{ "image": "file.png" }` or `{ "color": "#808080" }`; absent or
 *   null for none.
 * - `steps` (50), `scheduler` (`ddim`), `guidanceScale` (7.5): as in plain text-to-image.
 * - The steps run in three stages: first `globalDiffuserSteps` g (default 0) with the global
 *   prompt (weighted by `globalDiffuserWeight`, default 1, in [0, 1]), then `scaffoldingSteps` k
 *   in which every segment develops on its own, then harmonization for the rest; k + g <= steps.
 *   `scaffoldingSteps` is either a step count (an integer >= 0) or a fraction of `steps` strictly
 *   between 0 and 1, rounded to the nearest count (halves up): 0.2 of 50 steps is 10. Default 0.2.
 * - `controlnetScale` (1): strength of the pose ControlNet (used only with a `pose`).
 * - `sal`: the segmentation guidance loss, `{ "weight": w, "start": a, "end": b, "every": n }`.
 *   Step i (0-based) is a SAL step when a <= i / steps < b and (i - first such step) is a multiple
 *   of n. Defaults: weight 0 (off), start 0, end 0.5, every 1: every step of the first half, when
 *   the layout forms.
 * - `seed`: integer in [0, 2^53 - 1]. Optional in a scene being edited; required in a saved
 *   request ({@link withSeed} draws one for a new render).
 * - `width`, `height` (optional, positive integers): default to the model's size. Whether they
 *   fit the model (multiples of its VAE factor) is checked by {@link checkSize}.
 *
 * Unknown fields are errors (a typo such as `guidanceScal` would otherwise silently do nothing).
 *
 * @example
 * const { request, files } = await resolveScene('story/panel-3/scene.json');
 * const seeded = withSeed(request);
 * await writeFile('render-0001.json', serializeGenerationRequest(seeded));
 */
import { randomInt } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { SCHEDULER_NAMES } from '../schedulers/scheduler.js';
import type { SchedulerName } from '../schedulers/scheduler.js';

// ---------------------------------------------------------------------------------------------
// Types

/** The format version this MSP Studio writes and reads. */
export const REQUEST_VERSION = 1;

/** One painted region: its color in the segment map, its local prompt, and optionally a subject. */
export interface SegmentSpec {
  /** Lowercase `#rrggbb`. */
  color: string;
  /** Local prompt for this region (not empty). */
  prompt: string;
  /** Id of a taught subject (cast member) that this region shows. */
  subject?: string;
}

/** Scaffolding: an image (path) or a flat color that the segments develop against. */
export type Scaffolding = { image: string } | { color: string };

/** SAL (segmentation guidance loss) settings; see the module documentation for the step range. */
export interface SalSettings {
  /** Guidance weight w >= 0; 0 turns SAL off. */
  weight: number;
  /** First step as a fraction of `steps`, in [0, 1]. */
  start: number;
  /** End (exclusive) as a fraction of `steps`, in [0, 1], greater than `start`. */
  end: number;
  /** Apply at every n-th step of the range (n >= 1). */
  every: number;
}

/** A validated generation request with every default filled in (see the module documentation). */
export interface GenerationRequest {
  version: 1;
  prompt: string;
  negativePrompt: string;
  /** Prompt for pixels that no segment claims; defaults to `prompt`. */
  backgroundPrompt: string;
  /** Path of the segment map image (relative to the scene folder, or absolute). */
  segmentMap: string;
  /** Lowercase `#rrggbb`. */
  backgroundColor: string;
  segments: SegmentSpec[];
  /** Path of an OpenPose JSON (`.json`) or OpenPose image (`.png`, `.jpg`, `.jpeg`). */
  pose?: string;
  scaffolding?: Scaffolding;
  steps: number;
  scheduler: SchedulerName;
  guidanceScale: number;
  /** A step count (integer >= 0) or a fraction of `steps` in (0, 1); see {@link planSteps}. */
  scaffoldingSteps: number;
  globalDiffuserSteps: number;
  /** Weight of the global prompt's prediction during the global diffuser steps, in [0, 1]. */
  globalDiffuserWeight: number;
  controlnetScale: number;
  sal: SalSettings;
  /** Required in a saved request; see {@link withSeed}. */
  seed?: number;
  width?: number;
  height?: number;
}

/** A request ready to render or save: it has a seed. */
export type SeededGenerationRequest = GenerationRequest & { seed: number };

/** Where a problem is (`segments[1].color`) and what it is. */
export interface RequestIssue {
  path: string;
  message: string;
}

/**
 * Thrown for an invalid request or scene file. `issues` lists every problem found, each naming its
 * field path; the message joins them in one line.
 *
 * @example
 * try { parseGenerationRequest(json); } catch (e) {
 *   if (e instanceof RequestError) for (const i of e.issues) showNextToField(i.path, i.message);
 * }
 */
export class RequestError extends Error {
  override name = 'RequestError';
  readonly issues: readonly RequestIssue[];
  /** The scene file the request came from, when known. */
  readonly source: string | undefined;

  constructor(issues: readonly RequestIssue[], source?: string) {
    const list = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; ');
    const what = source === undefined ? 'invalid generation request' : `${source}: invalid scene`;
    super(issues.length === 1 ? `${what}: ${list}` : `${what} (${issues.length} problems): ${list}`);
    this.issues = issues;
    this.source = source;
  }
}

// ---------------------------------------------------------------------------------------------
// Defaults and presets

/** Defaults for fields a request may leave out. */
export const REQUEST_DEFAULTS = Object.freeze({
  negativePrompt: '',
  backgroundColor: '#000000',
  steps: 50,
  scheduler: 'ddim' as SchedulerName,
  guidanceScale: 7.5,
  /** A fraction: the first 20% of the steps (after the global diffuser steps) are scaffolding. */
  scaffoldingSteps: 0.2,
  globalDiffuserSteps: 0,
  globalDiffuserWeight: 1,
  controlnetScale: 1,
  sal: Object.freeze({ weight: 0, start: 0, end: 0.5, every: 1 }),
});

/** Settings a preset fills in; merge them into a request (`{ ...request, ...preset.settings }`). */
export interface PresetSettings {
  steps: number;
  scaffoldingSteps: number;
  globalDiffuserSteps: number;
  guidanceScale: number;
}

export interface Preset {
  label: string;
  description: string;
  settings: Readonly<PresetSettings>;
}

/**
 * The step settings of the MSP paper's experiments. The paper gives steps and global diffuser
 * steps g; the scaffolding share (0.2 of the steps) and guidance (7.5) are this app's defaults.
 *
 * @example
 * const request = parseGenerationRequest({ ...json, ...PAPER_PRESETS.controlnet.settings });
 */
export const PAPER_PRESETS: Readonly<Record<'scaffoldImage' | 'noScaffold' | 'controlnet', Preset>> =
  Object.freeze({
    scaffoldImage: Object.freeze({
      label: 'Paper: scaffolding image',
      description: '80 steps with a scaffolding image, 8 global diffuser steps',
      settings: Object.freeze({
        steps: 80,
        scaffoldingSteps: 0.2,
        globalDiffuserSteps: 8,
        guidanceScale: 7.5,
      }),
    }),
    noScaffold: Object.freeze({
      label: 'Paper: no scaffolding',
      description: '80 steps without a scaffolding image, 2 global diffuser steps',
      settings: Object.freeze({
        steps: 80,
        scaffoldingSteps: 0.2,
        globalDiffuserSteps: 2,
        guidanceScale: 7.5,
      }),
    }),
    controlnet: Object.freeze({
      label: 'Paper: ControlNet pose',
      description: '50 steps with an OpenPose ControlNet, 2 global diffuser steps',
      settings: Object.freeze({
        steps: 50,
        scaffoldingSteps: 0.2,
        globalDiffuserSteps: 2,
        guidanceScale: 7.5,
      }),
    }),
  });

// ---------------------------------------------------------------------------------------------
// Colors

const COLOR_RE = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

/**
 * `#rrggbb` or `#rgb` (any case) as lowercase `#rrggbb`; `undefined` for anything else.
 *
 * @example
 * normalizeColor('#F80'); // '#ff8800'
 * normalizeColor('red'); // undefined
 */
export function normalizeColor(text: string): string | undefined {
  if (typeof text !== 'string' || !COLOR_RE.test(text)) return undefined;
  const hex = text.slice(1).toLowerCase();
  return hex.length === 3 ? `#${hex[0]}${hex[0]}${hex[1]}${hex[1]}${hex[2]}${hex[2]}` : `#${hex}`;
}

// ---------------------------------------------------------------------------------------------
// Schema

const MAX_SEED = Number.MAX_SAFE_INTEGER;
const POSE_EXTENSIONS = ['.json', '.png', '.jpg', '.jpeg'];

const colorSchema = z
  .string()
  .refine((s) => normalizeColor(s) !== undefined, {
    error: (iss) => `${JSON.stringify(iss.input)} is not a #rrggbb color`,
  })
  .transform((s) => normalizeColor(s) as string);

const text = z.string();
const nonEmptyText = (what: string) =>
  z.string().refine((s) => s.trim() !== '', { error: `is empty; ${what}` });
const path = z.string().refine((s) => s.trim() !== '', { error: 'is empty; give a file path' });
const count = z.number().int();
const nonNegative = z.number().min(0);

const segmentSchema = z.strictObject({
  color: colorSchema,
  prompt: nonEmptyText('describe what this region shows'),
  subject: nonEmptyText('give a subject id or leave the field out').optional(),
});

const scaffoldingSchema = z
  .strictObject({
    image: path.optional(),
    color: colorSchema.optional(),
  })
  .nullable()
  .optional();

const salSchema = z.strictObject({
  weight: nonNegative.optional(),
  start: z.number().min(0).max(1).optional(),
  end: z.number().min(0).max(1).optional(),
  every: count.min(1).optional(),
});

/** One schema per top-level field, in the order they are written. */
const FIELDS = {
  version: z.literal(REQUEST_VERSION),
  prompt: nonEmptyText('describe the whole panel'),
  negativePrompt: text.optional(),
  backgroundPrompt: text.optional(),
  segmentMap: path,
  backgroundColor: colorSchema.optional(),
  segments: z.array(segmentSchema),
  pose: path
    .refine((s) => POSE_EXTENSIONS.some((ext) => s.toLowerCase().endsWith(ext)), {
      error: (iss) =>
        `${JSON.stringify(iss.input)} must be an OpenPose .json file or an OpenPose image (.png, .jpg)`,
    })
    .nullable()
    .optional(),
  scaffolding: scaffoldingSchema,
  steps: count.min(1).optional(),
  scheduler: z.enum(SCHEDULER_NAMES as [SchedulerName, ...SchedulerName[]]).optional(),
  guidanceScale: nonNegative.optional(),
  scaffoldingSteps: z
    .number()
    .refine((v) => (Number.isInteger(v) && v >= 0) || (v > 0 && v < 1), {
      error: (iss) =>
        `must be a step count (a whole number >= 0) or a fraction of steps between 0 and 1, got ${String(iss.input)}`,
    })
    .optional(),
  globalDiffuserSteps: count.min(0).optional(),
  globalDiffuserWeight: z.number().min(0).max(1).optional(),
  controlnetScale: nonNegative.optional(),
  sal: salSchema.optional(),
  seed: count.min(0).max(MAX_SEED).optional(),
  width: count.min(1).optional(),
  height: count.min(1).optional(),
};

const requestSchema = z.strictObject(FIELDS);

/** The JSON shape of a scene file (what {@link parseGenerationRequest} accepts). */
export type GenerationRequestJson = z.input<typeof requestSchema>;

const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(FIELDS),
  segment: Object.keys(segmentSchema.shape),
  scaffolding: ['image', 'color'],
  sal: Object.keys(salSchema.shape),
};

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Migrates a parsed scene/request JSON of any supported version to the current version's shape
 * (not otherwise validated). Version 1 is the only version so far, so it is returned unchanged;
 * future versions add their migrations here, and only here.
 *
 * @throws RequestError when `json` is not an object, lacks a version, or comes from a newer app.
 * @example
 * const current = upgradeRequest(JSON.parse(await readFile('scene.json', 'utf8')));
 */
export function upgradeRequest(json: unknown): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new RequestError([{ path: '', message: `must be a JSON object, got ${describe(json)}` }]);
  }
  const obj = json as Record<string, unknown>;
  const version = obj.version;
  if (version === undefined) {
    throw new RequestError([
      { path: 'version', message: `is missing; add "version": ${REQUEST_VERSION} (the format version)` },
    ]);
  }
  if (typeof version === 'number' && Number.isInteger(version) && version > REQUEST_VERSION) {
    throw new RequestError([
      {
        path: 'version',
        message: `${version} means the file was written by a newer MSP Studio; update MSP Studio to open it`,
      },
    ]);
  }
  if (version !== REQUEST_VERSION) {
    throw new RequestError([
      { path: 'version', message: `must be ${REQUEST_VERSION}, got ${describe(version)}` },
    ]);
  }
  // Version 1 is current. Migrations from older versions would go here, e.g.
  // if (version === 1) obj = migrate1to2(obj);
  return obj;
}

/**
 * Validates a request (the parsed JSON of a scene file, or an object built by the studio) and
 * returns it with defaults filled in and colors normalized. Every problem is reported at once.
 *
 * @throws RequestError listing each problem with its field path.
 * @example
 * const r = parseGenerationRequest({ version: 1, prompt: 'a picnic', segmentMap: 'segments.png',
 *   segments: [{ color: '#F00', prompt: 'sks man waving', subject: 'mara' }] });
 * r.segments[0].color; // '#ff0000'
 * r.steps; // 50
 * // A saved request (beside a result) must carry its seed:
 * const saved = parseGenerationRequest(json, { requireSeed: true }); // SeededGenerationRequest
 */
export function parseGenerationRequest(
  json: unknown,
  options: { requireSeed: true },
): SeededGenerationRequest;
export function parseGenerationRequest(json: unknown, options?: { requireSeed?: boolean }): GenerationRequest;
export function parseGenerationRequest(
  json: unknown,
  options: { requireSeed?: boolean } = {},
): GenerationRequest {
  const obj = upgradeRequest(json);
  const result = requestSchema.safeParse(obj, { reportInput: true });
  const issues: RequestIssue[] = result.success ? [] : result.error.issues.flatMap(toRequestIssues);
  issues.push(...crossFieldIssues(obj));
  if (options.requireSeed === true && obj.seed === undefined) {
    issues.push({ path: 'seed', message: 'is missing; a saved request needs the seed it was rendered with' });
  }
  if (!result.success || issues.length > 0) throw new RequestError(sortIssues(uniqueIssues(issues)));
  return buildRequest(result.data);
}

type ParsedRequest = z.output<typeof requestSchema>;

function buildRequest(d: ParsedRequest): GenerationRequest {
  const r: GenerationRequest = {
    version: REQUEST_VERSION,
    prompt: d.prompt,
    negativePrompt: d.negativePrompt ?? REQUEST_DEFAULTS.negativePrompt,
    backgroundPrompt: d.backgroundPrompt ?? d.prompt,
    segmentMap: d.segmentMap,
    backgroundColor: d.backgroundColor ?? REQUEST_DEFAULTS.backgroundColor,
    segments: d.segments.map((s) =>
      s.subject === undefined ? { color: s.color, prompt: s.prompt } : { ...s },
    ),
    steps: d.steps ?? REQUEST_DEFAULTS.steps,
    scheduler: d.scheduler ?? REQUEST_DEFAULTS.scheduler,
    guidanceScale: d.guidanceScale ?? REQUEST_DEFAULTS.guidanceScale,
    scaffoldingSteps: d.scaffoldingSteps ?? REQUEST_DEFAULTS.scaffoldingSteps,
    globalDiffuserSteps: d.globalDiffuserSteps ?? REQUEST_DEFAULTS.globalDiffuserSteps,
    globalDiffuserWeight: d.globalDiffuserWeight ?? REQUEST_DEFAULTS.globalDiffuserWeight,
    controlnetScale: d.controlnetScale ?? REQUEST_DEFAULTS.controlnetScale,
    sal: { ...REQUEST_DEFAULTS.sal, ...stripUndefined(d.sal ?? {}) },
  };
  if (d.pose != null) r.pose = d.pose;
  if (d.scaffolding != null) {
    r.scaffolding =
      d.scaffolding.image !== undefined
        ? { image: d.scaffolding.image }
        : { color: d.scaffolding.color as string };
  }
  if (d.seed !== undefined) r.seed = d.seed;
  if (d.width !== undefined) r.width = d.width;
  if (d.height !== undefined) r.height = d.height;
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Checks that involve more than one field; each field is only used when it is valid on its own. */
function crossFieldIssues(obj: Record<string, unknown>): RequestIssue[] {
  const issues: RequestIssue[] = [];
  const field = <K extends keyof typeof FIELDS>(key: K): z.output<(typeof FIELDS)[K]> | undefined => {
    const r = FIELDS[key].safeParse(obj[key]);
    return r.success ? (r.data as z.output<(typeof FIELDS)[K]>) : undefined;
  };

  // Segment colors: distinct, and not the background color.
  const background =
    obj.backgroundColor === undefined ? REQUEST_DEFAULTS.backgroundColor : field('backgroundColor');
  if (Array.isArray(obj.segments)) {
    const seen = new Map<string, number>();
    obj.segments.forEach((segment: unknown, i) => {
      if (typeof segment !== 'object' || segment === null) return;
      const parsed = colorSchema.safeParse((segment as { color?: unknown }).color);
      if (!parsed.success) return;
      const color = parsed.data;
      const first = seen.get(color);
      if (first !== undefined) {
        issues.push({
          path: `segments[${i}].color`,
          message: `${color} is already used by segments[${first}]; give every region its own color`,
        });
      } else {
        seen.set(color, i);
      }
      if (color === background) {
        issues.push({
          path: `segments[${i}].color`,
          message: `${color} is the backgroundColor; pick another color for this region`,
        });
      }
    });
  }

  // Scaffolding: exactly one of image / color.
  const scaffolding = obj.scaffolding;
  if (typeof scaffolding === 'object' && scaffolding !== null && !Array.isArray(scaffolding)) {
    const s = scaffolding as Record<string, unknown>;
    if (s.image !== undefined && s.color !== undefined) {
      issues.push({ path: 'scaffolding', message: 'give either "image" or "color", not both' });
    } else if (s.image === undefined && s.color === undefined) {
      issues.push({
        path: 'scaffolding',
        message: 'needs "image" (a file path) or "color" (#rrggbb); use null for no scaffolding',
      });
    }
  }

  // Stage lengths: k + g <= steps.
  const steps = obj.steps === undefined ? REQUEST_DEFAULTS.steps : field('steps');
  const k =
    obj.scaffoldingSteps === undefined ? REQUEST_DEFAULTS.scaffoldingSteps : field('scaffoldingSteps');
  const g =
    obj.globalDiffuserSteps === undefined
      ? REQUEST_DEFAULTS.globalDiffuserSteps
      : field('globalDiffuserSteps');
  if (steps !== undefined && k !== undefined && g !== undefined) {
    const kSteps = scaffoldingStepCount(k, steps);
    if (kSteps + g > steps) {
      const kText = Number.isInteger(k) ? `${k}` : `${k} = ${kSteps} steps`;
      issues.push({
        path: 'scaffoldingSteps',
        message: `scaffoldingSteps (${kText}) + globalDiffuserSteps (${g}) exceed steps (${steps})`,
      });
    }
  }

  // SAL range.
  const sal = field('sal');
  if (sal !== undefined) {
    const start = sal.start ?? REQUEST_DEFAULTS.sal.start;
    const end = sal.end ?? REQUEST_DEFAULTS.sal.end;
    if (end <= start) {
      issues.push({
        path: 'sal.end',
        message: `must be greater than sal.start (${start}), got ${end}; e.g. "start": 0, "end": 0.5 is the first half of the steps`,
      });
    }
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Issue formatting

/** `a.b[2].c` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** A short description of a rejected value for an error message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

const TYPE_NAMES: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  array: 'a list',
  object: 'an object',
  boolean: 'true or false',
};

function toRequestIssues(issue: z.core.$ZodIssue): RequestIssue[] {
  const path = formatPath(issue.path);
  const got = 'input' in issue ? issue.input : undefined;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const parent = issue.path.length === 0 ? '' : typeof issue.path[0] === 'string' ? issue.path[0] : '';
      const known = KNOWN_KEYS[parent === 'segments' ? 'segment' : parent] ?? [];
      return issue.keys.map((key) => {
        const hint = suggest(key, known);
        return {
          path: path === '' ? key : `${path}.${key}`,
          message: `unknown field${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
        };
      });
    }
    case 'invalid_type':
      if (got === undefined) return [{ path, message: 'is missing' }];
      if (path === 'scaffolding' && typeof got === 'string') {
        return [
          {
            path,
            message: `must be {"image": ${JSON.stringify(got)}} or {"color": "#rrggbb"}, got ${describe(got)}`,
          },
        ];
      }
      return [
        { path, message: `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describe(got)}` },
      ];
    case 'too_small':
      if (issue.origin === 'string') return [{ path, message: 'is empty' }];
      return [
        {
          path,
          message: `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${String(issue.minimum)}, got ${describe(got)}`,
        },
      ];
    case 'too_big':
      return [
        {
          path,
          message: `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}, got ${describe(got)}`,
        },
      ];
    case 'invalid_value':
      if (path === 'version') return [{ path, message: `must be ${REQUEST_VERSION}, got ${describe(got)}` }];
      return [
        {
          path,
          message: `${describe(got)} is not ${path === 'scheduler' ? 'a known scheduler' : 'allowed'}; use one of ${issue.values.map((v) => String(v)).join(', ')}`,
        },
      ];
    default:
      return [{ path, message: issue.message }];
  }
}

/** Drops repeats (zod can report one bound twice, e.g. an integer's safe range and an explicit max). */
function uniqueIssues(issues: RequestIssue[]): RequestIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\n${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Issues in field order (the order of the file), so related problems sit together. */
function sortIssues(issues: RequestIssue[]): RequestIssue[] {
  const order = Object.keys(FIELDS);
  const rank = (p: string) => {
    const top = /^[A-Za-z]+/.exec(p)?.[0] ?? '';
    const i = order.indexOf(top);
    return i < 0 ? order.length : i;
  };
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => rank(a.issue.path) - rank(b.issue.path) || a.i - b.i)
    .map((x) => x.issue);
}

/** The known key closest to `key` (case-insensitive edit distance <= 2, or <= a third of its length). */
function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------------------------
// Steps

/**
 * The scaffolding step count for a `scaffoldingSteps` value: integers are counts, fractions in
 * (0, 1) are shares of `steps`, rounded to the nearest count (halves up).
 *
 * @example
 * scaffoldingStepCount(0.2, 50); // 10
 * scaffoldingStepCount(12, 50); // 12
 */
export function scaffoldingStepCount(scaffoldingSteps: number, steps: number): number {
  if (Number.isInteger(scaffoldingSteps)) return scaffoldingSteps;
  // Round the product to 9 decimals first so that e.g. 0.29 * 50 = 14.499999999999998 rounds to 15.
  return Math.round(Math.round(scaffoldingSteps * steps * 1e9) / 1e9);
}

/** The resolved step plan of a request: stage lengths and the SAL steps. */
export interface StepPlan {
  steps: number;
  /** g: steps [0, g) use the global diffuser. */
  globalDiffuserSteps: number;
  /** k (a count): steps [g, g + k) are scaffolding. */
  scaffoldingSteps: number;
  /** steps - g - k: steps [g + k, steps) are harmonization. */
  harmonizationSteps: number;
  /** 0-based indices of the steps that apply SAL guidance, ascending; empty when sal.weight is 0. */
  salSteps: number[];
}

/**
 * Resolves a request's step settings into counts and SAL step indices.
 *
 * @example
 * planSteps({ ...request, steps: 50, scaffoldingSteps: 0.2, globalDiffuserSteps: 2,
 *   sal: { weight: 1, start: 0, end: 0.5, every: 5 } });
 * // { steps: 50, globalDiffuserSteps: 2, scaffoldingSteps: 10, harmonizationSteps: 38,
 * //   salSteps: [0, 5, 10, 15, 20] }
 */
export function planSteps(
  request: Pick<GenerationRequest, 'steps' | 'scaffoldingSteps' | 'globalDiffuserSteps' | 'sal'>,
): StepPlan {
  const { steps, globalDiffuserSteps: g, sal } = request;
  const k = scaffoldingStepCount(request.scaffoldingSteps, steps);
  const salSteps: number[] = [];
  if (sal.weight > 0) {
    let first = -1;
    for (let i = 0; i < steps; i++) {
      const at = i / steps;
      if (at < sal.start || at >= sal.end) continue;
      if (first < 0) first = i;
      if ((i - first) % sal.every === 0) salSteps.push(i);
    }
  }
  return { steps, globalDiffuserSteps: g, scaffoldingSteps: k, harmonizationSteps: steps - g - k, salSteps };
}

/**
 * Checks `width` and `height` against the model: each must be a multiple of its VAE scale factor
 * (8 for Stable Diffusion). Absent sizes (the model default) pass.
 *
 * @throws RequestError naming `width` and/or `height` with the nearest valid sizes.
 * @example
 * checkSize({ ...request, width: 500 }, 8); // RequestError: width: 500 is not a multiple of 8 ...; use 496 or 504
 */
export function checkSize(
  request: Pick<GenerationRequest, 'width' | 'height'>,
  vaeScaleFactor: number,
): void {
  if (!Number.isInteger(vaeScaleFactor) || vaeScaleFactor < 1) {
    throw new RangeError(`vaeScaleFactor must be a positive integer, got ${vaeScaleFactor}`);
  }
  const issues: RequestIssue[] = [];
  for (const key of ['width', 'height'] as const) {
    const v = request[key];
    if (v === undefined || v % vaeScaleFactor === 0) continue;
    const lo = Math.floor(v / vaeScaleFactor) * vaeScaleFactor;
    const hi = lo + vaeScaleFactor;
    issues.push({
      path: key,
      message: `${v} is not a multiple of ${vaeScaleFactor} (the model's VAE scale factor); use ${lo > 0 ? `${lo} or ${hi}` : hi}`,
    });
  }
  if (issues.length > 0) throw new RequestError(issues);
}

// ---------------------------------------------------------------------------------------------
// Seeds and saving

/** Anything that yields uniform unsigned 32-bit integers, e.g. an `Rng` from tensor/random.ts. */
export interface SeedSource {
  nextUint32(): number;
}

const cryptoSeeds: SeedSource = { nextUint32: () => randomInt(0, 2 ** 32) };

/**
 * The request with a seed: its own if it has one, else a new one in [0, 2^32) from `rng`
 * (default: the system's cryptographic generator). Does not modify `request`. To re-roll a seed,
 * pass `{ ...request, seed: undefined }`.
 *
 * @example
 * const toRender = withSeed(request); // toRender.seed is set
 * const repeatable = withSeed(request, new Rng(7));
 */
export function withSeed(request: GenerationRequest, rng: SeedSource = cryptoSeeds): SeededGenerationRequest {
  if (request.seed !== undefined) return { ...request, seed: request.seed };
  const seed = rng.nextUint32();
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new RangeError(`seed source must return an unsigned 32-bit integer, got ${seed}`);
  }
  return { ...request, seed };
}

/**
 * The request as the JSON text saved beside a result: validated, defaults written out, keys in a
 * fixed order (the order of the module documentation), two-space indented, ending in a newline.
 * `parseGenerationRequest(JSON.parse(serializeGenerationRequest(r)))` equals `r`.
 *
 * @throws RequestError when the request is invalid or has no seed.
 * @example
 * await writeFile(join(outDir, 'render-0001.json'), serializeGenerationRequest(withSeed(request)));
 */
export function serializeGenerationRequest(request: SeededGenerationRequest): string {
  const r = parseGenerationRequest(request, { requireSeed: true });
  const ordered: Record<string, unknown> = {
    version: r.version,
    prompt: r.prompt,
    negativePrompt: r.negativePrompt,
    backgroundPrompt: r.backgroundPrompt,
    segmentMap: r.segmentMap,
    backgroundColor: r.backgroundColor,
    segments: r.segments.map((s) =>
      s.subject === undefined
        ? { color: s.color, prompt: s.prompt }
        : { color: s.color, prompt: s.prompt, subject: s.subject },
    ),
    pose: r.pose,
    scaffolding: r.scaffolding,
    steps: r.steps,
    scheduler: r.scheduler,
    guidanceScale: r.guidanceScale,
    scaffoldingSteps: r.scaffoldingSteps,
    globalDiffuserSteps: r.globalDiffuserSteps,
    globalDiffuserWeight: r.globalDiffuserWeight,
    controlnetScale: r.controlnetScale,
    sal: { weight: r.sal.weight, start: r.sal.start, end: r.sal.end, every: r.sal.every },
    seed: r.seed,
    width: r.width,
    height: r.height,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Scene files

/** A scene file's request and the absolute paths of the files it references (all checked to exist). */
export interface ResolvedScene {
  request: GenerationRequest;
  /** The scene file's folder; relative paths in the request are relative to it. */
  baseDir: string;
  files: { segmentMap: string; pose?: string; scaffoldImage?: string };
}

/**
 * Reads a scene file (a request JSON), validates it, and resolves the files it references:
 * relative paths against the scene file's folder, absolute paths as they are. Every referenced
 * file must exist.
 *
 * @throws RequestError (with `source` = `scenePath`) for invalid JSON, an invalid request, or
 *   missing files (each named by field and path); file-system errors reading the scene itself
 *   propagate with the path in the message.
 * @example
 * const { request, files } = await resolveScene('panels/picnic/scene.json');
 * const map = await readSegmentMap(files.segmentMap);
 */
export async function resolveScene(scenePath: string): Promise<ResolvedScene> {
  let textContent: string;
  try {
    textContent = await readFile(scenePath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder' : (err as Error).message;
    throw new Error(`cannot read scene file ${scenePath}: ${reason}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(textContent);
  } catch (err) {
    throw new RequestError([{ path: '', message: `not valid JSON (${(err as Error).message})` }], scenePath);
  }
  let request: GenerationRequest;
  try {
    request = parseGenerationRequest(json);
  } catch (err) {
    if (err instanceof RequestError) throw new RequestError(err.issues, scenePath);
    throw err;
  }

  const baseDir = dirname(resolve(scenePath));
  const refs: [field: string, key: keyof ResolvedScene['files'], value: string | undefined][] = [
    ['segmentMap', 'segmentMap', request.segmentMap],
    ['pose', 'pose', request.pose],
    [
      'scaffolding.image',
      'scaffoldImage',
      request.scaffolding && 'image' in request.scaffolding ? request.scaffolding.image : undefined,
    ],
  ];
  const files: Partial<ResolvedScene['files']> = {};
  const issues: RequestIssue[] = [];
  await Promise.all(
    refs.map(async ([field, key, value]) => {
      if (value === undefined) return;
      const full = isAbsolute(value) ? value : resolve(baseDir, value);
      const problem = await fileProblem(full);
      if (problem === undefined) files[key] = full;
      else issues.push({ path: field, message: `${JSON.stringify(value)} ${problem} (looked for ${full})` });
    }),
  );
  if (issues.length > 0) throw new RequestError(sortIssues(issues), scenePath);
  return { request, baseDir, files: files as ResolvedScene['files'] };
}

async function fileProblem(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? undefined : 'is not a file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'not found' : `cannot be read (${code ?? 'error'})`;
  }
}
