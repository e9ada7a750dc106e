import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32.js';
import { decodeImage } from './image.js';
import type { RgbImage } from './image.js';
import {
  PNG_SIGNATURE,
  PngFormatError,
  PngTextError,
  encodePng,
  formatA1111Parameters,
  readPngText,
  readPngTextChunks,
} from './png.js';

function testImage(width = 24, height = 16): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

/** Lists chunk types in file order (no validation; tests only). */
function chunkTypes(png: Uint8Array): string[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const types: string[] = [];
  for (let o = 8; o + 8 <= png.length;) {
    const len = view.getUint32(o);
    types.push(Buffer.from(png.subarray(o + 4, o + 8)).toString('latin1'));
    o += 12 + len;
  }
  return types;
}

function makeChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  const t = Buffer.from(type, 'latin1');
  out.set(t, 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(t, data));
  return out;
}

/** Inserts chunks right after IHDR (signature 8 bytes + IHDR 25 bytes). */
function insertAfterIhdr(png: Uint8Array, ...chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(bytes('1234'), bytes('56789'))).toBe(0xcbf43926);
  });

  it('agrees with the CRC of the IEND chunk', () => {
    expect(crc32(bytes('IEND'))).toBe(0xae426082);
  });
});

describe('encodePng', () => {
  it('produces a PNG that sharp decodes to identical pixels', async () => {
    const img = testImage();
    const png = await encodePng(img);
    expect(Array.from(png.subarray(0, 8))).toEqual(Array.from(PNG_SIGNATURE));
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([24, 16, 3]);
    expect(new Uint8Array(data)).toEqual(img.data);
  });

  it('is byte-identical for identical input, with and without text', async () => {
    const img = testImage(64, 48);
    const text = { parameters: 'a cat\nSteps: 20', 'msp:request': '{"prompt":"猫"}' };
    expect(await encodePng(img, text)).toEqual(
      await encodePng({ ...img, data: img.data.slice() }, { ...text }),
    );
    expect(await encodePng(img)).toEqual(await encodePng(img));
  });

  it('puts text chunks between IHDR and the first IDAT, in property order', async () => {
    const png = await encodePng(testImage(), { b: 'x', a: 'ü', c: '✓' });
    const types = chunkTypes(png);
    const firstIdat = types.indexOf('IDAT');
    expect(types[0]).toBe('IHDR');
    expect(types.slice(firstIdat - 3, firstIdat)).toEqual(['tEXt', 'tEXt', 'iTXt']);
    expect(readPngTextChunks(png).map((c) => c.keyword)).toEqual(['b', 'a', 'c']);
  });

  it('encodes RGBA images', async () => {
    const data = new Uint8Array([255, 0, 0, 128, 0, 255, 0, 255]);
    const png = await encodePng({ width: 2, height: 1, data, channels: 4 }, { k: 'v' });
    const { data: out, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    expect(new Uint8Array(out)).toEqual(data);
  });

  it('rejects invalid keywords and values with a clear error', async () => {
    const img = testImage(2, 2);
    const cases: [Record<string, string>, RegExp][] = [
      [{ '': 'x' }, /keyword "" is invalid: it is empty/],
      [{ ['k'.repeat(80)]: 'x' }, /80 characters long \(maximum 79\)/],
      [{ ' lead': 'x' }, /leading or trailing space/],
      [{ 'trail ': 'x' }, /leading or trailing space/],
      [{ 'two  spaces': 'x' }, /consecutive spaces/],
      [{ プロンプト: 'x' }, /U\+30D7 at position 0 is not a printable Latin-1 character/],
      [{ 'tab\tkey': 'x' }, /U\+0009/],
      [{ 'nbsp\u00a0key': 'x' }, /U\+00A0/],
      [{ ok: 'nul\0inside' }, /contains a NUL character/],
      [{ ok: 'lone \ud800 surrogate' }, /unpaired UTF-16 surrogate/],
    ];
    for (const [text, message] of cases) {
      const err = await encodePng(img, text).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PngTextError);
      expect((err as Error).message).toMatch(message);
    }
    // 79 characters, inner single spaces and Latin-1 letters are fine.
    await expect(encodePng(img, { ['k'.repeat(79)]: 'x', 'Größe und Maß': 'y' })).resolves.toBeInstanceOf(
      Uint8Array,
    );
  });
});

