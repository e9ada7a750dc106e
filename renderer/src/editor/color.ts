/**
 * Region colors. A region is a flat color in the segment map; the backend matches pixels to region
 * colors within an RGB tolerance (48), so the palette keeps every color far from every other and far
 * from black, the background color of the request.
 */

/** An 8-bit RGB color. */
export type Rgb = readonly [r: number, g: number, b: number];

/**
 * Saturated, mutually distinct region colors (every pair more than 96 apart in RGB), in the order new
 * regions take them. Light blues near the UI accent are left out so a region never looks like a selection.
 */
export const REGION_PALETTE: readonly string[] = Object.freeze([
  '#ff3b30',
  '#30d158',
  '#ffd60a',
  '#bf5af2',
  '#00e5d4',
  '#ff2d9b',
  '#0000e6',
  '#b3e87d',
  '#80ff00',
  '#7300e6',
  '#00ff00',
  '#ff00ff',
]);

/**
 * Reads `#rrggbb` (any case) into RGB.
 *
 * @example
 * ```ts
 * parseHexColor('#FF8000'); // [255, 128, 0]
 * ```
 */
export function parseHexColor(hex: string): Rgb {
  const match = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!match) throw new RangeError(`"${hex}" is not a color; expected #rrggbb`);
  const value = Number.parseInt(match[1], 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

/** Lowercase `#rrggbb` of an RGB color. */
export function toHexColor([r, g, b]: Rgb): string {
  return `#${[r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

/** Euclidean RGB distance, the measure the backend's segment matching uses. */
export function colorDistance(a: Rgb, b: Rgb): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/**
 * The first palette color no region uses yet; when all are taken, a generated hue far enough from the
 * used ones (or, failing that, the least used palette color).
 *
 * @example
 * ```ts
 * nextRegionColor(['#ff3b30']); // '#30d158'
 * ```
 */
export function nextRegionColor(used: readonly string[]): string {
  const taken = new Set(used.map((c) => c.toLowerCase()));
  const free = REGION_PALETTE.find((c) => !taken.has(c));
  if (free) return free;
  const usedRgb = [...taken].map(parseHexColor);
  for (let i = 0; i < 360; i++) {
    // golden-angle hue walk: successive hues land far apart
    const hue = (i * 137.508) % 360;
    for (const lightness of [0.5, 0.35, 0.65]) {
      const candidate = hslToRgb(hue, 1, lightness);
      const farFromUsed = usedRgb.every((c) => colorDistance(c, candidate) > 2 * MIN_REGION_COLOR_DISTANCE);
      if (farFromUsed && colorDistance(candidate, [0, 0, 0]) > 2 * MIN_REGION_COLOR_DISTANCE) {
        return toHexColor(candidate);
      }
    }
  }
  return REGION_PALETTE[taken.size % REGION_PALETTE.length];
}

/** Region colors closer than this to each other (or to black) could be confused by the backend. */
export const MIN_REGION_COLOR_DISTANCE = 48;

function hslToRgb(hue: number, saturation: number, lightness: number): Rgb {
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const h = hue / 60;
  const x = chroma * (1 - Math.abs((h % 2) - 1));
  const [r, g, b] =
    h < 1
      ? [chroma, x, 0]
      : h < 2
        ? [x, chroma, 0]
        : h < 3
          ? [0, chroma, x]
          : h < 4
            ? [0, x, chroma]
            : h < 5
              ? [x, 0, chroma]
              : [chroma, 0, x];
  const m = lightness - chroma / 2;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}
