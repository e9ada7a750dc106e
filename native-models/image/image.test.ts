import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImageDecodeError,
  decodeImage,
  decodeImageRgba,
  imageToTensor,
  readImageFile,
  resizeImage,
  tensorToImage,
} from './image.js';
import type { RgbImage, RgbaImage } from './image.js';
import { encodePng } from './png.js';

/** Deterministic pseudo-random bytes (xorshift32) so failures are reproducible. */
function randomBytes(n: number, seed = 0x12345678): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

function randomRgb(width: number, height: number, seed?: number): RgbImage {
  return { width, height, data: randomBytes(width * height * 3, seed) };
}

function solidRgb(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return data;
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(i, i + 3));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msp-image-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('decodeImage', () => {
  it('round-trips random RGB pixels exactly through PNG', async () => {
    const img = randomRgb(37, 23);
    const png = await encodePng(img);
    const back = await decodeImage(png, 'random.png');
    expect(back.width).toBe(37);
    expect(back.height).toBe(23);
    expect(back.data).toEqual(img.data);
    expect(Object.getPrototypeOf(back.data)).toBe(Uint8Array.prototype);
  });

  it('decodes PNGs written by sharp itself (not only our encoder)', async () => {
    const img = randomRgb(16, 9, 7);
    const png = await sharp(img.data, { raw: { width: 16, height: 9, channels: 3 } })
      .png()
      .toBuffer();
    expect((await decodeImage(png)).data).toEqual(img.data);
  });

  it('decodes JPEG', async () => {
    const jpeg = await sharp(solidRgb(32, 16, [200, 40, 90]), { raw: { width: 32, height: 16, channels: 3 } })
      .jpeg({ quality: 95 })
      .toBuffer();
    const img = await decodeImage(jpeg, 'photo.jpg');
    expect([img.width, img.height]).toEqual([32, 16]);
    expect(img.data.length).toBe(32 * 16 * 3);
    const [r, g, b] = pixel(img, 10, 10);
    expect(Math.abs(r - 200)).toBeLessThanOrEqual(4);
    expect(Math.abs(g - 40)).toBeLessThanOrEqual(4);
    expect(Math.abs(b - 90)).toBeLessThanOrEqual(4);
  });

  it('decodes WebP (lossless) exactly', async () => {
    const img = randomRgb(12, 10, 99);
    const webp = await sharp(img.data, { raw: { width: 12, height: 10, channels: 3 } })
      .webp({ lossless: true })
      .toBuffer();
    expect((await decodeImage(webp, 'x.webp')).data).toEqual(img.data);
  });

  it('applies EXIF orientation (orientation 6 = rotate 90° clockwise)', async () => {
    // 16x8: left half red, right half blue.
    const w = 16;
    const h = 8;
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    }
    const jpeg = await sharp(data, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);

    const img = await decodeImage(jpeg, 'rotated.jpg');
    expect([img.width, img.height]).toEqual([8, 16]);
    // After a clockwise quarter turn the former left half (red) is on top.
    const top = pixel(img, 4, 2);
    const bottom = pixel(img, 4, 13);
    expect(top[0]).toBeGreaterThan(200);
    expect(top[2]).toBeLessThan(60);
    expect(bottom[2]).toBeGreaterThan(200);
    expect(bottom[0]).toBeLessThan(60);

    const rgba = await decodeImageRgba(jpeg, 'rotated.jpg');
    expect([rgba.width, rgba.height]).toEqual([8, 16]);
  });

  it('flattens alpha onto white by default, or onto the given background', async () => {
    const rgba = new Uint8Array([10, 20, 30, 0, 10, 20, 30, 255]);
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    expect(Array.from((await decodeImage(png)).data)).toEqual([255, 255, 255, 10, 20, 30]);
    expect(Array.from((await decodeImage(png, 'mask.png', { background: [0, 0, 0] })).data)).toEqual([
      0, 0, 0, 10, 20, 30,
    ]);
  });

  it('expands greyscale and 16-bit input to 8-bit RGB', async () => {
    const grey = new Uint8Array([0, 100, 200, 255]);
    const png = await sharp(grey, { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer();
    const img = await decodeImage(png);
    expect(Array.from(img.data)).toEqual([0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);

    const src = randomRgb(5, 4, 3);
    const png16 = await sharp(src.data, { raw: { width: 5, height: 4, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    expect((await decodeImage(png16)).data).toEqual(src.data);
  });

  it('throws ImageDecodeError naming the source for corrupt or unsupported bytes', async () => {
    const garbage = new TextEncoder().encode('this is not an image at all');
    const err = await decodeImage(garbage, 'scaffold.png').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as ImageDecodeError).message).toBe(
      'scaffold.png is not a readable image (unsupported or corrupt file)',
    );
    expect((err as ImageDecodeError).source).toBe('scaffold.png');
    expect((err as ImageDecodeError).cause).toBeInstanceOf(Error);

    await expect(decodeImage(new Uint8Array(0), 'empty.png')).rejects.toThrow(
      'empty.png is not a readable image',
    );
    await expect(decodeImageRgba(garbage, 'seg.png')).rejects.toBeInstanceOf(ImageDecodeError);
  });

  it('refuses truncated files', async () => {
    const png = await encodePng(randomRgb(64, 64));
    const truncated = png.subarray(0, Math.floor(png.length / 2));
    await expect(decodeImage(truncated, 'half.png')).rejects.toThrow(
      'half.png is not a readable image (unsupported or corrupt file)',
    );
  });

  it('validates the background option', async () => {
    const png = await encodePng(randomRgb(2, 2));
    await expect(
      decodeImage(png, 'x.png', { background: [256, 0, 0] as unknown as [number, number, number] }),
    ).rejects.toThrow(RangeError);
  });
});

describe('decodeImageRgba', () => {
  it('keeps alpha and colour untouched', async () => {
    const rgba = randomBytes(6 * 5 * 4, 42);
    const png = await sharp(rgba, { raw: { width: 6, height: 5, channels: 4 } })
      .png()
      .toBuffer();
    const img = await decodeImageRgba(png, 'seg.png');
    expect(img.channels).toBe(4);
    expect([img.width, img.height]).toEqual([6, 5]);
    expect(img.data).toEqual(rgba);
  });

  it('adds opaque alpha to RGB input', async () => {
    const png = await encodePng({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) });
    expect(Array.from((await decodeImageRgba(png)).data)).toEqual([1, 2, 3, 255]);
  });
});

describe('readImageFile', () => {
  it('reads and decodes a file', async () => {
    const img = randomRgb(9, 7, 5);
    const path = join(dir, 'in.png');
    await writeFile(path, await encodePng(img));
    expect(await readImageFile(path)).toEqual({ width: 9, height: 7, data: img.data });
  });

  it('names the file in decode errors and passes fs errors through', async () => {
    const path = join(dir, 'scaffold.png');
    await writeFile(path, 'nope');
    await expect(readImageFile(path)).rejects.toThrow(
      `${path} is not a readable image (unsupported or corrupt file)`,
    );
    await expect(readImageFile(join(dir, 'missing.png'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('resizeImage', () => {
  it('nearest upscaling by 2 duplicates pixels exactly', async () => {
    const img = randomRgb(10, 6);
    const out = await resizeImage(img, 20, 12, { kernel: 'nearest' });
    expect([out.width, out.height, out.data.length]).toEqual([20, 12, 20 * 12 * 3]);
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 20; x++) expect(pixel(out, x, y)).toEqual(pixel(img, x >> 1, y >> 1));
    }
  });

  it('nearest downscaling only uses existing colours', async () => {
    const img = randomRgb(40, 40, 11);
    const colours = new Set<string>();
    for (let i = 0; i < 40 * 40; i++) colours.add(img.data.subarray(i * 3, i * 3 + 3).join());
    const out = await resizeImage(img, 13, 7, { kernel: 'nearest' });
    for (let i = 0; i < 13 * 7; i++)
      expect(colours.has(out.data.subarray(i * 3, i * 3 + 3).join())).toBe(true);
  });

  it('lanczos3 (default) and linear keep a flat colour flat', async () => {
    const img: RgbImage = { width: 30, height: 20, data: solidRgb(30, 20, [12, 130, 250]) };
    for (const out of [await resizeImage(img, 64, 48), await resizeImage(img, 7, 5, { kernel: 'linear' })]) {
      for (let i = 0; i < out.width * out.height; i++) {
        expect(Array.from(out.data.subarray(i * 3, i * 3 + 3))).toEqual([12, 130, 250]);
      }
    }
  });

  it('resizes RGBA images and returns RGBA', async () => {
    const img: RgbaImage = { width: 4, height: 4, data: randomBytes(64, 9).fill(255, 0, 64), channels: 4 };
    const out = await resizeImage(img, 8, 2, { kernel: 'nearest' });
    expect(out.channels).toBe(4);
    expect(out.data.length).toBe(8 * 2 * 4);
  });

  it('returns a copy when the size is unchanged, and validates arguments', async () => {
    const img = randomRgb(5, 5);
    const out = await resizeImage(img, 5, 5);
    expect(out.data).toEqual(img.data);
    expect(out.data).not.toBe(img.data);
    await expect(resizeImage(img, 0, 5)).rejects.toThrow(RangeError);
    await expect(resizeImage(img, 5.5, 5)).rejects.toThrow(RangeError);
    await expect(resizeImage({ width: 5, height: 5, data: new Uint8Array(10) }, 6, 6)).rejects.toThrow(
      /needs 75 bytes/,
    );
  });
});

describe('tensor conversion', () => {
  it('image -> tensor -> image is the identity', () => {
    const img = randomRgb(31, 17);
    const back = tensorToImage(imageToTensor(img), 31, 17);
    expect(back.data).toEqual(img.data);
  });

  it('every byte value survives the round trip', () => {
    const data = new Uint8Array(256 * 3);
    for (let v = 0; v < 256; v++) data.fill(v, v * 3, v * 3 + 3);
    const img = { width: 256, height: 1, data };
    expect(tensorToImage(imageToTensor(img), 256, 1).data).toEqual(data);
  });

  it('uses NCHW layout scaled to [-1, 1]', () => {
    // 2x1 image: pixel0 = (0, 255, 51), pixel1 = (255, 0, 204)
    const t = imageToTensor({ width: 2, height: 1, data: new Uint8Array([0, 255, 51, 255, 0, 204]) });
    expect(t).toBeInstanceOf(Float32Array);
    expect(t.length).toBe(6);
    expect(Array.from(t.subarray(0, 2))).toEqual([-1, 1]); // R plane
    expect(Array.from(t.subarray(2, 4))).toEqual([1, -1]); // G plane
    expect(t[4]).toBeCloseTo(51 / 127.5 - 1, 6); // B plane
    expect(t[5]).toBeCloseTo(204 / 127.5 - 1, 6);
  });

  it('clamps, rounds halves up and maps NaN to 0', () => {
    // 6 pixels, R plane carries the interesting values; G and B planes are 0 -> 128 after rounding 127.5.
    const r = [-3, 3, 0, 0.5, NaN, 1];
    const t = new Float32Array(18);
    t.set(r, 0);
    const img = tensorToImage(t, 6, 1);
    const reds = [0, 1, 2, 3, 4, 5].map((i) => img.data[i * 3]);
    expect(reds).toEqual([0, 255, 128, 191, 0, 255]); // 0.5 -> 191.25 -> 191
    expect(img.data[1]).toBe(128); // G of pixel 0: (0 + 1) * 127.5 = 127.5 rounds up
  });

  it('selects a batch item and validates the shape', () => {
    const a = randomRgb(4, 3, 1);
    const b = randomRgb(4, 3, 2);
    const batch = new Float32Array(2 * 3 * 4 * 3);
    batch.set(imageToTensor(a), 0);
    batch.set(imageToTensor(b), 3 * 4 * 3);
    expect(tensorToImage(batch, 4, 3).data).toEqual(a.data);
    expect(tensorToImage(batch, 4, 3, 1).data).toEqual(b.data);
    expect(() => tensorToImage(batch, 4, 3, 2)).toThrow(/out of range/);
    expect(() => tensorToImage(batch, 5, 3)).toThrow(/not a multiple/);
    expect(() => tensorToImage(batch, 4, 3, -1)).toThrow(RangeError);
  });

  it('rejects RGBA input and mismatched buffers', () => {
    const rgba = { width: 1, height: 1, data: new Uint8Array(4), channels: 4 } as const;
    // @ts-expect-error RGBA is deliberately not assignable to RgbImage
    expect(() => imageToTensor(rgba)).toThrow(TypeError);
    expect(() => imageToTensor({ width: 2, height: 2, data: new Uint8Array(3) })).toThrow(/needs 12 bytes/);
  });
});
