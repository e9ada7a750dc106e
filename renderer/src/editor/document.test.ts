import { describe, expect, it } from 'vitest';
import { KEYPOINT } from '../../../native-models/pose/openpose';
import { mirrorPerson, moveKeypoint, setKeypointVisible } from '../../../native-models/pose/openpose';
import {
  addRegion,
  addSkeleton,
  createPanelDocument,
  duplicateSkeleton,
  linkSkeleton,
  moveRegion,
  moveSkeleton,
  recolorRegion,
  regionOfPerson,
  regionOfSubject,
  removeRegion,
  removeSkeleton,
  resizePanel,
  setPose,
  setPrompt,
  setSegmentMap,
  updateRegion,
  updateSettings,
} from './document';
import { commit, createHistory, redo, undo } from './history';
import {
  countPaint,
  fillRectangle,
  paintOf,
  paintStroke,
  pixelAt,
  rastersEqual,
  TRANSPARENT,
} from './raster';

const RED = '#ff3b30';

function painted() {
  let doc = createPanelDocument(16, 16);
  doc = addRegion(doc, { id: 'a', color: RED, prompt: 'a lamp' });
  doc = setSegmentMap(doc, fillRectangle(doc.segmentMap, { x: 2, y: 2 }, { x: 5, y: 5 }, paintOf(RED)));
  return doc;
}

describe('regions', () => {
  it('new regions take distinct palette colors', () => {
    let doc = createPanelDocument(8, 8);
    doc = addRegion(doc, { id: 'a' });
    doc = addRegion(doc, { id: 'b', subjectId: 'mara' });
    expect(doc.regions[0].color).not.toBe(doc.regions[1].color);
    expect(regionOfSubject(doc, 'mara')?.id).toBe('b');
    expect(() => addRegion(doc, { id: 'c', color: doc.regions[0].color })).toThrow(/already uses/);
    expect(() => addRegion(doc, { id: 'a' })).toThrow(/taken/);
  });

  it('updateRegion changes prompt and subject and is a no-op when nothing changes', () => {
    const doc = painted();
    const next = updateRegion(doc, 'a', { prompt: 'a tall lamp', subjectId: 'pip' });
    expect(next.regions[0]).toMatchObject({ prompt: 'a tall lamp', subjectId: 'pip' });
    expect(updateRegion(next, 'a', { prompt: 'a tall lamp' })).toBe(next);
    expect(doc.regions[0].prompt).toBe('a lamp');
  });

  it('recoloring repaints the region pixels in one edit', () => {
    const doc = recolorRegion(painted(), 'a', '#30D158');
    expect(doc.regions[0].color).toBe('#30d158');
    expect(countPaint(doc.segmentMap, paintOf('#30d158'))).toBe(16);
    expect(countPaint(doc.segmentMap, paintOf(RED))).toBe(0);
  });

  it('removing a region erases its paint, so no unbound color is left', () => {
    const doc = removeRegion(painted(), 'a');
    expect(doc.regions).toHaveLength(0);
    expect(countPaint(doc.segmentMap, TRANSPARENT)).toBe(256);
  });
});

describe('undo/redo over document edits', () => {
  it('every kind of edit is one undoable step', () => {
    const start = createPanelDocument(32, 32);
    let h = createHistory(start);
    const step = (doc: typeof start, label: string) => {
      h = commit(h, doc, { label, now: h.past.length * 10_000 });
    };
    step(addRegion(h.present, { id: 'a', color: RED }), 'Add region');
    const afterRegion = h.present;
    step(
      setSegmentMap(
        h.present,
        paintStroke(
          h.present.segmentMap,
          [
            { x: 4, y: 4 },
            { x: 20, y: 4 },
          ],
          4,
          paintOf(RED),
        ),
      ),
      'Stroke',
    );
    const afterStroke = h.present;
    step(updateRegion(h.present, 'a', { prompt: 'a lighthouse' }), 'Region prompt');
    step(setPrompt(h.present, 'a pier at night'), 'Prompt');
    step(addSkeleton(h.present, 'waving'), 'Add skeleton');
    step(setPose(h.present, moveKeypoint(h.present.pose, 0, KEYPOINT.right_wrist, 3, 3)), 'Move joint');
    step(updateSettings(h.present, { steps: 12, sal: { weight: 0.5 } }), 'Settings');
    expect(h.past).toHaveLength(7);
    expect(h.present.settings.sal).toEqual({ weight: 0.5, start: 0, end: 0.5, every: 1 });

    for (let i = 0; i < 5; i++) h = undo(h);
    expect(h.present).toBe(afterStroke);
    h = undo(h);
    expect(h.present).toBe(afterRegion);
    expect(countPaint(h.present.segmentMap, paintOf(RED))).toBe(0);
    h = redo(h);
    expect(rastersEqual(h.present.segmentMap, afterStroke.segmentMap)).toBe(true);
    h = undo(undo(h));
    expect(h.present).toBe(start);
  });

  it('edits that change nothing return the same document', () => {
    const doc = painted();
    expect(setPrompt(doc, doc.prompt)).toBe(doc);
    expect(updateSettings(doc, { steps: doc.settings.steps, sal: { weight: 0 } })).toBe(doc);
    expect(setSegmentMap(doc, doc.segmentMap)).toBe(doc);
  });
});

