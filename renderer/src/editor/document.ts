/**
 * The panel document: everything the panel editor edits, as plain immutable data. Every edit is a
 * pure function `(doc, ...) -> doc` that copies only what it changes (an edit that changes nothing
 * returns `doc` itself, so no undo step is recorded). The fabric.js canvas only draws a document and
 * reports gestures; it never holds state of its own.
 *
 * @example
 * ```ts
 * let doc = createPanelDocument(512, 512);
 * doc = addRegion(doc, { id: 'r1', color: '#ff3b30', prompt: 'a lamp' });
 * doc = setSegmentMap(doc, paintStroke(doc.segmentMap, points, 12, paintOf('#ff3b30')));
 * ```
 */
import type { FileRef, SalSettings, SchedulerName } from '../../../electron/api/contract';
import { addPerson, emptyPose, removePerson, translatePerson } from '../../../native-models/pose/openpose';
import type { PoseDocument, PoseTemplateName } from '../../../native-models/pose/openpose';
import { nextRegionColor } from './color';
import { createRaster, movePaint, paintOf, replacePaint, resizeRaster, TRANSPARENT } from './raster';
import type { Raster } from './raster';

/** Version of the document shape; bump with a migration in serialize.ts. */
export const PANEL_DOCUMENT_VERSION = 1;

/** A region: a flat color in the segment map, optionally bound to a cast member, with a local prompt. */
export interface Region {
  /** Stable within the document (colors can change). */
  readonly id: string;
  /** Lowercase `#rrggbb`; distinct per document. */
  readonly color: string;
  /** The subject this region shows, or null for a "free" region. */
  readonly subjectId: string | null;
  readonly prompt: string;
  /**
   * The skeleton linked to this region (an index into `pose.people`), or null. Moving one offers to
   * move the other; a skeleton links to one region at most.
   */
  readonly person: number | null;
}

/** The render settings of a panel (the GenerationRequest's knobs). */
export interface RenderSettings {
  readonly steps: number;
  readonly scheduler: SchedulerName;
  readonly guidanceScale: number;
  /** Scaffolding steps k: a count, or a fraction of `steps` in (0, 1). */
  readonly scaffoldingSteps: number;
  /** Global diffuser steps g. */
  readonly globalDiffuserSteps: number;
  readonly globalDiffuserWeight: number;
  readonly controlnetScale: number;
  readonly sal: Readonly<SalSettings>;
  /** The next seed when locked; otherwise the last seed used. */
  readonly seed: number | null;
  readonly seedLocked: boolean;
}

/** What segments develop against in the scaffolding stage. */
export type Scaffolding = { readonly image: FileRef } | { readonly color: string } | null;

export interface PanelDocument {
  readonly version: typeof PANEL_DOCUMENT_VERSION;
  /** Panel size in pixels: the segment map's and the render's. */
  readonly width: number;
  readonly height: number;
  /** The painted segment map (transparent = background). */
  readonly segmentMap: Raster;
  readonly regions: readonly Region[];
  readonly prompt: string;
  readonly negativePrompt: string;
  /** Prompt for unpainted area; empty means "same as the global prompt". */
  readonly backgroundPrompt: string;
  /** Skeletons, in the panel's pixel coordinates. */
  readonly pose: PoseDocument;
  readonly scaffolding: Scaffolding;
  readonly settings: RenderSettings;
}

export const DEFAULT_SETTINGS: RenderSettings = Object.freeze({
  steps: 30,
  scheduler: 'ddim',
  guidanceScale: 7.5,
  scaffoldingSteps: 0.2,
  globalDiffuserSteps: 2,
  globalDiffuserWeight: 1,
  controlnetScale: 1,
  sal: Object.freeze({ weight: 0, start: 0, end: 0.5, every: 1 }),
  seed: null,
  seedLocked: false,
});

/**
 * An empty panel: nothing painted, no regions, no skeletons, default settings.
 *
 * @example
 * ```ts
 * const doc = createPanelDocument(512, 768);
 * ```
 */
export function createPanelDocument(width: number, height: number): PanelDocument {
  return {
    version: PANEL_DOCUMENT_VERSION,
    width,
    height,
    segmentMap: createRaster(width, height),
    regions: [],
    prompt: '',
    negativePrompt: '',
    backgroundPrompt: '',
    pose: emptyPose(width, height),
    scaffolding: null,
    settings: DEFAULT_SETTINGS,
  };
}

// ---------------------------------------------------------------------------------------------
// Segment map

/** Replaces the segment map (the commit of a paint tool). Must be the panel's size. */
export function setSegmentMap(doc: PanelDocument, segmentMap: Raster): PanelDocument {
  if (segmentMap === doc.segmentMap) return doc;
  if (segmentMap.width !== doc.width || segmentMap.height !== doc.height) {
    throw new RangeError(
      `the segment map is ${segmentMap.width}x${segmentMap.height} but the panel is ${doc.width}x${doc.height}`,
    );
  }
  return { ...doc, segmentMap };
}

