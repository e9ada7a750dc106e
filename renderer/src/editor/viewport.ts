/**
 * The canvas viewport: zoom and pan as plain numbers. Screen = image * zoom + pan. Fit-to-window by
 * default, zoom about the pointer with the wheel, 100% with Ctrl+0, as in every paint program.
 */
import type { Point } from './raster';

export interface Viewport {
  readonly zoom: number;
  readonly panX: number;
  readonly panY: number;
}

export const MIN_ZOOM = 0.05;
export const MAX_ZOOM = 64;

/** The viewport that shows the whole image centred, with `margin` screen pixels around it. */
export function fitViewport(
  imageWidth: number,
  imageHeight: number,
  viewWidth: number,
  viewHeight: number,
  margin = 24,
): Viewport {
  const zoom = clampZoom(
    Math.min((viewWidth - 2 * margin) / imageWidth, (viewHeight - 2 * margin) / imageHeight),
  );
  return { zoom, panX: (viewWidth - imageWidth * zoom) / 2, panY: (viewHeight - imageHeight * zoom) / 2 };
}

/** Zoom to `zoom` keeping the image point under `screen` where it is. */
export function zoomAt(view: Viewport, zoom: number, screen: Point): Viewport {
  const next = clampZoom(zoom);
  const image = toImage(view, screen);
  return { zoom: next, panX: screen.x - image.x * next, panY: screen.y - image.y * next };
}

/** 100%, centred on the view centre's image point. */
export function actualSize(view: Viewport, viewWidth: number, viewHeight: number): Viewport {
  return zoomAt(view, 1, { x: viewWidth / 2, y: viewHeight / 2 });
}

export function panBy(view: Viewport, dx: number, dy: number): Viewport {
  return { ...view, panX: view.panX + dx, panY: view.panY + dy };
}

export function toImage(view: Viewport, screen: Point): Point {
  return { x: (screen.x - view.panX) / view.zoom, y: (screen.y - view.panY) / view.zoom };
}

export function toScreen(view: Viewport, image: Point): Point {
  return { x: image.x * view.zoom + view.panX, y: image.y * view.zoom + view.panY };
}

/** The next zoom step in or out (powers of 2^(1/4), like most paint programs' Ctrl+/-). */
export function stepZoom(zoom: number, direction: 1 | -1): number {
  const steps = Math.round(Math.log2(zoom) * 4) + direction;
  return clampZoom(2 ** (steps / 4));
}

function clampZoom(zoom: number): number {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
}
