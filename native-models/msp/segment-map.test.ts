import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RgbaImage } from '../image/image.js';
import { SegmentMapError, masksToImage, readSegmentMap, segmentMasks } from './segment-map.js';
import type { SegmentMaskOptions, SegmentMasks } from './segment-map.js';

type Rgba = [number, number, number, number];

const RED: Rgba = [255, 0, 0, 255];
const GREEN: Rgba = [0, 255, 0, 255];
const BLUE: Rgba = [0, 0, 255, 255];
const BLACK: Rgba = [0, 0, 0, 255];

const SEGMENTS = [
  { color: '#ff0000', prompt: 'sks man waving' },
  { color: '#00ff00', prompt: 'a red car' },
];

/** An RGBA map painted by a function of the pixel position. */
function paint(width: number, height: number, at: (x: number, y: number) => Rgba): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(at(x, y), (y * width + x) * 4);
  }
  return { width, height, data, channels: 4 };
}

/** 64x64: a red square top-left, a green square bottom-right, black elsewhere. */
function twoRectangles(scale = 1): RgbaImage {
  return paint(64 * scale, 64 * scale, (x, y) => {
    const [u, v] = [x / scale, y / scale];
    if (u < 32 && v < 32) return RED;
    if (u >= 32 && v >= 32) return GREEN;
    return BLACK;
  });
}

const SIZE: SegmentMaskOptions = { width: 64, height: 64, latentWidth: 8, latentHeight: 8 };

function expectSumsToOne(result: SegmentMasks): void {
  const plane = result.latentWidth * result.latentHeight;
  for (let p = 0; p < plane; p++) {
    let sum = 0;
    for (const m of result.masks) {
      expect(m[p]).toBeGreaterThanOrEqual(0);
      sum += m[p];
    }
    expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
  }
}

async function segmentMapError(promise: Promise<unknown>): Promise<SegmentMapError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SegmentMapError);
  return error as SegmentMapError;
}

