/**
 * A panel's request: the editor state (PanelRequest) and how it becomes the MSP GenerationRequest
 * that a render uses. Pure functions; the studio service supplies lookups (subjects, files, model).
 *
 * Region prompts: a region bound to a subject renders as `<token> <classNoun> <prompt>`, unless the
 * prompt already names the token (then it is used as written). The subject's identifier token is the
 * segment's `subject`: the class a cast's segmentation model knows it by (`segmentation/classes.json`
 * of a trained cast is `['background', <identifiers>...]`), which SAL checks in the region.
 */
import type { ApiIssue, GenerationRequestJson, ModelInfo, PoseDocumentJson } from '../api/contract.js';
import {
  checkSize,
  parseGenerationRequest,
  REQUEST_DEFAULTS,
  RequestError,
} from '../../native-models/msp/request.js';
import type { GenerationRequest } from '../../native-models/msp/request.js';
import type { StoredPanelRequest } from './database.js';
import type { PanelRequestPatchInput } from './schemas.js';

/** The request of a new panel. */
export function defaultPanelRequest(): StoredPanelRequest {
  return {
    version: 1,
    prompt: '',
    negativePrompt: REQUEST_DEFAULTS.negativePrompt,
    backgroundPrompt: null,
    backgroundColor: REQUEST_DEFAULTS.backgroundColor,
    segmentMap: null,
    regions: [],
    pose: null,
    scaffolding: null,
    steps: REQUEST_DEFAULTS.steps,
    scheduler: REQUEST_DEFAULTS.scheduler,
    guidanceScale: REQUEST_DEFAULTS.guidanceScale,
    scaffoldingSteps: REQUEST_DEFAULTS.scaffoldingSteps,
    globalDiffuserSteps: REQUEST_DEFAULTS.globalDiffuserSteps,
    globalDiffuserWeight: REQUEST_DEFAULTS.globalDiffuserWeight,
    controlnetScale: REQUEST_DEFAULTS.controlnetScale,
    sal: { ...REQUEST_DEFAULTS.sal },
    seed: null,
    seedLocked: false,
    width: null,
    height: null,
  };
}

/** The stored request with a (validated) patch merged over it; `sal` merges per field. */
export function mergePanelRequest(
  base: StoredPanelRequest,
  patch: PanelRequestPatchInput,
): StoredPanelRequest {
  const { sal, segmentMap, scaffolding, regions, ...rest } = patch;
  const merged: StoredPanelRequest = { ...base };
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
  }
  if (sal) merged.sal = { ...base.sal, ...definedOnly(sal) };
  if (segmentMap !== undefined) merged.segmentMap = segmentMap === null ? null : { hash: segmentMap.hash };
  if (scaffolding !== undefined) {
    merged.scaffolding =
      scaffolding === null
        ? null
        : 'image' in scaffolding
          ? { image: { hash: scaffolding.image.hash } }
          : { color: scaffolding.color };
  }
  if (regions) {
    merged.regions = regions.map((r) => ({
      color: r.color,
      prompt: r.prompt,
      ...(r.subjectId ? { subjectId: r.subjectId } : {}),
      ...(r.name !== undefined ? { name: r.name } : {}),
      ...(r.person != null ? { person: r.person } : {}),
    }));
  }
  return merged;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Whole-request checks that hold even while editing: distinct region colors that differ from the
 * background, skeleton links that name an existing skeleton, a pose canvas, SAL range. Returns issues with paths under `request.`.
 */
export function editingIssues(request: StoredPanelRequest): ApiIssue[] {
  const issues: ApiIssue[] = [];
  const seen = new Map<string, number>();
  const people = request.pose?.people.length ?? 0;
  request.regions.forEach((r, i) => {
    const first = seen.get(r.color);
    if (first !== undefined) {
      issues.push({
        path: `request.regions[${i}].color`,
        message: `${r.color} is already used by regions[${first}]`,
      });
    } else seen.set(r.color, i);
    if (r.person != null && r.person >= people) {
      const has = people === 0 ? 'no skeletons' : `${people} skeleton${people === 1 ? '' : 's'}`;
      issues.push({
        path: `request.regions[${i}].person`,
        message: `links skeleton ${r.person + 1} but the panel has ${has}`,
      });
    }
    if (r.color === request.backgroundColor) {
      issues.push({
        path: `request.regions[${i}].color`,
        message: `${r.color} is the background color; pick another color for the region`,
      });
    }
  });
  if (request.sal.end <= request.sal.start) {
    issues.push({
      path: 'request.sal.end',
      message: `must be greater than sal.start (${request.sal.start})`,
    });
  }
  return issues;
}

