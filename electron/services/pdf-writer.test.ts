import { describe, expect, it } from 'vitest';
import { readPdf } from '../../test/helpers/archives.js';
import { PdfError, pdfImagePage, writePdf } from './pdf-writer.js';

function gradient(width: number, height: number, seed: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    rgb[i * 3] = (i + seed) % 256;
    rgb[i * 3 + 1] = (i * 7) % 256;
    rgb[i * 3 + 2] = seed;
  }
  return rgb;
}

describe('writePdf', () => {
  it('writes one page per image: header, xref offsets, page count, MediaBox and pixels read back', async () => {
    const a = gradient(40, 60, 3);
    const b = gradient(30, 20, 200);
    const pages = [
      await pdfImagePage({ width: 40, height: 60, rgb: a }, { widthPt: 595.276, heightPt: 841.89 }),
      await pdfImagePage({ width: 30, height: 20, rgb: b }, { widthPt: 612, heightPt: 408 }),
    ];
    const pdf = writePdf(pages, {
      title: 'The Lighthouse — Ch. 1',
      created: new Date('2025-01-31T12:00:00Z'),
    });
    const text = Buffer.from(pdf).toString('latin1');
    expect(text.startsWith('%PDF-1.4\n')).toBe(true);
    expect(text.endsWith('%%EOF\n')).toBe(true);
    expect(text).toContain(
      '/CreationDate <FEFF0044003A00320030003200350030003100330031003100320030003000300030005A>',
    );

    const read = readPdf(pdf);
    expect(read.version).toBe('1.4');
    expect(read.pageCount).toBe(2);
    expect(read.pages).toHaveLength(2);
    // catalog, pages, info, and three objects per page, all with correct offsets
    expect([...read.offsets.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(read.pages[0].mediaBox).toEqual([0, 0, 595.276, 841.89]);
    expect(read.pages[1].mediaBox).toEqual([0, 0, 612, 408]);
    expect(read.pages[0].image.width).toBe(40);
    expect(Buffer.from(read.pages[0].image.rgb).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(read.pages[1].image.rgb).equals(Buffer.from(b))).toBe(true);
    // the content stream paints the image over the whole page
    expect(text).toContain('q 612 0 0 408 0 0 cm /Im0 Do Q');
  });

  it('catches a broken offset (the reader is strict)', async () => {
    const page = await pdfImagePage(
      { width: 1, height: 1, rgb: new Uint8Array(3) },
      { widthPt: 10, heightPt: 10 },
    );
    const pdf = Buffer.from(writePdf([page]));
    // shift everything after the header by one byte: every recorded offset is now off by one
    const broken = Buffer.concat([pdf.subarray(0, 9), Buffer.from(' '), pdf.subarray(9)]);
    expect(() => readPdf(broken)).toThrow(/offset|startxref/);
  });

  it('refuses pixels that do not match the size, and an empty page list', async () => {
    await expect(
      pdfImagePage({ width: 2, height: 2, rgb: new Uint8Array(11) }, { widthPt: 1, heightPt: 1 }),
    ).rejects.toThrow(/has 11 bytes; 2x2 RGB needs 12/);
    expect(() => writePdf([])).toThrow(PdfError);
  });
});
