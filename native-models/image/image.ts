/**
 * Image IO for the diffusion pipelines: decoding (any format sharp reads), resizing, and conversion
 * between 8-bit RGB pixels and NCHW float tensors in [-1, 1].
 *
 * All codec work is delegated to sharp; this module only shapes its raw output.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';

/**
 * 8-bit sRGB image, row-major, 3 bytes per pixel (R, G, B), no padding: `data.length === width * height * 3`.
 *
 * `channels` is optional and, when present, always 3. It exists so that an {@link RgbaImage} (whose
 * `channels` is 4) is not accidentally accepted where RGB is expected.
 */
export interface RgbImage {
  width: number;
  height: number;
  /** RGB, row-major, 3 bytes per pixel. */
  data: Uint8Array;
  channels?: 3;
}

/** 8-bit sRGB image with straight (not premultiplied) alpha, row-major, 4 bytes per pixel (R, G, B, A). */
export interface RgbaImage {
  width: number;
  height: number;
  /** RGBA, row-major, 4 bytes per pixel, straight alpha. */
  data: Uint8Array;
  channels: 4;
}

export type RgbTriplet = readonly [number, number, number];

export interface DecodeOptions {
  /**
   * Colour that transparent pixels are composited onto. Defaults to white (`[255, 255, 255]`), which suits
   * photos and drawings; pass black or use {@link decodeImageRgba} for masks and segment maps.
   */
  background?: RgbTriplet;
}

export type ResizeKernel = 'lanczos3' | 'nearest' | 'linear';

export interface ResizeOptions {
  /** Interpolation kernel. `nearest` never invents new colours (use it for masks/segment maps). Default `lanczos3`. */
  kernel?: ResizeKernel;
}

/** Thrown when bytes cannot be decoded as an image. The message names the source (file name or label). */
export class ImageDecodeError extends Error {
  /** The file name or label passed to the decoder. */
  readonly source: string;
  /** The underlying decoder message, if any. */
  readonly detail: string | undefined;

  constructor(source: string, cause?: unknown) {
    super(`${source} is not a readable image (unsupported or corrupt file)`, { cause });
    this.name = 'ImageDecodeError';
    this.source = source;
    this.detail = cause instanceof Error ? cause.message : undefined;
  }
}

const DEFAULT_BACKGROUND: RgbTriplet = [255, 255, 255];
const DEFAULT_SOURCE = 'input';

/**
 * Decodes PNG, JPEG, WebP, GIF (first frame), TIFF, AVIF, ... into 8-bit sRGB.
 *
 * - EXIF orientation is applied, so width/height are the displayed dimensions.
 * - Embedded ICC profiles are converted to sRGB; 16-bit input is reduced to 8 bits; greyscale is expanded.
 * - Alpha is flattened onto `options.background` (white by default).
 *
 * @param source name used in error messages (usually the file name).
 * @throws ImageDecodeError for corrupt, truncated or unsupported data.
 */
export async function decodeImage(
  bytes: Uint8Array,
  source: string = DEFAULT_SOURCE,
  options: DecodeOptions = {},
): Promise<RgbImage> {
  assertBytes(bytes, source);
  const [r, g, b] = checkBackground(options.background ?? DEFAULT_BACKGROUND);
  const { data, info } = await runDecoder(source, () =>
    sharp(bytes, { autoOrient: true, failOn: 'error' })
      .flatten({ background: { r, g, b } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }),
  );
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new ImageDecodeError(source, new Error(`decoder produced ${info.channels} channels, expected 3`));
  }
  return { width: info.width, height: info.height, data: asPlainBytes(data) };
}

/**
 * Decodes like {@link decodeImage} but keeps transparency: returns 8-bit sRGB + straight alpha.
 * Images without alpha get an opaque alpha channel (255). Colour values are not altered by flattening.
 *
 * @throws ImageDecodeError for corrupt, truncated or unsupported data.
 */
export async function decodeImageRgba(
  bytes: Uint8Array,
  source: string = DEFAULT_SOURCE,
): Promise<RgbaImage> {
  assertBytes(bytes, source);
  const { data, info } = await runDecoder(source, () =>
    sharp(bytes, { autoOrient: true, failOn: 'error' })
      .toColourspace('srgb')
      .ensureAlpha(1)
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }),
  );
  if (info.channels !== 4 || data.length !== info.width * info.height * 4) {
    throw new ImageDecodeError(source, new Error(`decoder produced ${info.channels} channels, expected 4`));
  }
  return { width: info.width, height: info.height, data: asPlainBytes(data), channels: 4 };
}

/**
 * Reads and decodes an image file (see {@link decodeImage}). File-system errors (ENOENT, EACCES, ...)
 * propagate unchanged; undecodable contents throw {@link ImageDecodeError} naming `path`.
 */
export async function readImageFile(path: string, options: DecodeOptions = {}): Promise<RgbImage> {
  const bytes = await readFile(path);
  return decodeImage(bytes, path, options);
}

/** Reads and decodes an image file keeping alpha (see {@link decodeImageRgba}). */
export async function readImageFileRgba(path: string): Promise<RgbaImage> {
  const bytes = await readFile(path);
  return decodeImageRgba(bytes, path);
}

/**
 * Resizes to exactly `width` x `height` (aspect ratio is not preserved; crop/pad beforehand if needed).
 * RGBA images are resized with premultiplied alpha by sharp, so fully transparent pixels come back with
 * colour (0, 0, 0). Returns a new image; the input is not modified.
 */
