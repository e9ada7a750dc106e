/**
 * The segment map as a raster: RGBA, row-major, one byte per channel, at the panel size. Painting is
 * hard-edged — every pixel is either left alone or set to exactly one color — so the map a user paints
 * is the map the backend reads, color for color. Unpainted (and erased) pixels are transparent, which
 * the request treats as background.
 *
 * Geometry: pixel (x, y) covers [x, x+1) x [y, y+1); its centre is (x + 0.5, y + 0.5). Shapes paint
 * the pixels whose centres they contain. Every function is pure: it returns a new raster (or the same
 * one when nothing changed, so callers can skip an undo entry) and never mutates its input.
 */
import { parseHexColor } from './color';

/** An RGBA raster. Treat as immutable. */
export interface Raster {
  readonly width: number;
  readonly height: number;
  /** RGBA, row-major, `width * height * 4` bytes. */
  readonly data: Uint8ClampedArray;
}

/** An RGBA paint value; `TRANSPARENT` erases. */
export type Paint = readonly [r: number, g: number, b: number, a: number];

export const TRANSPARENT: Paint = Object.freeze([0, 0, 0, 0] as const);

/** A point in image pixels (continuous: (0, 0) is the top-left corner of pixel (0, 0)). */
export interface Point {
  readonly x: number;
  readonly y: number;
}

/** Opaque paint of a `#rrggbb` color. */
export function paintOf(color: string): Paint {
  const [r, g, b] = parseHexColor(color);
  return [r, g, b, 255];
}

/**
 * A transparent raster.
 *
 * @example
 * ```ts
 * const map = createRaster(512, 512);
 * ```
 */
export function createRaster(width: number, height: number): Raster {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`raster size must be positive integers, got ${width}x${height}`);
  }
  return { width, height, data: new Uint8ClampedArray(width * height * 4) };
}

/** A raster over a copy of `data` (e.g. from `ImageData`), checked for size. */
export function rasterFromData(width: number, height: number, data: ArrayLike<number>): Raster {
  const raster = createRaster(width, height);
  if (data.length !== raster.data.length) {
    throw new RangeError(
      `RGBA data for ${width}x${height} needs ${raster.data.length} bytes, got ${data.length}`,
    );
  }
  raster.data.set(data);
  return raster;
}

/** The RGBA value of pixel (x, y). */
export function pixelAt(raster: Raster, x: number, y: number): Paint {
  const o = (y * raster.width + x) * 4;
  const d = raster.data;
  return [d[o], d[o + 1], d[o + 2], d[o + 3]];
}

/** True when both rasters have the same size and bytes. */
export function rastersEqual(a: Raster, b: Raster): boolean {
  if (a === b) return true;
  if (a.width !== b.width || a.height !== b.height) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/**
 * A mutable copy that shape functions paint into; `finish` returns the input itself when no pixel
 * changed, so an edit that changes nothing leaves no trace in the history.
 */
class Canvas {
  private readonly out: Uint8ClampedArray;
  private changed = false;

  constructor(private readonly source: Raster) {
    this.out = new Uint8ClampedArray(source.data);
  }

  set(x: number, y: number, paint: Paint): void {
    const o = (y * this.source.width + x) * 4;
    const d = this.out;
    if (d[o] === paint[0] && d[o + 1] === paint[1] && d[o + 2] === paint[2] && d[o + 3] === paint[3]) return;
    d[o] = paint[0];
    d[o + 1] = paint[1];
    d[o + 2] = paint[2];
    d[o + 3] = paint[3];
    this.changed = true;
  }

  finish(): Raster {
    return this.changed
      ? { width: this.source.width, height: this.source.height, data: this.out }
      : this.source;
  }
}

/**
 * Paints a brush stroke: every pixel whose centre lies within `size / 2` of the polyline through
 * `points`, plus the pixel under each point (so a 1 px brush always leaves a mark). Hard edges.
 *
 * @example
 * ```ts
 * const next = paintStroke(map, [{ x: 10, y: 10 }, { x: 40, y: 12 }], 8, paintOf('#ff3b30'));
 * ```
 */
export function paintStroke(raster: Raster, points: readonly Point[], size: number, paint: Paint): Raster {
  if (!(size > 0)) throw new RangeError(`brush size must be positive, got ${size}`);
  if (points.length === 0) return raster;
  const canvas = new Canvas(raster);
  const r = size / 2;
  for (let i = 0; i < points.length; i++) {
    const a = points[i];
    const b = points[Math.min(i + 1, points.length - 1)];
    capsule(raster.width, raster.height, a, b, r, (x, y) => canvas.set(x, y, paint));
    const px = Math.floor(a.x);
    const py = Math.floor(a.y);
    if (px >= 0 && py >= 0 && px < raster.width && py < raster.height) canvas.set(px, py, paint);
  }
  return canvas.finish();
}

/**
 * Fills the axis-aligned rectangle spanned by two points, including the pixels both corners are in
 * (dragging from pixel (2, 2) to pixel (4, 3) fills 3 x 2 pixels).
 */
export function fillRectangle(raster: Raster, a: Point, b: Point, paint: Paint): Raster {
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x)));
  const x1 = Math.min(raster.width - 1, Math.floor(Math.max(a.x, b.x)));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y)));
  const y1 = Math.min(raster.height - 1, Math.floor(Math.max(a.y, b.y)));
  const canvas = new Canvas(raster);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) canvas.set(x, y, paint);
  return canvas.finish();
}

