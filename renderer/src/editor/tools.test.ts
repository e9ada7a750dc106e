import { describe, expect, it } from 'vitest';
import { KEYPOINT } from '../../../native-models/pose/openpose';
import { addRegion, addSkeleton, createPanelDocument, setSegmentMap } from './document';
import type { PanelDocument } from './document';
import { countPaint, fillRectangle, paintOf, pixelAt, TRANSPARENT } from './raster';
import {
  doubleClick,
  hitJoint,
  initialToolState,
  keyDown,
  NO_REGION_HINT,
  NOTHING_TO_MOVE_HINT,
  pointerDown,
  pointerMove,
  pointerUp,
} from './tools';
import type { ToolContext, ToolId, ToolOutput, ToolState } from './tools';

const RED = '#ff3b30';

function context(doc: PanelDocument, overrides: Partial<ToolContext> = {}): ToolContext {
  return { doc, activeColor: RED, brushSize: 4, handleRadius: 3, selectedPerson: null, ...overrides };
}

function baseDoc(): PanelDocument {
  return addRegion(createPanelDocument(40, 40), { id: 'a', color: RED });
}

/** Runs a gesture: press at the first point, move through the middle ones, release at the last. */
function drag(tool: ToolId | ToolState, ctx: ToolContext, points: { x: number; y: number }[]): ToolOutput {
  let state = typeof tool === 'string' ? initialToolState(tool) : tool;
  state = pointerDown(state, ctx, points[0]).state;
  for (const p of points.slice(1, -1)) state = pointerMove(state, ctx, p).state;
  return pointerUp(state, ctx, points[points.length - 1]);
}

describe('brush and eraser', () => {
  it('a stroke commits once, with hard edges in the region color', () => {
    const ctx = context(baseDoc());
    const out = drag('brush', ctx, [
      { x: 5, y: 5 },
      { x: 15, y: 5 },
      { x: 25, y: 5 },
    ]);
    expect(out.commit?.label).toBe('Brush stroke');
    const map = out.commit!.doc.segmentMap;
    expect(pixelAt(map, 20, 5)).toEqual(paintOf(RED));
    const total = countPaint(map, paintOf(RED)) + countPaint(map, TRANSPARENT);
    expect(total).toBe(40 * 40);
    expect(out.state.phase).toBe('idle');
  });

  it('previews while stroking without touching the document', () => {
    const ctx = context(baseDoc());
    const down = pointerDown(initialToolState('brush'), ctx, { x: 5, y: 5 });
    const move = pointerMove(down.state, ctx, { x: 30, y: 30 });
    expect(pixelAt(move.preview!.segmentMap!, 20, 20)).toEqual(paintOf(RED));
    expect(countPaint(ctx.doc.segmentMap, TRANSPARENT)).toBe(1600);
  });

  it('refuses to paint without a region, with a hint', () => {
    const ctx = context(createPanelDocument(10, 10), { activeColor: null });
    const out = pointerDown(initialToolState('brush'), ctx, { x: 1, y: 1 });
    expect(out.hint).toBe(NO_REGION_HINT);
    expect(out.state.phase).toBe('idle');
  });

  it('the eraser needs no region and erases to transparent', () => {
    const painted = drag('rectangle', context(baseDoc()), [
      { x: 0, y: 0 },
      { x: 39, y: 39 },
    ]).commit!.doc;
    const out = drag('eraser', context(painted, { activeColor: null }), [
      { x: 10, y: 10 },
      { x: 10, y: 30 },
    ]);
    expect(out.commit?.label).toBe('Erase');
    expect(pixelAt(out.commit!.doc.segmentMap, 10, 20)).toEqual(TRANSPARENT);
  });

  it('a click that changes nothing commits nothing', () => {
    const painted = drag('rectangle', context(baseDoc()), [
      { x: 0, y: 0 },
      { x: 39, y: 39 },
    ]).commit!.doc;
    expect(
      drag('brush', context(painted), [
        { x: 5, y: 5 },
        { x: 5, y: 5 },
      ]).commit,
    ).toBeUndefined();
  });
});

