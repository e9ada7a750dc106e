/**
 * zod schemas for every API payload, and the error type the service answers with. Every method
 * parses its payload here first; a failure names the field (`request.regions[1].color`) and says
 * what is wrong. File references are SHA-256 hashes only: no client text ever becomes a path.
 */
import { describe, formatPath } from '../../native-models/msp/request.js';
import { PAGE_LIMITS, PAGE_SIZE_IDS, PAGE_TEMPLATE_IDS } from '../../common/pages/layout.js';
import type { PageSizeId, PageTemplateId } from '../../common/pages/layout.js';
import { LETTERING_LIMITS } from '../../common/pages/lettering.js';
import { TRAINING_LIMITS } from '../../common/training/settings.js';
import { z } from 'zod';
import type { ApiErrorCode, ApiErrorInfo, ApiIssue } from '../api/contract.js';
import { normalizeColor, RequestError } from '../../native-models/msp/request.js';
import { SCHEDULER_NAMES } from '../../native-models/schedulers/scheduler.js';
import type { SchedulerName } from '../../native-models/schedulers/scheduler.js';

/** An error with an API error code (and field issues for invalid input). */
export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly issues: ApiIssue[] = [],
  ) {
    super(message);
  }

  /** Invalid input: the message is the first issue (and a count of the rest). */
  static invalid(issues: ApiIssue[], context?: string): ServiceError {
    const first = issues[0];
    const text =
      first === undefined ? 'invalid input' : first.path ? `${first.path}: ${first.message}` : first.message;
    const more =
      issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
    return new ServiceError('invalid_input', `${context ? `${context}: ` : ''}${text}${more}`, issues);
  }

  static notFound(what: string): ServiceError {
    return new ServiceError('not_found', `${what} does not exist`);
  }
}

/** Any thrown value as the envelope's error. */
export function toErrorInfo(err: unknown): ApiErrorInfo {
  if (err instanceof ServiceError) {
    return { code: err.code, message: err.message, ...(err.issues.length ? { issues: err.issues } : {}) };
  }
  if (err instanceof RequestError) {
    return { code: 'invalid_input', message: err.message, issues: [...err.issues] };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message: message || 'unexpected error' };
}

export { formatPath };

function issueMessage(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue ? issue.input : undefined;
  switch (issue.code) {
    case 'invalid_type':
      return got === undefined ? 'is missing' : `must be ${issue.expected}, got ${describe(got)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'string')
        return issue.minimum === 1 ? 'is empty' : `is shorter than ${String(issue.minimum)} characters`;
      if (issue.origin === 'array') return `needs at least ${String(issue.minimum)} entries`;
      return `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${String(issue.minimum)}, got ${describe(got)}`;
    case 'too_big':
      if (issue.origin === 'string') return `is longer than ${String(issue.maximum)} characters`;
      if (issue.origin === 'array') return `has more than ${String(issue.maximum)} entries`;
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}, got ${describe(got)}`;
    case 'invalid_value':
      return `${describe(got)} is not allowed; use one of ${issue.values.map((v) => String(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/** The issues of a zod error, each with a path prefixed by `prefix`. */
export function zodIssues(error: z.ZodError, prefix = ''): ApiIssue[] {
  return flatten(error.issues, []).map(({ issue, path: parts }) => {
    const path = formatPath(parts);
    return { path: prefix && path ? `${prefix}.${path}` : prefix || path, message: issueMessage(issue) };
  });
}

/**
 * Issues with full paths. A failed union reports the branch that came closest (fewest issues), so
 * `{ "hash": "x" }` is told about its hash, not that it "matches no alternative".
 */
function flatten(
  issues: readonly z.core.$ZodIssue[],
  base: readonly PropertyKey[],
): { issue: z.core.$ZodIssue; path: PropertyKey[] }[] {
  return issues.flatMap((issue) => {
    const path = [...base, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const best = [...issue.errors].sort((a, b) => a.length - b.length)[0];
      if (best.length > 0) return flatten(best, path);
    }
    return [{ issue, path }];
  });
}

/**
 * Parses a payload or throws `invalid_input` naming the method and the field.
 *
 * @example
 * const { id } = parsePayload(idInput, payload, 'panels.get');
 */
export function parsePayload<T extends z.ZodType>(schema: T, payload: unknown, method: string): z.output<T> {
  const result = schema.safeParse(payload, { reportInput: true });
  if (!result.success) throw ServiceError.invalid(zodIssues(result.error), method);
  return result.data;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

export const MAX_FILE_BYTES = 50 * 1024 * 1024;
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export const id = z.string().min(1).max(100);
export const hash = z
  .string()
  .regex(/^[0-9a-f]{64}$/, { error: 'must be a file hash (64 lowercase hex digits)' });
const title = z.string().trim().min(1).max(200);
const promptText = z.string().max(4000);

export const color = z
  .string()
  .refine((s) => normalizeColor(s) !== undefined, {
    error: (iss) => `${describe(iss.input)} is not a #rrggbb color`,
  })
  .transform((s) => normalizeColor(s) as string);

