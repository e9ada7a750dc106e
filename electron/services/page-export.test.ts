import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { pageLayout, slotPixels } from '../../common/pages/layout.js';
import type { PageSettings } from '../../common/pages/layout.js';
import type { Lettering } from '../../common/pages/lettering.js';
import { encodePng } from '../../native-models/image/png.js';
import { readPdf, readZip } from '../../test/helpers/archives.js';
import { composePage, exportCbz, exportPdf, exportPng, ExportError } from './page-export.js';
import type { ComposablePage, ComposedPage } from './page-export.js';

const SETTINGS: PageSettings = { size: 'a4', dpi: 100, gutterMm: 4, marginMm: 12 };

/** A 64x64 PNG painted by rows: `bands` colors top to bottom in equal bands. */
async function bandsPng(bands: [number, number, number][]): Promise<Uint8Array> {
  const size = 64;
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const c = bands[Math.floor((y * bands.length) / size)];
    for (let x = 0; x < size; x++) data.set(c, (y * size + x) * 3);
  }
  return encodePng({ width: size, height: size, data });
}

function px(page: ComposedPage, x: number, y: number): [number, number, number] {
  const o = (Math.round(y) * page.width + Math.round(x)) * 3;
  return [page.rgb[o], page.rgb[o + 1], page.rgb[o + 2]];
}

function near(actual: [number, number, number], expected: [number, number, number], tolerance = 8): boolean {
  return actual.every((v, i) => Math.abs(v - expected[i]) <= tolerance);
}

const RED: [number, number, number] = [220, 30, 30];
const GREEN: [number, number, number] = [30, 200, 60];
const BLUE: [number, number, number] = [20, 40, 230];
const WHITE: [number, number, number] = [255, 255, 255];

describe('composePage', () => {
  it('is page size x dpi, with each slot filled from its panel render and white gutters', async () => {
    const page: ComposablePage = {
      label: 'page 1',
      template: 'grid-2x2',
      settings: SETTINGS,
      slots: [await bandsPng([RED]), null, null, await bandsPng([BLUE])],
      lettering: [],
    };
    const composed = await composePage(page);
    expect([composed.width, composed.height]).toEqual([827, 1169]); // A4 at 100 dpi
    const slots = pageLayout('grid-2x2', SETTINGS).slots.map((s) => slotPixels(s, 100));
    const centre = (i: number) =>
      [slots[i].x + slots[i].width / 2, slots[i].y + slots[i].height / 2] as const;
    expect(near(px(composed, ...centre(0)), RED)).toBe(true);
    expect(near(px(composed, ...centre(3)), BLUE)).toBe(true);
    expect(px(composed, ...centre(1))).toEqual(WHITE); // an empty slot stays blank
    // the gutter between slot 0 and slot 1, and the margin, are white
    expect(px(composed, slots[0].x + slots[0].width + 3, centre(0)[1])).toEqual(WHITE);
    expect(px(composed, 5, 5)).toEqual(WHITE);
    // a frame line runs along the slot's inner edge (dark), the image starts right inside it
    const frame = px(composed, slots[0].x + 1, centre(0)[1]);
    expect(frame.every((v) => v < 80)).toBe(true);
    expect(near(px(composed, slots[0].x + 6, centre(0)[1]), RED)).toBe(true);
  });

  it('crops renders to cover their slot, centred: the top and bottom of a square render are cut in a wide slot', async () => {
    // blue | red | green | blue bands; a 3-tier slot is about 2.1:1, so the centred crop keeps rows 17..47
    const render = await bandsPng([BLUE, RED, GREEN, BLUE]);
    const composed = await composePage({
      label: 'page 1',
      template: 'three-tiers',
      settings: SETTINGS,
      slots: [render, null, null],
      lettering: [],
    });
    const slot = slotPixels(pageLayout('three-tiers', SETTINGS).slots[0], 100);
    const x = slot.x + slot.width / 2;
    expect(near(px(composed, x, slot.y + 6), RED, 12)).toBe(true);
    expect(near(px(composed, x, slot.y + slot.height - 7), GREEN, 12)).toBe(true);
    let blue = 0;
    for (let y = slot.y + 3; y < slot.y + slot.height - 3; y++)
      if (near(px(composed, x, y), BLUE, 40)) blue++;
    expect(blue).toBe(0);
  });

  it('draws balloons and captions over the panels', async () => {
    const lettering: Lettering[] = [
      {
        id: 'b',
        kind: 'speech',
        x: 0.1,
        y: 0.1,
        width: 0.3,
        height: 0.1,
        tail: { x: 0.2, y: 0.3 },
        text: 'Hello!',
        fontSizePt: 14,
      },
      {
        id: 'c',
        kind: 'caption',
        x: 0.55,
        y: 0.6,
        width: 0.3,
        height: 0.08,
        tail: null,
        text: 'Meanwhile at the lighthouse',
        fontSizePt: 10,
      },
    ];
    const composed = await composePage({
      label: 'page 1',
      template: 'grid-2x2',
      settings: SETTINGS,
      slots: [await bandsPng([RED]), null, null, await bandsPng([BLUE])],
      lettering,
    });
    const W = composed.width;
    const H = composed.height;
    // inside the balloon (over the red panel) it is white paper, at the tail's tip it is dark ink
    expect(near(px(composed, 0.25 * W, 0.12 * H), WHITE, 30)).toBe(true);
    let ink = 0;
    for (let y = 0.1 * H; y < 0.2 * H; y++)
      for (let x = 0.1 * W; x < 0.4 * W; x++) if (px(composed, x, y)[0] < 90) ink++;
    expect(ink).toBeGreaterThan(100); // outline and letters
    // the caption's fill colour shows over the blue panel
    expect(near(px(composed, 0.56 * W, 0.61 * H), [255, 244, 196], 12)).toBe(true);
  });

  it('names the page and slot when it cannot export', async () => {
    const bad = { label: 'page 3', template: 'grid-2x2' as const, settings: SETTINGS, lettering: [] };
    await expect(composePage({ ...bad, slots: [null, null] })).rejects.toThrow(
      'page 3: the grid-2x2 template has 4 slots, but 2 were given',
    );
    await expect(
      composePage({ ...bad, slots: [new Uint8Array([1, 2, 3]), null, null, null] }),
    ).rejects.toThrow("page 3, slot 1: the panel's render cannot be read");
    await expect(composePage({ ...bad, template: 'mosaic' as never, slots: [] })).rejects.toThrow(
      /page 3: unknown page template "mosaic"/,
    );
    await expect(
      composePage({ ...bad, settings: { ...SETTINGS, dpi: 5000 }, slots: [null, null, null, null] }),
    ).rejects.toThrow(ExportError);
    await expect(exportPdf([], 'x')).rejects.toThrow(/no pages to export/);
  });
});

