import { describe, expect, it } from 'vitest';
import {
  coverCrop,
  DEFAULT_PAGE_SETTINGS,
  LayoutError,
  PAGE_TEMPLATE_IDS,
  pageLayout,
  pagePixelSize,
  slotCount,
  slotPixels,
} from './layout.js';
import type { PageSettings, PageTemplateId, Rect } from './layout.js';

const A4: PageSettings = { size: 'a4', dpi: 300, gutterMm: 4, marginMm: 12 };

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

describe('page sizes', () => {
  it('are the trim sizes at the print resolution', () => {
    expect(pagePixelSize('a4', 300)).toEqual({ width: 2480, height: 3508 });
    expect(pagePixelSize('letter', 300)).toEqual({ width: 2550, height: 3300 });
    expect(pagePixelSize('comic', 300)).toEqual({ width: 1988, height: 3075 });
    expect(pagePixelSize('a4', 150)).toEqual({ width: 1240, height: 1754 });
  });

  it('refuse resolutions outside the limits and unknown sizes', () => {
    expect(() => pagePixelSize('a4', 20)).toThrow(/print resolution must be between 72 and 600 dpi, got 20/);
    expect(() => pagePixelSize('a4', Number.NaN)).toThrow(LayoutError);
    expect(() => pagePixelSize('a5' as never, 300)).toThrow(/unknown page size "a5"/);
  });
});

describe('templates', () => {
  it('hold the panels their names say', () => {
    const counts = Object.fromEntries(PAGE_TEMPLATE_IDS.map((t) => [t, slotCount(t)]));
    expect(counts).toEqual({
      single: 1,
      'two-tiers': 2,
      'three-tiers': 3,
      'grid-2x2': 4,
      'grid-3x2': 6,
      'splash-2': 3,
    });
  });

  it('place a 2x2 grid inside the margins with one gutter between panels', () => {
    const { slots, widthMm, heightMm } = pageLayout('grid-2x2', A4);
    expect(widthMm).toBe(210);
    expect(heightMm).toBe(297);
    const w = (210 - 24 - 4) / 2; // 91
    const h = (297 - 24 - 4) / 2; // 134.5
    const expected = [
      { x: 12, y: 12 },
      { x: 12 + w + 4, y: 12 },
      { x: 12, y: 12 + h + 4 },
      { x: 12 + w + 4, y: 12 + h + 4 },
    ];
    slots.forEach((s, i) => {
      expect(s.x).toBeCloseTo(expected[i].x, 9);
      expect(s.y).toBeCloseTo(expected[i].y, 9);
      expect(s.width).toBeCloseTo(w, 9);
      expect(s.height).toBeCloseTo(h, 9);
    });
  });

  it('give the splash tier twice the height of the tier of two', () => {
    const { slots } = pageLayout('splash-2', { ...A4, gutterMm: 5, marginMm: 10 });
    expect(slots).toHaveLength(3);
    expect(slots[0].width).toBeCloseTo(190, 9);
    expect(slots[0].height).toBeCloseTo(2 * slots[1].height, 9);
    expect(slots[1].y).toBeCloseTo(slots[0].y + slots[0].height + 5, 9);
    expect(slots[2].x).toBeCloseTo(slots[1].x + slots[1].width + 5, 9);
    expect(slots[2].x + slots[2].width).toBeCloseTo(200, 9);
    expect(slots[2].y + slots[2].height).toBeCloseTo(287, 9);
  });

  it.each(PAGE_TEMPLATE_IDS.map((t) => [t] as [PageTemplateId]))(
    '%s: slots tile the live area in reading order, without overlaps, on every page size',
    (template) => {
      for (const size of ['a4', 'letter', 'comic'] as const) {
        const settings = { ...A4, size, gutterMm: 3, marginMm: 9 };
        const layout = pageLayout(template, settings);
        const live = (layout.widthMm - 18) * (layout.heightMm - 18);
        const area = layout.slots.reduce((a, s) => a + s.width * s.height, 0);
        expect(area).toBeLessThanOrEqual(live + 1e-6);
        for (const [i, a] of layout.slots.entries()) {
          expect(a.x).toBeGreaterThanOrEqual(9 - 1e-9);
          expect(a.y).toBeGreaterThanOrEqual(9 - 1e-9);
          expect(a.x + a.width).toBeLessThanOrEqual(layout.widthMm - 9 + 1e-9);
          expect(a.y + a.height).toBeLessThanOrEqual(layout.heightMm - 9 + 1e-9);
          for (const b of layout.slots.slice(i + 1)) {
            expect(overlaps(a, b)).toBe(false);
            // reading order: the next slot is to the right on the same tier, or on a lower tier
            expect(b.y > a.y + 1e-9 || (Math.abs(b.y - a.y) < 1e-9 && b.x > a.x)).toBe(true);
          }
        }
        // a zero gutter and margin leaves exactly the page
        const full = pageLayout(template, { ...settings, gutterMm: 0, marginMm: 0 });
        const fullArea = full.slots.reduce((a, s) => a + s.width * s.height, 0);
        expect(fullArea).toBeCloseTo(full.widthMm * full.heightMm, 6);
      }
    },
  );

  it('refuse settings that leave no room for panels, naming them', () => {
    expect(() => pageLayout('grid-3x2', { ...A4, size: 'comic', marginMm: 60, gutterMm: 30 })).toThrow(
      /a margin of 60 mm and a gutter of 30 mm leave panels of 9\.1 mm on Comic book .* with the 3×2 grid template/,
    );
    expect(() => pageLayout('grid-2x2', { ...A4, gutterMm: -1 })).toThrow(
      /gutter must be between 0 and 30 mm, got -1/,
    );
    expect(() => pageLayout('grid-2x2', { ...A4, marginMm: 61 })).toThrow(
      /margin must be between 0 and 60 mm/,
    );
    expect(() => pageLayout('mosaic' as PageTemplateId, A4)).toThrow(/unknown page template "mosaic"/);
  });

  it('default settings make a valid layout for every template', () => {
    for (const t of PAGE_TEMPLATE_IDS)
      expect(pageLayout(t, DEFAULT_PAGE_SETTINGS).slots).toHaveLength(slotCount(t));
  });
});

