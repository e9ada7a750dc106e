/**
 * The panel editor's canvas: wires the fabric.js view to the editor. Gestures go through the pure tool
 * state machines (`../editor/tools`); a finished gesture becomes one undoable edit in the store. The
 * only state kept here is transient: the gesture in progress, its preview, and the viewport.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { setKeypointVisible } from '../../../native-models/pose/openpose';
import { useStudio } from '../app/useStudio';
import { newId } from '../app/store';
import type { Studio } from '../app/store';
import { nextRegionColor } from '../editor/color';
import { addRegion, setPose } from '../editor/document';
import type { PanelDocument } from '../editor/document';
import type { Point } from '../editor/raster';
import {
  doubleClick,
  hitJoint,
  initialToolState,
  isBusy,
  jointLabel,
  keyDown,
  pointerDown,
  pointerMove,
  pointerUp,
} from '../editor/tools';
import type { ToolContext, ToolOutput, ToolPreview, ToolState } from '../editor/tools';
import { actualSize, fitViewport, stepZoom, zoomAt } from '../editor/viewport';
import type { Viewport } from '../editor/viewport';
import { JOINT_GRAB_RADIUS_PX, PanelView } from './fabricView';

/** A gesture's fixed context, and the region it creates if it paints with none picked. */
interface Gesture {
  ctx: ToolContext;
  newRegionId: string | null;
}

/**
 * The context for a new gesture. Painting with no region picked paints a new free region, created in
 * the same undo step as the paint.
 */
function gestureContext(doc: PanelDocument, studio: Studio, zoom: number): Gesture {
  const { tools } = studio.state;
  const base = {
    brushSize: tools.brushSize,
    handleRadius: JOINT_GRAB_RADIUS_PX / zoom,
    selectedPerson: tools.selectedPerson,
  };
  const active = doc.regions.find((r) => r.id === tools.activeRegionId) ?? doc.regions[0];
  const paints = tools.tool !== 'eraser' && tools.tool !== 'pose' && tools.tool !== 'move';
  if (active || !paints)
    return { ctx: { ...base, doc, activeColor: active?.color ?? null }, newRegionId: null };
  const id = newId('region');
  const color = nextRegionColor([]);
  return { ctx: { ...base, doc: addRegion(doc, { id, color }), activeColor: color }, newRegionId: id };
}

interface Handlers {
  down(p: Point, alt: boolean): void;
  move(p: Point): void;
  up(p: Point): void;
  dbl(p: Point): void;
}

const noop = (): void => undefined;

