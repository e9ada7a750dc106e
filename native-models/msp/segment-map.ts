/**
 * Segment maps to masks: the artist paints regions in flat colors; each segment of a
 * `GenerationRequest` names its color. {@link segmentMasks} turns the painting into one soft mask
 * per segment (plus the background, last) at latent resolution, summing to 1 at every latent pixel.
 *
 * Steps:
 * 1. Size. A map whose size differs from the render's `width` x `height` is resized to it with
 *    nearest-neighbour sampling, which never blends two region colors into a third. A different
 *    aspect ratio stretches the painting; that adds a warning.
 * 2. Pixels to segments. A pixel is first composited over the background color by its alpha (so
 *    fully transparent pixels are background, and a soft brush on a transparent layer fades into
 *    the background). It then belongs to the listed color (segment or background) it equals, or
 *    else to the nearest listed color within `tolerance` (RGB Euclidean distance). Pixels further
 *    from every color are tried as a blend of two listed colors (antialiased edges between two
 *    regions, soft brush edges): a pixel within `tolerance` of the straight line between two colors,
 *    with a pixel of either color within `blendRadius`, goes to the nearer of the two that is
 *    nearby. What is left has colors the request does not list; each such color (colors within
 *    `tolerance` of each other count as one) covering more than `unknownShare` of the image is an
 *    error, smaller specks go to the nearest listed color with a warning.
 * 3. Segments with fewer than `minPixels` pixels (default: the area of one latent pixel) cannot
 *    render and are an error too; all problems come in one {@link SegmentMapError}.
 * 4. Masks. Each latent pixel's mask value is the fraction of its area that belongs to the segment
 *    (area averaging; exact for any size ratio). `feather` then blurs every mask with a Gaussian of
 *    that standard deviation in latent pixels, and the masks are normalized to sum to 1 at every
 *    latent pixel (to within float32 rounding, < 1e-7). A background without pixels has an all-zero mask.
 *
 * @example
 * const map = await readSegmentMap(files.segmentMap);
 * const { masks, warnings } = await segmentMasks(map, request.segments, request.backgroundColor, {
 *   width: 512, height: 512, latentWidth: 64, latentHeight: 64, feather: 1,
 * });
 */
import { decodeImageRgba, readImageFileRgba, resizeImage } from '../image/image.js';
import type { RgbImage, RgbaImage } from '../image/image.js';
import { normalizeColor } from './request.js';

/** A segment as {@link segmentMasks} needs it; `prompt` only names it in messages. */
export interface SegmentColor {
  color: string;
  prompt?: string;
}

export interface SegmentMaskOptions {
  /** Render size in pixels; the map is resized to it (nearest neighbour) when its size differs. */
  width: number;
  height: number;
  /** Mask size (the latent size: width / VAE scale factor); at most width x height. */
  latentWidth: number;
  latentHeight: number;
  /** Largest RGB distance at which a pixel still counts as a listed color. Default 48. */
  tolerance?: number;
  /** Gaussian blur of the latent masks, standard deviation in latent pixels. Default 0 (none). */
  feather?: number;
  /** Fewest pixels a segment needs. Default: one latent pixel's area, (width/latentWidth)*(height/latentHeight). */
  minPixels?: number;
  /** How far (pixels) a blended edge pixel may be from a pixel of a color it blends. Default: two latent pixels. */
  blendRadius?: number;
  /** Share of the image above which an unlisted color is an error (below: a warning). Default 0.001 (0.1%). */
  unknownShare?: number;
}

export interface SegmentMasks {
  /** One mask per segment in request order, then the background; each latentHeight * latentWidth, row-major. */
  masks: Float32Array[];
  /** Lowercase `#rrggbb` colors, parallel to `masks` (the background color last). */
  colors: string[];
  /** Pixels (at width x height) assigned to each mask. */
  pixelCounts: number[];
  /** Share of the image (0..1) assigned to each mask: pixelCounts / (width * height). */
  coverage: number[];
  latentWidth: number;
  latentHeight: number;
  /** Things worth telling the artist that did not stop the render (stretched map, stray pixels). */
  warnings: string[];
}

