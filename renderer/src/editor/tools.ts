/**
 * Tools as small state machines. A tool gets pointer and key events in image pixels, together with the
 * current document and what the editor has picked (region color, brush size, selected skeleton), and
 * answers with its next state, a preview to draw while the gesture runs, and — when a gesture ends — a
 * finished document to commit as one undo step. Nothing here touches the DOM or fabric.js.
 *
 * @example
 * ```ts
 * let state = initialToolState('rectangle');
 * state = pointerDown(state, ctx, { x: 4, y: 4 }).state;
 * state = pointerMove(state, ctx, { x: 20, y: 12 }).state; // preview: the filled rectangle
 * const { commit } = pointerUp(state, ctx, { x: 20, y: 12 }); // commit.doc has it painted
 * ```
 */
import {
  KEYPOINT_NAMES,
  LIMBS,
  moveKeypoint,
  personBounds,
  translatePerson,
} from '../../../native-models/pose/openpose';
import type { PoseDocument } from '../../../native-models/pose/openpose';
import { moveRegion, setPose, setSegmentMap } from './document';
import type { PanelDocument, Region } from './document';
import { toHexColor } from './color';
import { fillPolygon, fillRectangle, floodFill, paintOf, paintStroke, pixelAt, TRANSPARENT } from './raster';
import type { Paint, Point, Raster } from './raster';

export type ToolId = 'brush' | 'eraser' | 'rectangle' | 'lasso' | 'fill' | 'move' | 'pose';

/** Tools in toolbar order with their shortcut keys (the keys of the paint programs people know). */
export const TOOLS: readonly { id: ToolId; label: string; key: string; hint: string }[] = Object.freeze([
  { id: 'brush', label: 'Brush', key: 'B', hint: 'Paint the selected region' },
  { id: 'eraser', label: 'Eraser', key: 'E', hint: 'Erase back to background' },
  { id: 'rectangle', label: 'Rectangle', key: 'R', hint: 'Drag to fill a rectangle' },
  {
    id: 'lasso',
    label: 'Lasso',
    key: 'L',
    hint: 'Drag a freehand outline, or click corners of a polygon and close it on the first point (Enter closes, Esc cancels)',
  },
  { id: 'fill', label: 'Fill', key: 'F', hint: 'Flood-fill the area under the cursor' },
  { id: 'move', label: 'Move', key: 'V', hint: 'Drag a painted region to move it' },
  { id: 'pose', label: 'Pose', key: 'P', hint: 'Drag joints; drag a limb to move the whole skeleton' },
]);

/** What the editor supplies with every event. */
export interface ToolContext {
  readonly doc: PanelDocument;
  /** Color of the active region (`#rrggbb`), or null when none is picked. */
  readonly activeColor: string | null;
  /** Brush and eraser diameter in image pixels. */
  readonly brushSize: number;
  /** How close (image pixels) a pointer must be to grab a joint or close a polygon. */
  readonly handleRadius: number;
  readonly selectedPerson: number | null;
}

export type ToolState =
  | { readonly tool: 'brush' | 'eraser'; readonly phase: 'idle' }
  | {
      readonly tool: 'brush' | 'eraser';
      readonly phase: 'stroking';
      readonly last: Point;
      readonly preview: Raster;
    }
  | { readonly tool: 'rectangle'; readonly phase: 'idle' }
  | { readonly tool: 'rectangle'; readonly phase: 'dragging'; readonly start: Point; readonly end: Point }
  | { readonly tool: 'lasso'; readonly phase: 'idle' }
  | {
      readonly tool: 'lasso';
      readonly phase: 'drawing';
      readonly points: readonly Point[];
      /** Button held. */
      readonly pressed: boolean;
      /** Points were added by dragging since the first press (freehand lasso). */
      readonly freehand: boolean;
    }
  | { readonly tool: 'fill'; readonly phase: 'idle' }
  | { readonly tool: 'move'; readonly phase: 'idle' }
  | {
      readonly tool: 'move';
      readonly phase: 'dragging';
      /** The region whose paint moves. */
      readonly regionId: string;
      readonly start: Point;
      /** Whole-pixel offset so far. */
      readonly dx: number;
      readonly dy: number;
    }
  | { readonly tool: 'pose'; readonly phase: 'idle' }
  | {
      readonly tool: 'pose';
      readonly phase: 'dragging-joint';
      readonly person: number;
      readonly keypoint: number;
      readonly pose: PoseDocument;
    }
  | {
      readonly tool: 'pose';
      readonly phase: 'dragging-person';
      readonly person: number;
      readonly start: Point;
      readonly pose: PoseDocument;
    };

