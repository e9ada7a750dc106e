import { describe, expect, it } from 'vitest';
import { BoundsPen, Canvas, CanvasPen } from './raster.js';

function count(ids: Uint8Array, id: number): number {
  return ids.reduce((n, v) => n + (v === id ? 1 : 0), 0);
}

describe('Canvas', () => {
  it('fills discs, rectangles and polygons by pixel centres', () => {
    const c = new Canvas(64, 1);
    c.setInstance(1);
    c.circle(20, 20, 10);
    c.setInstance(2);
    c.rect(40, 40, 49, 44); // 10 x 5 centres
    c.setInstance(3);
    c.polygon([0, 50, 10, 50, 0, 60]); // right triangle, ~66 centres
    const { ids } = c.finish([0, 0, 0], 0);
    expect(Math.abs(count(ids, 1) - Math.PI * 100)).toBeLessThan(12);
    expect(count(ids, 2)).toBe(50);
    expect(count(ids, 3)).toBeGreaterThan(55);
    expect(count(ids, 3)).toBeLessThan(70);
  });

  it('draws tapered capsules and rotated ellipses', () => {
    const c = new Canvas(64, 1);
    c.setInstance(1);
    c.capsule(10, 32, 54, 32, 6, 2);
    c.setInstance(2);
    c.ellipse(32, 10, 8, 2, Math.PI / 2); // now tall and thin
    const { ids } = c.finish([0, 0, 0], 0);
    expect(ids[32 * 64 + 10]).toBe(1);
    expect(ids[37 * 64 + 12]).toBe(1);
    expect(ids[36 * 64 + 52]).toBe(0); // thin end
    expect(ids[3 * 64 + 32]).toBe(2);
    expect(ids[10 * 64 + 38]).toBe(0);
  });

  it('outlines parts where they border earlier drawing, and rims dark parts on dark ground', () => {
    const c = new Canvas(32, 1);
    c.setColor([255, 255, 255]);
    c.rect(0, 0, 31, 31);
    c.setInstance(1);
    c.beginPart(true);
    c.setColor([200, 0, 0]);
    c.rect(8, 8, 23, 23);
    c.beginPart(false);
    c.setColor([0, 200, 0]);
    c.rect(12, 12, 15, 15);
    const { rgb } = c.finish([10, 10, 10], 1);
    const px = (x: number, y: number): number[] => [...rgb.subarray(3 * (y * 32 + x), 3 * (y * 32 + x) + 3)];
    expect(px(8, 16)).toEqual([10, 10, 10]); // edge of the red square
    expect(px(16, 16)).toEqual([200, 0, 0]); // inside
    expect(px(11, 13)).toEqual([200, 0, 0]); // red next to the later, unoutlined green part
    expect(px(13, 13)).toEqual([0, 200, 0]);

    const night = new Canvas(16, 1);
    night.setColor([10, 10, 30]);
    night.rect(0, 0, 15, 15);
    night.setInstance(1);
    night.beginPart('rim');
    night.setColor([30, 30, 30]);
    night.rect(4, 4, 11, 11);
    const out = night.finish([0, 0, 0], 1).rgb;
    expect(out[3 * (8 * 16 + 4)]).toBeGreaterThan(150); // light rim
    expect(out[3 * (8 * 16 + 8)]).toBe(30);
  });

  it('downsamples supersampled pixels: colours averaged, ids by majority', () => {
    const c = new Canvas(8, 2);
    c.setInstance(1);
    c.setColor([200, 100, 0]);
    c.rect(-0.5, -0.5, 3.49, 7.49); // output pixels 0..3 span coordinates -0.5..3.5: internal columns 0..7
    const { rgb, ids } = c.finish([0, 0, 0], 0);
    expect(ids[0]).toBe(1);
    expect(ids[4]).toBe(0);
    expect([...rgb.subarray(0, 3)]).toEqual([200, 100, 0]);
  });

  it('rejects bad sizes', () => {
    expect(() => new Canvas(4)).toThrow(RangeError);
    expect(() => new Canvas(64, 5)).toThrow(RangeError);
  });
});

describe('pens', () => {
  it('map local units to pixels, with mirroring', () => {
    const c = new Canvas(64, 1);
    c.setInstance(1);
    new CanvasPen(c, 32, 60, 40, true).circle(0.5, -0.5, 0.05); // mirrored: x = 32 - 20
    const { ids } = c.finish([0, 0, 0], 0);
    expect(ids[40 * 64 + 12]).toBe(1);
    expect(ids[40 * 64 + 52]).toBe(0);
  });

  it('measure extents', () => {
    const pen = new BoundsPen();
    expect(pen.extent()).toEqual({ minX: 0, maxX: 0, minY: 0, maxY: 0 });
    pen.capsule(-1, 0, 1, -2, 0.5);
    pen.rect(0, 0, 3, 0.5);
    expect(pen.extent()).toEqual({ minX: -1.5, maxX: 3, minY: -2.5, maxY: 0.5 });
  });
});