/** A stored file by hash (a whole FileRef is accepted; other fields are ignored). */
export const fileHandle = z.object({ hash });

/** Base64 bytes with their media type. */
export const fileUpload = z.strictObject({
  data: z
    .string()
    .max(Math.ceil(MAX_FILE_BYTES / 3) * 4 + 4, { error: 'is larger than 50 MB' })
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, { error: 'must be base64 (without a data: prefix)' }),
  mediaType: z.string().min(1).max(100),
  name: z.string().max(255).optional(),
});

export const fileInput = z.union([fileUpload, fileHandle]);

const noPayload = z.union([z.undefined(), z.null(), z.strictObject({})]);
export const none = noPayload;

export const idInput = z.strictObject({ id });

// ---------------------------------------------------------------------------------------------
// Library

/** An identifier token: one word of letters, digits, `_` or `-`. */
export const token = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_-]{2,32}$/, { error: 'must be one word of 2-32 letters, digits, _ or -' });

export const subjectCreate = z.strictObject({
  name: title,
  token: token.optional(),
  classNoun: z.string().trim().min(1).max(200),
  referenceImages: z.array(fileInput).max(200).optional(),
});

export const subjectUpdate = z.strictObject({
  id,
  name: title.optional(),
  token: token.optional(),
  classNoun: z.string().trim().min(1).max(200).optional(),
  referenceImages: z.array(fileHandle).max(200).optional(),
});

export const addReferenceImages = z.strictObject({
  subjectId: id,
  images: z.array(fileInput).min(1).max(200),
});

export const removeReferenceImage = z.strictObject({ subjectId: id, hash });

const subjectIds = z.array(id).max(100);

export const castCreate = z.strictObject({ name: title, subjectIds: subjectIds.optional() });
export const castUpdate = z.strictObject({ id, name: title.optional(), subjectIds: subjectIds.optional() });

export const storyCreate = z.strictObject({ title, castId: id.nullable().optional() });
export const storyUpdate = z.strictObject({ id, title: title.optional(), castId: id.nullable().optional() });

// ---------------------------------------------------------------------------------------------
// Panels

const finite = z.number().refine(Number.isFinite, { error: 'must be a finite number' });

const keypoint = z.object({ x: finite, y: finite, confidence: finite }).nullable();

export const poseDocument = z.strictObject({
  width: z.number().int().min(1).max(16384),
  height: z.number().int().min(1).max(16384),
  people: z
    .array(
      z.object({
        keypoints: z
          .array(keypoint)
          .length(18, { error: 'must list the 18 COCO keypoints (null for hidden ones)' }),
      }),
    )
    .max(64),
});