/** Drawn over the document while a gesture runs. */
export interface ToolPreview {
  readonly segmentMap?: Raster;
  readonly pose?: PoseDocument;
  /** An open outline (the lasso so far, with a rubber band to the pointer). */
  readonly outline?: readonly Point[];
}

export interface ToolOutput {
  readonly state: ToolState;
  readonly preview?: ToolPreview;
  /** A finished gesture: the document to commit as one undo step, and its label. */
  readonly commit?: { readonly doc: PanelDocument; readonly label: string };
  /** The pose tool changes the selected skeleton (null deselects). */
  readonly select?: number | null;
  /** A region or a whole skeleton was moved by the committed gesture (the editor offers the linked one). */
  readonly moved?: Moved;
  /** The move tool grabbed this region (the editor makes it the active one). */
  readonly activate?: string;
  /** Why a gesture did nothing, for the status line. */
  readonly hint?: string;
  /** CSS cursor to show. */
  readonly cursor?: string;
}

/** What a committed move moved, and by how much (image pixels). */
export type Moved =
  | { readonly kind: 'region'; readonly regionId: string; readonly dx: number; readonly dy: number }
  | { readonly kind: 'skeleton'; readonly person: number; readonly dx: number; readonly dy: number };

export const NO_REGION_HINT = 'Pick a region or a cast member to paint with';
export const NOTHING_TO_MOVE_HINT = 'Nothing painted here: drag a painted region to move it';

export function initialToolState(tool: ToolId): ToolState {
  return { tool, phase: 'idle' } as ToolState;
}

/** Cancels any gesture in progress (tool switch, Escape). */
export function cancelGesture(state: ToolState): ToolState {
  return initialToolState(state.tool);
}

/** True while a gesture is in progress (the editor then ignores tool switches until it ends). */
export function isBusy(state: ToolState): boolean {
  return state.phase !== 'idle';
}

export function pointerDown(state: ToolState, ctx: ToolContext, p: Point): ToolOutput {
  switch (state.tool) {
    case 'brush':
    case 'eraser': {
      const paint = paintFor(state.tool, ctx);
      if (!paint) return { state, hint: NO_REGION_HINT };
      const preview = paintStroke(ctx.doc.segmentMap, [p], ctx.brushSize, paint);
      return {
        state: { tool: state.tool, phase: 'stroking', last: p, preview },
        preview: { segmentMap: preview },
      };
    }
    case 'rectangle': {
      const paint = paintFor('brush', ctx);
      if (!paint) return { state, hint: NO_REGION_HINT };
      const preview = fillRectangle(ctx.doc.segmentMap, p, p, paint);
      return {
        state: { tool: 'rectangle', phase: 'dragging', start: p, end: p },
        preview: { segmentMap: preview },
      };
    }
    case 'lasso': {
      if (!ctx.activeColor) return { state, hint: NO_REGION_HINT };
      if (state.phase === 'idle') {
        return {
          state: { tool: 'lasso', phase: 'drawing', points: [p], pressed: true, freehand: false },
          preview: { outline: [p] },
        };
      }
      const first = state.points[0];
      if (state.points.length >= 3 && Math.hypot(p.x - first.x, p.y - first.y) <= ctx.handleRadius) {
        return closeLasso(state.points, ctx);
      }
      const points = [...state.points, p];
      return { state: { ...state, points, pressed: true }, preview: { outline: points } };
    }
    case 'fill': {
      const paint = paintFor('brush', ctx);
      if (!paint) return { state, hint: NO_REGION_HINT };
      const filled = floodFill(ctx.doc.segmentMap, p.x, p.y, paint);
      if (filled === ctx.doc.segmentMap) return { state };
      return { state, commit: { doc: setSegmentMap(ctx.doc, filled), label: 'Fill' } };
    }
    case 'move': {
      const region = regionAt(ctx.doc, p);
      if (!region) return { state, hint: NOTHING_TO_MOVE_HINT };
      return {
        state: { tool: 'move', phase: 'dragging', regionId: region.id, start: p, dx: 0, dy: 0 },
        activate: region.id,
        cursor: 'move',
      };
    }
    case 'pose': {
      const joint = hitJoint(ctx.doc.pose, p, ctx.handleRadius, ctx.selectedPerson);
      if (joint) {
        return {
          state: { tool: 'pose', phase: 'dragging-joint', ...joint, pose: ctx.doc.pose },
          select: joint.person,
          cursor: 'grabbing',
        };
      }
      const person = hitPerson(ctx.doc.pose, p, ctx.handleRadius);
      if (person !== undefined) {
        return {
          state: { tool: 'pose', phase: 'dragging-person', person, start: p, pose: ctx.doc.pose },
          select: person,
          cursor: 'move',
        };
      }
      return { state, select: null };
    }
  }
}