/** Erases everything painted. */
export function clearSegmentMap(doc: PanelDocument): PanelDocument {
  if (doc.segmentMap.data.every((v) => v === 0)) return doc;
  return { ...doc, segmentMap: createRaster(doc.width, doc.height) };
}

// ---------------------------------------------------------------------------------------------
// Regions

export interface NewRegion {
  id: string;
  /** Default: the next free palette color. */
  color?: string;
  subjectId?: string | null;
  prompt?: string;
}

/** Adds a region (at the end of the list). Colors must stay distinct. */
export function addRegion(doc: PanelDocument, region: NewRegion): PanelDocument {
  if (doc.regions.some((r) => r.id === region.id)) throw new RangeError(`region id "${region.id}" is taken`);
  const color = (region.color ?? nextRegionColor(doc.regions.map((r) => r.color))).toLowerCase();
  if (doc.regions.some((r) => r.color === color)) {
    throw new RangeError(`another region already uses ${color}`);
  }
  const next: Region = {
    id: region.id,
    color,
    subjectId: region.subjectId ?? null,
    prompt: region.prompt ?? '',
    person: null,
  };
  return { ...doc, regions: [...doc.regions, next] };
}

/** The region with this id, if any. */
export function findRegion(doc: PanelDocument, id: string): Region | undefined {
  return doc.regions.find((r) => r.id === id);
}

/** The region bound to a subject, if any. */
export function regionOfSubject(doc: PanelDocument, subjectId: string): Region | undefined {
  return doc.regions.find((r) => r.subjectId === subjectId);
}

/** Changes a region's prompt or subject. Use {@link recolorRegion} for its color. */
export function updateRegion(
  doc: PanelDocument,
  id: string,
  patch: Partial<Pick<Region, 'prompt' | 'subjectId'>>,
): PanelDocument {
  const region = requireRegion(doc, id);
  const next = { ...region, ...patch };
  if (next.prompt === region.prompt && next.subjectId === region.subjectId) return doc;
  return { ...doc, regions: doc.regions.map((r) => (r.id === id ? next : r)) };
}

/** Gives a region a new color and repaints its pixels with it, in one edit. */
export function recolorRegion(doc: PanelDocument, id: string, color: string): PanelDocument {
  const region = requireRegion(doc, id);
  const next = color.toLowerCase();
  if (next === region.color) return doc;
  if (doc.regions.some((r) => r.id !== id && r.color === next)) {
    throw new RangeError(`another region already uses ${next}`);
  }
  return {
    ...doc,
    segmentMap: replacePaint(doc.segmentMap, paintOf(region.color), paintOf(next)),
    regions: doc.regions.map((r) => (r.id === id ? { ...r, color: next } : r)),
  };
}

/** Deletes a region and erases its paint (so no unbound color is left behind), in one edit. */
export function removeRegion(doc: PanelDocument, id: string): PanelDocument {
  const region = requireRegion(doc, id);
  return {
    ...doc,
    segmentMap: replacePaint(doc.segmentMap, paintOf(region.color), TRANSPARENT),
    regions: doc.regions.filter((r) => r.id !== id),
  };
}

/**
 * Moves a region's paint by whole pixels (it covers what it lands on; paint pushed past the edge is
 * clipped). Use {@link regionOfPerson}/{@link Region.person} to offer moving its skeleton as well.
 */
export function moveRegion(doc: PanelDocument, id: string, dx: number, dy: number): PanelDocument {
  const region = requireRegion(doc, id);
  return setSegmentMap(doc, movePaint(doc.segmentMap, paintOf(region.color), dx, dy));
}

function requireRegion(doc: PanelDocument, id: string): Region {
  const region = findRegion(doc, id);
  if (!region) throw new RangeError(`region "${id}" does not exist`);
  return region;
}

// ---------------------------------------------------------------------------------------------
// Prompts, settings, scaffolding

export function setPrompt(doc: PanelDocument, prompt: string): PanelDocument {
  return prompt === doc.prompt ? doc : { ...doc, prompt };
}

export function setNegativePrompt(doc: PanelDocument, negativePrompt: string): PanelDocument {
  return negativePrompt === doc.negativePrompt ? doc : { ...doc, negativePrompt };
}

export function setBackgroundPrompt(doc: PanelDocument, backgroundPrompt: string): PanelDocument {
  return backgroundPrompt === doc.backgroundPrompt ? doc : { ...doc, backgroundPrompt };
}

/** Merges settings (`sal` per field). */
export function updateSettings(
  doc: PanelDocument,
  patch: Partial<Omit<RenderSettings, 'sal'>> & { sal?: Partial<SalSettings> },
): PanelDocument {
  const sal = patch.sal ? { ...doc.settings.sal, ...patch.sal } : doc.settings.sal;
  const settings: RenderSettings = { ...doc.settings, ...patch, sal };
  const same =
    (Object.keys(settings) as (keyof RenderSettings)[]).every(
      (k) => k === 'sal' || settings[k] === doc.settings[k],
    ) && (Object.keys(sal) as (keyof SalSettings)[]).every((k) => sal[k] === doc.settings.sal[k]);
  return same ? doc : { ...doc, settings };
}

