/**
 * The panel canvas as a fabric.js view. It draws what it is given — the render (or live preview), the
 * segment map at an opacity, the skeletons with their joint handles, a lasso outline — and reports
 * pointer gestures in image pixels. It keeps no document state: every `set*` call replaces what is
 * drawn, and the editor decides what happens on a gesture.
 */
import { Canvas, Circle, FabricImage, Line, Polyline, Rect } from 'fabric';
import type { FabricObject, TPointerEventInfo } from 'fabric';
import { KEYPOINT_COUNT, LIMBS, OPENPOSE_COLORS } from '../../../native-models/pose/openpose';
import type { PoseDocument } from '../../../native-models/pose/openpose';
import type { Point, Raster } from '../editor/raster';
import { panBy, zoomAt } from '../editor/viewport';
import type { Viewport } from '../editor/viewport';
import { rasterToCanvas } from './images';

/** Screen sizes of the pose layer (constant whatever the zoom, so joints stay easy to grab). */
export const JOINT_RADIUS_PX = 6;
export const JOINT_GRAB_RADIUS_PX = 11;
const LIMB_WIDTH_PX = 4;

export interface PointerInfo {
  /** 0 primary, 1 middle, 2 secondary. */
  button: number;
  altKey: boolean;
  shiftKey: boolean;
}

export interface PanelViewEvents {
  pointerDown(p: Point, info: PointerInfo): void;
  pointerMove(p: Point): void;
  pointerUp(p: Point): void;
  doubleClick(p: Point): void;
  /** The user zoomed (wheel) or panned (Space-drag, middle button). */
  viewport(view: Viewport): void;
}

const rgb = (c: readonly number[]): string => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

export class PanelView {
  private readonly canvas: Canvas;
  private readonly backdrop: Rect;
  private readonly mapElement: HTMLCanvasElement;
  private readonly mapImage: FabricImage;
  private image: FabricImage | null = null;
  private imageUrl: string | null = null;
  private poseObjects: FabricObject[] = [];
  private outline: Polyline | null = null;
  private view: Viewport = { zoom: 1, panX: 0, panY: 0 };
  private panel = { width: 1, height: 1 };
  private panning: { x: number; y: number } | null = null;
  private spaceHeld = false;
  private pressed = false;
  private cursor = 'crosshair';

  constructor(
    element: HTMLCanvasElement,
    private readonly events: PanelViewEvents,
  ) {
    this.canvas = new Canvas(element, {
      selection: false,
      skipTargetFind: true,
      renderOnAddRemove: false,
      fireMiddleClick: true,
      stopContextMenu: true,
      backgroundColor: '#1b1b1d',
      defaultCursor: this.cursor,
      hoverCursor: this.cursor,
    });
    this.backdrop = new Rect({
      left: 0,
      top: 0,
      originX: 'left',
      originY: 'top',
      width: 1,
      height: 1,
      fill: '#3a3a3d',
      // fabric counts a 1 px stroke into the box even without a stroke color: it would shift the panel
      strokeWidth: 0,
      selectable: false,
      evented: false,
      objectCaching: false,
    });
    this.mapElement = document.createElement('canvas');
    this.mapImage = new FabricImage(this.mapElement, {
      left: 0,
      top: 0,
      originX: 'left',
      originY: 'top',
      selectable: false,
      evented: false,
      objectCaching: false,
      imageSmoothing: false,
    });
    this.canvas.add(this.backdrop, this.mapImage);
    this.canvas.on('mouse:down', (e) => this.down(e));
    this.canvas.on('mouse:move', (e) => this.move(e));
    this.canvas.on('mouse:up', (e) => this.up(e));
    this.canvas.on('mouse:dblclick', (e) => this.events.doubleClick(this.scene(e)));
    this.canvas.on('mouse:wheel', (e) => {
      const wheel = e.e;
      wheel.preventDefault();
      const factor = Math.exp(-wheel.deltaY * (wheel.ctrlKey ? 0.01 : 0.0015));
      const p = e.viewportPoint;
      this.events.viewport(zoomAt(this.view, this.view.zoom * factor, { x: p.x, y: p.y }));
    });
  }

  dispose(): void {
    void this.canvas.dispose();
  }

  /** Screen size of the canvas element (CSS pixels). */
  resize(width: number, height: number): void {
    this.canvas.setDimensions({ width, height });
    this.canvas.requestRenderAll();
  }

  setViewport(view: Viewport): void {
    this.view = view;
    this.canvas.setViewportTransform([view.zoom, 0, 0, view.zoom, view.panX, view.panY]);
    this.canvas.requestRenderAll();
  }

  setPanelSize(width: number, height: number): void {
    this.panel = { width, height };
    this.backdrop.set({ width, height });
    this.canvas.requestRenderAll();
  }

  /** The picture under the map: a render, a live preview, or nothing (a plain grey panel). */
  setImage(url: string | null): void {
    if (url === this.imageUrl) return;
    this.imageUrl = url;
    if (!url) {
      if (this.image) this.canvas.remove(this.image);
      this.image = null;
      this.canvas.requestRenderAll();
      return;
    }
    const element = new Image();
    element.decoding = 'async';
    element.onload = () => {
      if (this.imageUrl !== url) return;
      const next = new FabricImage(element, {
        left: 0,
        top: 0,
        originX: 'left',
        originY: 'top',
        selectable: false,
        evented: false,
        objectCaching: false,
        scaleX: this.panel.width / element.naturalWidth,
        scaleY: this.panel.height / element.naturalHeight,
      });
      if (this.image) this.canvas.remove(this.image);
      this.image = next;
      this.canvas.insertAt(1, next);
      this.canvas.requestRenderAll();
    };
    element.src = url;
  }