export function PanelCanvas({ doc, imageUrl }: { doc: PanelDocument; imageUrl: string | null }) {
  const [state, studio] = useStudio();
  const { tools } = state;
  const hostRef = useRef<HTMLDivElement>(null);
  const viewRef = useRef<PanelView | null>(null);
  const toolRef = useRef<ToolState>(initialToolState(tools.tool));
  const gestureRef = useRef<Gesture | null>(null);
  const [preview, setPreview] = useState<ToolPreview | null>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  const [viewport, setViewport] = useState<Viewport>({ zoom: 1, panX: 0, panY: 0 });
  const fittedFor = useRef('');
  const docRef = useRef(doc);
  docRef.current = doc;
  const viewportRef = useRef(viewport);
  viewportRef.current = viewport;

  const apply = useCallback(
    (out: ToolOutput) => {
      toolRef.current = out.state;
      if (out.preview !== undefined) setPreview(out.preview);
      if (out.select !== undefined) studio.setTools({ selectedPerson: out.select });
      if (out.hint !== undefined) studio.setTools({ hint: out.hint });
      if (out.activate !== undefined) studio.setTools({ activeRegionId: out.activate });
      if (out.cursor) viewRef.current?.setCursor(out.cursor);
      const gesture = gestureRef.current;
      if (out.commit) {
        const { doc: next, label } = out.commit;
        studio.edit(() => next, label);
        if (gesture?.newRegionId) studio.setTools({ activeRegionId: gesture.newRegionId });
        studio.setTools({ hint: null });
        if (out.moved) studio.offerLinkedMove(out.moved);
      }
      if (!isBusy(out.state)) {
        gestureRef.current = null;
        setPreview(null);
      }
    },
    [studio],
  );

  const context = useCallback((): ToolContext => {
    const gesture = gestureRef.current;
    if (gesture) return gesture.ctx;
    return gestureContext(docRef.current, studio, viewportRef.current.zoom).ctx;
  }, [studio]);

  // The fabric view lives as long as the component; its events call the latest handlers.
  const handlers = useRef<Handlers>({ down: noop, move: noop, up: noop, dbl: noop });
  handlers.current = {
    down: (p, alt) => {
      const current = docRef.current;
      if (tools.tool === 'pose' && alt) {
        const joint = hitJoint(
          current.pose,
          p,
          JOINT_GRAB_RADIUS_PX / viewportRef.current.zoom,
          tools.selectedPerson,
        );
        if (joint) {
          studio.edit(
            (d) => setPose(d, setKeypointVisible(d.pose, joint.person, joint.keypoint, false)),
            `Hide ${jointLabel(joint.keypoint)}`,
          );
          studio.setTools({ selectedPerson: joint.person });
        }
        return;
      }
      if (!gestureRef.current) gestureRef.current = gestureContext(current, studio, viewportRef.current.zoom);
      apply(pointerDown(toolRef.current, gestureRef.current.ctx, p));
    },
    move: (p) => apply(pointerMove(toolRef.current, context(), p)),
    up: (p) => apply(pointerUp(toolRef.current, context(), p)),
    dbl: () => apply(doubleClick(toolRef.current, context())),
  };

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const element = document.createElement('canvas');
    host.appendChild(element);
    const view = new PanelView(element, {
      pointerDown: (p, info) => handlers.current.down(p, info.altKey),
      pointerMove: (p) => handlers.current.move(p),
      pointerUp: (p) => handlers.current.up(p),
      doubleClick: (p) => handlers.current.dbl(p),
      viewport: (v) => setViewport(v),
    });
    viewRef.current = view;
    const observer = new ResizeObserver(([entry]) => {
      const { width, height } = entry.contentRect;
      setSize({ width: Math.floor(width), height: Math.floor(height) });
    });
    observer.observe(host);
    return () => {
      observer.disconnect();
      view.dispose();
      viewRef.current = null;
      host.replaceChildren();
    };
  }, []);

  // Tool switch: drop any gesture in progress.
  useEffect(() => {
    toolRef.current = initialToolState(tools.tool);
    gestureRef.current = null;
    setPreview(null);
    viewRef.current?.setCursor(tools.tool === 'pose' || tools.tool === 'move' ? 'default' : 'crosshair');
  }, [tools.tool]);

  useEffect(() => {
    if (size.width === 0 || size.height === 0) return;
    viewRef.current?.resize(size.width, size.height);
    const key = `${doc.width}x${doc.height}@${size.width}x${size.height}`;
    if (fittedFor.current !== key) {
      fittedFor.current = key;
      setViewport(fitViewport(doc.width, doc.height, size.width, size.height));
    }
  }, [size, doc.width, doc.height]);

  useEffect(() => {
    viewRef.current?.setPanelSize(doc.width, doc.height);
  }, [doc.width, doc.height]);

  useEffect(() => viewRef.current?.setViewport(viewport), [viewport]);
  useEffect(() => viewRef.current?.setImage(imageUrl), [imageUrl]);

  const shownMap = preview?.segmentMap ?? doc.segmentMap;
  useEffect(() => viewRef.current?.setSegmentMap(shownMap, tools.overlay), [shownMap, tools.overlay]);

  const shownPose = preview?.pose ?? doc.pose;
  useEffect(
    () => viewRef.current?.setPose(shownPose, tools.selectedPerson, tools.tool === 'pose'),
    [shownPose, tools.selectedPerson, tools.tool, viewport.zoom],
  );
  const outline = preview?.outline ?? null;
  useEffect(() => viewRef.current?.setOutline(outline), [outline, viewport.zoom]);

  // Zoom commands from the keyboard (Ctrl+= / Ctrl+- / Ctrl+0 / Ctrl+1).
  useEffect(
    () =>
      studio.onViewCommand((command) => {
        const { width, height } = size;
        const centre = { x: width / 2, y: height / 2 };
        setViewport((v) => {
          switch (command) {
            case 'zoom-in':
              return zoomAt(v, stepZoom(v.zoom, 1), centre);
            case 'zoom-out':
              return zoomAt(v, stepZoom(v.zoom, -1), centre);
            case 'zoom-100':
              return actualSize(v, width, height);
            case 'zoom-fit':
              return fitViewport(docRef.current.width, docRef.current.height, width, height);
          }
        });
      }),
    [studio, size],
  );

  // Space pans; Escape / Enter / Backspace go to the tool (lasso) when not typing.
  useEffect(() => {
    const typing = (e: KeyboardEvent) =>
      e.target instanceof HTMLElement &&
      (e.target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName));
    const onDown = (e: KeyboardEvent) => {
      if (typing(e)) return;
      if (e.code === 'Space') {
        e.preventDefault();
        if (!e.repeat) viewRef.current?.setSpaceHeld(true);
        return;
      }
      if (['Escape', 'Enter', 'Backspace'].includes(e.key) && isBusy(toolRef.current)) {
        e.preventDefault();
        apply(keyDown(toolRef.current, context(), e.key));
      }
    };
    const onUp = (e: KeyboardEvent) => {
      if (e.code === 'Space') viewRef.current?.setSpaceHeld(false);
    };
    window.addEventListener('keydown', onDown);
    window.addEventListener('keyup', onUp);
    return () => {
      window.removeEventListener('keydown', onDown);
      window.removeEventListener('keyup', onUp);
    };
  }, [apply, context]);

  return (
    <div
      className="canvas-host"
      ref={hostRef}
      data-testid="panel-canvas"
      data-zoom={viewport.zoom.toFixed(4)}
      data-image={imageUrl ?? ''}
      data-pan={`${viewport.panX.toFixed(2)},${viewport.panY.toFixed(2)}`}
    />
  );
}