/**
 * A segment map that does not match its request: colors the request does not list, and segments
 * too small to render, each named (lowercase `#rrggbb`) — all found problems in one error.
 */
export class SegmentMapError extends Error {
  override name = 'SegmentMapError';
  readonly unknownColors: string[];
  readonly tooSmall: string[];

  constructor(message: string, unknownColors: string[], tooSmall: string[]) {
    super(message);
    this.unknownColors = unknownColors;
    this.tooSmall = tooSmall;
  }
}

export const SEGMENT_MAP_DEFAULTS = Object.freeze({ tolerance: 48, feather: 0, unknownShare: 0.001 });

/**
 * Reads a segment map from a file path or encoded bytes (PNG recommended: lossy formats smear
 * region colors), keeping alpha.
 *
 * @throws ImageDecodeError for undecodable data; file-system errors propagate.
 * @example
 * const map = await readSegmentMap('scene/segments.png');
 */
export async function readSegmentMap(source: string | Uint8Array, label = 'segment map'): Promise<RgbaImage> {
  return typeof source === 'string' ? readImageFileRgba(source) : decodeImageRgba(source, label);
}

/**
 * Soft masks at latent resolution from a painted segment map (see the module documentation).
 *
 * @param segments the request's segments (colors `#rrggbb` or `#rgb`, distinct).
 * @param backgroundColor the color of unpainted area.
 * @throws SegmentMapError for unlisted colors and too-small segments; RangeError for bad arguments.
 * @example
 * const { masks } = await segmentMasks(map, [{ color: '#ff0000', prompt: 'a cat' }], '#000000', {
 *   width: 512, height: 512, latentWidth: 64, latentHeight: 64,
 * });
 * masks.length; // 2: the cat, then the background
 */
export async function segmentMasks(
  map: RgbaImage,
  segments: readonly SegmentColor[],
  backgroundColor: string,
  options: SegmentMaskOptions,
): Promise<SegmentMasks> {
  const { width, height, latentWidth, latentHeight } = options;
  positiveInteger('width', width);
  positiveInteger('height', height);
  positiveInteger('latentWidth', latentWidth);
  positiveInteger('latentHeight', latentHeight);
  if (latentWidth > width || latentHeight > height) {
    throw new RangeError(
      `latent size ${latentWidth}x${latentHeight} must not exceed the render size ${width}x${height}`,
    );
  }
  const tolerance = nonNegative('tolerance', options.tolerance ?? SEGMENT_MAP_DEFAULTS.tolerance);
  const feather = nonNegative('feather', options.feather ?? SEGMENT_MAP_DEFAULTS.feather);
  const cellArea = (width / latentWidth) * (height / latentHeight);
  const minPixels = nonNegative('minPixels', options.minPixels ?? cellArea);
  const blendRadius = Math.round(
    nonNegative(
      'blendRadius',
      options.blendRadius ?? 2 * Math.max(width / latentWidth, height / latentHeight),
    ),
  );
  const unknownShare = nonNegative('unknownShare', options.unknownShare ?? SEGMENT_MAP_DEFAULTS.unknownShare);
  const colors = paletteOf(segments, backgroundColor);
  const palette = colors.map(hexToRgb);

  const warnings: string[] = [];
  if (map.channels !== 4 || map.data.length !== map.width * map.height * 4) {
    throw new RangeError(`segment map must be an RGBA image (${map.width}x${map.height}x4 bytes)`);
  }
  let image = map;
  if (map.width !== width || map.height !== height) {
    const mapAspect = map.width / map.height;
    const aspect = width / height;
    if (Math.abs(mapAspect / aspect - 1) > 0.005) {
      warnings.push(
        `segment map is ${map.width}x${map.height} but the render is ${width}x${height}; ` +
          `the painting was stretched to fit (aspect ratio ${mapAspect.toFixed(2)} vs ${aspect.toFixed(2)})`,
      );
    }
    image = await resizeImage(map, width, height, { kernel: 'nearest' });
  }

  const labels = assignPixels(image, palette, tolerance, blendRadius, unknownShare, warnings);
  const K = colors.length;
  const total = width * height;
  const pixelCounts = new Array<number>(K).fill(0);
  for (let i = 0; i < total; i++) pixelCounts[labels.labels[i]]++;

  const tooSmall: string[] = [];
  const tooSmallText: string[] = [];
  for (let k = 0; k < K - 1; k++) {
    if (pixelCounts[k] < minPixels) {
      tooSmall.push(colors[k]);
      const prompt = segments[k].prompt;
      tooSmallText.push(
        `${colors[k]} (${prompt === undefined ? '' : `${JSON.stringify(prompt)}, `}${pixelCounts[k]} px)`,
      );
    }
  }
  if (labels.unknown.length > 0 || tooSmall.length > 0) {
    const parts: string[] = [];
    if (labels.unknown.length > 0) {
      const shown = labels.unknown
        .slice(0, 8)
        .map((u) => `${u.color} (${formatShare(u.pixels / total)} of the image)`);
      if (labels.unknown.length > shown.length) shown.push(`${labels.unknown.length - shown.length} more`);
      parts.push(
        `segment map has colors not in the request: ${shown.join(', ')} — add a region with ${
          labels.unknown.length === 1 ? 'that color' : 'those colors'
        } or repaint`,
      );
    }
    if (tooSmall.length > 0) {
      parts.push(
        `segments too small to render (need at least ${Math.ceil(minPixels)} px): ${tooSmallText.join(', ')}`,
      );
    }
    throw new SegmentMapError(
      parts.join('; '),
      labels.unknown.map((u) => u.color),
      tooSmall,
    );
  }

  const sums = areaAverage(labels.labels, width, height, K, latentWidth, latentHeight);
  if (feather > 0) for (const m of sums) gaussianBlur(m, latentWidth, latentHeight, feather);
  const masks = normalize(sums, latentWidth * latentHeight);
  return {
    masks,
    colors,
    pixelCounts,
    coverage: pixelCounts.map((c) => c / total),
    latentWidth,
    latentHeight,
    warnings,
  };
}

