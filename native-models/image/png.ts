/**
 * PNG output with text metadata, and reading text metadata back.
 *
 * Pixels are compressed by sharp; this module only splices text chunks (tEXt / iTXt) into sharp's output
 * and parses text chunks (tEXt / zTXt / iTXt) out of any PNG. Chunk layout follows the PNG specification
 * (ISO/IEC 15948, W3C PNG 3rd edition).
 */
import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { crc32, crc32Finish, crc32Update } from './crc32.js';
import { imageChannels } from './image.js';
import type { RgbImage, RgbaImage } from './image.js';

/** The 8-byte PNG file signature. */
export const PNG_SIGNATURE: Uint8Array = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/** zlib compression level used for pixel data. Fixed so that output bytes are reproducible. */
export const PNG_COMPRESSION_LEVEL = 6;

/** Upper bound for one decompressed zTXt/iTXt value, to refuse decompression bombs. */
const MAX_INFLATED_TEXT_BYTES = 64 * 1024 * 1024;
const MAX_CHUNK_LENGTH = 0x7fffffff;

/** Thrown by {@link readPngText} when the bytes are not a well-formed PNG. The message says what is wrong. */
export class PngFormatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PngFormatError';
  }
}

/** Thrown by {@link encodePng} when a text keyword or value cannot be stored in a PNG text chunk. */
export class PngTextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PngTextError';
  }
}

/** One text chunk as found in a file. */
export interface PngTextChunk {
  type: 'tEXt' | 'zTXt' | 'iTXt';
  keyword: string;
  text: string;
  /** True for zTXt and for iTXt with the compression flag set. */
  compressed: boolean;
  /** iTXt only: RFC 3066 language tag, may be empty. */
  languageTag?: string;
  /** iTXt only: keyword translated into the language, may be empty. */
  translatedKeyword?: string;
}

/**
 * Encodes an RGB or RGBA image as PNG and stores `text` as text chunks placed before the first IDAT chunk.
 *
 * - Values made only of printable Latin-1 characters and line feeds go into `tEXt` chunks; anything else
 *   (emoji, CJK, tabs, other control characters) goes into an uncompressed `iTXt` chunk as UTF-8.
 * - Keywords must be valid PNG keywords: 1-79 printable Latin-1 characters (codes 32-126, 161-255), no
 *   leading, trailing or consecutive spaces. Invalid keywords throw {@link PngTextError}.
 * - Values must not contain NUL characters or unpaired UTF-16 surrogates.
 * - Chunks are written in the object's property order. Output is byte-identical for identical input
 *   (fixed compression level, no adaptive filtering, no palette quantisation, no timestamps).
 */
export async function encodePng(
  img: RgbImage | RgbaImage,
  text?: Record<string, string>,
): Promise<Uint8Array> {
  const channels = imageChannels(img);
  // Validate text before doing any pixel work.
  const textChunks = text ? Object.entries(text).map(([k, v]) => buildTextChunk(k, v)) : [];

  const encoded = await sharp(img.data, { raw: { width: img.width, height: img.height, channels } })
    .png({
      compressionLevel: PNG_COMPRESSION_LEVEL,
      adaptiveFiltering: false,
      palette: false,
      progressive: false,
    })
    .toBuffer();
  const pixels = new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  if (textChunks.length === 0) return new Uint8Array(pixels);

  const insertAt = findChunkOffset(pixels, 'IDAT');
  if (insertAt < 0) throw new Error('PNG encoder output has no IDAT chunk');
  const extra = textChunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(pixels.length + extra);
  out.set(pixels.subarray(0, insertAt), 0);
  let pos = insertAt;
  for (const chunk of textChunks) {
    out.set(chunk, pos);
    pos += chunk.length;
  }
  out.set(pixels.subarray(insertAt), pos);
  return out;
}