export async function resizeImage(
  img: RgbaImage,
  width: number,
  height: number,
  options?: ResizeOptions,
): Promise<RgbaImage>;
export async function resizeImage(
  img: RgbImage,
  width: number,
  height: number,
  options?: ResizeOptions,
): Promise<RgbImage>;
export async function resizeImage(
  img: RgbImage | RgbaImage,
  width: number,
  height: number,
  options: ResizeOptions = {},
): Promise<RgbImage | RgbaImage> {
  const channels = imageChannels(img);
  checkDimension('width', width);
  checkDimension('height', height);
  const kernel = options.kernel ?? 'lanczos3';
  if (kernel !== 'lanczos3' && kernel !== 'nearest' && kernel !== 'linear') {
    throw new RangeError(`Unknown resize kernel "${String(kernel)}"`);
  }
  let out: Uint8Array;
  if (width === img.width && height === img.height) {
    out = new Uint8Array(img.data);
  } else {
    const { data, info } = await sharp(img.data, {
      raw: { width: img.width, height: img.height, channels },
    })
      .resize(width, height, { fit: 'fill', kernel })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height || info.channels !== channels) {
      throw new Error(
        `resize produced ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x${channels}`,
      );
    }
    out = asPlainBytes(data);
  }
  return channels === 4 ? { width, height, data: out, channels: 4 } : { width, height, data: out };
}

/**
 * RGB pixels -> NCHW float tensor data of shape [1, 3, H, W], each value `byte / 127.5 - 1` in [-1, 1]
 * (0 -> -1, 255 -> 1). This is the VAE-encoder input convention.
 */
export function imageToTensor(img: RgbImage): Float32Array {
  if (imageChannels(img) !== 3) throw new TypeError('imageToTensor expects an RGB image (3 channels)');
  const { width, height, data } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    out[p] = data[i] / 127.5 - 1;
    out[plane + p] = data[i + 1] / 127.5 - 1;
    out[2 * plane + p] = data[i + 2] / 127.5 - 1;
  }
  return out;
}

/**
 * NCHW float tensor data in [-1, 1] (shape [N, 3, H, W]) -> RGB pixels of batch item `batchIndex`.
 *
 * Each value maps to `Math.round(clamp((x + 1) * 127.5, 0, 255))`: clamping happens before rounding and
 * exact halves round up (e.g. 127.5 -> 128). NaN maps to 0. This inverts {@link imageToTensor} exactly.
 */
export function tensorToImage(data: Float32Array, width: number, height: number, batchIndex = 0): RgbImage {
  checkDimension('width', width);
  checkDimension('height', height);
  const plane = width * height;
  const itemSize = 3 * plane;
  if (!Number.isInteger(batchIndex) || batchIndex < 0) {
    throw new RangeError(`batchIndex must be a non-negative integer, got ${batchIndex}`);
  }
  if (data.length % itemSize !== 0) {
    throw new RangeError(
      `tensor has ${data.length} values, which is not a multiple of 3x${height}x${width} = ${itemSize}`,
    );
  }
  const batch = data.length / itemSize;
  if (batchIndex >= batch) {
    throw new RangeError(`batchIndex ${batchIndex} is out of range for a batch of ${batch}`);
  }
  const base = batchIndex * itemSize;
  const out = new Uint8Array(itemSize);
  for (let p = 0, o = 0; p < plane; p++, o += 3) {
    out[o] = toByte(data[base + p]);
    out[o + 1] = toByte(data[base + plane + p]);
    out[o + 2] = toByte(data[base + 2 * plane + p]);
  }
  return { width, height, data: out };
}

function toByte(x: number): number {
  const v = (x + 1) * 127.5;
  if (!(v > 0)) return 0; // also catches NaN
  if (v >= 255) return 255;
  return Math.round(v);
}

/**
 * Channel count of an image (3 or 4), after checking that dimensions and buffer length agree.
 * @internal shared with png.ts
 */
export function imageChannels(img: RgbImage | RgbaImage): 3 | 4 {
  checkDimension('width', img.width);
  checkDimension('height', img.height);
  const channels = img.channels === 4 ? 4 : 3;
  const expected = img.width * img.height * channels;
  if (!(img.data instanceof Uint8Array) || img.data.length !== expected) {
    const got = img.data instanceof Uint8Array ? `${img.data.length} bytes` : 'not a Uint8Array';
    throw new RangeError(
      `${channels === 4 ? 'RGBA' : 'RGB'} image ${img.width}x${img.height} needs ${expected} bytes of data, got ${got}`,
    );
  }
  return channels;
}

function checkDimension(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}

function checkBackground(bg: RgbTriplet): RgbTriplet {
  if (!Array.isArray(bg) || bg.length !== 3 || !bg.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
    throw new RangeError(`background must be [r, g, b] with integers 0..255, got ${JSON.stringify(bg)}`);
  }
  return bg;
}

function assertBytes(bytes: Uint8Array, source: string): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${source}: image bytes must be a Uint8Array`);
  }
}

async function runDecoder<T>(source: string, run: () => Promise<T>): Promise<T> {
  try {
    // sharp throws synchronously for some inputs (e.g. empty buffers), asynchronously for most.
    return await run();
  } catch (err) {
    throw new ImageDecodeError(source, err);
  }
}

/**
 * A plain Uint8Array (not a Buffer) that owns its whole ArrayBuffer, so `data.buffer` is safe to hand to
 * tensor constructors. Copies only when the Buffer is a slice of a larger (e.g. pooled) allocation.
 */
function asPlainBytes(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}