/**
 * A preview of masks: each pixel is the mask-weighted mix of the masks' colors (the studio
 * overlays it on the canvas).
 *
 * @param colors `#rrggbb` per mask (e.g. `SegmentMasks.colors`).
 * @example
 * const { masks, colors, latentWidth, latentHeight } = await segmentMasks(...);
 * const preview = masksToImage(masks, colors, latentWidth, latentHeight);
 */
export function masksToImage(
  masks: readonly Float32Array[],
  colors: readonly string[],
  width: number,
  height: number,
): RgbImage {
  positiveInteger('width', width);
  positiveInteger('height', height);
  if (masks.length !== colors.length) {
    throw new RangeError(
      `masksToImage needs one color per mask: ${masks.length} masks, ${colors.length} colors`,
    );
  }
  const plane = width * height;
  const rgb = colors.map((c, i) => {
    const n = normalizeColor(c);
    if (n === undefined) throw new RangeError(`colors[${i}]: ${JSON.stringify(c)} is not a #rrggbb color`);
    return hexToRgb(n);
  });
  masks.forEach((m, i) => {
    if (m.length !== plane) {
      throw new RangeError(`masks[${i}] has ${m.length} values; ${width}x${height} needs ${plane}`);
    }
  });
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let k = 0; k < masks.length; k++) {
      const w = masks[k][p];
      r += w * rgb[k][0];
      g += w * rgb[k][1];
      b += w * rgb[k][2];
    }
    data[p * 3] = clampByte(r);
    data[p * 3 + 1] = clampByte(g);
    data[p * 3 + 2] = clampByte(b);
  }
  return { width, height, data };
}

// ---------------------------------------------------------------------------------------------
// Pixel assignment

type Rgb = [number, number, number];

interface Assignment {
  /** Palette index per pixel. */
  labels: Uint8Array;
  /** Unlisted colors above the share threshold, largest first. */
  unknown: { color: string; pixels: number }[];
}

const PENDING = 255;