describe('skeletons', () => {
  it('adds people side by side, duplicates, mirrors, hides and removes them', () => {
    let doc = addSkeleton(createPanelDocument(300, 200));
    doc = addSkeleton(doc, 'waving');
    const neck = (i: number) => doc.pose.people[i].keypoints[KEYPOINT.neck]!;
    expect(neck(0).x).toBeCloseTo(150);
    expect(neck(1).x).toBeCloseTo(90);
    doc = duplicateSkeleton(doc, 1);
    expect(neck(2).x).toBeCloseTo(120);
    doc = setPose(doc, mirrorPerson(doc.pose, 1));
    doc = setPose(doc, setKeypointVisible(doc.pose, 0, KEYPOINT.left_elbow, false));
    expect(doc.pose.people[0].keypoints[KEYPOINT.left_elbow]).toBeNull();
    doc = removeSkeleton(doc, 0);
    expect(doc.pose.people).toHaveLength(2);
  });

  it('refuses a pose of another size', () => {
    const doc = createPanelDocument(64, 64);
    expect(() => setPose(doc, { width: 32, height: 32, people: [] })).toThrow(/32x32/);
  });
});

describe('resize', () => {
  it('scales the map (nearest) and the skeletons together', () => {
    let doc = addSkeleton(painted());
    doc = resizePanel(doc, 32, 32);
    expect(doc.segmentMap.width).toBe(32);
    expect(countPaint(doc.segmentMap, paintOf(RED))).toBe(64);
    expect(doc.pose.width).toBe(32);
    expect(doc.pose.people[0].keypoints[KEYPOINT.neck]!.x).toBeCloseTo(16);
  });
});

describe('skeleton links', () => {
  function linked() {
    let doc = addSkeleton(addSkeleton(addSkeleton(painted())));
    doc = addRegion(doc, { id: 'b', color: '#0a84ff' });
    doc = linkSkeleton(doc, 'a', 1);
    return linkSkeleton(doc, 'b', 2);
  }

  it('links one region per skeleton: linking a taken skeleton moves the link', () => {
    let doc = linked();
    expect(regionOfPerson(doc, 1)?.id).toBe('a');
    expect(linkSkeleton(doc, 'a', 1)).toBe(doc);
    doc = linkSkeleton(doc, 'b', 1);
    expect(doc.regions.map((r) => r.person)).toEqual([null, 1]);
    doc = linkSkeleton(doc, 'b', null);
    expect(regionOfPerson(doc, 1)).toBeUndefined();
    expect(() => linkSkeleton(doc, 'b', 7)).toThrow(/person 7/);
  });

  it('deleting a skeleton unlinks its region and renumbers later links', () => {
    const doc = removeSkeleton(linked(), 1);
    expect(doc.regions.map((r) => r.person)).toEqual([null, 1]);
    expect(removeSkeleton(linked(), 0).regions.map((r) => r.person)).toEqual([0, 1]);
  });

  it('a new pose with fewer people drops links to the missing ones', () => {
    const doc = linked();
    const fewer = setPose(doc, { ...doc.pose, people: doc.pose.people.slice(0, 2) });
    expect(fewer.regions.map((r) => r.person)).toEqual([1, null]);
    expect(duplicateSkeleton(doc, 1).regions.map((r) => r.person)).toEqual([1, 2]);
  });

  it('moves a region or a skeleton alone; the link stays', () => {
    const doc = linked();
    const region = moveRegion(doc, 'a', 3, -1);
    expect(pixelAt(region.segmentMap, 8, 1)).toEqual(paintOf(RED));
    expect(pixelAt(region.segmentMap, 2, 5)).toEqual(TRANSPARENT);
    expect(region.pose).toBe(doc.pose);
    const neck = doc.pose.people[1].keypoints[KEYPOINT.neck]!;
    const skeleton = moveSkeleton(doc, 1, -2, 4);
    expect(skeleton.pose.people[1].keypoints[KEYPOINT.neck]).toMatchObject({ x: neck.x - 2, y: neck.y + 4 });
    expect(skeleton.segmentMap).toBe(doc.segmentMap);
    expect(skeleton.regions).toBe(doc.regions);
    expect(moveSkeleton(doc, 1, 0, 0)).toBe(doc);
  });
});
