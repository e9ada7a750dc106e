/**
 * A tiny software rasterizer for the procedural world: filled circles, (rotated) ellipses, polygons,
 * rectangles, tapered capsules (thick lines with round caps) and vertical gradients, painted into an
 * RGB buffer together with an instance-id buffer (which subject owns each pixel) and a part-id buffer
 * (which drawing part owns it, used for cartoon outlines).
 *
 * Pure TypeScript, no Node or DOM imports, no randomness.
 *
 * Coordinates are output pixels with the OpenCV/OpenPose convention used by `pose/openpose.ts`: pixel
 * `(i, j)` is centred on coordinate `(i, j)`. With supersampling factor `ss` the canvas holds
 * `size * ss` internal pixels per side; internal pixel `I` is centred on output coordinate
 * `(I + 0.5) / ss - 0.5`, and a pixel is painted when its centre lies inside the shape (no coverage
 * anti-aliasing; the supersampling averages edges when {@link Canvas.finish} downsamples).
 *
 * @example
 * ```ts
 * const canvas = new Canvas(64, 2);
 * canvas.setColor([200, 220, 255]);
 * canvas.rect(0, 0, 63, 63); // sky
 * canvas.setInstance(1);
 * canvas.beginPart(true); // outlined part
 * canvas.setColor([220, 40, 40]);
 * canvas.circle(32, 32, 10);
 * const { rgb, ids } = canvas.finish([20, 20, 20], 1); // 64 x 64 RGB and instance ids
 * ```
 */

/** An 8-bit RGB colour. */
export type Rgb = readonly [r: number, g: number, b: number];

/** The output of {@link Canvas.finish}: `size x size` pixels. */
export interface CanvasResult {
  /** RGB, row-major, 3 bytes per pixel. */
  rgb: Uint8Array;
  /** Instance id per pixel (0 = background). */
  ids: Uint8Array;
}

const MAX_CROSSINGS = 256;

/** An RGB + instance-id + part-id raster with simple filled-shape primitives; see the file header. */
export class Canvas {
  /** Output side length in pixels. */
  readonly size: number;
  /** Supersampling factor (internal pixels per output pixel and axis). */
  readonly ss: number;
  /** Internal side length, `size * ss`. */
  readonly side: number;
  /** Internal RGB buffer. */
  readonly rgb: Uint8Array;
  /** Internal instance ids. */
  readonly ids: Uint8Array;
  /** Internal part ids (0 = background, increasing in drawing order). */
  readonly parts: Uint16Array;
  private r = 0;
  private g = 0;
  private b = 0;
  private alpha = 1;
  private id = 0;
  private part = 0;
  private partCount = 0;
  private readonly outlined: number[] = [0];
  private readonly crossings = new Float64Array(MAX_CROSSINGS);

  constructor(size: number, ss = 1) {
    if (!Number.isInteger(size) || size < 8 || size > 4096) {
      throw new RangeError(`canvas size must be an integer in [8, 4096], got ${size}`);
    }
    if (!Number.isInteger(ss) || ss < 1 || ss > 4) {
      throw new RangeError(`supersampling factor must be 1, 2, 3 or 4, got ${ss}`);
    }
    this.size = size;
    this.ss = ss;
    this.side = size * ss;
    this.rgb = new Uint8Array(this.side * this.side * 3);
    this.ids = new Uint8Array(this.side * this.side);
    this.parts = new Uint16Array(this.side * this.side);
  }

  /** Sets the paint colour (components are rounded and clamped to 0..255). */
  setColor(c: Rgb): void {
    this.r = clampByte(c[0]);
    this.g = clampByte(c[1]);
    this.b = clampByte(c[2]);
  }

  /**
   * Sets the opacity of later painting. Below 1 the paint is blended over what is there and neither
   * instance nor part ids change (shadows, glows); at 1 pixels are replaced and take the current ids.
   */
  setAlpha(alpha: number): void {
    this.alpha = Math.min(1, Math.max(0, alpha));
  }

