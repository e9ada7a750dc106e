/**
 * A minimal PDF 1.4 writer for comic pages: one page per image, the image filling the page. Each page
 * is a `/Page` with its MediaBox in points, a content stream that paints the image over the whole box,
 * and the image as an XObject (8-bit DeviceRGB, `/FlateDecode` of the raw pixels). The cross-reference
 * table lists every object's byte offset, so readers open the file without repairing it.
 *
 * @example
 * const page = await pdfImagePage({ width: 2480, height: 3508, rgb }, { widthPt: 595.28, heightPt: 841.89 });
 * const pdf = writePdf([page], { title: 'The Lighthouse' });
 */
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';

const deflateAsync = promisify(deflate);

/** A page ready to be written: its size in points and its image, already deflated. */
export interface PdfPage {
  widthPt: number;
  heightPt: number;
  image: { width: number; height: number; deflated: Uint8Array };
}

export interface PdfInfo {
  title?: string;
  /** Default: MSP Studio. */
  creator?: string;
  /** Default: now. */
  created?: Date;
}

export class PdfError extends Error {
  override name = 'PdfError';
}

/**
 * Deflates raw RGB pixels (3 bytes per pixel, rows top to bottom) for {@link writePdf}. Runs in the
 * thread pool, so a print-resolution page does not block the event loop.
 *
 * @throws PdfError when the pixels do not match the size.
 */
export async function pdfImagePage(
  image: { width: number; height: number; rgb: Uint8Array },
  size: { widthPt: number; heightPt: number },
): Promise<PdfPage> {
  const { width, height, rgb } = image;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new PdfError(`the page image must have a whole, positive size, got ${width}x${height}`);
  }
  if (rgb.byteLength !== width * height * 3) {
    throw new PdfError(
      `the page image has ${rgb.byteLength} bytes; ${width}x${height} RGB needs ${width * height * 3}`,
    );
  }
  if (!(size.widthPt > 0 && size.heightPt > 0)) throw new PdfError('the page size must be positive');
  const deflated = new Uint8Array(await deflateAsync(rgb));
  return { widthPt: size.widthPt, heightPt: size.heightPt, image: { width, height, deflated } };
}

/**
 * The bytes of a PDF with one page per entry, in order.
 *
 * @throws PdfError for an empty page list.
 */
export function writePdf(pages: readonly PdfPage[], info: PdfInfo = {}): Uint8Array {
  if (pages.length === 0) throw new PdfError('a PDF needs at least one page');
  const chunks: Uint8Array[] = [];
  const offsets: number[] = [];
  let length = 0;
  const push = (bytes: Uint8Array | string) => {
    const b = typeof bytes === 'string' ? latin1(bytes) : bytes;
    chunks.push(b);
    length += b.byteLength;
  };
  /** Starts object `id` (1-based) at the current offset. */
  const begin = (id: number) => {
    offsets[id] = length;
    push(`${id} 0 obj\n`);
  };

  // Object numbers: 1 catalog, 2 page tree, 3 info, then per page: page, content, image.
  const pageId = (i: number) => 4 + 3 * i;

  // 1. Header; the binary comment line tells transfer tools the file is binary.
  push('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n');

  // 2. Catalog, page tree and document information.
  begin(1);
  push('<< /Type /Catalog /Pages 2 0 R >>\nendobj\n');
  begin(2);
  const kids = pages.map((_, i) => `${pageId(i)} 0 R`).join(' ');
  push(`<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>\nendobj\n`);
  begin(3);
  const title = info.title === undefined ? '' : ` /Title ${pdfText(info.title)}`;
  push(
    `<< /Creator ${pdfText(info.creator ?? 'MSP Studio')} /Producer ${pdfText('MSP Studio')}` +
      ` /CreationDate ${pdfText(pdfDate(info.created ?? new Date()))}${title} >>\nendobj\n`,
  );

  // 3. Pages: the page dictionary, its content stream, its image.
  pages.forEach((page, i) => {
    const id = pageId(i);
    const w = num(page.widthPt);
    const h = num(page.heightPt);
    begin(id);
    push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${w} ${h}] /Contents ${id + 1} 0 R` +
        ` /Resources << /XObject << /Im0 ${id + 2} 0 R >> >> >>\nendobj\n`,
    );
    // the image space is the unit square; scale it to the page and paint it
    const content = `q ${w} 0 0 ${h} 0 0 cm /Im0 Do Q\n`;
    begin(id + 1);
    push(`<< /Length ${content.length} >>\nstream\n${content}endstream\nendobj\n`);
    begin(id + 2);
    push(
      `<< /Type /XObject /Subtype /Image /Width ${page.image.width} /Height ${page.image.height}` +
        ` /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode` +
        ` /Length ${page.image.deflated.byteLength} >>\nstream\n`,
    );
    push(page.image.deflated);
    push('\nendstream\nendobj\n');
  });

  // 4. Cross-reference table (entries are exactly 20 bytes) and trailer.
  const count = pageId(pages.length);
  const xref = length;
  push(`xref\n0 ${count}\n0000000000 65535 f \n`);
  for (let id = 1; id < count; id++) push(`${String(offsets[id]).padStart(10, '0')} 00000 n \n`);
  push(`trailer\n<< /Size ${count} /Root 1 0 R /Info 3 0 R >>\nstartxref\n${xref}\n%%EOF\n`);

  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** A PDF text string: UTF-16BE with a byte order mark, as hex (safe for any title). */
function pdfText(text: string): string {
  let hex = 'FEFF';
  for (let i = 0; i < text.length; i++) hex += text.charCodeAt(i).toString(16).padStart(4, '0');
  return `<${hex.toUpperCase()}>`;
}

/** `D:YYYYMMDDHHmmSSZ` in UTC. */
function pdfDate(at: Date): string {
  const p = (v: number) => String(v).padStart(2, '0');
  return (
    `D:${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}` +
    `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}Z`
  );
}

/** A number for PDF syntax: at most 3 decimals, never exponent notation. */
function num(value: number): string {
  return (Math.round(value * 1000) / 1000).toFixed(3).replace(/\.?0+$/, '');
}

/** Bytes of a string whose characters are all below 256. */
function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
