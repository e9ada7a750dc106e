/**
 * The safetensors tensor file format (https://github.com/huggingface/safetensors), read and
 * written without dependencies.
 *
 * Layout:
 *
 *     [8 bytes]  N, the header length: an unsigned 64-bit little-endian integer
 *     [N bytes]  the header: a UTF-8 JSON object
 *                  { "__metadata__": { "key": "value", ... },            (optional, strings only)
 *                    "<tensor name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] },
 *                    ... }
 *     [rest]     the data: every tensor's elements, little-endian, row-major (C order);
 *                offsets are relative to the start of the data, and the tensors cover it exactly,
 *                contiguously and without overlap.
 *
 * Writing follows the reference implementation byte for byte: tensors ordered by decreasing
 * dtype alignment (the reference's dtype order, reversed: U64, I64, F64, F32, U32, I32, BF16, F16,
 * U16, I16, I8, U8, BOOL), then by name (by code point, i.e. UTF-8 byte order); `__metadata__` first in the header (its keys sorted here, the
 * reference leaves them in hash order), no whitespace, and the header padded with spaces to a
 * multiple of 8 bytes so that every tensor starts aligned to its element size.
 *
 * Reading checks everything before touching the data, and reports each problem as a
 * {@link SafetensorsError}: a header length over 100 MB (the reference's limit) or past the end,
 * invalid UTF-8 or JSON, unknown dtypes, malformed shapes or offsets, offsets out of bounds,
 * gaps, overlaps, a byte range that does not match dtype × shape, data left over at the end.
 *
 * F16 and BF16 tensors hold their raw 16-bit patterns in a Uint16Array; use
 * {@link toFloat32Tensor} / {@link fromFloat32} to convert.
 *
 * @example
 * const bytes = encodeSafetensors(
 *   { 'proj.weight': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) } },
 *   { format: 'pt' },
 * );
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * await writeSafetensorsFile('/tmp/lora.safetensors', tensors, metadata);
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-write.js';
import { float32ToFloat16Bits, fromFloat16 } from '../onnx/dtype.js';

/** Element types read and written (the reference's dtypes, without 4/6/8-bit floats and complex). */
export type SafetensorsDType =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** The typed array holding each dtype. F16 and BF16 are raw bits; BOOL is one byte per value (0 or 1). */
export interface SafetensorsArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/** One tensor; `dtype` determines the array type of `data`. */
export type SafetensorsTensor = {
  [D in SafetensorsDType]: { dtype: D; shape: number[]; data: SafetensorsArrays[D] };
}[SafetensorsDType];

export interface SafetensorsContents {
  /**
   * The tensors, inserted in file order (by offset). As with any JS object, integer-like names
   * ("0", "12") enumerate first.
   */
  tensors: Record<string, SafetensorsTensor>;
  /** The `__metadata__` map (empty when the file has none). */
  metadata: Record<string, string>;
}

export interface DecodeOptions {
  /**
   * Copy every tensor into its own buffer (default false). Without copying, tensors whose bytes
   * are aligned for their type (all of them in files written by the reference implementation or
   * this module) are views of `bytes`, sharing its memory; the others are copied.
   */
  copy?: boolean;
}

/** A malformed safetensors file, or tensors that cannot be written. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The reference implementation refuses headers larger than this. */
export const MAX_HEADER_BYTES = 100_000_000;

type AnySafetensorsArray = SafetensorsArrays[SafetensorsDType];

interface ArrayConstructorFor {
  new (length: number): AnySafetensorsArray;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): AnySafetensorsArray;
  readonly name: string;
}

interface DTypeInfo {
  bytes: number;
  /** Position in the reference implementation's dtype enum (its sort key when writing). */
  order: number;
  array: ArrayConstructorFor;
}

const DTYPES: Record<SafetensorsDType, DTypeInfo> = {
  BOOL: { bytes: 1, order: 0, array: Uint8Array },
  U8: { bytes: 1, order: 1, array: Uint8Array },
  I8: { bytes: 1, order: 2, array: Int8Array },
  I16: { bytes: 2, order: 3, array: Int16Array },
  U16: { bytes: 2, order: 4, array: Uint16Array },
  F16: { bytes: 2, order: 5, array: Uint16Array },
  BF16: { bytes: 2, order: 6, array: Uint16Array },
  I32: { bytes: 4, order: 7, array: Int32Array },
  U32: { bytes: 4, order: 8, array: Uint32Array },
  F32: { bytes: 4, order: 9, array: Float32Array },
  F64: { bytes: 8, order: 10, array: Float64Array },
  I64: { bytes: 8, order: 11, array: BigInt64Array },
  U64: { bytes: 8, order: 12, array: BigUint64Array },
};