  /** The instance id written by later opaque painting (0 = background, up to 255). */
  setInstance(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id > 255)
      throw new RangeError(`instance id must be 0-255, got ${id}`);
    this.id = id;
    if (id === 0) this.part = 0;
  }

  /**
   * Starts a new drawing part: later opaque painting writes a fresh part id. When `outline` is true,
   * {@link finish} draws a dark line on the part's pixels where they border anything drawn before it
   * (background, earlier parts, earlier subjects). `'rim'` draws only the light rim a dark part gets
   * against a dark background (for styles without outlines).
   */
  beginPart(outline: boolean | 'rim'): void {
    if (this.partCount >= 65535) throw new RangeError('too many drawing parts in one canvas (max 65535)');
    this.partCount++;
    this.part = this.partCount;
    this.outlined.push(outline === 'rim' ? 2 : outline ? 1 : 0);
  }

  /** Ends part painting: later opaque painting writes part id 0 (background level, never outlined). */
  endParts(): void {
    this.part = 0;
  }

  // ----- primitives (output-pixel coordinates) -----

  /** Fills the axis-aligned rectangle with corners `(x0, y0)` and `(x1, y1)` (inclusive of centres inside). */
  rect(x0: number, y0: number, x1: number, y1: number): void {
    const [ax, bx] = x0 <= x1 ? [x0, x1] : [x1, x0];
    const [ay, by] = y0 <= y1 ? [y0, y1] : [y1, y0];
    const Y0 = this.toInternal(ay);
    const Y1 = this.toInternal(by);
    const X0 = this.toInternal(ax);
    const X1 = this.toInternal(bx);
    const ya = Math.max(0, Math.ceil(Y0));
    const yb = Math.min(this.side - 1, Math.floor(Y1));
    for (let y = ya; y <= yb; y++) this.span(y, X0, X1);
  }

  /** Fills a disc. */
  circle(cx: number, cy: number, r: number): void {
    this.ellipse(cx, cy, r, r, 0);
  }

  /** Fills an ellipse with semi-axes `rx`, `ry`, rotated by `angle` radians (clockwise on screen). */
  ellipse(cx: number, cy: number, rx: number, ry: number, angle = 0): void {
    if (!(rx > 0) || !(ry > 0)) return;
    const X = this.toInternal(cx);
    const Y = this.toInternal(cy);
    const RX = rx * this.ss;
    const RY = ry * this.ss;
    if (angle === 0) {
      const ya = Math.max(0, Math.ceil(Y - RY));
      const yb = Math.min(this.side - 1, Math.floor(Y + RY));
      for (let y = ya; y <= yb; y++) {
        const d = (y - Y) / RY;
        const h = RX * Math.sqrt(Math.max(0, 1 - d * d));
        this.span(y, X - h, X + h);
      }
      return;
    }
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const irx = 1 / (RX * RX);
    const iry = 1 / (RY * RY);
    const A = c * c * irx + s * s * iry;
    const B = 2 * c * s * (irx - iry);
    const C = s * s * irx + c * c * iry;
    const half = Math.sqrt(RX * RX * s * s + RY * RY * c * c);
    const ya = Math.max(0, Math.ceil(Y - half));
    const yb = Math.min(this.side - 1, Math.floor(Y + half));
    for (let y = ya; y <= yb; y++) {
      const dy = y - Y;
      const disc = B * B * dy * dy - 4 * A * (C * dy * dy - 1);
      if (disc < 0) continue;
      const root = Math.sqrt(disc);
      this.span(y, X + (-B * dy - root) / (2 * A), X + (-B * dy + root) / (2 * A));
    }
  }

  /**
   * Fills a capsule: the convex hull of a disc of radius `ra` at `a` and one of radius `rb` at `b`
   * (a thick line with round caps; tapered when the radii differ).
   */
  capsule(ax: number, ay: number, bx: number, by: number, ra: number, rb = ra): void {
    this.circle(ax, ay, ra);
    this.circle(bx, by, rb);
    const dx = bx - ax;
    const dy = by - ay;
    const d = Math.hypot(dx, dy);
    if (d <= Math.abs(ra - rb) || d === 0) return;
    const ux = dx / d;
    const uy = dy / d;
    const k = (ra - rb) / d;
    const q = Math.sqrt(Math.max(0, 1 - k * k));
    // outer tangent directions from each centre: k * u +- q * n, n = (-uy, ux)
    const p1x = k * ux - q * uy;
    const p1y = k * uy + q * ux;
    const p2x = k * ux + q * uy;
    const p2y = k * uy - q * ux;
    this.polygon([
      ax + ra * p1x,
      ay + ra * p1y,
      bx + rb * p1x,
      by + rb * p1y,
      bx + rb * p2x,
      by + rb * p2y,
      ax + ra * p2x,
      ay + ra * p2y,
    ]);
  }

  /** A thick polyline: capsules of radius `r` joining consecutive points of the flat `[x0, y0, x1, y1, ...]`. */
  polyline(points: readonly number[], r: number): void {
    for (let i = 0; i + 3 < points.length; i += 2) {
      this.capsule(points[i], points[i + 1], points[i + 2], points[i + 3], r);
    }
  }

  /** Fills a simple (or self-intersecting, even-odd) polygon given as flat `[x0, y0, x1, y1, ...]`. */
  polygon(points: readonly number[]): void {
    const n = points.length >> 1;
    if (n < 3) return;
    const xs = new Float64Array(n);
    const ys = new Float64Array(n);
    let minY = Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      xs[i] = this.toInternal(points[2 * i]);
      ys[i] = this.toInternal(points[2 * i + 1]);
      if (ys[i] < minY) minY = ys[i];
      if (ys[i] > maxY) maxY = ys[i];
    }
    const ya = Math.max(0, Math.ceil(minY));
    const yb = Math.min(this.side - 1, Math.floor(maxY));
    const cross = this.crossings;
    for (let y = ya; y <= yb; y++) {
      let count = 0;
      for (let i = 0, j = n - 1; i < n; j = i++) {
        const yi = ys[i];
        const yj = ys[j];
        if (yi <= y !== yj <= y && count < MAX_CROSSINGS) {
          cross[count++] = xs[i] + ((y - yi) / (yj - yi)) * (xs[j] - xs[i]);
        }
      }
      if (count < 2) continue;
      // insertion sort: crossings per row are few
      for (let i = 1; i < count; i++) {
        const v = cross[i];
        let j = i - 1;
        while (j >= 0 && cross[j] > v) {
          cross[j + 1] = cross[j];
          j--;
        }
        cross[j + 1] = v;
      }
      for (let i = 0; i + 1 < count; i += 2) this.span(y, cross[i], cross[i + 1]);
    }
  }

  /** Fills full-width rows from `y0` to `y1` with a vertical gradient from `top` to `bottom`. */
  verticalGradient(y0: number, y1: number, top: Rgb, bottom: Rgb): void {
    const Y0 = this.toInternal(y0);
    const Y1 = this.toInternal(y1);
    const ya = Math.max(0, Math.ceil(Y0));
    const yb = Math.min(this.side - 1, Math.floor(Y1));
    const span = Math.max(1e-9, Y1 - Y0);
    const saved: Rgb = [this.r, this.g, this.b];
    for (let y = ya; y <= yb; y++) {
      const t = Math.min(1, Math.max(0, (y - Y0) / span));
      this.r = clampByte(top[0] + (bottom[0] - top[0]) * t);
      this.g = clampByte(top[1] + (bottom[1] - top[1]) * t);
      this.b = clampByte(top[2] + (bottom[2] - top[2]) * t);
      this.span(y, -1, this.side);
    }
    this.setColor(saved);
  }

  // ----- output -----

  /**
   * Draws the cartoon outlines (`width` output pixels, in `color`) on every outlined part where it
   * borders something drawn before it (a light rim instead where a dark part meets a dark background),
   * then downsamples to `size x size`: RGB by box averaging, instance
   * ids by majority (ties go to the later-drawn, i.e. larger, id).
   */
  finish(color: Rgb, width: number): CanvasResult {
    this.drawOutlines(color, width);
    return this.downsample();
  }

  private drawOutlines(color: Rgb, width: number): void {
    if (!(width > 0) || this.partCount === 0) return;
    const W = this.side;
    const reach = Math.max(1, Math.round(width * this.ss));
    const parts = this.parts;
    const rgb = this.rgb;
    const flags = Uint8Array.from(this.outlined);
    const [cr, cg, cb] = [clampByte(color[0]), clampByte(color[1]), clampByte(color[2])];
    for (let y = 0; y < W; y++) {
      const row = y * W;
      for (let x = 0; x < W; x++) {
        const p = row + x;
        const a = parts[p];
        if (a === 0 || flags[a] === 0) continue;
        let q = -1;
        for (let k = 1; k <= reach && q < 0; k++) {
          if (x - k >= 0 && parts[p - k] < a) q = p - k;
          else if (x + k < W && parts[p + k] < a) q = p + k;
          else if (y - k >= 0 && parts[p - k * W] < a) q = p - k * W;
          else if (y + k < W && parts[p + k * W] < a) q = p + k * W;
        }
        if (q < 0) continue;
        const rim = parts[q] === 0 && luma(rgb, q) < RIM_DARK && luma(rgb, p) < RIM_DARK;
        if (rim) {
          // a dark part against a dark background: a light rim keeps its silhouette readable
          rgb[3 * p] = RIM[0];
          rgb[3 * p + 1] = RIM[1];
          rgb[3 * p + 2] = RIM[2];
        } else if (flags[a] === 1) {
          rgb[3 * p] = cr;
          rgb[3 * p + 1] = cg;
          rgb[3 * p + 2] = cb;
        }
      }
    }
  }

  private downsample(): CanvasResult {
    const S = this.size;
    const ss = this.ss;
    if (ss === 1) return { rgb: this.rgb.slice(), ids: this.ids.slice() };
    const W = this.side;
    const rgb = new Uint8Array(S * S * 3);
    const ids = new Uint8Array(S * S);
    const n = ss * ss;
    const cand = new Uint8Array(n);
    const votes = new Uint8Array(n);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        let distinct = 0;
        for (let dy = 0; dy < ss; dy++) {
          const row = (y * ss + dy) * W + x * ss;
          for (let dx = 0; dx < ss; dx++) {
            const p = row + dx;
            r += this.rgb[3 * p];
            g += this.rgb[3 * p + 1];
            b += this.rgb[3 * p + 2];
            const id = this.ids[p];
            let k = 0;
            while (k < distinct && cand[k] !== id) k++;
            if (k === distinct) {
              cand[k] = id;
              votes[k] = 0;
              distinct++;
            }
            votes[k]++;
          }
        }
        const o = y * S + x;
        rgb[3 * o] = (r + (n >> 1)) / n;
        rgb[3 * o + 1] = (g + (n >> 1)) / n;
        rgb[3 * o + 2] = (b + (n >> 1)) / n;
        let best = 0;
        for (let k = 1; k < distinct; k++) {
          if (votes[k] > votes[best] || (votes[k] === votes[best] && cand[k] > cand[best])) best = k;
        }
        ids[o] = cand[best];
      }
    }
    return { rgb, ids };
  }

  // ----- internals -----

  private toInternal(v: number): number {
    return (v + 0.5) * this.ss - 0.5;
  }

  /** Paints internal row `y` from internal x `xa` to `xb` (pixel centres inside). */
  private span(y: number, xa: number, xb: number): void {
    const x0 = Math.max(0, Math.ceil(xa));
    const x1 = Math.min(this.side - 1, Math.floor(xb));
    if (x1 < x0) return;
    const row = y * this.side;
    const rgb = this.rgb;
    if (this.alpha >= 1) {
      const { r, g, b, id, part } = this;
      const ids = this.ids;
      const parts = this.parts;
      for (let x = x0; x <= x1; x++) {
        const p = row + x;
        rgb[3 * p] = r;
        rgb[3 * p + 1] = g;
        rgb[3 * p + 2] = b;
        ids[p] = id;
        parts[p] = part;
      }
      return;
    }
    const a = this.alpha;
    for (let x = x0; x <= x1; x++) {
      const q = 3 * (row + x);
      rgb[q] = rgb[q] + (this.r - rgb[q]) * a + 0.5;
      rgb[q + 1] = rgb[q + 1] + (this.g - rgb[q + 1]) * a + 0.5;
      rgb[q + 2] = rgb[q + 2] + (this.b - rgb[q + 2]) * a + 0.5;
    }
  }
}