export function setScaffolding(doc: PanelDocument, scaffolding: Scaffolding): PanelDocument {
  return scaffolding === doc.scaffolding ? doc : { ...doc, scaffolding };
}

/**
 * Resizes the panel: the segment map with nearest neighbour (colors stay exact), skeletons scaled with it.
 */
export function resizePanel(doc: PanelDocument, width: number, height: number): PanelDocument {
  if (width === doc.width && height === doc.height) return doc;
  const sx = width / doc.width;
  const sy = height / doc.height;
  const pose: PoseDocument = {
    width,
    height,
    people: doc.pose.people.map((p) => ({
      keypoints: p.keypoints.map((k) => (k ? { ...k, x: k.x * sx, y: k.y * sy } : null)),
    })),
  };
  return { ...doc, width, height, segmentMap: resizeRaster(doc.segmentMap, width, height), pose };
}

// ---------------------------------------------------------------------------------------------
// Pose (the openpose module's pure functions do the work; these keep the document whole)

/** Replaces the pose document (the commit of a pose drag, mirror, hide...). */
export function setPose(doc: PanelDocument, pose: PoseDocument): PanelDocument {
  if (pose === doc.pose) return doc;
  if (pose.width !== doc.width || pose.height !== doc.height) {
    throw new RangeError(
      `the pose is ${pose.width}x${pose.height} but the panel is ${doc.width}x${doc.height}`,
    );
  }
  const people = pose.people.length;
  const stale = doc.regions.some((r) => r.person !== null && r.person >= people);
  const regions = stale
    ? doc.regions.map((r) => (r.person !== null && r.person >= people ? { ...r, person: null } : r))
    : doc.regions;
  return { ...doc, pose, regions };
}

/** Where new skeletons stand, as fractions of the width: the middle first, then either side. */
const SKELETON_SLOTS = [0.5, 0.3, 0.7, 0.15, 0.85, 0.4, 0.6];

/**
 * Adds a skeleton in a template pose, standing in the first free slot (middle, left, right, ...) so a
 * new person does not land on top of another.
 */
export function addSkeleton(doc: PanelDocument, template: PoseTemplateName = 'standing'): PanelDocument {
  const taken = doc.pose.people.map((p) => {
    const neck = p.keypoints[1];
    return neck ? neck.x / doc.width : -1;
  });
  const free = SKELETON_SLOTS.find((slot) => taken.every((x) => Math.abs(x - slot) > 0.1));
  const x = doc.width * (free ?? SKELETON_SLOTS[doc.pose.people.length % SKELETON_SLOTS.length]);
  const scale = doc.height * 0.8;
  return { ...doc, pose: addPerson(doc.pose, template, { x, y: doc.height * 0.9, scale }) };
}

/** Removes skeleton `person`; a region linked to it is unlinked, links to later skeletons follow them. */
export function removeSkeleton(doc: PanelDocument, person: number): PanelDocument {
  const pose = removePerson(doc.pose, person);
  const linked = doc.regions.some((r) => r.person !== null && r.person >= person);
  const regions = linked
    ? doc.regions.map((r) => {
        if (r.person === null || r.person < person) return r;
        return { ...r, person: r.person === person ? null : r.person - 1 };
      })
    : doc.regions;
  return { ...doc, pose, regions };
}

/** Moves a whole skeleton (the linked region stays; the editor offers to move it). */
export function moveSkeleton(doc: PanelDocument, person: number, dx: number, dy: number): PanelDocument {
  if (!doc.pose.people[person]) throw new RangeError(`person ${person} does not exist`);
  if (dx === 0 && dy === 0) return doc;
  return setPose(doc, translatePerson(doc.pose, person, dx, dy));
}

/**
 * Links skeleton `person` to a region (or unlinks the region with `person` null). A skeleton links to
 * one region at most, so a region that held this skeleton before is unlinked in the same edit.
 */
export function linkSkeleton(doc: PanelDocument, regionId: string, person: number | null): PanelDocument {
  const region = requireRegion(doc, regionId);
  if (person !== null && !doc.pose.people[person]) throw new RangeError(`person ${person} does not exist`);
  if (region.person === person) return doc;
  return {
    ...doc,
    regions: doc.regions.map((r) => {
      if (r.id === regionId) return { ...r, person };
      return person !== null && r.person === person ? { ...r, person: null } : r;
    }),
  };
}

/** The region linked to skeleton `person`, if any. */
export function regionOfPerson(doc: PanelDocument, person: number): Region | undefined {
  return doc.regions.find((r) => r.person === person);
}

/** Copies skeleton `person`, shifted right by a tenth of the panel so both stay visible. */
export function duplicateSkeleton(doc: PanelDocument, person: number): PanelDocument {
  const source = doc.pose.people[person];
  if (!source) throw new RangeError(`person ${person} does not exist`);
  const dx = doc.width / 10;
  const copy = { keypoints: source.keypoints.map((k) => (k ? { ...k, x: k.x + dx } : null)) };
  return { ...doc, pose: { ...doc.pose, people: [...doc.pose.people, copy] } };
}
