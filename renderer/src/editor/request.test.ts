import { describe, expect, it } from 'vitest';
import type { PanelRequest } from '../../../electron/api/contract';
import {
  addRegion,
  addSkeleton,
  createPanelDocument,
  linkSkeleton,
  setPrompt,
  setSegmentMap,
  updateSettings,
} from './document';
import { fillRectangle, paintOf, rastersEqual } from './raster';
import { documentFromRequest, requestPatch, reuseSettings, saveDelta } from './request';

function storedRequest(overrides: Partial<PanelRequest> = {}): PanelRequest {
  return {
    version: 1,
    prompt: 'a pier',
    negativePrompt: 'blurry',
    backgroundPrompt: null,
    backgroundColor: '#000000',
    segmentMap: null,
    regions: [{ color: '#FF3B30', prompt: 'a lamp', subjectId: null }],
    pose: null,
    scaffolding: null,
    steps: 20,
    scheduler: 'euler',
    guidanceScale: 6,
    scaffoldingSteps: 4,
    globalDiffuserSteps: 2,
    globalDiffuserWeight: 1,
    controlnetScale: 0.8,
    sal: { weight: 0.2, start: 0, end: 0.5, every: 1 },
    seed: 7,
    seedLocked: true,
    width: null,
    height: null,
    ...overrides,
  };
}

describe('request <-> document', () => {
  it('reads a stored request, with the model size when the request leaves it open', () => {
    const doc = documentFromRequest(storedRequest(), { width: 64, height: 48 }, null);
    expect(doc.width).toBe(64);
    expect(doc.height).toBe(48);
    expect(doc.regions[0]).toMatchObject({ color: '#ff3b30', prompt: 'a lamp', subjectId: null });
    expect(doc.settings).toMatchObject({ steps: 20, scheduler: 'euler', seed: 7, seedLocked: true });
    expect(doc.pose.people).toEqual([]);
  });

  it('round-trips everything but the pixels through a patch', () => {
    let doc = createPanelDocument(64, 64);
    doc = addRegion(doc, { id: 'a', color: '#ff3b30', prompt: 'Mara waving', subjectId: 's1' });
    doc = setPrompt(doc, 'two friends on a pier');
    doc = addSkeleton(doc);
    doc = linkSkeleton(doc, 'a', 0);
    doc = updateSettings(doc, { steps: 8, seed: 42, seedLocked: true });
    const patch = requestPatch(doc);
    expect(patch.backgroundPrompt).toBeNull();
    expect(patch.width).toBe(64);
    const back = documentFromRequest(
      { ...storedRequest(), ...patch, segmentMap: null, scaffolding: null } as PanelRequest,
      { width: 1, height: 1 },
      doc.segmentMap,
    );
    const fields = ({ color, prompt, subjectId, person }: (typeof doc.regions)[number]) => ({
      color,
      prompt,
      subjectId,
      person,
    });
    expect(back.regions.map(fields)).toEqual(doc.regions.map(fields));
    expect(back.regions[0].person).toBe(0);
    expect(back.pose).toEqual(doc.pose);
    expect(back.settings).toEqual(doc.settings);
    expect(rastersEqual(back.segmentMap, doc.segmentMap)).toBe(true);
  });

  it('drops a stored skeleton link that names no skeleton', () => {
    const request = storedRequest({ regions: [{ color: '#ff3b30', prompt: 'a lamp', person: 2 }] });
    expect(documentFromRequest(request, { width: 8, height: 8 }, null).regions[0].person).toBeNull();
  });

  it('scales a stored pose and map of another size to the panel', () => {
    const small = addSkeleton(createPanelDocument(32, 32));
    const map = fillRectangle(small.segmentMap, { x: 0, y: 0 }, { x: 15, y: 31 }, paintOf('#ff3b30'));
    const doc = documentFromRequest(
      storedRequest({ pose: small.pose, width: 64, height: 64 }),
      { width: 8, height: 8 },
      map,
    );
    expect(doc.pose.width).toBe(64);
    expect(doc.pose.people[0].keypoints[1]!.x).toBeCloseTo(small.pose.people[0].keypoints[1]!.x * 2);
    expect(doc.segmentMap.width).toBe(64);
  });

  it('saveDelta says what changed', () => {
    const doc = addRegion(createPanelDocument(8, 8), { id: 'a' });
    expect(saveDelta(null, doc)).toEqual({ request: true, segmentMap: true });
    expect(saveDelta(doc, doc)).toEqual({ request: false, segmentMap: false });
    const painted = setSegmentMap(
      doc,
      fillRectangle(doc.segmentMap, { x: 0, y: 0 }, { x: 2, y: 2 }, paintOf(doc.regions[0].color)),
    );
    expect(saveDelta(doc, painted)).toEqual({ request: false, segmentMap: true });
    expect(saveDelta(doc, setPrompt(doc, 'x'))).toEqual({ request: true, segmentMap: false });
  });

  it('reuse settings takes prompts, settings and the seed (locked), not the paint', () => {
    const doc = addRegion(createPanelDocument(8, 8), { id: 'a', prompt: 'kept' });
    const next = reuseSettings(doc, storedRequest({ seedLocked: false }), 1234);
    expect(next.prompt).toBe('a pier');
    expect(next.settings).toMatchObject({ steps: 20, seed: 1234, seedLocked: true });
    expect(next.regions).toBe(doc.regions);
  });
});