export function pointerMove(state: ToolState, ctx: ToolContext, p: Point): ToolOutput {
  switch (state.tool) {
    case 'brush':
    case 'eraser': {
      if (state.phase !== 'stroking') return { state };
      const paint = paintFor(state.tool, ctx);
      if (!paint) return { state };
      const preview = paintStroke(state.preview, [state.last, p], ctx.brushSize, paint);
      return { state: { ...state, last: p, preview }, preview: { segmentMap: preview } };
    }
    case 'rectangle': {
      if (state.phase !== 'dragging') return { state };
      const paint = paintFor('brush', ctx);
      if (!paint) return { state };
      return {
        state: { ...state, end: p },
        preview: { segmentMap: fillRectangle(ctx.doc.segmentMap, state.start, p, paint) },
      };
    }
    case 'lasso': {
      if (state.phase !== 'drawing') return { state };
      if (!state.pressed) return { state, preview: { outline: [...state.points, p] } };
      const last = state.points[state.points.length - 1];
      if (Math.hypot(p.x - last.x, p.y - last.y) < 1) return { state, preview: { outline: state.points } };
      const points = [...state.points, p];
      return { state: { ...state, points, freehand: true }, preview: { outline: points } };
    }
    case 'fill':
      return { state };
    case 'move': {
      if (state.phase !== 'dragging') {
        return { state, cursor: regionAt(ctx.doc, p) ? 'move' : 'default' };
      }
      // `+ 0` turns -0 into 0 (a drag back to the start is no move)
      const dx = Math.round(p.x - state.start.x) + 0;
      const dy = Math.round(p.y - state.start.y) + 0;
      if (dx === state.dx && dy === state.dy) return { state };
      const moved = moveRegion(ctx.doc, state.regionId, dx, dy);
      return { state: { ...state, dx, dy }, preview: { segmentMap: moved.segmentMap }, cursor: 'move' };
    }
    case 'pose': {
      if (state.phase === 'dragging-joint') {
        const { x, y } = clampToPanel(ctx.doc, p);
        const pose = moveKeypoint(ctx.doc.pose, state.person, state.keypoint, x, y);
        return { state: { ...state, pose }, preview: { pose }, cursor: 'grabbing' };
      }
      if (state.phase === 'dragging-person') {
        const pose = translatePerson(ctx.doc.pose, state.person, p.x - state.start.x, p.y - state.start.y);
        return { state: { ...state, pose }, preview: { pose }, cursor: 'move' };
      }
      if (hitJoint(ctx.doc.pose, p, ctx.handleRadius, ctx.selectedPerson)) return { state, cursor: 'grab' };
      if (hitPerson(ctx.doc.pose, p, ctx.handleRadius) !== undefined) return { state, cursor: 'move' };
      return { state, cursor: 'default' };
    }
  }
}