describe('rectangle', () => {
  it('fills from press to release', () => {
    const out = drag('rectangle', context(baseDoc()), [
      { x: 2, y: 3 },
      { x: 10, y: 10 },
      { x: 11.5, y: 7.5 },
    ]);
    expect(countPaint(out.commit!.doc.segmentMap, paintOf(RED))).toBe(10 * 5);
  });
});

describe('lasso', () => {
  it('a freehand drag fills the outline on release', () => {
    const out = drag('lasso', context(baseDoc()), [
      { x: 5, y: 5 },
      { x: 35, y: 5 },
      { x: 35, y: 35 },
      { x: 5, y: 35 },
    ]);
    expect(out.commit?.label).toBe('Lasso fill');
    expect(countPaint(out.commit!.doc.segmentMap, paintOf(RED))).toBe(30 * 30);
  });

  it('clicks place polygon corners; clicking the first corner closes it', () => {
    const ctx = context(baseDoc());
    let state = initialToolState('lasso');
    for (const p of [
      { x: 0, y: 0 },
      { x: 20, y: 0 },
      { x: 20, y: 20 },
    ]) {
      state = pointerDown(state, ctx, p).state;
      const up = pointerUp(state, ctx, p);
      expect(up.commit).toBeUndefined();
      state = up.state;
    }
    const hover = pointerMove(state, ctx, { x: 5, y: 18 });
    expect(hover.preview?.outline).toHaveLength(4);
    const close = pointerDown(state, ctx, { x: 1, y: 1 });
    expect(close.commit).toBeDefined();
    // the triangle (0,0) (20,0) (20,20): row y paints x = y..19 (left edges in, right edges out)
    expect(countPaint(close.commit!.doc.segmentMap, paintOf(RED))).toBe(210);
  });

  it('Enter and double-click close, Backspace drops a corner, Escape cancels', () => {
    const ctx = context(baseDoc());
    let state = initialToolState('lasso');
    for (const p of [
      { x: 0, y: 0 },
      { x: 20, y: 0 },
      { x: 20, y: 20 },
      { x: 0, y: 20 },
    ]) {
      state = pointerDown(state, ctx, p).state;
      state = pointerUp(state, ctx, p).state;
    }
    const dropped = keyDown(state, ctx, 'Backspace');
    expect(dropped.preview?.outline).toHaveLength(3);
    expect(keyDown(state, ctx, 'Enter').commit).toBeDefined();
    expect(doubleClick(state, ctx).commit).toBeDefined();
    const cancelled = keyDown(state, ctx, 'Escape');
    expect(cancelled.state.phase).toBe('idle');
    expect(cancelled.commit).toBeUndefined();
  });
});

describe('fill', () => {
  it('flood-fills the clicked area in one step', () => {
    const out = pointerDown(initialToolState('fill'), context(baseDoc()), { x: 3, y: 3 });
    expect(out.commit?.label).toBe('Fill');
    expect(countPaint(out.commit!.doc.segmentMap, paintOf(RED))).toBe(1600);
  });
});