/**
 * Fills a polygon (lasso) with the even-odd rule, painting pixels whose centres are inside. Fewer than
 * three points fill nothing.
 */
export function fillPolygon(raster: Raster, polygon: readonly Point[], paint: Paint): Raster {
  if (polygon.length < 3) return raster;
  const canvas = new Canvas(raster);
  const ys = polygon.map((p) => p.y);
  const yStart = Math.max(0, Math.floor(Math.min(...ys)));
  const yEnd = Math.min(raster.height - 1, Math.ceil(Math.max(...ys)));
  for (let y = yStart; y <= yEnd; y++) {
    const cy = y + 0.5;
    const crossings: number[] = [];
    for (let i = 0; i < polygon.length; i++) {
      const p = polygon[i];
      const q = polygon[(i + 1) % polygon.length];
      if (p.y <= cy !== q.y <= cy) crossings.push(p.x + ((cy - p.y) / (q.y - p.y)) * (q.x - p.x));
    }
    crossings.sort((m, n) => m - n);
    for (let i = 0; i + 1 < crossings.length; i += 2) {
      // pixel x is inside when crossings[i] <= x + 0.5 < crossings[i + 1]
      const xa = Math.max(0, Math.ceil(crossings[i] - 0.5));
      const xb = Math.min(raster.width - 1, Math.ceil(crossings[i + 1] - 0.5) - 1);
      for (let x = xa; x <= xb; x++) canvas.set(x, y, paint);
    }
  }
  return canvas.finish();
}

/**
 * Flood fill: replaces the 4-connected area of pixels with exactly the RGBA value of (x, y). Filling
 * with the color already there changes nothing.
 *
 * @example
 * ```ts
 * const next = floodFill(map, 100, 80, paintOf('#30d158'));
 * ```
 */
export function floodFill(raster: Raster, x: number, y: number, paint: Paint): Raster {
  const { width, height } = raster;
  const sx = Math.floor(x);
  const sy = Math.floor(y);
  if (sx < 0 || sy < 0 || sx >= width || sy >= height) return raster;
  const target = pixelAt(raster, sx, sy);
  if (target.every((v, i) => v === paint[i])) return raster;
  const src = raster.data;
  const out = new Uint8ClampedArray(src);
  const matches = (o: number): boolean =>
    out[o] === target[0] && out[o + 1] === target[1] && out[o + 2] === target[2] && out[o + 3] === target[3];
  const stack: number[] = [sx, sy];
  while (stack.length > 0) {
    const py = stack.pop() as number;
    const px = stack.pop() as number;
    // scanline: walk left to the run's start, then paint rightwards, queueing rows above and below
    let left = px;
    while (left > 0 && matches((py * width + left - 1) * 4)) left--;
    let above = false;
    let below = false;
    for (let cx = left; cx < width && matches((py * width + cx) * 4); cx++) {
      const o = (py * width + cx) * 4;
      out[o] = paint[0];
      out[o + 1] = paint[1];
      out[o + 2] = paint[2];
      out[o + 3] = paint[3];
      if (py > 0) {
        const up = matches(((py - 1) * width + cx) * 4);
        if (up && !above) stack.push(cx, py - 1);
        above = up;
      }
      if (py < height - 1) {
        const down = matches(((py + 1) * width + cx) * 4);
        if (down && !below) stack.push(cx, py + 1);
        below = down;
      }
    }
  }
  return { width, height, data: out };
}