const METADATA_KEY = '__metadata__';

function isDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkEndianness(): void {
  if (!LITTLE_ENDIAN) throw new SafetensorsError('safetensors I/O needs a little-endian platform');
}

/** Compares strings by Unicode code point, which is the byte order of their UTF-8 encodings. */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = (x.value.codePointAt(0) as number) - (y.value.codePointAt(0) as number);
    if (d !== 0) return d;
  }
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function typeLabel(dtype: string, shape: readonly number[]): string {
  return `${dtype} [${shape.join(', ')}]`;
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes, laid out exactly as
 * the reference implementation does (see the module documentation).
 *
 * @example
 * const bytes = encodeSafetensors({ bias: { dtype: 'F16', shape: [2], data: toFloat16([0.5, -1]) } });
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  checkEndianness();
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === METADATA_KEY) throw new SafetensorsError(`a tensor cannot be named '${METADATA_KEY}'`);
    if (!isDType(t.dtype))
      throw new SafetensorsError(`tensor '${name}': unsupported dtype '${String(t.dtype)}'`);
    if (!isShape(t.shape)) {
      throw new SafetensorsError(`tensor '${name}': invalid shape ${JSON.stringify(t.shape)}`);
    }
    const info = DTYPES[t.dtype];
    if (!(t.data instanceof info.array)) {
      throw new SafetensorsError(
        `tensor '${name}': ${t.dtype} data must be a ${info.array.name}, got ${Object.prototype.toString.call(t.data).slice(8, -1)}`,
      );
    }
    const n = elementCount(t.shape);
    if (t.data.length !== n) {
      throw new SafetensorsError(
        `tensor '${name}': ${t.data.length} values for shape [${t.shape.join(', ')}]`,
      );
    }
  }
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (typeof value !== 'string')
      throw new SafetensorsError(`metadata '${key}' must be a string, got ${typeof value}`);
  }

  entries.sort(
    ([na, a], [nb, b]) => DTYPES[b.dtype].order - DTYPES[a.dtype].order || compareCodePoints(na, nb),
  );

  // The header is written by hand: an object would move integer-like names to the front.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const fields = Object.keys(metadata)
      .sort(compareCodePoints)
      .map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const begin = offset;
    offset += t.data.byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${begin},${offset}]}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new SafetensorsError(
      `the header would be ${headerLength} bytes, over the limit of ${MAX_HEADER_BYTES}`,
    );
  }

  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // space padding
  let position = 8 + headerLength;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), position);
    position += t.data.byteLength;
  }
  return out;
}

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and validates safetensors bytes. Throws a {@link SafetensorsError} naming the first
 * problem found.
 *
 * @example
 * const { tensors } = decodeSafetensors(await readFile('adapter.safetensors'));
 * const weight = toFloat32Tensor(tensors['lora.down.weight']);
 */
export function decodeSafetensors(bytes: Uint8Array, options: DecodeOptions = {}): SafetensorsContents {
  checkEndianness();
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `${bytes.length} bytes is too short for a safetensors file (the header length alone takes 8)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header length ${declared} is over the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > bytes.length) {
    throw new SafetensorsError(
      `header length ${headerLength} runs past the end of the ${bytes.length} bytes`,
    );
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + headerLength),
    );
  } catch {
    throw new SafetensorsError('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('the header must be a JSON object');
  }

  const metadata: Record<string, string> = Object.create(null);
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SafetensorsError(`'${METADATA_KEY}' must be an object of strings`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string')
          throw new SafetensorsError(`metadata '${k}' must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, value));
  }

  // Tensors must tile the data section: sorted by offset, each starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLength = bytes.length - 8 - headerLength;
  let expectedBegin = 0;
  for (const e of entries) {
    if (e.begin !== expectedBegin) {
      const problem =
        e.begin < expectedBegin ? 'overlaps the previous tensor' : 'leaves a gap after the previous tensor';
      throw new SafetensorsError(
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] ${problem} (which ends at ${expectedBegin})`,
      );
    }
    if (e.end > dataLength) {
      throw new SafetensorsError(
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] are out of bounds (the data has ${dataLength} bytes)`,
      );
    }
    expectedBegin = e.end;
  }
  if (expectedBegin !== dataLength) {
    throw new SafetensorsError(
      `the tensors cover ${expectedBegin} bytes of data, but ${dataLength} follow the header`,
    );
  }

  const copy = options.copy ?? false;
  const dataStart = bytes.byteOffset + 8 + headerLength;
  const tensors: Record<string, SafetensorsTensor> = Object.create(null);
  for (const e of entries) {
    const info = DTYPES[e.dtype];
    const count = (e.end - e.begin) / info.bytes;
    const at = dataStart + e.begin;
    let data: AnySafetensorsArray;
    if (!copy && at % info.bytes === 0) {
      data = new info.array(bytes.buffer as ArrayBuffer, at, count);
    } else {
      data = new info.array(count);
      new Uint8Array(data.buffer).set(
        bytes.subarray(at - bytes.byteOffset, at - bytes.byteOffset + (e.end - e.begin)),
      );
    }
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data } as SafetensorsTensor;
  }
  return { tensors, metadata };
}