describe('text chunks round trip', () => {
  it('ASCII and Latin-1 use tEXt, other text uses uncompressed iTXt', async () => {
    const text = {
      ascii: 'a cat sitting on a mat, highly detailed\nsecond line',
      latin1: 'café crème, naïve façade © ½ ÿ',
      emoji: 'a cat 🐱 with a hat 🎩',
      japanese: '猫が帽子をかぶっている',
      tab: 'has\ttab',
      empty: '',
    };
    const png = await encodePng(testImage(), text);
    expect(readPngText(png)).toEqual(text);
    const chunks = readPngTextChunks(png);
    expect(chunks.map((c) => [c.keyword, c.type, c.compressed])).toEqual([
      ['ascii', 'tEXt', false],
      ['latin1', 'tEXt', false],
      ['emoji', 'iTXt', false],
      ['japanese', 'iTXt', false],
      ['tab', 'iTXt', false],
      ['empty', 'tEXt', false],
    ]);
    expect(chunks[2]).toMatchObject({ languageTag: '', translatedKeyword: '' });
  });

  it('round-trips a 10 kB JSON value, and the PNG still decodes to identical pixels', async () => {
    const request = {
      prompt: 'a knight and a dragon — ドラゴン 🐉',
      subjects: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `subject ${i}`, weight: i / 7 })),
    };
    const json = JSON.stringify(request);
    expect(json.length).toBeGreaterThan(10_000);
    const parameters = formatA1111Parameters({
      prompt: request.prompt,
      steps: 20,
      sampler: 'DDIM',
      guidanceScale: 7.5,
      seed: 42,
      width: 24,
      height: 16,
    });
    const img = testImage();
    const png = await encodePng(img, { parameters, 'msp:request': json });
    const text = readPngText(png);
    expect(text['msp:request']).toBe(json);
    expect(JSON.parse(text['msp:request'])).toEqual(request);
    expect(text.parameters).toBe(parameters);
    expect((await decodeImage(png, 'with-text.png')).data).toEqual(img.data);
  });

  it('stores a "__proto__" keyword as a plain own property', async () => {
    const text = Object.fromEntries([['__proto__', 'x']]) as Record<string, string>;
    const result = readPngText(await encodePng(testImage(2, 2), text));
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.keys(result)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).toBe('x');
  });
});