function assignPixels(
  image: RgbaImage,
  palette: Rgb[],
  tolerance: number,
  blendRadius: number,
  unknownShare: number,
  warnings: string[],
): Assignment {
  const { width, height, data } = image;
  const total = width * height;
  const K = palette.length;
  const bg = K - 1;
  const tol2 = tolerance * tolerance;
  const labels = new Uint8Array(total);
  const px: Rgb = [0, 0, 0];
  const composite = (i: number): Rgb => {
    const a = data[i * 4 + 3] / 255;
    for (let c = 0; c < 3; c++) px[c] = a * data[i * 4 + c] + (1 - a) * palette[bg][c];
    return px;
  };

  // Pass 1: exact and near matches.
  const exact = new Map<number, number>(palette.map((c, k) => [(c[0] << 16) | (c[1] << 8) | c[2], k]));
  let pending = 0;
  for (let i = 0; i < total; i++) {
    const alpha = data[i * 4 + 3];
    if (alpha === 0) {
      labels[i] = bg;
      continue;
    }
    if (alpha === 255) {
      const k = exact.get((data[i * 4] << 16) | (data[i * 4 + 1] << 8) | data[i * 4 + 2]);
      if (k !== undefined) {
        labels[i] = k;
        continue;
      }
    }
    const [k, d2] = nearest(composite(i), palette);
    if (d2 <= tol2) labels[i] = k;
    else {
      labels[i] = PENDING;
      pending++;
    }
  }
  if (pending === 0) return { labels, unknown: [] };

  // Pass 2: blends of two listed colors next to pixels of those colors.
  // A snapshot: the tables must count pass-1 pixels only, not the blends assigned below.
  const near = new NeighbourCounts(labels.slice(), width, height);
  const present = new Array<boolean>(K);
  const checked = new Array<boolean>(K);
  const stray = new Map<number, number>(); // packed rgb -> pixels
  for (let i = 0; i < total; i++) {
    if (labels[i] !== PENDING) continue;
    const p = composite(i);
    const x = i % width;
    const y = (i - x) / width;
    checked.fill(false);
    let best = -1;
    let bestD2 = Infinity;
    for (let a = 0; a < K; a++) {
      for (let b = a + 1; b < K; b++) {
        const [t, d2] = distanceToSegment(p, palette[a], palette[b]);
        if (d2 > tol2 || d2 >= bestD2) continue;
        if (!checked[a]) {
          checked[a] = true;
          present[a] = near.any(a, x, y, blendRadius);
        }
        if (!checked[b]) {
          checked[b] = true;
          present[b] = near.any(b, x, y, blendRadius);
        }
        if (!present[a] && !present[b]) continue;
        bestD2 = d2;
        best = present[a] && present[b] ? (t < 0.5 ? a : b) : present[a] ? a : b;
      }
    }
    if (best >= 0) labels[i] = best;
    else {
      const key = (Math.round(p[0]) << 16) | (Math.round(p[1]) << 8) | Math.round(p[2]);
      stray.set(key, (stray.get(key) ?? 0) + 1);
    }
  }
  if (stray.size === 0) return { labels, unknown: [] };

  // Pass 3: group unlisted colors (within tolerance of the most common one) and judge their share.
  const groups: { rgb: Rgb; pixels: number }[] = [];
  const groupOf = new Map<number, number>();
  for (const [key, n] of [...stray.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
    const rgb: Rgb = [(key >> 16) & 255, (key >> 8) & 255, key & 255];
    let g = groups.findIndex((grp) => distance2(grp.rgb, rgb) <= tol2);
    if (g < 0) {
      g = groups.length;
      groups.push({ rgb, pixels: 0 });
    }
    groups[g].pixels += n;
    groupOf.set(key, g);
  }
  const unknown = groups
    .filter((g) => g.pixels / total > unknownShare)
    .sort((a, b) => b.pixels - a.pixels)
    .map((g) => ({ color: rgbToHex(g.rgb), pixels: g.pixels }));
  if (unknown.length > 0) return { labels, unknown };

  let strayPixels = 0;
  for (let i = 0; i < total; i++) {
    if (labels[i] !== PENDING) continue;
    labels[i] = nearest(composite(i), palette)[0];
    strayPixels++;
  }
  warnings.push(
    `${strayPixels} pixel${strayPixels === 1 ? '' : 's'} (${formatShare(strayPixels / total)} of the image) ` +
      `match no region color (e.g. ${rgbToHex(groups[0].rgb)}); they were given to the nearest region color`,
  );
  return { labels, unknown: [] };
}

/**
 * Pixel counts per palette color in any square window, from one summed-area table per color
 * (built the first time that color is asked about).
 */
class NeighbourCounts {
  private readonly tables: (Uint32Array | undefined)[] = [];
  private readonly stride: number;

  constructor(
    private readonly labels: Uint8Array,
    private readonly width: number,
    private readonly height: number,
  ) {
    this.stride = width + 1;
  }

  /** Whether a pixel of color k lies within `radius` (Chebyshev distance) of (x, y). */
  any(k: number, x: number, y: number, radius: number): boolean {
    const x0 = Math.max(0, x - radius);
    const y0 = Math.max(0, y - radius);
    const x1 = Math.min(this.width, x + radius + 1);
    const y1 = Math.min(this.height, y + radius + 1);
    const t = this.table(k);
    const s = this.stride;
    return t[y1 * s + x1] - t[y0 * s + x1] - t[y1 * s + x0] + t[y0 * s + x0] > 0;
  }

  private table(k: number): Uint32Array {
    const cached = this.tables[k];
    if (cached !== undefined) return cached;
    const { labels, width, height, stride } = this;
    const t = new Uint32Array(stride * (height + 1));
    for (let y = 0; y < height; y++) {
      let row = 0;
      const o = (y + 1) * stride + 1;
      for (let x = 0; x < width; x++) {
        if (labels[y * width + x] === k) row++;
        t[o + x] = t[o + x - stride] + row;
      }
    }
    this.tables[k] = t;
    return t;
  }
}

function nearest(p: Rgb, palette: Rgb[]): [index: number, distance2: number] {
  let best = 0;
  let bestD2 = Infinity;
  for (let k = 0; k < palette.length; k++) {
    const d2 = distance2(p, palette[k]);
    if (d2 < bestD2) {
      best = k;
      bestD2 = d2;
    }
  }
  return [best, bestD2];
}

/** Blend parameter t in [0, 1] of the point on segment a-b nearest to p, and the squared distance to it. */
function distanceToSegment(p: Rgb, a: Rgb, b: Rgb): [t: number, distance2: number] {
  let dd = 0;
  let dot = 0;
  for (let c = 0; c < 3; c++) {
    const d = b[c] - a[c];
    dd += d * d;
    dot += (p[c] - a[c]) * d;
  }
  const t = dd === 0 ? 0 : Math.min(1, Math.max(0, dot / dd));
  let d2 = 0;
  for (let c = 0; c < 3; c++) {
    const e = p[c] - (a[c] + t * (b[c] - a[c]));
    d2 += e * e;
  }
  return [t, d2];
}

function distance2(a: Rgb, b: Rgb): number {
  const dr = a[0] - b[0];
  const dg = a[1] - b[1];
  const db = a[2] - b[2];
  return dr * dr + dg * dg + db * db;
}

// ---------------------------------------------------------------------------------------------
// Masks

/**
 * Per-axis overlap of pixels with cells: pixel p covers [p*m, (p+1)*m) and cell c covers
 * [c*n, (c+1)*n) in units of 1/(n*m) of the axis; each pixel meets at most two cells (m <= n).
 * Weights are the overlap as a fraction of the cell's length, so they sum to 1 over a cell.
 */
function axisWeights(n: number, m: number) {
  const cellA = new Int32Array(n);
  const weightA = new Float64Array(n);
  const cellB = new Int32Array(n).fill(-1);
  const weightB = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const start = p * m;
    const end = start + m;
    const c = Math.floor(start / n);
    const split = (c + 1) * n;
    cellA[p] = c;
    if (end <= split) {
      weightA[p] = m / n;
    } else {
      weightA[p] = (split - start) / n;
      cellB[p] = c + 1;
      weightB[p] = (end - split) / n;
    }
  }
  return { cellA, weightA, cellB, weightB };
}