/** Luma below which a part and the background behind it count as dark (see {@link Canvas.finish}). */
const RIM_DARK = 80;
const RIM: Rgb = [196, 200, 214];

function luma(rgb: Uint8Array, p: number): number {
  return 0.299 * rgb[3 * p] + 0.587 * rgb[3 * p + 1] + 0.114 * rgb[3 * p + 2];
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/**
 * Where shapes go: a transform from a subject's local units (origin at its ground point, x right, y
 * down, 1 unit = its nominal height) to output pixels, plus the drawing calls. Implemented by
 * {@link CanvasPen} (paints) and {@link BoundsPen} (measures).
 */
export interface Pen {
  /** Sets the paint colour. */
  color(c: Rgb): void;
  /** Starts a new part; `outline` asks for a cartoon outline (ignored when the pen draws without outlines). */
  part(outline?: boolean): void;
  circle(x: number, y: number, r: number): void;
  ellipse(x: number, y: number, rx: number, ry: number, angle?: number): void;
  capsule(ax: number, ay: number, bx: number, by: number, ra: number, rb?: number): void;
  polygon(points: readonly number[]): void;
  rect(x0: number, y0: number, x1: number, y1: number): void;
  polyline(points: readonly number[], r: number): void;
}

/**
 * A {@link Pen} painting into a {@link Canvas}: local `(x, y)` lands at
 * `(ox + scale * (flip ? -x : x), oy + scale * y)` output pixels.
 *
 * @example
 * ```ts
 * const pen = new CanvasPen(canvas, 64, 120, 80); // ground point (64, 120), 80 px per unit
 * pen.part();
 * pen.color([40, 90, 220]);
 * pen.circle(0, -0.5, 0.2); // a disc 16 px in radius centred 40 px above the ground point
 * ```
 */
export class CanvasPen implements Pen {
  constructor(
    private readonly canvas: Canvas,
    private readonly ox: number,
    private readonly oy: number,
    private readonly scale: number,
    private readonly flip = false,
    private readonly outlines = true,
  ) {}

  color(c: Rgb): void {
    this.canvas.setColor(c);
  }
  part(outline = true): void {
    this.canvas.beginPart(outline ? (this.outlines ? true : 'rim') : false);
  }
  circle(x: number, y: number, r: number): void {
    this.canvas.circle(this.X(x), this.Y(y), r * this.scale);
  }
  ellipse(x: number, y: number, rx: number, ry: number, angle = 0): void {
    this.canvas.ellipse(this.X(x), this.Y(y), rx * this.scale, ry * this.scale, this.flip ? -angle : angle);
  }
  capsule(ax: number, ay: number, bx: number, by: number, ra: number, rb = ra): void {
    const s = this.scale;
    this.canvas.capsule(this.X(ax), this.Y(ay), this.X(bx), this.Y(by), ra * s, rb * s);
  }
  polygon(points: readonly number[]): void {
    const out = new Array<number>(points.length);
    for (let i = 0; i < points.length; i += 2) {
      out[i] = this.X(points[i]);
      out[i + 1] = this.Y(points[i + 1]);
    }
    this.canvas.polygon(out);
  }
  rect(x0: number, y0: number, x1: number, y1: number): void {
    this.canvas.rect(this.X(x0), this.Y(y0), this.X(x1), this.Y(y1));
  }
  polyline(points: readonly number[], r: number): void {
    for (let i = 0; i + 3 < points.length; i += 2) {
      this.capsule(points[i], points[i + 1], points[i + 2], points[i + 3], r);
    }
  }
  private X(x: number): number {
    return this.ox + this.scale * (this.flip ? -x : x);
  }
  private Y(y: number): number {
    return this.oy + this.scale * y;
  }
}

/** Axis-aligned bounds in a subject's local units. */
export interface Extent {
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
}

/**
 * A {@link Pen} that paints nothing and records the bounds of everything drawn, in local units (no flip).
 * Drawing a subject once with it gives its exact extent for layout.
 *
 * @example
 * ```ts
 * const pen = new BoundsPen();
 * pen.circle(0, -0.5, 0.2);
 * pen.extent(); // { minX: -0.2, maxX: 0.2, minY: -0.7, maxY: -0.3 }
 * ```
 */
export class BoundsPen implements Pen {
  private minX = Infinity;
  private maxX = -Infinity;
  private minY = Infinity;
  private maxY = -Infinity;

  /** The bounds so far (all zero when nothing was drawn). */
  extent(): Extent {
    if (this.minX > this.maxX) return { minX: 0, maxX: 0, minY: 0, maxY: 0 };
    return { minX: this.minX, maxX: this.maxX, minY: this.minY, maxY: this.maxY };
  }
  color(): void {}
  part(): void {}
  circle(x: number, y: number, r: number): void {
    this.add(x - r, y - r);
    this.add(x + r, y + r);
  }
  ellipse(x: number, y: number, rx: number, ry: number, angle = 0): void {
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const hx = Math.sqrt(rx * rx * c * c + ry * ry * s * s);
    const hy = Math.sqrt(rx * rx * s * s + ry * ry * c * c);
    this.add(x - hx, y - hy);
    this.add(x + hx, y + hy);
  }
  capsule(ax: number, ay: number, bx: number, by: number, ra: number, rb = ra): void {
    this.circle(ax, ay, ra);
    this.circle(bx, by, rb);
  }
  polygon(points: readonly number[]): void {
    for (let i = 0; i + 1 < points.length; i += 2) this.add(points[i], points[i + 1]);
  }
  rect(x0: number, y0: number, x1: number, y1: number): void {
    this.add(x0, y0);
    this.add(x1, y1);
  }
  polyline(points: readonly number[], r: number): void {
    for (let i = 0; i + 1 < points.length; i += 2) this.circle(points[i], points[i + 1], r);
  }
  private add(x: number, y: number): void {
    if (x < this.minX) this.minX = x;
    if (x > this.maxX) this.maxX = x;
    if (y < this.minY) this.minY = y;
    if (y > this.maxY) this.maxY = y;
  }
}