export function pointerUp(state: ToolState, ctx: ToolContext, p: Point): ToolOutput {
  switch (state.tool) {
    case 'brush':
    case 'eraser': {
      if (state.phase !== 'stroking') return { state };
      const idle = initialToolState(state.tool);
      const last = pointerMove(state, ctx, p).state;
      const stroke = last.phase === 'stroking' ? last.preview : state.preview;
      if (stroke === ctx.doc.segmentMap) return { state: idle };
      const label = state.tool === 'brush' ? 'Brush stroke' : 'Erase';
      return { state: idle, commit: { doc: setSegmentMap(ctx.doc, stroke), label } };
    }
    case 'rectangle': {
      if (state.phase !== 'dragging') return { state };
      const idle = initialToolState('rectangle');
      const paint = paintFor('brush', ctx);
      if (!paint) return { state: idle };
      const filled = fillRectangle(ctx.doc.segmentMap, state.start, p, paint);
      if (filled === ctx.doc.segmentMap) return { state: idle };
      return { state: idle, commit: { doc: setSegmentMap(ctx.doc, filled), label: 'Rectangle' } };
    }
    case 'lasso': {
      if (state.phase !== 'drawing') return { state };
      const moved = pointerMove(state, ctx, p).state;
      if (moved.phase === 'drawing' && moved.freehand) return closeLasso(moved.points, ctx);
      // a click without a drag placed a polygon corner; keep drawing
      return { state: { ...state, pressed: false }, preview: { outline: [...state.points, p] } };
    }
    case 'fill':
      return { state };
    case 'move': {
      if (state.phase !== 'dragging') return { state };
      const idle = initialToolState('move');
      const last = pointerMove(state, ctx, p).state;
      const { dx, dy } = last.tool === 'move' && last.phase === 'dragging' ? last : state;
      const doc = moveRegion(ctx.doc, state.regionId, dx, dy);
      if (doc === ctx.doc) return { state: idle, cursor: 'move' };
      return {
        state: idle,
        commit: { doc, label: 'Move region' },
        moved: { kind: 'region', regionId: state.regionId, dx, dy },
        cursor: 'move',
      };
    }
    case 'pose': {
      if (state.phase === 'idle') return { state };
      const idle = initialToolState('pose');
      const last = pointerMove(state, ctx, p).state;
      const pose = last.tool === 'pose' && last.phase !== 'idle' ? last.pose : state.pose;
      if (pose === ctx.doc.pose || posesEqual(pose, ctx.doc.pose)) return { state: idle };
      const doc = setPose(ctx.doc, pose);
      if (state.phase === 'dragging-joint') {
        return { state: idle, commit: { doc, label: `Move ${jointLabel(state.keypoint)}` }, cursor: 'grab' };
      }
      return {
        state: idle,
        commit: { doc, label: 'Move skeleton' },
        moved: { kind: 'skeleton', person: state.person, dx: p.x - state.start.x, dy: p.y - state.start.y },
        cursor: 'grab',
      };
    }
  }
}

/** Double-click closes a polygon. */
export function doubleClick(state: ToolState, ctx: ToolContext): ToolOutput {
  if (state.tool === 'lasso' && state.phase === 'drawing') return closeLasso(dedupe(state.points), ctx);
  return { state };
}

/** Enter closes a polygon, Escape cancels any gesture, Backspace removes the last polygon corner. */
export function keyDown(state: ToolState, ctx: ToolContext, key: string): ToolOutput {
  if (key === 'Escape') return { state: cancelGesture(state), preview: {} };
  if (state.tool === 'lasso' && state.phase === 'drawing') {
    if (key === 'Enter') return closeLasso(state.points, ctx);
    if (key === 'Backspace') {
      const points = state.points.slice(0, -1);
      if (points.length === 0) return { state: initialToolState('lasso'), preview: {} };
      return { state: { ...state, points }, preview: { outline: points } };
    }
  }
  return { state };
}

