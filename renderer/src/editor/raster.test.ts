import { describe, expect, it } from 'vitest';
import {
  countPaint,
  createRaster,
  fillPolygon,
  fillRectangle,
  floodFill,
  movePaint,
  paintedColors,
  paintOf,
  paintStroke,
  pixelAt,
  rasterFromData,
  replacePaint,
  resizeRaster,
  TRANSPARENT,
} from './raster';
import type { Raster } from './raster';

const RED = paintOf('#ff3b30');
const GREEN = paintOf('#30d158');

/** Rows of the raster as strings: '.' transparent, 'R' red, 'G' green, '?' anything else. */
function ascii(r: Raster): string[] {
  const rows: string[] = [];
  for (let y = 0; y < r.height; y++) {
    let row = '';
    for (let x = 0; x < r.width; x++) {
      const p = pixelAt(r, x, y);
      const is = (q: readonly number[]) => p.every((v, i) => v === q[i]);
      row += is(TRANSPARENT) ? '.' : is(RED) ? 'R' : is(GREEN) ? 'G' : '?';
    }
    rows.push(row);
  }
  return rows;
}

/** Every pixel is transparent or exactly one of the given paints: no antialiasing. */
function onlyPaints(r: Raster, paints: readonly (readonly number[])[]): boolean {
  for (let y = 0; y < r.height; y++) {
    for (let x = 0; x < r.width; x++) {
      const p = pixelAt(r, x, y);
      if (![TRANSPARENT, ...paints].some((q) => p.every((v, i) => v === q[i]))) return false;
    }
  }
  return true;
}

describe('rectangle', () => {
  it('fills the pixels both corners are in, with hard edges', () => {
    const r = fillRectangle(createRaster(6, 5), { x: 1.2, y: 1.9 }, { x: 3.7, y: 3.1 }, RED);
    expect(ascii(r)).toEqual(['......', '.RRR..', '.RRR..', '.RRR..', '......']);
  });

  it('works dragged in any direction and clips to the raster', () => {
    const a = fillRectangle(createRaster(4, 4), { x: 10, y: 10 }, { x: 2.5, y: -3 }, RED);
    expect(ascii(a)).toEqual(['..RR', '..RR', '..RR', '..RR']);
  });

  it('never mutates its input', () => {
    const blank = createRaster(4, 4);
    fillRectangle(blank, { x: 0, y: 0 }, { x: 3, y: 3 }, RED);
    expect(countPaint(blank, TRANSPARENT)).toBe(16);
  });
});

describe('polygon', () => {
  it('paints pixels whose centres are inside (even-odd), hard-edged', () => {
    // a right triangle with legs on the top and left edges
    const r = fillPolygon(
      createRaster(5, 5),
      [
        { x: 0, y: 0 },
        { x: 5, y: 0 },
        { x: 0, y: 5 },
      ],
      RED,
    );
    // centres exactly on the hypotenuse (x + y = 4) are outside: edges are half-open, so two
    // polygons sharing an edge never both paint a pixel
    expect(ascii(r)).toEqual(['RRRR.', 'RRR..', 'RR...', 'R....', '.....']);
    expect(onlyPaints(r, [RED])).toBe(true);
  });

  it('matches a rectangle for an axis-aligned square', () => {
    const square = [
      { x: 1, y: 1 },
      { x: 4, y: 1 },
      { x: 4, y: 4 },
      { x: 1, y: 4 },
    ];
    const viaPolygon = fillPolygon(createRaster(6, 6), square, RED);
    const viaRect = fillRectangle(createRaster(6, 6), { x: 1, y: 1 }, { x: 3.5, y: 3.5 }, RED);
    expect(ascii(viaPolygon)).toEqual(ascii(viaRect));
  });

  it('a large lasso leaves only exact colors', () => {
    const points = Array.from({ length: 40 }, (_, i) => {
      const a = (i / 40) * 2 * Math.PI;
      return { x: 32 + 25 * Math.cos(a) + 3 * Math.sin(5 * a), y: 32 + 20 * Math.sin(a) };
    });
    const r = fillPolygon(createRaster(64, 64), points, GREEN);
    expect(onlyPaints(r, [GREEN])).toBe(true);
    const area = countPaint(r, GREEN);
    expect(area).toBeGreaterThan(Math.PI * 25 * 20 * 0.9);
    expect(area).toBeLessThan(Math.PI * 25 * 20 * 1.1);
  });

  it('returns the same raster for fewer than three points', () => {
    const blank = createRaster(4, 4);
    expect(
      fillPolygon(
        blank,
        [
          { x: 0, y: 0 },
          { x: 3, y: 3 },
        ],
        RED,
      ),
    ).toBe(blank);
  });
});