/** Replaces every pixel of exactly `from` with `to` (recoloring or clearing a region). */
export function replacePaint(raster: Raster, from: Paint, to: Paint): Raster {
  const canvas = new Canvas(raster);
  const d = raster.data;
  for (let y = 0; y < raster.height; y++) {
    for (let x = 0; x < raster.width; x++) {
      const o = (y * raster.width + x) * 4;
      if (d[o] === from[0] && d[o + 1] === from[1] && d[o + 2] === from[2] && d[o + 3] === from[3]) {
        canvas.set(x, y, to);
      }
    }
  }
  return canvas.finish();
}

/**
 * Moves every pixel of exactly `paint` by whole pixels (`dx`, `dy` are rounded): the pixels it leaves
 * become transparent, the pixels it lands on take the paint (as a move in a paint program covers what
 * is under it), and paint pushed past the edge is clipped.
 *
 * @example
 * ```ts
 * const next = movePaint(map, paintOf('#ff3b30'), 12, -4); // the red region, 12 px right, 4 px up
 * ```
 */
export function movePaint(raster: Raster, paint: Paint, dx: number, dy: number): Raster {
  const ox = Math.round(dx);
  const oy = Math.round(dy);
  if (ox === 0 && oy === 0) return raster;
  const { width, height } = raster;
  const d = raster.data;
  const moved: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (d[o] === paint[0] && d[o + 1] === paint[1] && d[o + 2] === paint[2] && d[o + 3] === paint[3]) {
        moved.push(x, y);
      }
    }
  }
  if (moved.length === 0) return raster;
  const canvas = new Canvas(raster);
  for (let i = 0; i < moved.length; i += 2) canvas.set(moved[i], moved[i + 1], TRANSPARENT);
  for (let i = 0; i < moved.length; i += 2) {
    const x = moved[i] + ox;
    const y = moved[i + 1] + oy;
    if (x >= 0 && x < width && y >= 0 && y < height) canvas.set(x, y, paint);
  }
  return canvas.finish();
}

/** How many pixels have exactly this paint. */
export function countPaint(raster: Raster, paint: Paint): number {
  const d = raster.data;
  let n = 0;
  for (let o = 0; o < d.length; o += 4) {
    if (d[o] === paint[0] && d[o + 1] === paint[1] && d[o + 2] === paint[2] && d[o + 3] === paint[3]) n++;
  }
  return n;
}

/** Opaque colors present in the raster with their pixel counts, as lowercase `#rrggbb`. */
export function paintedColors(raster: Raster): Map<string, number> {
  const counts = new Map<number, number>();
  const d = raster.data;
  for (let o = 0; o < d.length; o += 4) {
    if (d[o + 3] === 0) continue;
    const key = (d[o] << 16) | (d[o + 1] << 8) | d[o + 2];
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const out = new Map<string, number>();
  for (const [key, n] of counts) out.set(`#${key.toString(16).padStart(6, '0')}`, n);
  return out;
}

/** Nearest-neighbour resize (never blends two region colors into a third). */
export function resizeRaster(raster: Raster, width: number, height: number): Raster {
  if (width === raster.width && height === raster.height) return raster;
  const out = createRaster(width, height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(raster.height - 1, Math.floor(((y + 0.5) * raster.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(raster.width - 1, Math.floor(((x + 0.5) * raster.width) / width));
      const s = (sy * raster.width + sx) * 4;
      out.data.set(raster.data.subarray(s, s + 4), (y * width + x) * 4);
    }
  }
  return out;
}

/** Visits every pixel whose centre lies within `r` of the segment a-b. */
function capsule(
  width: number,
  height: number,
  a: Point,
  b: Point,
  r: number,
  visit: (x: number, y: number) => void,
): void {
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(a.x, b.x) + r));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(a.y, b.y) + r));
  const vx = b.x - a.x;
  const vy = b.y - a.y;
  const len2 = vx * vx + vy * vy;
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    const cy = y + 0.5;
    for (let x = x0; x <= x1; x++) {
      const cx = x + 0.5;
      const t = len2 > 0 ? Math.min(1, Math.max(0, ((cx - a.x) * vx + (cy - a.y) * vy) / len2)) : 0;
      const dx = cx - (a.x + t * vx);
      const dy = cy - (a.y + t * vy);
      if (dx * dx + dy * dy <= r2) visit(x, y);
    }
  }
}