/** The fraction of every latent cell's area that each label covers (one Float64Array per label). */
function areaAverage(
  labels: Uint8Array,
  width: number,
  height: number,
  K: number,
  latentWidth: number,
  latentHeight: number,
): Float64Array[] {
  const plane = latentWidth * latentHeight;
  const out = Array.from({ length: K }, () => new Float64Array(plane));
  const xs = axisWeights(width, latentWidth);
  const ys = axisWeights(height, latentHeight);
  const addRow = (y: number, row: number, wy: number) => {
    for (let x = 0; x < width; x++) {
      const m = out[labels[y * width + x]];
      m[row + xs.cellA[x]] += wy * xs.weightA[x];
      if (xs.cellB[x] >= 0) m[row + xs.cellB[x]] += wy * xs.weightB[x];
    }
  };
  for (let y = 0; y < height; y++) {
    addRow(y, ys.cellA[y] * latentWidth, ys.weightA[y]);
    if (ys.cellB[y] >= 0) addRow(y, ys.cellB[y] * latentWidth, ys.weightB[y]);
  }
  return out;
}

/** In-place separable Gaussian blur (sigma in pixels, radius ceil(3 sigma)), edges replicated. */
function gaussianBlur(m: Float64Array, width: number, height: number, sigma: number): void {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
    sum += kernel[i + radius];
  }
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  const line = new Float64Array(Math.max(width, height));
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) line[x] = m[y * width + x];
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let i = -radius; i <= radius; i++) acc += kernel[i + radius] * line[clamp(x + i, width)];
      m[y * width + x] = acc;
    }
  }
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) line[y] = m[y * width + x];
    for (let y = 0; y < height; y++) {
      let acc = 0;
      for (let i = -radius; i <= radius; i++) acc += kernel[i + radius] * line[clamp(y + i, height)];
      m[y * width + x] = acc;
    }
  }
}