/** What resolving a panel needs to know about the library and the model. */
export interface ResolveContext {
  /** A live subject by id. */
  subject(id: string): { token: string; classNoun: string } | undefined;
  /** True when a stored file exists (bytes and metadata). */
  hasFile(hash: string): boolean;
  /** The model, when it has loaded (size, ControlNet and SAL checks need it). */
  model: ModelInfo | undefined;
  /** The hash of the stored pose JSON for the panel's pose (stored by the caller). */
  poseHash?: string;
  /** The hash of a blank segment map, used when the panel has neither map nor regions. */
  blankSegmentMapHash?: string;
}

/** The prompt a region renders with (see the module documentation). */
export function regionPrompt(
  prompt: string,
  subject: { token: string; classNoun: string } | undefined,
): string {
  const text = prompt.trim();
  if (!subject) return text;
  const mentions = new RegExp(`(^|[^A-Za-z0-9_-])${escapeRegExp(subject.token)}($|[^A-Za-z0-9_-])`, 'i');
  if (mentions.test(text)) return text;
  return [subject.token, subject.classNoun.trim(), text].filter((s) => s !== '').join(' ');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True when the pose has at least one person (an empty pose renders without ControlNet). */
export function hasPeople(pose: PoseDocumentJson | null): pose is PoseDocumentJson {
  return pose !== null && pose.people.length > 0;
}

/** The file names a rendered request uses for stored files. */
export const storedName = {
  png: (hash: string) => `${hash}.png`,
  json: (hash: string) => `${hash}.json`,
};

export interface ResolvedPanelRequest {
  /** The GenerationRequest JSON (files named `<hash>.png`/`.json`), without a seed. */
  json: Omit<GenerationRequestJson, 'seed'> & { seed?: number };
  /** The parsed request (defaults filled in). */
  request: GenerationRequest;
  files: { segmentMap: string; pose?: string; scaffoldImage?: string };
}

/**
 * Turns a panel's stored request into the GenerationRequest a render uses, or the issues that block
 * it, with paths in the panel's terms (`regions[1].prompt`, `segmentMap`, `width`).
 */
export function resolvePanelRequest(
  stored: StoredPanelRequest,
  context: ResolveContext,
): { ok: true; value: ResolvedPanelRequest } | { ok: false; issues: ApiIssue[] } {
  const issues: ApiIssue[] = [];
  const model = context.model;

  // 1. Segment map: the painted one, or a blank one when nothing is painted and no region is listed.
  let segmentMapHash: string | undefined;
  if (stored.segmentMap) {
    segmentMapHash = stored.segmentMap.hash;
    if (!context.hasFile(segmentMapHash)) {
      issues.push({
        path: 'segmentMap',
        message: `the painted map (${segmentMapHash}) is missing from the library`,
      });
    }
  } else if (stored.regions.length > 0) {
    issues.push({ path: 'segmentMap', message: 'is missing; paint the regions before rendering' });
  } else {
    segmentMapHash = context.blankSegmentMapHash;
  }

  // 2. Regions -> segments, with subjects' tokens and class nouns.
  const segments = stored.regions.map((r, i) => {
    let subject: { token: string; classNoun: string } | undefined;
    if (r.subjectId) {
      subject = context.subject(r.subjectId);
      if (!subject) {
        issues.push({
          path: `regions[${i}].subjectId`,
          message: 'names a subject that is not in the library',
        });
      }
    }
    const prompt = regionPrompt(r.prompt, subject);
    if (prompt === '')
      issues.push({ path: `regions[${i}].prompt`, message: 'is empty; describe what this region shows' });
    const classes = model?.segmentationClasses;
    if (stored.sal.weight > 0 && subject && classes && !classes.includes(subject.token)) {
      issues.push({
        path: `regions[${i}].subjectId`,
        message: `SAL checks this region for '${subject.token}', which the segmentation model of ${model.name} does not know (it knows ${classes.slice(1).join(', ')}); render with the model trained on the cast, or set the SAL weight to 0`,
      });
    }
    return {
      color: r.color,
      prompt: prompt || '-',
      ...(r.subjectId && subject ? { subject: subject.token } : {}),
    };
  });

  // 3. Pose, scaffolding, SAL against what the model can do.
  const pose = hasPeople(stored.pose);
  if (pose && model && !model.hasControlNet) {
    issues.push({
      path: 'pose',
      message: `the model ${model.name} has no ControlNet (controlnet/model.onnx), so it cannot follow a pose; remove the skeletons or use another model`,
    });
  }
  if (pose && context.poseHash === undefined) issues.push({ path: 'pose', message: 'could not be stored' });
  let scaffolding: GenerationRequestJson['scaffolding'];
  if (stored.scaffolding && 'image' in stored.scaffolding) {
    const h = stored.scaffolding.image.hash;
    if (!context.hasFile(h))
      issues.push({ path: 'scaffolding.image', message: `the image (${h}) is missing from the library` });
    scaffolding = { image: storedName.png(h) };
  } else if (stored.scaffolding) {
    scaffolding = { color: stored.scaffolding.color };
  }
  if (stored.sal.weight > 0 && model && !model.hasSegmentation) {
    issues.push({
      path: 'sal.weight',
      message: `SAL needs a segmentation model, and ${model.name} has none (train one for the cast, or set the weight to 0)`,
    });
  }

  // 4. Size: the panel's, else the model's default; a multiple of the VAE factor.
  const width = stored.width ?? model?.sizes.defaultImageSize ?? undefined;
  const height = stored.height ?? model?.sizes.defaultImageSize ?? undefined;
  if (model && (width === undefined || height === undefined)) {
    for (const key of ['width', 'height'] as const) {
      if ((key === 'width' ? width : height) === undefined) {
        issues.push({ path: key, message: `is required: the model ${model.name} gives no default size` });
      }
    }
  }
  if (model) {
    try {
      checkSize({ width, height }, model.sizes.vaeScaleFactor);
    } catch (err) {
      if (err instanceof RequestError) issues.push(...err.issues);
      else throw err;
    }
  }

  // 5. The GenerationRequest, checked by its own schema (paths mapped back to the panel's fields).
  const json: ResolvedPanelRequest['json'] = {
    version: 1,
    prompt: stored.prompt,
    negativePrompt: stored.negativePrompt,
    backgroundPrompt: stored.backgroundPrompt ?? stored.prompt,
    segmentMap: storedName.png(segmentMapHash ?? '0'.repeat(64)),
    backgroundColor: stored.backgroundColor,
    segments,
    ...(pose && context.poseHash ? { pose: storedName.json(context.poseHash) } : {}),
    ...(scaffolding ? { scaffolding } : {}),
    steps: stored.steps,
    scheduler: stored.scheduler,
    guidanceScale: stored.guidanceScale,
    scaffoldingSteps: stored.scaffoldingSteps,
    globalDiffuserSteps: stored.globalDiffuserSteps,
    globalDiffuserWeight: stored.globalDiffuserWeight,
    controlnetScale: stored.controlnetScale,
    sal: { ...stored.sal },
    ...(width !== undefined ? { width } : {}),
    ...(height !== undefined ? { height } : {}),
  } as ResolvedPanelRequest['json'];
  let request: GenerationRequest | undefined;
  try {
    request = parseGenerationRequest(json);
  } catch (err) {
    if (!(err instanceof RequestError)) throw err;
    for (const issue of err.issues) {
      const path = issue.path
        .replace(/^segments\[(\d+)\]\.subject$/, 'regions[$1].subjectId')
        .replace(/^segments\[/, 'regions[');
      if (!issues.some((i) => i.path === path)) issues.push({ path, message: issue.message });
    }
  }
  if (issues.length > 0 || !request || segmentMapHash === undefined) {
    if (issues.length === 0) issues.push({ path: 'segmentMap', message: 'is missing' });
    return { ok: false, issues };
  }
  return {
    ok: true,
    value: {
      json,
      request,
      files: {
        segmentMap: segmentMapHash,
        ...(pose && context.poseHash ? { pose: context.poseHash } : {}),
        ...(stored.scaffolding && 'image' in stored.scaffolding
          ? { scaffoldImage: stored.scaffolding.image.hash }
          : {}),
      },
    },
  };
}