/**
 * Reads all text metadata (tEXt, zTXt, iTXt, compressed or not) into a keyword -> text record.
 * If a keyword occurs more than once, the last occurrence wins (use {@link readPngTextChunks} to see all).
 *
 * @throws PngFormatError if the signature is wrong, a chunk is truncated or has a bad CRC, IHDR is not first,
 *   IEND is missing, or a text chunk is malformed.
 */
export function readPngText(bytes: Uint8Array): Record<string, string> {
  // Object.fromEntries defines own properties, so a keyword like "__proto__" is stored safely.
  return Object.fromEntries(readPngTextChunks(bytes).map((c) => [c.keyword, c.text]));
}

/** Like {@link readPngText} but returns every text chunk in file order, with its details. */
export function readPngTextChunks(bytes: Uint8Array): PngTextChunk[] {
  const result: PngTextChunk[] = [];
  for (const chunk of iterateChunks(bytes)) {
    if (chunk.type === 'tEXt' || chunk.type === 'zTXt' || chunk.type === 'iTXt') {
      result.push(parseTextChunk(chunk.type, chunk.data, chunk.offset));
    }
  }
  return result;
}

/** Options for {@link formatA1111Parameters}. */
export interface A1111Parameters {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  sampler: string;
  guidanceScale: number;
  seed: number;
  width: number;
  height: number;
  model?: string;
  /** Extra `Key: value` pairs appended after the standard fields, in property order. */
  extra?: Record<string, string | number>;
}

/**
 * Formats generation settings the way AUTOMATIC1111's web UI stores them in the `parameters` text chunk:
 *
 * ```text
 * <prompt>
 * Negative prompt: <negative prompt>
 * Steps: 20, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: sd15, <extra key>: <value>
 * ```
 *
 * The negative-prompt line is omitted when the negative prompt is empty or absent, and `Model` when absent.
 * Numbers are written in their shortest JavaScript form (`7` not `7.0`). Like A1111, a value containing a
 * comma, colon or line break is written as a JSON string literal so that the line stays parseable.
 * Extra keys must not contain commas, colons or line breaks.
 */
export function formatA1111Parameters(p: A1111Parameters): string {
  const fields: string[] = [
    `Steps: ${formatInteger('steps', p.steps)}`,
    `Sampler: ${quoteA1111Value(p.sampler)}`,
    `CFG scale: ${formatNumber('guidanceScale', p.guidanceScale)}`,
    `Seed: ${formatInteger('seed', p.seed)}`,
    `Size: ${formatInteger('width', p.width)}x${formatInteger('height', p.height)}`,
  ];
  if (p.model !== undefined) fields.push(`Model: ${quoteA1111Value(p.model)}`);
  for (const [key, value] of Object.entries(p.extra ?? {})) {
    if (key.trim() === '' || /[,:\r\n]/.test(key)) {
      throw new RangeError(
        `A1111 parameter name ${JSON.stringify(key)} must be non-empty without , : or newlines`,
      );
    }
    const text = typeof value === 'number' ? formatNumber(key, value) : quoteA1111Value(value);
    fields.push(`${key}: ${text}`);
  }
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  lines.push(fields.join(', '));
  return lines.join('\n');
}

function quoteA1111Value(value: string): string {
  return /[,:\n]/.test(value) ? JSON.stringify(value) : value;
}

function formatInteger(name: string, value: number): string {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${name} must be an integer, got ${value}`);
  return String(value);
}

function formatNumber(name: string, value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a finite number, got ${value}`);
  return String(value);
}

// ---------------------------------------------------------------------------------------------------------
// Writing text chunks

/** Printable Latin-1 plus line feed: what tEXt text may contain with a defined meaning. */
function isTextLatin1(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0a || (c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xff)) continue;
    return false;
  }
  return true;
}