function parseEntry(name: string, value: unknown): HeaderEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SafetensorsError(`tensor '${name}': expected an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDType(dtype))
    throw new SafetensorsError(`tensor '${name}': unsupported dtype ${JSON.stringify(dtype)}`);
  if (!isShape(shape)) throw new SafetensorsError(`tensor '${name}': invalid shape ${JSON.stringify(shape)}`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    throw new SafetensorsError(`tensor '${name}': invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const bytes = elementCount(shape) * DTYPES[dtype].bytes;
  if (!Number.isSafeInteger(bytes)) {
    throw new SafetensorsError(`tensor '${name}': ${typeLabel(dtype, shape)} is too large`);
  }
  if (end - begin !== bytes) {
    throw new SafetensorsError(
      `tensor '${name}': ${typeLabel(dtype, shape)} takes ${bytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

/**
 * Writes a safetensors file atomically (a reader sees the old file or the whole new one).
 *
 * @example
 * await writeSafetensorsFile(join(dir, 'optimizer.safetensors'), buffers, { step: '1200' });
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Reads and validates a safetensors file; errors name the file.
 *
 * @example
 * const { tensors, metadata } = await readSafetensorsFile('unet-lora.safetensors');
 */
export async function readSafetensorsFile(
  path: string,
  options: DecodeOptions = {},
): Promise<SafetensorsContents> {
  const bytes = await readFile(path);
  try {
    return decodeSafetensors(bytes, options);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Float dtypes that {@link toFloat32Tensor} and {@link fromFloat32} convert. */
export type SafetensorsFloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

/**
 * The values of a float tensor as a Float32Array: F16 and BF16 bits are decoded, F64 is
 * rounded. For an F32 tensor its own `data` array is returned (no copy).
 *
 * @example
 * const weight = toFloat32Tensor(tensors['unet.up.weight']); // Float32Array
 */
export function toFloat32Tensor(tensor: SafetensorsTensor): Float32Array {
  switch (tensor.dtype) {
    case 'F32':
      return tensor.data;
    case 'F64':
      return Float32Array.from(tensor.data);
    case 'F16':
      return fromFloat16(tensor.data);
    case 'BF16': {
      // bfloat16 is the top half of a float32
      const words = new Uint32Array(tensor.data.length);
      for (let i = 0; i < words.length; i++) words[i] = tensor.data[i] << 16;
      return new Float32Array(words.buffer);
    }
    default:
      throw new SafetensorsError(`cannot convert a ${tensor.dtype} tensor to float32`);
  }
}

/**
 * A float32 array as a tensor of `dtype`, rounding to nearest even for F16 and BF16 (NaN stays
 * NaN). For F32 the array is used as is.
 *
 * @example
 * const half = fromFloat32(weights, [320, 4], 'BF16');
 */
export function fromFloat32(
  data: Float32Array,
  shape: number[],
  dtype: SafetensorsFloatDType,
): SafetensorsTensor {
  switch (dtype) {
    case 'F32':
      return { dtype, shape, data };
    case 'F64':
      return { dtype, shape, data: Float64Array.from(data) };
    case 'F16': {
      const bits = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) bits[i] = float32ToFloat16Bits(data[i]);
      return { dtype, shape, data: bits };
    }
    case 'BF16': {
      const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
      const bits = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const w = words[i];
        if ((w & 0x7fffffff) > 0x7f800000)
          bits[i] = (w >>> 16) | 0x0040; // NaN: keep it quiet and NaN
        else bits[i] = (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
      }
      return { dtype, shape, data: bits };
    }
  }
}
