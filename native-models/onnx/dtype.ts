import { DataType } from './proto-types.js';

/** Element types the project's graphs use, named as onnxruntime-node names them. */
export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export const DTYPE_CODE: Record<DType, number> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  float64: DataType.DOUBLE,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

const CODE_TO_DTYPE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

/** The DType of an ONNX TensorProto.DataType code, or undefined for types the project does not handle. */
export function dtypeFromCode(code: number): DType | undefined {
  return CODE_TO_DTYPE.get(code);
}

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** JS storage of each dtype; float16 is stored as raw uint16 bits. */
export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int64'
      ? BigInt64Array
      : D extends 'int32'
        ? Int32Array
        : D extends 'int8'
          ? Int8Array
          : D extends 'float16'
            ? Uint16Array
            : Uint8Array;

export type AnyTypedArray =
  Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint16Array | Uint8Array;

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'float64';
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates a zero-filled typed array of `length` elements for `dtype`. */
export function allocate(dtype: DType, length: number): AnyTypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int8':
      return new Int8Array(length);
    case 'float16':
      return new Uint16Array(length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
  }
}

// float16 <-> float32 conversion (IEEE 754 binary16, round to nearest even).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  if ((half & 0x7c00) === 0x7c00) e = 0x1f; // rounding carried into Inf; still correct bits
  return sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toFloat16(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float32ToFloat16Bits(data[i]);
  return out;
}

export function fromFloat16(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32(bits[i]);
  return out;
}
