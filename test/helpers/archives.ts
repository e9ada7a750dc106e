/**
 * Readers for the files the exporter writes, so tests check them by reading them back the way other
 * programs do: a ZIP through its central directory, a PDF through its cross-reference table.
 */
import { inflateSync } from 'node:zlib';

export interface ZipEntryRead {
  name: string;
  data: Uint8Array;
  crc: number;
}

/** Reads a stored (uncompressed) ZIP: end record -> central directory -> local headers -> data. */
export function readZip(bytes: Uint8Array): ZipEntryRead[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const endAt = bytes.byteLength - 22;
  if (endAt < 0 || view.getUint32(endAt, true) !== 0x06054b50) throw new Error('no ZIP end record');
  const count = view.getUint16(endAt + 10, true);
  const centralSize = view.getUint32(endAt + 12, true);
  let at = view.getUint32(endAt + 16, true);
  if (at + centralSize !== endAt) throw new Error('the central directory does not end at the end record');
  const decoder = new TextDecoder();
  const entries: ZipEntryRead[] = [];
  for (let i = 0; i < count; i++) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error(`central record ${i} has a bad signature`);
    const crc = view.getUint32(at + 16, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    if (view.getUint32(local, true) !== 0x04034b50) throw new Error(`${name}: bad local header offset`);
    if (view.getUint16(local + 8, true) !== 0) throw new Error(`${name} is compressed`);
    if (view.getUint32(local + 14, true) !== crc) throw new Error(`${name}: local and central CRC differ`);
    const dataAt = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    entries.push({ name, data: bytes.subarray(dataAt, dataAt + size), crc });
    at += 46 + nameLength;
  }
  return entries;
}

export interface PdfRead {
  version: string;
  /** `/Count` of the page tree. */
  pageCount: number;
  /** Per `/Type /Page` object, in page tree order: MediaBox and the image it paints. */
  pages: {
    mediaBox: number[];
    image: { width: number; height: number; rgb: Uint8Array };
  }[];
  /** Object number -> byte offset, from the xref table (each checked to start `N 0 obj`). */
  offsets: Map<number, number>;
}

/**
 * Reads a PDF as written by pdf-writer.ts: header, `startxref`, the xref table (every offset must point
 * at its object), the page tree, and each page's image XObject (inflated).
 */
export function readPdf(bytes: Uint8Array): PdfRead {
  const text = Buffer.from(bytes).toString('latin1');
  const header = /^%PDF-(\d\.\d)\n/.exec(text);
  if (!header) throw new Error('no %PDF- header');
  const start = /startxref\n(\d+)\n%%EOF\n?$/.exec(text);
  if (!start) throw new Error('no startxref at the end');
  const xrefAt = Number(start[1]);
  if (!text.startsWith('xref\n', xrefAt)) throw new Error(`startxref ${xrefAt} does not point at xref`);
  const sub = /^xref\n(\d+) (\d+)\n/.exec(text.slice(xrefAt));
  if (!sub) throw new Error('bad xref subsection');
  const first = Number(sub[1]);
  const count = Number(sub[2]);
  const offsets = new Map<number, number>();
  let at = xrefAt + sub[0].length;
  for (let i = 0; i < count; i++) {
    const entry = text.slice(at, at + 20);
    const m = /^(\d{10}) (\d{5}) ([nf]) \n$/.exec(entry);
    if (!m) throw new Error(`xref entry ${i} is not 20 bytes: ${JSON.stringify(entry)}`);
    const id = first + i;
    if (m[3] === 'n') {
      const offset = Number(m[1]);
      if (!text.startsWith(`${id} 0 obj`, offset)) throw new Error(`xref offset of object ${id} is wrong`);
      offsets.set(id, offset);
    }
    at += 20;
  }
  const trailer = /trailer\n<< \/Size (\d+) \/Root (\d+) 0 R/.exec(text.slice(at));
  if (!trailer || Number(trailer[1]) !== count) throw new Error('the trailer /Size does not match the xref');

  const object = (id: number): string => {
    const offset = offsets.get(id);
    if (offset === undefined) throw new Error(`object ${id} is not in the xref`);
    return text.slice(offset, text.indexOf('endobj', offset));
  };
  const root = object(Number(trailer[2]));
  const pagesRef = /\/Pages (\d+) 0 R/.exec(root);
  if (!pagesRef) throw new Error('the catalog has no /Pages');
  const tree = object(Number(pagesRef[1]));
  const countMatch = /\/Count (\d+)/.exec(tree);
  const kids = /\/Kids \[([^\]]*)\]/.exec(tree);
  if (!countMatch || !kids) throw new Error('the page tree has no /Count or /Kids');
  const pageIds = [...kids[1].matchAll(/(\d+) 0 R/g)].map((k) => Number(k[1]));

  const pages = pageIds.map((id) => {
    const page = object(id);
    if (!/\/Type \/Page\b/.test(page)) throw new Error(`object ${id} is not a /Page`);
    const box = /\/MediaBox \[([^\]]*)\]/.exec(page);
    const im = /\/Im0 (\d+) 0 R/.exec(page);
    if (!box || !im) throw new Error(`page object ${id} has no MediaBox or image`);
    const imageId = Number(im[1]);
    const dict = object(imageId);
    const width = Number(/\/Width (\d+)/.exec(dict)?.[1]);
    const height = Number(/\/Height (\d+)/.exec(dict)?.[1]);
    const length = Number(/\/Length (\d+)/.exec(dict)?.[1]);
    if (!/\/Filter \/FlateDecode/.test(dict)) throw new Error(`image ${imageId} is not FlateDecode`);
    const streamAt = (offsets.get(imageId) ?? 0) + dict.indexOf('stream\n') + 'stream\n'.length;
    if (!text.startsWith('\nendstream', streamAt + length))
      throw new Error(`image ${imageId} /Length is wrong`);
    const rgb = new Uint8Array(inflateSync(bytes.subarray(streamAt, streamAt + length)));
    if (rgb.byteLength !== width * height * 3) throw new Error(`image ${imageId} has the wrong pixel count`);
    return { mediaBox: box[1].trim().split(/\s+/).map(Number), image: { width, height, rgb } };
  });
  return { version: header[1], pageCount: Number(countMatch[1]), pages, offsets };
}