describe('readPngText', () => {
  it('reads zTXt and compressed iTXt written by other tools', async () => {
    const png = await encodePng(testImage(4, 4));
    const ztxt = makeChunk(
      'zTXt',
      bytes('Comment', [0, 0], [...deflateSync(Buffer.from('zipped é', 'latin1'))]),
    );
    const itxt = makeChunk(
      'iTXt',
      bytes(
        'prompt',
        [0, 1, 0],
        'ja',
        [0],
        [...Buffer.from('プロンプト')],
        [0],
        [...deflateSync(Buffer.from('{"1":{"class_type":"KSampler","text":"猫"}}'))],
      ),
    );
    const withText = insertAfterIhdr(png, ztxt, itxt);
    expect(readPngText(withText)).toEqual({
      Comment: 'zipped é',
      prompt: '{"1":{"class_type":"KSampler","text":"猫"}}',
    });
    expect(readPngTextChunks(withText)[1]).toMatchObject({
      type: 'iTXt',
      compressed: true,
      languageTag: 'ja',
      translatedKeyword: 'プロンプト',
    });
  });

  it('lets the last occurrence of a keyword win', async () => {
    const png = insertAfterIhdr(
      await encodePng(testImage(2, 2)),
      makeChunk('tEXt', bytes('k', [0], 'first')),
      makeChunk('tEXt', bytes('k', [0], 'second')),
    );
    expect(readPngText(png)).toEqual({ k: 'second' });
  });

  it('returns an empty record for a PNG without text', async () => {
    expect(readPngText(await encodePng(testImage(2, 2)))).toEqual({});
  });

  it('refuses a chunk with a damaged CRC', async () => {
    const png = await encodePng(testImage(), { parameters: 'a cat' });
    const types = chunkTypes(png);
    expect(types).toContain('tEXt');
    // Flip one byte inside the tEXt chunk's data (after "parameters\0").
    const damaged = png.slice();
    const at = Buffer.from(damaged).indexOf('a cat', 0, 'latin1');
    damaged[at] ^= 0x20;
    expect(() => readPngText(damaged)).toThrow(PngFormatError);
    expect(() => readPngText(damaged)).toThrow(/chunk tEXt at byte \d+ has a bad CRC \(stored 0x[0-9a-f]{8}/);

    // A damaged IDAT (not a text chunk) is refused too.
    const idat = Buffer.from(png).indexOf('IDAT', 0, 'latin1');
    const damagedIdat = png.slice();
    damagedIdat[idat + 10] ^= 0xff;
    expect(() => readPngText(damagedIdat)).toThrow(/chunk IDAT .* bad CRC/);
  });

  it('names the problem for non-PNG, truncated and malformed input', async () => {
    const png = await encodePng(testImage(), { k: 'v' });
    expect(() => readPngText(new TextEncoder().encode('GIF89a......'))).toThrow(
      /not a PNG file: the 8-byte PNG signature is missing/,
    );
    expect(() => readPngText(png.subarray(0, 4))).toThrow(/signature/);
    expect(() => readPngText(png.subarray(0, png.length - 12))).toThrow(/file ends without an IEND chunk/);
    expect(() => readPngText(png.subarray(0, 40))).toThrow(/truncated PNG/);
    expect(() => readPngText(png.subarray(0, png.length - 16))).toThrow(
      /IDAT at byte \d+ declares \d+ data bytes but the file ends early/,
    );

    const noIhdr = Buffer.concat([PNG_SIGNATURE, makeChunk('IEND', new Uint8Array(0))]);
    expect(() => readPngText(noIhdr)).toThrow(/first chunk is IEND, expected IHDR/);

    const base = await encodePng(testImage(2, 2));
    const cases: [Uint8Array, RegExp][] = [
      [makeChunk('tEXt', bytes('no terminator')), /tEXt chunk at byte 33 has no keyword terminator/],
      [makeChunk('tEXt', bytes([0], 'x')), /invalid length 0/],
      [makeChunk('zTXt', bytes('k', [0, 1], [1, 2, 3])), /unknown compression method 1/],
      [makeChunk('zTXt', bytes('k', [0, 0], [1, 2, 3])), /\("k"\) has invalid compressed text/],
      [makeChunk('iTXt', bytes('k', [0, 2, 0], [0, 0], 'x')), /invalid compression flag 2/],
      [makeChunk('iTXt', bytes('k', [0, 0, 0], 'en')), /no language tag terminator/],
      [makeChunk('iTXt', bytes('k', [0, 0, 0], [0, 0], [0xff, 0xfe])), /invalid UTF-8/],
    ];
    for (const [chunk, message] of cases) {
      const bad = insertAfterIhdr(base, chunk);
      expect(() => readPngText(bad)).toThrow(PngFormatError);
      expect(() => readPngText(bad)).toThrow(message);
    }
  });

  it('ignores bytes after IEND', async () => {
    const png = await encodePng(testImage(2, 2), { k: 'v' });
    expect(readPngText(Buffer.concat([png, Buffer.from('trailing junk')]))).toEqual({ k: 'v' });
  });
});

describe('formatA1111Parameters', () => {
  it('produces the AUTOMATIC1111 layout', () => {
    expect(
      formatA1111Parameters({
        prompt: 'a cat',
        negativePrompt: 'blurry',
        steps: 20,
        sampler: 'DDIM',
        guidanceScale: 7.5,
        seed: 42,
        width: 512,
        height: 512,
        model: 'msp-diffusion-v1',
      }),
    ).toBe(
      'a cat\nNegative prompt: blurry\n' +
        'Steps: 20, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: msp-diffusion-v1',
    );
  });

  it('omits empty optional parts and appends extras, quoting values that would break the line', () => {
    expect(
      formatA1111Parameters({
        prompt: 'a knight,\nstanding in the rain',
        negativePrompt: '',
        steps: 30,
        sampler: 'DPM++ 2M Karras',
        guidanceScale: 7,
        seed: 4294967295,
        width: 768,
        height: 512,
        extra: {
          'Denoising strength': 0.75,
          Subjects: 'knight, dragon',
          Note: 'ratio 16:9',
          Version: 'msp 0.1',
        },
      }),
    ).toBe(
      'a knight,\nstanding in the rain\n' +
        'Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 4294967295, Size: 768x512, ' +
        'Denoising strength: 0.75, Subjects: "knight, dragon", Note: "ratio 16:9", Version: msp 0.1',
    );
  });

  it('rejects values that cannot be represented', () => {
    const base = { prompt: 'p', steps: 20, sampler: 'DDIM', guidanceScale: 7, seed: 1, width: 8, height: 8 };
    expect(() => formatA1111Parameters({ ...base, steps: 2.5 })).toThrow(/steps must be an integer/);
    expect(() => formatA1111Parameters({ ...base, guidanceScale: NaN })).toThrow(/finite/);
    expect(() => formatA1111Parameters({ ...base, extra: { 'a:b': 1 } })).toThrow(/parameter name/);
    expect(() => formatA1111Parameters({ ...base, extra: { x: Infinity } })).toThrow(/finite/);
  });
});