describe('brush stroke', () => {
  it('paints a capsule with hard edges in the exact color', () => {
    const r = paintStroke(
      createRaster(32, 32),
      [
        { x: 4, y: 16 },
        { x: 28, y: 16 },
      ],
      6,
      RED,
    );
    expect(onlyPaints(r, [RED])).toBe(true);
    // the row through the stroke is painted from x=1 to x=30 (centre within 3 px of the segment)
    const row = ascii(r)[16];
    expect(row.slice(1, 31)).toBe('R'.repeat(30));
    expect(row[0]).toBe('.');
    expect(row[31]).toBe('.');
    // thickness: rows 13..18 have pixel centres within 3 px of y = 16
    expect(ascii(r).filter((line) => line[16] === 'R')).toHaveLength(6);
  });

  it('a 1 px brush always marks the pixel under the point', () => {
    const r = paintStroke(createRaster(4, 4), [{ x: 2, y: 2 }], 1, RED);
    expect(ascii(r)[2][2]).toBe('R');
    expect(countPaint(r, RED)).toBe(1);
  });

  it('erases to transparent', () => {
    const painted = fillRectangle(createRaster(8, 8), { x: 0, y: 0 }, { x: 7, y: 7 }, RED);
    const r = paintStroke(
      painted,
      [
        { x: 0, y: 4.5 },
        { x: 8, y: 4.5 },
      ],
      1,
      TRANSPARENT,
    );
    expect(ascii(r)[4]).toBe('........');
    expect(countPaint(r, RED)).toBe(56);
  });

  it('returns the input itself when nothing changes (no undo step)', () => {
    const painted = fillRectangle(createRaster(8, 8), { x: 0, y: 0 }, { x: 7, y: 7 }, RED);
    expect(paintStroke(painted, [{ x: 3, y: 3 }], 3, RED)).toBe(painted);
  });
});

describe('flood fill', () => {
  it('fills the 4-connected area of the same color and stops at other colors', () => {
    let r = createRaster(6, 5);
    // a red wall at x = 2 with a diagonal gap that 4-connectivity does not cross
    r = fillRectangle(r, { x: 2, y: 0 }, { x: 2, y: 4 }, RED);
    r = floodFill(r, 0, 0, GREEN);
    expect(ascii(r)).toEqual(['GGR...', 'GGR...', 'GGR...', 'GGR...', 'GGR...']);
  });

  it('does not leak through diagonal gaps', () => {
    const rows = ['.R..', 'R.R.', '.R..', '....'];
    const data = rows.flatMap((row) => [...row].flatMap((c) => (c === 'R' ? [...RED] : [...TRANSPARENT])));
    const r = floodFill(rasterFromData(4, 4, data), 1, 1, GREEN);
    expect(ascii(r)).toEqual(['.R..', 'RGR.', '.R..', '....']);
  });

  it('fills concave shapes completely (scanline restarts)', () => {
    const rows = ['......', '.RRRR.', '.R..R.', '.R.RR.', '.R....', '......'];
    const data = rows.flatMap((row) => [...row].flatMap((c) => (c === 'R' ? [...RED] : [...TRANSPARENT])));
    const r = floodFill(rasterFromData(6, 6, data), 0, 0, GREEN);
    // the inside is reached through the one-pixel channel at x = 2
    expect(ascii(r)).toEqual(['GGGGGG', 'GRRRRG', 'GRGGRG', 'GRGRRG', 'GRGGGG', 'GGGGGG']);
  });

  it('filling with the same color changes nothing', () => {
    const r = createRaster(3, 3);
    expect(floodFill(r, 1, 1, TRANSPARENT)).toBe(r);
    expect(floodFill(r, -1, 1, RED)).toBe(r);
  });
});

describe('helpers', () => {
  it('replacePaint recolors one color only', () => {
    let r = fillRectangle(createRaster(4, 1), { x: 0, y: 0 }, { x: 1, y: 0 }, RED);
    r = fillRectangle(r, { x: 2, y: 0 }, { x: 2, y: 0 }, GREEN);
    expect(ascii(replacePaint(r, RED, TRANSPARENT))).toEqual(['..G.']);
  });

  it('paintedColors lists opaque colors with counts', () => {
    let r = fillRectangle(createRaster(4, 4), { x: 0, y: 0 }, { x: 1, y: 1 }, RED);
    r = fillRectangle(r, { x: 3, y: 3 }, { x: 3, y: 3 }, GREEN);
    expect([...paintedColors(r)]).toEqual([
      ['#ff3b30', 4],
      ['#30d158', 1],
    ]);
  });

  it('resizeRaster is nearest neighbour: no new colors', () => {
    let r = fillRectangle(createRaster(4, 4), { x: 0, y: 0 }, { x: 1, y: 3 }, RED);
    r = fillRectangle(r, { x: 2, y: 0 }, { x: 3, y: 3 }, GREEN);
    const big = resizeRaster(r, 10, 7);
    expect(onlyPaints(big, [RED, GREEN])).toBe(true);
    expect(ascii(big)[3]).toBe('RRRRRGGGGG');
  });

  it('movePaint moves one color by whole pixels: leaves background behind, covers what it lands on, clips at the edge', () => {
    let r = fillRectangle(createRaster(5, 2), { x: 0, y: 0 }, { x: 1, y: 0 }, RED);
    r = fillRectangle(r, { x: 3, y: 0 }, { x: 3, y: 1 }, GREEN);
    expect(ascii(r)).toEqual(['RR.G.', '...G.']);
    expect(ascii(movePaint(r, RED, 2.4, 0))).toEqual(['..RR.', '...G.']);
    expect(ascii(movePaint(r, RED, 1, 1))).toEqual(['...G.', '.RRG.']);
    expect(ascii(movePaint(r, GREEN, 1, -1))).toEqual(['RR..G', '.....']);
    expect(r.data).toEqual(
      fillRectangle(
        fillRectangle(createRaster(5, 2), { x: 0, y: 0 }, { x: 1, y: 0 }, RED),
        { x: 3, y: 0 },
        { x: 3, y: 1 },
        GREEN,
      ).data,
    );
  });

  it('movePaint returns the same raster when nothing moves', () => {
    const r = fillRectangle(createRaster(3, 3), { x: 0, y: 0 }, { x: 0, y: 0 }, RED);
    expect(movePaint(r, RED, 0.3, -0.4)).toBe(r);
    expect(movePaint(r, GREEN, 1, 1)).toBe(r);
  });
});