export const region = z.strictObject({
  color,
  prompt: promptText,
  subjectId: id.nullable().optional(),
  name: z.string().max(200).optional(),
  person: z.number().int().min(0).max(63).nullable().optional(),
});

const salPatch = z.strictObject({
  weight: z.number().min(0).max(1000).optional(),
  start: z.number().min(0).max(1).optional(),
  end: z.number().min(0).max(1).optional(),
  every: z.number().int().min(1).max(1000).optional(),
});

const size = z.number().int().min(8).max(8192).nullable();

/** Any subset of a PanelRequest (files by hash). Whole-request checks run after merging. */
export const panelRequestPatch = z.strictObject({
  version: z.literal(1).optional(),
  prompt: promptText.optional(),
  negativePrompt: promptText.optional(),
  backgroundPrompt: promptText.nullable().optional(),
  backgroundColor: color.optional(),
  segmentMap: fileHandle.nullable().optional(),
  regions: z.array(region).max(64).optional(),
  pose: poseDocument.nullable().optional(),
  scaffolding: z
    .union([z.strictObject({ image: fileHandle }), z.strictObject({ color })])
    .nullable()
    .optional(),
  steps: z.number().int().min(1).max(1000).optional(),
  scheduler: z.enum(SCHEDULER_NAMES as [SchedulerName, ...SchedulerName[]]).optional(),
  guidanceScale: z.number().min(0).max(100).optional(),
  scaffoldingSteps: z
    .number()
    .refine((v) => (Number.isInteger(v) && v >= 0) || (v > 0 && v < 1), {
      error: 'must be a step count (a whole number >= 0) or a fraction of steps between 0 and 1',
    })
    .optional(),
  globalDiffuserSteps: z.number().int().min(0).max(1000).optional(),
  globalDiffuserWeight: z.number().min(0).max(1).optional(),
  controlnetScale: z.number().min(0).max(10).optional(),
  sal: salPatch.optional(),
  seed: z.number().int().min(0).max(MAX_SEED).nullable().optional(),
  seedLocked: z.boolean().optional(),
  width: size.optional(),
  height: size.optional(),
});

export type PanelRequestPatchInput = z.output<typeof panelRequestPatch>;

export const panelCreate = z.strictObject({
  storyId: id,
  title: title.optional(),
  request: panelRequestPatch.optional(),
  afterPanelId: id.optional(),
});

export const panelUpdate = z.strictObject({
  id,
  title: title.optional(),
  request: panelRequestPatch.optional(),
});

export const panelList = z.strictObject({ storyId: id });
export const panelReorder = z.strictObject({ storyId: id, panelIds: z.array(id).max(10000) });
export const setSegmentMap = z.strictObject({ panelId: id, image: fileInput });
export const setPose = z.strictObject({ panelId: id, pose: poseDocument.nullable() });

// ---------------------------------------------------------------------------------------------
// Renders and jobs

export const renderPanel = z.strictObject({
  panelId: id,
  seed: z.number().int().min(0).max(MAX_SEED).optional(),
});
export const renderList = z.strictObject({ panelId: id });
export const jobList = z.union([
  z.undefined(),
  z.null(),
  z.strictObject({
    state: z.enum(['queued', 'running', 'finished', 'failed', 'cancelled']).optional(),
    panelId: id.optional(),
    limit: z.number().int().min(1).max(1000).optional(),
  }),
]);
export const fileGet = z.strictObject({ hash });

// ---------------------------------------------------------------------------------------------
// Pages

const fraction = z.number().min(0).max(1);
/** Box edges may sit on the page edge; float noise from dragging is tolerated. */
const EDGE_SLACK = 1e-6;