/**
 * Float32 masks that sum to 1 at every pixel: each value is divided by the pixel's total, and the
 * largest one is set to 1 minus the (float32) others, so the float32 sum is 1 to within ~3e-8.
 */
function normalize(sums: Float64Array[], plane: number): Float32Array[] {
  const K = sums.length;
  const masks = sums.map(() => new Float32Array(plane));
  for (let p = 0; p < plane; p++) {
    let total = 0;
    let largest = 0;
    for (let k = 0; k < K; k++) {
      const v = Math.max(0, sums[k][p]);
      total += v;
      if (v > Math.max(0, sums[largest][p])) largest = k;
    }
    let others = 0;
    for (let k = 0; k < K; k++) {
      if (k === largest) continue;
      masks[k][p] = Math.max(0, sums[k][p]) / total;
      others += masks[k][p];
    }
    masks[largest][p] = 1 - others;
  }
  return masks;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function paletteOf(segments: readonly SegmentColor[], backgroundColor: string): string[] {
  if (segments.length > 254)
    throw new RangeError(`at most 254 segments are supported, got ${segments.length}`);
  const bg = normalizeColor(backgroundColor);
  if (bg === undefined) {
    throw new RangeError(`backgroundColor: ${JSON.stringify(backgroundColor)} is not a #rrggbb color`);
  }
  const colors: string[] = [];
  segments.forEach((s, i) => {
    const c = normalizeColor(s.color);
    if (c === undefined)
      throw new RangeError(`segments[${i}].color: ${JSON.stringify(s.color)} is not a #rrggbb color`);
    const dup = colors.indexOf(c);
    if (dup >= 0) throw new RangeError(`segments[${i}].color: ${c} is already used by segments[${dup}]`);
    if (c === bg) throw new RangeError(`segments[${i}].color: ${c} is the background color`);
    colors.push(c);
  });
  colors.push(bg);
  return colors;
}

function hexToRgb(hex: string): Rgb {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function rgbToHex(rgb: Rgb): string {
  return `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

function formatShare(share: number): string {
  const pct = share * 100;
  return `${pct >= 10 ? pct.toFixed(0) : pct >= 1 ? pct.toFixed(1) : pct.toFixed(2)}%`;
}

function positiveInteger(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

function nonNegative(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`${name} must be a number >= 0, got ${v}`);
  }
  return v;
}