describe('exports', () => {
  const pages = async (): Promise<ComposablePage[]> => [
    {
      label: 'page 1',
      template: 'single',
      settings: { ...SETTINGS, dpi: 72 },
      slots: [await bandsPng([RED])],
      lettering: [],
    },
    {
      label: 'page 2',
      template: 'two-tiers',
      settings: { ...SETTINGS, size: 'comic', dpi: 72 },
      slots: [await bandsPng([GREEN]), null],
      lettering: [],
    },
  ];

  it('PNG: the print size, with its resolution recorded', async () => {
    const png = await exportPng({ ...(await pages())[0], settings: SETTINGS });
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height, meta.density]).toEqual(['png', 827, 1169, 100]);
  });

  it('PDF: one page per page, MediaBox in points from the page size, the composed pixels as the image', async () => {
    const pdf = readPdf(await exportPdf(await pages(), 'The Lighthouse'));
    expect(pdf.pageCount).toBe(2);
    expect(pdf.pages[0].mediaBox[2]).toBeCloseTo(595.276, 2);
    expect(pdf.pages[0].mediaBox[3]).toBeCloseTo(841.89, 2);
    expect(pdf.pages[1].mediaBox.slice(2)).toEqual([477, 738]); // 6.625 x 10.25 in
    expect([pdf.pages[1].image.width, pdf.pages[1].image.height]).toEqual([477, 738]);
    const { rgb, width, height } = pdf.pages[0].image;
    const o = (Math.round(height / 2) * width + Math.round(width / 2)) * 3;
    expect(near([rgb[o], rgb[o + 1], rgb[o + 2]], RED)).toBe(true);
  });

  it('CBZ: 001.png, 002.png in reading order and ComicInfo.xml', async () => {
    const entries = readZip(await exportCbz(await pages(), 'Tom & Jerry'));
    expect(entries.map((e) => e.name)).toEqual(['001.png', '002.png', 'ComicInfo.xml']);
    const second = await sharp(entries[1].data).metadata();
    expect([second.width, second.height]).toEqual([477, 738]);
    const xml = new TextDecoder().decode(entries[2].data);
    expect(xml).toContain('<Title>Tom &#38; Jerry</Title>');
    expect(xml).toContain('<PageCount>2</PageCount>');
  });
});