/** Returns a reason why `keyword` is not a valid PNG keyword, or undefined if it is valid. */
function keywordProblem(keyword: string): string | undefined {
  if (keyword.length === 0) return 'it is empty';
  if (keyword.length > 79) return `it is ${keyword.length} characters long (maximum 79)`;
  for (let i = 0; i < keyword.length; i++) {
    const c = keyword.charCodeAt(i);
    if (!((c >= 0x20 && c <= 0x7e) || (c >= 0xa1 && c <= 0xff))) {
      const hex = c.toString(16).toUpperCase().padStart(4, '0');
      return `character U+${hex} at position ${i} is not a printable Latin-1 character`;
    }
  }
  if (keyword.startsWith(' ') || keyword.endsWith(' ')) return 'it has a leading or trailing space';
  if (keyword.includes('  ')) return 'it contains consecutive spaces';
  return undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function buildTextChunk(keyword: string, value: string): Uint8Array {
  const problem = keywordProblem(keyword);
  if (problem !== undefined) {
    throw new PngTextError(`PNG text keyword ${JSON.stringify(keyword)} is invalid: ${problem}`);
  }
  if (typeof value !== 'string') {
    throw new PngTextError(`PNG text value for "${keyword}" must be a string, got ${typeof value}`);
  }
  if (value.includes('\0')) {
    throw new PngTextError(`PNG text value for "${keyword}" contains a NUL character`);
  }
  if (LONE_SURROGATE.test(value)) {
    throw new PngTextError(`PNG text value for "${keyword}" contains an unpaired UTF-16 surrogate`);
  }
  const key = Buffer.from(keyword, 'latin1');
  let data: Uint8Array;
  let type: string;
  if (isTextLatin1(value)) {
    type = 'tEXt';
    data = concat([key, Uint8Array.of(0), Buffer.from(value, 'latin1')]);
  } else {
    type = 'iTXt';
    // keyword \0, compression flag 0, compression method 0, empty language tag \0, empty translated keyword \0
    data = concat([key, Uint8Array.of(0, 0, 0, 0, 0), Buffer.from(value, 'utf8')]);
  }
  if (data.length > MAX_CHUNK_LENGTH) {
    throw new PngTextError(`PNG text value for "${keyword}" is too large for a chunk`);
  }
  return buildChunk(type, data);
}

function buildChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  const typeBytes = Buffer.from(type, 'latin1');
  out.set(typeBytes, 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(typeBytes, data));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Byte offset of the first chunk of `type` in a PNG we produced ourselves, or -1. */
function findChunkOffset(png: Uint8Array, type: string): number {
  for (const chunk of iterateChunks(png)) {
    if (chunk.type === type) return chunk.offset;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------------
// Reading chunks

interface RawChunk {
  type: string;
  /** Offset of the chunk's length field in the file. */
  offset: number;
  data: Uint8Array;
}

/** Walks the chunks from IHDR to IEND inclusive, validating structure and CRCs. */
function* iterateChunks(bytes: Uint8Array): Generator<RawChunk> {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('PNG bytes must be a Uint8Array');
  if (bytes.length < PNG_SIGNATURE.length || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    throw new PngFormatError('not a PNG file: the 8-byte PNG signature is missing');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = PNG_SIGNATURE.length;
  let first = true;
  for (;;) {
    if (offset + 12 > bytes.length) {
      throw new PngFormatError(
        offset === bytes.length
          ? 'truncated PNG: file ends without an IEND chunk'
          : `truncated PNG: incomplete chunk header at byte ${offset}`,
      );
    }
    const length = view.getUint32(offset);
    const typeBytes = bytes.subarray(offset + 4, offset + 8);
    if (!typeBytes.every((b) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a))) {
      throw new PngFormatError(`corrupt PNG: invalid chunk type bytes at byte ${offset + 4}`);
    }
    const type = Buffer.from(typeBytes).toString('latin1');
    if (length > MAX_CHUNK_LENGTH) {
      throw new PngFormatError(
        `corrupt PNG: chunk ${type} at byte ${offset} declares invalid length ${length}`,
      );
    }
    const dataEnd = offset + 8 + length;
    if (dataEnd + 4 > bytes.length) {
      throw new PngFormatError(
        `truncated PNG: chunk ${type} at byte ${offset} declares ${length} data bytes but the file ends early`,
      );
    }
    if (first && type !== 'IHDR') {
      throw new PngFormatError(`corrupt PNG: first chunk is ${type}, expected IHDR`);
    }
    first = false;
    const data = bytes.subarray(offset + 8, dataEnd);
    const stored = view.getUint32(dataEnd);
    const computed = crc32Finish(crc32Update(crc32Update(0xffffffff, typeBytes), data));
    if (stored !== computed) {
      throw new PngFormatError(
        `corrupt PNG: chunk ${type} at byte ${offset} has a bad CRC ` +
          `(stored 0x${hex32(stored)}, computed 0x${hex32(computed)})`,
      );
    }
    yield { type, offset, data };
    if (type === 'IEND') return;
    offset = dataEnd + 4;
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function parseTextChunk(type: 'tEXt' | 'zTXt' | 'iTXt', data: Uint8Array, offset: number): PngTextChunk {
  const where = `${type} chunk at byte ${offset}`;
  const keywordEnd = data.indexOf(0);
  if (keywordEnd < 0) throw new PngFormatError(`corrupt PNG: ${where} has no keyword terminator`);
  if (keywordEnd === 0 || keywordEnd > 79) {
    throw new PngFormatError(`corrupt PNG: ${where} has a keyword of invalid length ${keywordEnd}`);
  }
  const keyword = latin1(data.subarray(0, keywordEnd));

  if (type === 'tEXt') {
    return { type, keyword, text: latin1(data.subarray(keywordEnd + 1)), compressed: false };
  }

  if (type === 'zTXt') {
    if (keywordEnd + 1 >= data.length) {
      throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") is missing its compression method`);
    }
    const method = data[keywordEnd + 1];
    if (method !== 0) {
      throw new PngFormatError(
        `corrupt PNG: ${where} ("${keyword}") uses unknown compression method ${method}`,
      );
    }
    const text = latin1(inflate(data.subarray(keywordEnd + 2), where, keyword));
    return { type, keyword, text, compressed: true };
  }

  // iTXt: keyword \0 flag method language \0 translated-keyword \0 text
  if (keywordEnd + 3 > data.length) {
    throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") is too short`);
  }
  const flag = data[keywordEnd + 1];
  const method = data[keywordEnd + 2];
  if (flag !== 0 && flag !== 1) {
    throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") has invalid compression flag ${flag}`);
  }
  if (flag === 1 && method !== 0) {
    throw new PngFormatError(
      `corrupt PNG: ${where} ("${keyword}") uses unknown compression method ${method}`,
    );
  }
  const langStart = keywordEnd + 3;
  const langEnd = data.indexOf(0, langStart);
  if (langEnd < 0)
    throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") has no language tag terminator`);
  const transEnd = data.indexOf(0, langEnd + 1);
  if (transEnd < 0) {
    throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") has no translated keyword terminator`);
  }
  const languageTag = latin1(data.subarray(langStart, langEnd));
  const translatedKeyword = utf8(data.subarray(langEnd + 1, transEnd), where, keyword);
  const body = data.subarray(transEnd + 1);
  const text = utf8(flag === 1 ? inflate(body, where, keyword) : body, where, keyword);
  return { type, keyword, text, compressed: flag === 1, languageTag, translatedKeyword };
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function utf8(bytes: Uint8Array, where: string, keyword: string): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch (err) {
    throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") contains invalid UTF-8`, { cause: err });
  }
}

function inflate(bytes: Uint8Array, where: string, keyword: string): Uint8Array {
  try {
    return inflateSync(bytes, { maxOutputLength: MAX_INFLATED_TEXT_BYTES });
  } catch (err) {
    throw new PngFormatError(`corrupt PNG: ${where} ("${keyword}") has invalid compressed text`, {
      cause: err,
    });
  }
}