describe('pose', () => {
  const doc = addSkeleton(addSkeleton(addRegion(createPanelDocument(200, 200), { id: 'a', color: RED })));
  const wrist = doc.pose.people[0].keypoints[KEYPOINT.right_wrist]!;

  it('dragging a joint moves it and selects its skeleton', () => {
    const ctx = context(doc);
    const down = pointerDown(initialToolState('pose'), ctx, { x: wrist.x + 1, y: wrist.y });
    expect(down.select).toBe(0);
    expect(down.state.phase).toBe('dragging-joint');
    const move = pointerMove(down.state, ctx, { x: 2, y: 2 });
    expect(move.preview?.pose?.people[0].keypoints[KEYPOINT.right_wrist]).toMatchObject({ x: 2, y: 2 });
    const up = pointerUp(move.state, ctx, { x: 2, y: 2 });
    expect(up.commit?.label).toBe('Move right wrist');
    expect(up.commit!.doc.pose.people[0].keypoints[KEYPOINT.right_wrist]).toMatchObject({ x: 2, y: 2 });
    expect(up.commit!.doc.pose.people[1]).toBe(doc.pose.people[1]);
  });

  it('joints are kept inside the panel', () => {
    const ctx = context(doc);
    const down = pointerDown(initialToolState('pose'), ctx, wrist);
    const up = pointerUp(pointerMove(down.state, ctx, { x: -50, y: 300 }).state, ctx, { x: -50, y: 300 });
    expect(up.commit!.doc.pose.people[0].keypoints[KEYPOINT.right_wrist]).toMatchObject({ x: 0, y: 200 });
  });

  it('dragging a limb moves the whole skeleton; clicking empty space deselects', () => {
    const ctx = context(doc);
    const neck = doc.pose.people[1].keypoints[KEYPOINT.neck]!;
    const hip = doc.pose.people[1].keypoints[KEYPOINT.right_hip]!;
    const onLimb = { x: (neck.x + hip.x) / 2, y: (neck.y + hip.y) / 2 };
    const out = drag('pose', context(doc, { handleRadius: 1 }), [
      onLimb,
      { x: onLimb.x + 3, y: onLimb.y + 1 },
    ]);
    expect(out.commit?.label).toBe('Move skeleton');
    expect(out.commit!.doc.pose.people[1].keypoints[KEYPOINT.neck]!.x).toBeCloseTo(neck.x + 3);
    expect(out.moved).toEqual({ kind: 'skeleton', person: 1, dx: 3, dy: 1 });
    expect(pointerDown(initialToolState('pose'), ctx, { x: 199, y: 1 }).select).toBeNull();
  });

  it('a click on a joint without moving commits nothing', () => {
    expect(drag('pose', context(doc), [wrist, wrist]).commit).toBeUndefined();
  });

  it('prefers the selected skeleton where joints overlap', () => {
    const both = { width: 10, height: 10, people: [doc.pose.people[0], doc.pose.people[0]] };
    expect(hitJoint(both, wrist, 3, 1)?.person).toBe(1);
    expect(hitJoint(both, wrist, 3, null)?.person).toBe(0);
  });
});

describe('move', () => {
  const BLUE = '#0a84ff';
  /** Red fills (2..5, 2..5), blue fills (10..11, 2..3). */
  function twoRegions(): PanelDocument {
    let doc = addRegion(baseDoc(), { id: 'b', color: BLUE });
    doc = setSegmentMap(doc, fillRectangle(doc.segmentMap, { x: 2, y: 2 }, { x: 5, y: 5 }, paintOf(RED)));
    return setSegmentMap(doc, fillRectangle(doc.segmentMap, { x: 10, y: 2 }, { x: 11, y: 3 }, paintOf(BLUE)));
  }

  it('drags the region under the pointer by whole pixels, previews, then commits once', () => {
    const doc = twoRegions();
    const ctx = context(doc, { activeColor: null });
    const down = pointerDown(initialToolState('move'), ctx, { x: 3.5, y: 3.5 });
    expect(down.activate).toBe('a');
    const mid = pointerMove(down.state, ctx, { x: 6.2, y: 4.4 });
    expect(pixelAt(mid.preview!.segmentMap!, 8, 4)).toEqual(paintOf(RED));
    expect(doc.segmentMap).toBe(ctx.doc.segmentMap);
    const up = pointerUp(mid.state, ctx, { x: 9.6, y: 3.4 });
    expect(up.commit?.label).toBe('Move region');
    expect(up.moved).toEqual({ kind: 'region', regionId: 'a', dx: 6, dy: 0 });
    const moved = up.commit!.doc.segmentMap;
    expect(countPaint(moved, paintOf(RED))).toBe(16); // all of it, 4 pixels on top of blue
    expect(pixelAt(moved, 2, 2)).toEqual(TRANSPARENT);
    expect(pixelAt(moved, 11, 5)).toEqual(paintOf(RED));
    expect(countPaint(moved, paintOf(BLUE))).toBe(0);
    expect(up.state.phase).toBe('idle');
  });

  it('grabbing background moves nothing and says why; a click without moving commits nothing', () => {
    const ctx = context(twoRegions());
    const down = pointerDown(initialToolState('move'), ctx, { x: 30, y: 30 });
    expect(down.hint).toBe(NOTHING_TO_MOVE_HINT);
    expect(down.state.phase).toBe('idle');
    expect(
      drag('move', ctx, [
        { x: 3, y: 3 },
        { x: 3.3, y: 3.2 },
      ]).commit,
    ).toBeUndefined();
  });
});
