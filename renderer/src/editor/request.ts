/**
 * The panel document <-> the API's `PanelRequest`. The document keeps the segment map as pixels; the
 * request names it as a stored PNG file, so the map travels separately (`panels.setSegmentMap`) and
 * everything else as one request patch (`panels.update`). One request object describes the render.
 */
import type {
  PanelRequest,
  PanelRequestPatch,
  PoseDocumentJson,
  Region as ApiRegion,
} from '../../../electron/api/contract';
import { emptyPose } from '../../../native-models/pose/openpose';
import type { PoseDocument } from '../../../native-models/pose/openpose';
import { DEFAULT_SETTINGS, PANEL_DOCUMENT_VERSION } from './document';
import type { PanelDocument, Region, RenderSettings, Scaffolding } from './document';
import { createRaster, resizeRaster } from './raster';
import type { Raster } from './raster';

/** The color of unpainted area in the requests this editor writes; no region may use it. */
export const BACKGROUND_COLOR = '#000000';

/**
 * Builds the editor document from a stored request.
 *
 * @param size the panel size: the request's, or the model's default when the request leaves it open
 * @param segmentMap the decoded segment map file, if the request has one (resized to `size` if needed)
 */
export function documentFromRequest(
  request: PanelRequest,
  size: { width: number; height: number },
  segmentMap: Raster | null,
): PanelDocument {
  const width = request.width ?? size.width;
  const height = request.height ?? size.height;
  const map = segmentMap ? resizeRaster(segmentMap, width, height) : createRaster(width, height);
  const pose = poseFromRequest(request.pose, width, height);
  const regions: Region[] = request.regions.map((r, i) => ({
    id: `region-${i}-${r.color.toLowerCase()}`,
    color: r.color.toLowerCase(),
    subjectId: r.subjectId ?? null,
    prompt: r.prompt,
    person: r.person != null && r.person < pose.people.length ? r.person : null,
  }));
  return {
    version: PANEL_DOCUMENT_VERSION,
    width,
    height,
    segmentMap: map,
    regions,
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    backgroundPrompt: request.backgroundPrompt ?? '',
    pose,
    scaffolding: request.scaffolding,
    settings: settingsFromRequest(request),
  };
}

/** The render settings a request carries (for "reuse settings" too). */
export function settingsFromRequest(request: PanelRequest): RenderSettings {
  return {
    steps: request.steps ?? DEFAULT_SETTINGS.steps,
    scheduler: request.scheduler ?? DEFAULT_SETTINGS.scheduler,
    guidanceScale: request.guidanceScale ?? DEFAULT_SETTINGS.guidanceScale,
    scaffoldingSteps: request.scaffoldingSteps ?? DEFAULT_SETTINGS.scaffoldingSteps,
    globalDiffuserSteps: request.globalDiffuserSteps ?? DEFAULT_SETTINGS.globalDiffuserSteps,
    globalDiffuserWeight: request.globalDiffuserWeight ?? DEFAULT_SETTINGS.globalDiffuserWeight,
    controlnetScale: request.controlnetScale ?? DEFAULT_SETTINGS.controlnetScale,
    sal: { ...DEFAULT_SETTINGS.sal, ...request.sal },
    seed: request.seed ?? null,
    seedLocked: request.seedLocked ?? false,
  };
}

function poseFromRequest(pose: PoseDocumentJson | null, width: number, height: number): PoseDocument {
  if (!pose) return emptyPose(width, height);
  if (pose.width === width && pose.height === height) return pose;
  const sx = width / pose.width;
  const sy = height / pose.height;
  return {
    width,
    height,
    people: pose.people.map((p) => ({
      keypoints: p.keypoints.map((k) => (k ? { ...k, x: k.x * sx, y: k.y * sy } : null)),
    })),
  };
}

/** Everything of the document except the segment map pixels, as a request patch. */
export function requestPatch(doc: PanelDocument): PanelRequestPatch {
  const regions: ApiRegion[] = doc.regions.map((r) => ({
    color: r.color,
    prompt: r.prompt,
    subjectId: r.subjectId,
    person: r.person,
  }));
  return {
    prompt: doc.prompt,
    negativePrompt: doc.negativePrompt,
    backgroundPrompt: doc.backgroundPrompt.trim() === '' ? null : doc.backgroundPrompt,
    backgroundColor: BACKGROUND_COLOR,
    regions,
    pose: doc.pose.people.length > 0 ? doc.pose : null,
    scaffolding: scaffoldingPatch(doc.scaffolding),
    steps: doc.settings.steps,
    scheduler: doc.settings.scheduler,
    guidanceScale: doc.settings.guidanceScale,
    scaffoldingSteps: doc.settings.scaffoldingSteps,
    globalDiffuserSteps: doc.settings.globalDiffuserSteps,
    globalDiffuserWeight: doc.settings.globalDiffuserWeight,
    controlnetScale: doc.settings.controlnetScale,
    sal: { ...doc.settings.sal },
    seed: doc.settings.seed,
    seedLocked: doc.settings.seedLocked,
    width: doc.width,
    height: doc.height,
  };
}

function scaffoldingPatch(scaffolding: Scaffolding): PanelRequestPatch['scaffolding'] {
  if (!scaffolding) return null;
  if ('image' in scaffolding) return { image: { hash: scaffolding.image.hash } };
  return { color: scaffolding.color };
}

/** What a save has to send after the document went from `saved` to `next`. */
export interface SaveDelta {
  /** The request patch changed (prompts, regions, pose, settings, size). */
  request: boolean;
  /** The pixels changed: the map must be uploaded again. */
  segmentMap: boolean;
}

export function saveDelta(saved: PanelDocument | null, next: PanelDocument): SaveDelta {
  if (!saved) return { request: true, segmentMap: true };
  const segmentMap = saved.segmentMap !== next.segmentMap;
  const request =
    saved.regions !== next.regions ||
    saved.prompt !== next.prompt ||
    saved.negativePrompt !== next.negativePrompt ||
    saved.backgroundPrompt !== next.backgroundPrompt ||
    saved.pose !== next.pose ||
    saved.scaffolding !== next.scaffolding ||
    saved.settings !== next.settings ||
    saved.width !== next.width ||
    saved.height !== next.height;
  return { request, segmentMap };
}

/**
 * "Reuse settings": the prompts, settings and seed of an earlier render (its editor state), with the
 * seed locked so the next render reproduces it. Regions, paint and skeletons stay as they are now.
 */
export function reuseSettings(doc: PanelDocument, rendered: PanelRequest, seed: number): PanelDocument {
  return {
    ...doc,
    prompt: rendered.prompt,
    negativePrompt: rendered.negativePrompt,
    backgroundPrompt: rendered.backgroundPrompt ?? '',
    settings: { ...settingsFromRequest(rendered), seed, seedLocked: true },
  };
}