  setSegmentMap(raster: Raster, opacity: number): void {
    rasterToCanvas(raster, this.mapElement);
    this.mapImage.set({ width: raster.width, height: raster.height, opacity });
    this.mapImage.setElement(this.mapElement);
    this.mapImage.set({ dirty: true });
    this.canvas.requestRenderAll();
  }

  /**
   * Draws the skeletons: limbs in the OpenPose colors, joints as handles of a constant screen size.
   * The selected skeleton is drawn opaque with outlined joints; the others are dimmed.
   */
  setPose(pose: PoseDocument, selected: number | null, handles: boolean): void {
    for (const o of this.poseObjects) this.canvas.remove(o);
    const objects: FabricObject[] = [];
    const z = this.view.zoom;
    pose.people.forEach((person, i) => {
      const isSelected = i === selected;
      const opacity = selected === null || isSelected ? 1 : 0.55;
      LIMBS.forEach(([from, to], limb) => {
        const a = person.keypoints[from];
        const b = person.keypoints[to];
        if (!a || !b) return;
        objects.push(
          new Line([a.x, a.y, b.x, b.y], {
            stroke: rgb(OPENPOSE_COLORS[limb]),
            strokeWidth: (isSelected ? LIMB_WIDTH_PX + 2 : LIMB_WIDTH_PX) / z,
            strokeLineCap: 'round',
            opacity: opacity * 0.85,
            selectable: false,
            evented: false,
            objectCaching: false,
          }),
        );
      });
      for (let j = 0; j < KEYPOINT_COUNT; j++) {
        const k = person.keypoints[j];
        if (!k) continue;
        const radius = (handles ? JOINT_RADIUS_PX : JOINT_RADIUS_PX * 0.6) / z;
        objects.push(
          new Circle({
            left: k.x,
            top: k.y,
            originX: 'center',
            originY: 'center',
            radius,
            fill: rgb(OPENPOSE_COLORS[j]),
            stroke: isSelected ? '#ffffff' : '#111111',
            strokeWidth: (isSelected ? 2 : 1) / z,
            opacity,
            selectable: false,
            evented: false,
            objectCaching: false,
          }),
        );
      }
    });
    this.poseObjects = objects;
    this.canvas.add(...objects);
    if (this.outline) this.canvas.bringObjectToFront(this.outline);
    this.canvas.requestRenderAll();
  }

  /** The lasso so far (null hides it). */
  setOutline(points: readonly Point[] | null): void {
    if (this.outline) this.canvas.remove(this.outline);
    this.outline = null;
    if (points && points.length > 0) {
      this.outline = new Polyline(
        points.map((p) => ({ x: p.x, y: p.y })),
        {
          fill: 'transparent',
          stroke: '#ffffff',
          strokeWidth: 1.5 / this.view.zoom,
          strokeDashArray: [4 / this.view.zoom, 3 / this.view.zoom],
          selectable: false,
          evented: false,
          objectCaching: false,
        },
      );
      this.canvas.add(this.outline);
    }
    this.canvas.requestRenderAll();
  }

  setCursor(cursor: string): void {
    this.cursor = cursor;
    if (!this.spaceHeld && !this.panning) this.applyCursor(cursor);
  }

  /** Space held: drags pan instead of painting. */
  setSpaceHeld(held: boolean): void {
    this.spaceHeld = held;
    this.applyCursor(held ? 'grab' : this.cursor);
  }

  private applyCursor(cursor: string): void {
    this.canvas.defaultCursor = cursor;
    this.canvas.hoverCursor = cursor;
    this.canvas.setCursor(cursor);
  }

  private scene(e: TPointerEventInfo): Point {
    return { x: e.scenePoint.x, y: e.scenePoint.y };
  }

  private down(e: TPointerEventInfo): void {
    const native = e.e as MouseEvent;
    const button = typeof native.button === 'number' ? native.button : 0;
    if (this.spaceHeld || button === 1) {
      this.panning = { x: e.viewportPoint.x, y: e.viewportPoint.y };
      this.applyCursor('grabbing');
      return;
    }
    if (button !== 0) return;
    this.pressed = true;
    this.events.pointerDown(this.scene(e), { button, altKey: native.altKey, shiftKey: native.shiftKey });
  }

  private move(e: TPointerEventInfo): void {
    if (this.panning) {
      const dx = e.viewportPoint.x - this.panning.x;
      const dy = e.viewportPoint.y - this.panning.y;
      this.panning = { x: e.viewportPoint.x, y: e.viewportPoint.y };
      this.events.viewport(panBy(this.view, dx, dy));
      return;
    }
    this.events.pointerMove(this.scene(e));
  }

  private up(e: TPointerEventInfo): void {
    if (this.panning) {
      this.panning = null;
      this.applyCursor(this.spaceHeld ? 'grab' : this.cursor);
      return;
    }
    if (!this.pressed) return;
    this.pressed = false;
    this.events.pointerUp(this.scene(e));
  }
}