describe('segmentMasks', () => {
  it('turns two rectangles and background into masks that sum to 1', async () => {
    const result = await segmentMasks(twoRectangles(), SEGMENTS, '#000000', SIZE);
    expect(result.masks).toHaveLength(3);
    expect(result.colors).toEqual(['#ff0000', '#00ff00', '#000000']);
    expect(result.pixelCounts).toEqual([1024, 1024, 2048]);
    expect(result.coverage).toEqual([0.25, 0.25, 0.5]);
    expect(result.warnings).toEqual([]);
    expectSumsToOne(result);
    const [red, green, background] = result.masks;
    expect(red[0]).toBe(1); // (0, 0)
    expect(red[3 * 8 + 3]).toBe(1); // (3, 3)
    expect(red[4]).toBe(0); // (4, 0)
    expect(green[7 * 8 + 7]).toBe(1);
    expect(background[7]).toBe(1); // (7, 0)
    expect(Array.from(red).reduce((a, b) => a + b, 0)).toBe(16);
  });

  it('area-averages a latent cell that a boundary cuts in half to exactly 0.5 / 0.5', async () => {
    // Latent cells are 8 px wide; red covers x < 20, so cell 2 (x 16..23) is half red.
    const map = paint(64, 64, (x) => (x < 20 ? RED : BLACK));
    const result = await segmentMasks(map, [SEGMENTS[0]], '#000', SIZE);
    const [red, background] = result.masks;
    for (let y = 0; y < 8; y++) {
      expect(red[y * 8 + 1]).toBe(1);
      expect(red[y * 8 + 2]).toBe(0.5);
      expect(background[y * 8 + 2]).toBe(0.5);
      expect(red[y * 8 + 3]).toBe(0);
    }
  });

  it('area-averages exactly when cells are not a whole number of pixels', async () => {
    // 12 px over 8 cells: cell 3 spans x 4.5..6, so red x < 5 covers a third of it.
    const map = paint(12, 4, (x) => (x < 5 ? RED : BLACK));
    const result = await segmentMasks(map, [SEGMENTS[0]], '#000000', {
      width: 12,
      height: 4,
      latentWidth: 8,
      latentHeight: 2,
      minPixels: 1,
    });
    const [red] = result.masks;
    expect(Array.from(red.slice(0, 8))).toEqual([1, 1, 1, Math.fround(1 / 3), 0, 0, 0, 0]);
    expectSumsToOne(result);
  });

  it('gives antialiased edge pixels (blended colors) to a neighbouring region', async () => {
    // Red | green boundary at x = 32 with two antialiased columns, a soft red brush on the black
    // background (a 12 px ramp), and a red stroke with a soft alpha edge on a transparent layer.
    const map = paint(64, 64, (x, y) => {
      if (y < 32) {
        if (x === 31) return [191, 64, 0, 255];
        if (x === 32) return [64, 191, 0, 255];
        return x < 32 ? RED : GREEN;
      }
      if (y < 48) {
        const v = Math.round(Math.min(1, Math.max(0, (40 - x) / 12)) * 255); // ramp x 28..40
        return [v, 0, 0, 255];
      }
      const a = Math.round(Math.min(1, Math.max(0, (40 - x) / 12)) * 255);
      return [255, 0, 0, a];
    });
    const result = await segmentMasks(map, SEGMENTS, '#000000', SIZE);
    expect(result.warnings).toEqual([]);
    // Top half: 32 red columns (x < 32), 32 green. Bottom: red where the ramp is above half.
    const redTop = 32 * 32;
    const redBottom = 2 * 16 * 35; // the ramp is nearer red than black (v >= 128) for x <= 34
    expect(result.pixelCounts).toEqual([redTop + redBottom, 32 * 32, 64 * 32 - redBottom]);
    expectSumsToOne(result);
  });

  it('reports an unknown color with its hex and share of the image', async () => {
    const map = paint(64, 64, (x, y) => (x < 10 && y < 10 ? [0x12, 0x34, 0x56, 255] : x >= 32 ? RED : GREEN));
    const error = await segmentMapError(segmentMasks(map, SEGMENTS, '#000000', SIZE));
    expect(error.unknownColors).toEqual(['#123456']);
    expect(error.tooSmall).toEqual([]);
    expect(error.message).toBe(
      'segment map has colors not in the request: #123456 (2.4% of the image) — add a region with that color or repaint',
    );
  });

  it('does not take a flat region of a blended color for an edge', async () => {
    // Purple is halfway between red and blue, but a whole region of it is a color of its own.
    // (Purple within two latent pixels, 16 px, of red or blue still passes for an edge.)
    const map = paint(64, 64, (x) => (x < 8 ? RED : x < 56 ? [128, 0, 128, 255] : BLUE));
    const error = await segmentMapError(
      segmentMasks(map, [SEGMENTS[0], { color: '#0000ff', prompt: 'sky' }], '#000000', SIZE),
    );
    expect(error.unknownColors).toEqual(['#800080']);
  });

  it('reports a 2-pixel segment as too small to render', async () => {
    const map = paint(64, 64, (x, y) => ((x === 40 || x === 41) && y === 40 ? GREEN : x < 32 ? RED : BLACK));
    const error = await segmentMapError(segmentMasks(map, SEGMENTS, '#000000', SIZE));
    expect(error.tooSmall).toEqual(['#00ff00']);
    expect(error.unknownColors).toEqual([]);
    expect(error.message).toBe(
      'segments too small to render (need at least 64 px): #00ff00 ("a red car", 2 px)',
    );
  });

  it('reports all problems in one error', async () => {
    const map = paint(64, 64, (x, y) =>
      x < 10 && y < 10 ? [0x12, 0x34, 0x56, 255] : y > 60 ? [255, 255, 0, 255] : RED,
    );
    const error = await segmentMapError(segmentMasks(map, SEGMENTS, '#000000', SIZE));
    expect(error.unknownColors).toEqual(['#ffff00', '#123456']); // largest first
    expect(error.tooSmall).toEqual(['#00ff00']);
    expect(error.message).toBe(
      'segment map has colors not in the request: #ffff00 (4.7% of the image), #123456 (2.4% of the image)' +
        ' — add a region with those colors or repaint; ' +
        'segments too small to render (need at least 64 px): #00ff00 ("a red car", 0 px)',
    );
  });

  it('gives a few stray pixels to the nearest color with a warning', async () => {
    const map = paint(64, 64, (x, y) => (x === 5 && y < 3 ? [0x12, 0x34, 0x56, 255] : x < 32 ? RED : GREEN));
    const result = await segmentMasks(map, SEGMENTS, '#000000', SIZE);
    expect(result.pixelCounts.reduce((a, b) => a + b, 0)).toBe(64 * 64);
    expect(result.warnings).toEqual([
      '3 pixels (0.07% of the image) match no region color (e.g. #123456); they were given to the nearest region color',
    ]);
  });

  it('resizes a map of twice the size with nearest neighbour to the same masks', async () => {
    const small = await segmentMasks(twoRectangles(), SEGMENTS, '#000000', SIZE);
    const large = await segmentMasks(twoRectangles(2), SEGMENTS, '#000000', SIZE);
    expect(large.warnings).toEqual([]);
    expect(large.pixelCounts).toEqual(small.pixelCounts);
    expect(large.masks).toEqual(small.masks);
  });

  it('warns when a resized map had another aspect ratio', async () => {
    const wide = paint(128, 64, (x) => (x < 64 ? RED : GREEN));
    const result = await segmentMasks(wide, SEGMENTS, '#000000', SIZE);
    expect(result.warnings).toEqual([
      'segment map is 128x64 but the render is 64x64; the painting was stretched to fit (aspect ratio 2.00 vs 1.00)',
    ]);
    expect(result.pixelCounts).toEqual([2048, 2048, 0]);
  });

  it('feathering softens edges and keeps masks summing to 1', async () => {
    const hard = await segmentMasks(twoRectangles(), SEGMENTS, '#000000', SIZE);
    const soft = await segmentMasks(twoRectangles(), SEGMENTS, '#000000', { ...SIZE, feather: 1 });
    expectSumsToOne(soft);
    const edge = 1 * 8 + 3; // (3, 1): red, next to the background at x = 4
    expect(hard.masks[0][edge]).toBe(1);
    expect(soft.masks[0][edge]).toBeGreaterThan(0.5);
    expect(soft.masks[0][edge]).toBeLessThan(0.95);
    expect(soft.masks[2][edge]).toBeGreaterThan(0.05);
    expect(soft.masks[0][0]).toBeGreaterThan(0.95); // the corner stays almost pure
    expect(soft.masks[0][7 * 8 + 7]).toBeLessThan(1e-3); // far away stays almost empty
  });

  it('counts transparent pixels as background whatever their color', async () => {
    const map = paint(64, 64, (x, y) => (x < 32 ? RED : y < 32 ? [0, 255, 0, 0] : GREEN));
    const result = await segmentMasks(map, SEGMENTS, '#ffffff', SIZE);
    expect(result.pixelCounts).toEqual([2048, 1024, 1024]);
    expect(result.masks[2][7]).toBe(1);
  });

  it('gives an all-zero background mask when every pixel belongs to a segment', async () => {
    const map = paint(64, 64, (x) => (x < 32 ? RED : GREEN));
    const result = await segmentMasks(map, SEGMENTS, '#000000', { ...SIZE, feather: 1.5 });
    expect(result.pixelCounts[2]).toBe(0);
    expect(result.masks[2].every((v) => v === 0)).toBe(true);
    expectSumsToOne(result);
  });

  it('rejects bad arguments naming them', async () => {
    const map = twoRectangles();
    await expect(segmentMasks(map, SEGMENTS, '#000000', { ...SIZE, latentWidth: 128 })).rejects.toThrow(
      'latent size 128x8 must not exceed the render size 64x64',
    );
    await expect(segmentMasks(map, [{ color: '#zz0000' }], '#000000', SIZE)).rejects.toThrow(
      'segments[0].color: "#zz0000" is not a #rrggbb color',
    );
    await expect(segmentMasks(map, [SEGMENTS[0], SEGMENTS[0]], '#000000', SIZE)).rejects.toThrow(
      'segments[1].color: #ff0000 is already used by segments[0]',
    );
    await expect(segmentMasks(map, SEGMENTS, '#000000', { ...SIZE, tolerance: -1 })).rejects.toThrow(
      'tolerance must be a number >= 0, got -1',
    );
  });
});