/** A caption or speech balloon: a box inside the page (page fractions), text, letter size. */
export const lettering = z
  .strictObject({
    id: z.string().min(1).max(100),
    kind: z.enum(['caption', 'speech']),
    x: fraction,
    y: fraction,
    width: z.number().min(LETTERING_LIMITS.minSize).max(1),
    height: z.number().min(LETTERING_LIMITS.minSize).max(1),
    tail: z.strictObject({ x: fraction, y: fraction }).nullable(),
    text: z.string().max(LETTERING_LIMITS.textLength),
    fontSizePt: z.number().min(LETTERING_LIMITS.fontSizePt.min).max(LETTERING_LIMITS.fontSizePt.max),
  })
  .check((ctx) => {
    const l = ctx.value;
    if (l.x + l.width > 1 + EDGE_SLACK)
      ctx.issues.push({
        code: 'custom',
        input: l.width,
        path: ['width'],
        message: 'reaches past the right edge of the page',
      });
    if (l.y + l.height > 1 + EDGE_SLACK)
      ctx.issues.push({
        code: 'custom',
        input: l.height,
        path: ['height'],
        message: 'reaches past the bottom of the page',
      });
    if (l.kind === 'caption' && l.tail !== null)
      ctx.issues.push({
        code: 'custom',
        input: l.tail,
        path: ['tail'],
        message: 'captions have no tail; use null',
      });
  });

/** Any subset of a page's content. Whole-page checks (layout room, slot count, panels) run after merging. */
export const pageContentPatch = z.strictObject({
  template: z.enum(PAGE_TEMPLATE_IDS as [PageTemplateId, ...PageTemplateId[]]).optional(),
  size: z.enum(PAGE_SIZE_IDS as [PageSizeId, ...PageSizeId[]]).optional(),
  dpi: z.number().int().min(PAGE_LIMITS.dpi.min).max(PAGE_LIMITS.dpi.max).optional(),
  gutterMm: z.number().min(PAGE_LIMITS.gutterMm.min).max(PAGE_LIMITS.gutterMm.max).optional(),
  marginMm: z.number().min(PAGE_LIMITS.marginMm.min).max(PAGE_LIMITS.marginMm.max).optional(),
  slots: z.array(id.nullable()).max(32).optional(),
  lettering: z
    .array(lettering)
    .max(LETTERING_LIMITS.perPage)
    .check((ctx) => {
      const seen = new Set<string>();
      ctx.value.forEach((l, i) => {
        if (seen.has(l.id))
          ctx.issues.push({
            code: 'custom',
            input: l.id,
            path: [i, 'id'],
            message: `${l.id} is used twice on this page`,
          });
        seen.add(l.id);
      });
    })
    .optional(),
});

export type PageContentPatchInput = z.output<typeof pageContentPatch>;

export const pageCreate = z.strictObject({
  storyId: id,
  content: pageContentPatch.optional(),
  afterPageId: id.optional(),
});
export const pageUpdate = pageContentPatch.extend({ id });
export const pageList = z.strictObject({ storyId: id });
export const pageReorder = z.strictObject({ storyId: id, pageIds: z.array(id).max(10000) });
export const pageExport = z.union([
  z.strictObject({ format: z.literal('png'), pageId: id }),
  z.strictObject({ format: z.enum(['pdf', 'cbz']), storyId: id }),
]);

// ---------------------------------------------------------------------------------------------
// Models

export const modelImport = z.strictObject({
  path: z.string().trim().min(1).max(4096),
});

// ---------------------------------------------------------------------------------------------
// Training

export const castIdInput = z.strictObject({ castId: id });

const setting = (name: keyof typeof TRAINING_LIMITS) =>
  z.number().int().min(TRAINING_LIMITS[name].min).max(TRAINING_LIMITS[name].max).optional();

/** Any subset of TrainingSettings (the rest take common/training/settings.ts TRAINING_DEFAULTS). */
export const trainingSettings = z.strictObject({
  steps: setting('steps'),
  classImages: setting('classImages'),
  segmentationSteps: setting('segmentationSteps'),
  previewEvery: setting('previewEvery'),
  batch: setting('batch'),
});

export const trainingStart = z.strictObject({ castId: id, settings: trainingSettings.optional() });
