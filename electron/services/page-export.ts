/**
 * Composes comic pages at print resolution and writes them as PNG, PDF or CBZ. Plain Node: sharp
 * (libvips, in its own threads) does the pixel work and zlib deflates in the thread pool, so a page
 * does not hold the event loop for long.
 *
 * A page is composed as: a white sheet of the page size x dpi; each filled slot gets its panel image
 * scaled to cover the slot (centred crop, the same `coverCrop` the Pages view draws with); then one SVG
 * overlay with the panel frames and the lettering (`pageOverlaySvg`, shared with the view).
 *
 * @example
 * const page = await composePage({ label: 'page 1', template: 'grid-2x2', settings, slots, lettering });
 * const png = await encodePagePng(page);
 */
import sharp from 'sharp';
import type { OverlayOptions } from 'sharp';
import {
  coverCrop,
  LayoutError,
  mmToPt,
  pageLayout,
  pagePixelSize,
  slotPixels,
} from '../../common/pages/layout.js';
import type { PageSettings, PageTemplateId } from '../../common/pages/layout.js';
import { escapeXml, pageOverlaySvg } from '../../common/pages/lettering.js';
import type { Lettering } from '../../common/pages/lettering.js';
import { pdfImagePage, writePdf } from './pdf-writer.js';
import type { PdfPage } from './pdf-writer.js';
import { zipStore } from './zip-writer.js';

/** What composing one page needs: its layout, the image for each slot (null: left blank), lettering. */
export interface ComposablePage {
  /** How messages name the page, e.g. `page 2`. */
  label: string;
  template: PageTemplateId;
  settings: PageSettings;
  /** One entry per slot of the template: encoded image bytes (PNG, JPEG, WebP) or null. */
  slots: readonly (Uint8Array | null)[];
  lettering: readonly Lettering[];
}

/** A composed page: raw RGB pixels at print resolution. */
export interface ComposedPage {
  width: number;
  height: number;
  dpi: number;
  /** Size in millimetres (for the PDF MediaBox). */
  widthMm: number;
  heightMm: number;
  /** 3 bytes per pixel, rows top to bottom. */
  rgb: Uint8Array;
}

/** A page that cannot be exported; the message names the page and slot and says what to do. */
export class ExportError extends Error {
  override name = 'ExportError';
}

const WHITE = { r: 255, g: 255, b: 255 };

/**
 * Composes a page.
 *
 * @throws ExportError naming the page (and slot) for an unknown template, settings that leave no room,
 *   a slot list that does not match the template, or an image that cannot be read.
 */
export async function composePage(page: ComposablePage): Promise<ComposedPage> {
  // 1. Geometry from the shared layout module.
  let layout;
  let size;
  try {
    layout = pageLayout(page.template, page.settings);
    size = pagePixelSize(page.settings.size, page.settings.dpi);
  } catch (err) {
    if (err instanceof LayoutError) throw new ExportError(`${page.label}: ${err.message}`);
    throw err;
  }
  if (page.slots.length !== layout.slots.length) {
    throw new ExportError(
      `${page.label}: the ${page.template} template has ${layout.slots.length} slots, but ${page.slots.length} were given`,
    );
  }

  // 2. Each filled slot: crop the image to the slot's aspect ratio (centred), scale it to the slot.
  const composites: OverlayOptions[] = [];
  for (const [i, bytes] of page.slots.entries()) {
    if (bytes === null) continue;
    const where = `${page.label}, slot ${i + 1}`;
    const slot = slotPixels(layout.slots[i], page.settings.dpi);
    let pixels: Buffer;
    try {
      const meta = await sharp(bytes, { failOn: 'error' }).metadata();
      if (!meta.width || !meta.height) throw new Error('no size');
      const crop = coverCrop({ width: meta.width, height: meta.height }, slot);
      pixels = await sharp(bytes, { failOn: 'error' })
        .flatten({ background: WHITE })
        .extract({ left: crop.x, top: crop.y, width: crop.width, height: crop.height })
        .resize(slot.width, slot.height, { fit: 'fill', kernel: 'lanczos3' })
        .removeAlpha()
        .raw()
        .toBuffer();
    } catch {
      throw new ExportError(`${where}: the panel's render cannot be read (a damaged or unsupported image)`);
    }
    composites.push({
      input: pixels,
      raw: { width: slot.width, height: slot.height, channels: 3 },
      left: slot.x,
      top: slot.y,
    });
  }

  // 3. Frames and lettering, drawn by the shared overlay at the page's pixel size.
  composites.push({ input: Buffer.from(pageOverlaySvg(layout, page.lettering, size)), left: 0, top: 0 });

  const rgb = await sharp({
    create: { width: size.width, height: size.height, channels: 3, background: WHITE },
  })
    .composite(composites)
    .removeAlpha()
    .raw()
    .toBuffer();
  return {
    width: size.width,
    height: size.height,
    dpi: page.settings.dpi,
    widthMm: layout.widthMm,
    heightMm: layout.heightMm,
    rgb: new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength),
  };
}

/** The page as a PNG that says its resolution (pHYs), so print tools place it at the right size. */
export async function encodePagePng(page: ComposedPage): Promise<Uint8Array> {
  const png = await sharp(page.rgb, { raw: { width: page.width, height: page.height, channels: 3 } })
    .withDensity(page.dpi)
    .png({ compressionLevel: 6 })
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** One page as PNG. */
export async function exportPng(page: ComposablePage): Promise<Uint8Array> {
  return encodePagePng(await composePage(page));
}

/** Pages as a PDF, one PDF page per page (composed one at a time to bound memory). */
export async function exportPdf(pages: readonly ComposablePage[], title: string): Promise<Uint8Array> {
  if (pages.length === 0) throw new ExportError('the story has no pages to export; add a page first');
  const written: PdfPage[] = [];
  for (const page of pages) {
    const composed = await composePage(page);
    written.push(
      await pdfImagePage(
        { width: composed.width, height: composed.height, rgb: composed.rgb },
        { widthPt: mmToPt(composed.widthMm), heightPt: mmToPt(composed.heightMm) },
      ),
    );
  }
  return writePdf(written, { title });
}

/**
 * Pages as a CBZ (comic book archive): a ZIP of `001.png`, `002.png`, ... in reading order and a
 * `ComicInfo.xml` with the title and page count, which comic readers show.
 */
export async function exportCbz(pages: readonly ComposablePage[], title: string): Promise<Uint8Array> {
  if (pages.length === 0) throw new ExportError('the story has no pages to export; add a page first');
  const entries = [];
  for (const [i, page] of pages.entries()) {
    entries.push({ name: `${String(i + 1).padStart(3, '0')}.png`, data: await exportPng(page) });
  }
  entries.push({ name: 'ComicInfo.xml', data: new TextEncoder().encode(comicInfoXml(title, pages.length)) });
  return zipStore(entries);
}

/** The ComicInfo.xml of the Anansi Project schema (v2.0): title and page count. */
export function comicInfoXml(title: string, pageCount: number): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n' +
    '<ComicInfo xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ' +
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema">\n' +
    `  <Title>${escapeXml(title)}</Title>\n` +
    `  <PageCount>${pageCount}</PageCount>\n` +
    '  <Notes>Made with MSP Studio</Notes>\n' +
    '</ComicInfo>\n'
  );
}