function closeLasso(points: readonly Point[], ctx: ToolContext): ToolOutput {
  const idle = initialToolState('lasso');
  const paint = paintFor('brush', ctx);
  if (!paint || points.length < 3) return { state: idle, preview: {} };
  const filled = fillPolygon(ctx.doc.segmentMap, points, paint);
  if (filled === ctx.doc.segmentMap) return { state: idle, preview: {} };
  return { state: idle, preview: {}, commit: { doc: setSegmentMap(ctx.doc, filled), label: 'Lasso fill' } };
}

/** Drops consecutive duplicates (a double-click adds its point twice). */
function dedupe(points: readonly Point[]): Point[] {
  return points.filter((p, i) => i === 0 || p.x !== points[i - 1].x || p.y !== points[i - 1].y);
}

function paintFor(tool: 'brush' | 'eraser', ctx: ToolContext): Paint | null {
  if (tool === 'eraser') return TRANSPARENT;
  return ctx.activeColor ? paintOf(ctx.activeColor) : null;
}

function posesEqual(a: PoseDocument, b: PoseDocument): boolean {
  return a.people.every((person, i) =>
    person.keypoints.every((k, j) => {
      const other = b.people[i]?.keypoints[j];
      return k === other || (k !== null && other != null && k.x === other.x && k.y === other.y);
    }),
  );
}

/** The region whose paint is under `p`, if any. */
function regionAt(doc: PanelDocument, p: Point): Region | undefined {
  const x = Math.floor(p.x);
  const y = Math.floor(p.y);
  if (x < 0 || y < 0 || x >= doc.width || y >= doc.height) return undefined;
  const [r, g, b, a] = pixelAt(doc.segmentMap, x, y);
  if (a === 0) return undefined;
  const color = toHexColor([r, g, b]);
  return doc.regions.find((region) => region.color === color);
}

function clampToPanel(doc: PanelDocument, p: Point): Point {
  return { x: Math.min(doc.width, Math.max(0, p.x)), y: Math.min(doc.height, Math.max(0, p.y)) };
}

/** "right wrist" */
export function jointLabel(keypoint: number): string {
  return (KEYPOINT_NAMES[keypoint] ?? `joint ${keypoint}`).replace('_', ' ');
}

/**
 * The visible joint nearest to `p` within `radius`, preferring the selected skeleton when two
 * skeletons' joints overlap.
 */
export function hitJoint(
  pose: PoseDocument,
  p: Point,
  radius: number,
  preferred: number | null = null,
): { person: number; keypoint: number } | undefined {
  let best: { person: number; keypoint: number; d: number } | undefined;
  pose.people.forEach((person, i) => {
    person.keypoints.forEach((k, j) => {
      if (!k) return;
      const d = Math.hypot(k.x - p.x, k.y - p.y) - (i === preferred ? 0.5 : 0);
      if (d <= radius && (!best || d < best.d)) best = { person: i, keypoint: j, d };
    });
  });
  return best && { person: best.person, keypoint: best.keypoint };
}

/** The skeleton whose limbs pass within `radius` of `p` (the topmost, i.e. last drawn), if any. */
export function hitPerson(pose: PoseDocument, p: Point, radius: number): number | undefined {
  for (let i = pose.people.length - 1; i >= 0; i--) {
    const person = pose.people[i];
    const bounds = personBounds(person);
    if (!bounds) continue;
    for (const [from, to] of LIMBS) {
      const a = person.keypoints[from];
      const b = person.keypoints[to];
      if (a && b && distanceToSegment(p, a, b) <= radius) return i;
    }
  }
  return undefined;
}

function distanceToSegment(p: Point, a: Point, b: Point): number {
  const vx = b.x - a.x;
  const vy = b.y - a.y;
  const len2 = vx * vx + vy * vy;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((p.x - a.x) * vx + (p.y - a.y) * vy) / len2)) : 0;
  return Math.hypot(p.x - (a.x + t * vx), p.y - (a.y + t * vy));
}