describe('masksToImage', () => {
  it('mixes mask colors by weight', () => {
    const masks = [Float32Array.of(1, 0.5, 0), Float32Array.of(0, 0.5, 0.25), Float32Array.of(0, 0, 0.75)];
    const image = masksToImage(masks, ['#ff0000', '#00ff00', '#000000'], 3, 1);
    expect(Array.from(image.data)).toEqual([255, 0, 0, 128, 128, 0, 0, 64, 0]);
    expect(() => masksToImage(masks, ['#ff0000'], 3, 1)).toThrow('one color per mask');
  });
});

describe('readSegmentMap', () => {
  it('reads a PNG from bytes and from a file, keeping alpha', async () => {
    const map = paint(4, 2, (x) => (x < 2 ? RED : [0, 0, 0, 0]));
    const png = await sharp(map.data, { raw: { width: 4, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    const fromBytes = await readSegmentMap(png);
    expect(fromBytes).toEqual({ ...map, data: fromBytes.data });
    expect(Array.from(fromBytes.data)).toEqual(Array.from(map.data));
    const dir = await mkdtemp(join(tmpdir(), 'msp-map-'));
    try {
      await writeFile(join(dir, 'segments.png'), png);
      const fromFile = await readSegmentMap(join(dir, 'segments.png'));
      expect(Array.from(fromFile.data)).toEqual(Array.from(map.data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