describe('pixels', () => {
  it('round slot edges so neighbours keep the same gutter and never overlap', () => {
    const { slots } = pageLayout('grid-3x2', { ...A4, dpi: 300, gutterMm: 3.3, marginMm: 11.1 });
    const px = slots.map((s) => slotPixels(s, 300));
    const gutter = Math.round((3.3 * 300) / 25.4);
    for (const [i, a] of px.entries()) {
      expect(Number.isInteger(a.x) && Number.isInteger(a.width)).toBe(true);
      for (const b of px.slice(i + 1)) expect(overlaps(a, b)).toBe(false);
    }
    // same tier: the gutter between left and right panels is the rounded gutter, within a pixel
    expect(Math.abs(px[1].x - (px[0].x + px[0].width) - gutter)).toBeLessThanOrEqual(1);
    // the page's right margin is the left margin, within a pixel
    const { width } = pagePixelSize('a4', 300);
    expect(Math.abs(width - (px[1].x + px[1].width) - px[0].x)).toBeLessThanOrEqual(1);
  });

  it('cover crop takes the largest centred window with the slot aspect ratio', () => {
    expect(coverCrop({ width: 64, height: 64 }, { width: 200, height: 100 })).toEqual({
      x: 0,
      y: 16,
      width: 64,
      height: 32,
    });
    expect(coverCrop({ width: 64, height: 64 }, { width: 100, height: 200 })).toEqual({
      x: 16,
      y: 0,
      width: 32,
      height: 64,
    });
    expect(coverCrop({ width: 300, height: 100 }, { width: 50, height: 50 })).toEqual({
      x: 100,
      y: 0,
      width: 100,
      height: 100,
    });
    // same aspect: the whole image
    expect(coverCrop({ width: 64, height: 48 }, { width: 640, height: 480 })).toEqual({
      x: 0,
      y: 0,
      width: 64,
      height: 48,
    });
    expect(() => coverCrop({ width: 0, height: 10 }, { width: 1, height: 1 })).toThrow(/no pixels/);
  });
});
