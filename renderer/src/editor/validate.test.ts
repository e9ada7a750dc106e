import { describe, expect, it } from 'vitest';
import {
  addRegion,
  addSkeleton,
  createPanelDocument,
  setPrompt,
  setSegmentMap,
  updateRegion,
  updateSettings,
} from './document';
import { fillRectangle, paintOf } from './raster';
import { validatePanel } from './validate';
import type { ValidationContext } from './validate';

const ctx: ValidationContext = {
  minRegionPixels: 64,
  vaeScaleFactor: 8,
  hasControlNet: false,
  subjectNames: new Map([['mara', 'Mara']]),
};

describe('validatePanel', () => {
  it('a complete panel has no issues', () => {
    let doc = setPrompt(createPanelDocument(64, 64), 'a pier');
    doc = addRegion(doc, { id: 'a', color: '#ff3b30', prompt: 'a lamp' });
    doc = setSegmentMap(
      doc,
      fillRectangle(doc.segmentMap, { x: 0, y: 0 }, { x: 15, y: 15 }, paintOf('#ff3b30')),
    );
    expect(validatePanel(doc, ctx)).toEqual([]);
  });

  it('names the region at fault', () => {
    let doc = setPrompt(createPanelDocument(64, 64), 'a pier');
    doc = addRegion(doc, { id: 'a', color: '#ff3b30' });
    doc = addRegion(doc, { id: 'b', color: '#30d158', prompt: 'a boat' });
    doc = setSegmentMap(
      doc,
      fillRectangle(doc.segmentMap, { x: 0, y: 0 }, { x: 15, y: 15 }, paintOf('#ff3b30')),
    );
    doc = setSegmentMap(
      doc,
      fillRectangle(doc.segmentMap, { x: 30, y: 30 }, { x: 31, y: 31 }, paintOf('#30d158')),
    );
    const messages = validatePanel(doc, ctx).map((i) => [i.target, i.message]);
    expect(messages).toEqual([
      [{ kind: 'region', regionId: 'a' }, 'Region #1 has no prompt'],
      [{ kind: 'region', regionId: 'b' }, 'Region #2 is too small to render (4 px; at least 64)'],
    ]);
    // a region bound to a cast member needs no prompt of its own
    const bound = updateRegion(doc, 'a', { subjectId: 'mara' });
    expect(validatePanel(bound, ctx).some((i) => i.message.includes('#1'))).toBe(false);
    const lost = updateRegion(doc, 'a', { subjectId: 'gone' });
    expect(validatePanel(lost, ctx).map((i) => i.message)).toContain(
      "Region #1 is bound to a subject that is not in this story's cast",
    );
  });

  it('reports a missing prompt, impossible steps, a bad size, an unused color and ignored skeletons', () => {
    let doc = createPanelDocument(60, 64);
    doc = updateSettings(doc, { steps: 4, scaffoldingSteps: 3, globalDiffuserSteps: 2 });
    doc = setSegmentMap(
      doc,
      fillRectangle(doc.segmentMap, { x: 0, y: 0 }, { x: 1, y: 1 }, paintOf('#123456')),
    );
    doc = addSkeleton(doc);
    const issues = validatePanel(doc, ctx);
    expect(issues.map((i) => i.target.kind)).toEqual(['prompt', 'canvas', 'settings', 'settings', 'pose']);
    expect(issues.find((i) => i.target.kind === 'pose')?.severity).toBe('warning');
    expect(issues[1]).toMatchObject({
      target: { kind: 'canvas', unclaimedColor: '#123456' },
      message: '4 px are painted in #123456, which no region uses',
    });
  });
});
