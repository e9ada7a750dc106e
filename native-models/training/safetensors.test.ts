import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toFloat16 } from '../onnx/dtype.js';
import {
  SafetensorsError,
  decodeSafetensors,
  encodeSafetensors,
  fromFloat32,
  readSafetensorsFile,
  toFloat32Tensor,
  writeSafetensorsFile,
  type SafetensorsTensor,
} from './safetensors.js';

const ascii = (s: string) => Array.from(new TextEncoder().encode(s));
const le64 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff, 0, 0, 0, 0];
const spaces = (n: number) => new Array<number>(n).fill(0x20);

/** A file from a header string (padded or not) and raw data bytes. */
function file(header: string, data: number[] = [], pad = true): Uint8Array {
  const json = ascii(header);
  const padded = pad ? [...json, ...spaces((8 - (json.length % 8)) % 8)] : json;
  return Uint8Array.from([...le64(padded.length), ...padded, ...data]);
}

const f32Bytes = (...values: number[]) => Array.from(new Uint8Array(Float32Array.from(values).buffer));

describe('encodeSafetensors', () => {
  it('writes the exact bytes the format specifies', () => {
    const bytes = encodeSafetensors(
      {
        b: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) },
        a: { dtype: 'F16', shape: [1], data: Uint16Array.from([0x3c00]) },
        c: { dtype: 'I64', shape: [1], data: BigInt64Array.from([-1n]) },
      },
      { format: 'pt' },
    );
    // ordered by decreasing alignment (I64, F32, F16), metadata first, no whitespace
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
      '"a":{"dtype":"F16","shape":[1],"data_offsets":[16,18]}}';
    expect(header.length).toBe(194);
    const expected = [
      ...[200, 0, 0, 0, 0, 0, 0, 0], // 194 rounded up to a multiple of 8
      ...ascii(header),
      ...spaces(6),
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // -1n
      ...[0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40], // 1.0f, 2.0f
      ...[0x00, 0x3c], // half 1.0
    ];
    expect(Array.from(bytes)).toEqual(expected);
  });

  it('pads the header with spaces so that the data starts 8-byte aligned', () => {
    const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
    const bytes = encodeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data } });
    const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(header.length).toBe(65);
    expect(Array.from(bytes)).toEqual([
      ...le64(72),
      ...ascii(header),
      ...spaces(7),
      ...f32Bytes(0, 1, 2, 3, 4, 5),
    ]);
  });

  it('writes an empty file as "{}" padded with spaces, and an empty metadata map', () => {
    expect(Array.from(encodeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}'), ...spaces(6)]);
    expect(new TextDecoder().decode(encodeSafetensors({}, {}).subarray(8)).trimEnd()).toBe(
      '{"__metadata__":{}}',
    );
  });

  it('orders equal dtypes by name (code points), keeps integer-like names, escapes JSON', () => {
    const t = (v: number): SafetensorsTensor => ({ dtype: 'F32', shape: [], data: Float32Array.from([v]) });
    const bytes = encodeSafetensors({
      z: t(1),
      '10': t(2),
      '2': t(3),
      'q"\\\n': t(4),
      '\u{1F600}': t(5),
      '\uFFFD': t(6),
    });
    const header = new TextDecoder().decode(
      bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))),
    );
    const names = [...header.matchAll(/"((?:[^"\\]|\\.)*)":\{"dtype"/g)].map((m) => JSON.parse(`"${m[1]}"`));
    // U+FFFD sorts before U+1F600 by code point (UTF-16 code units would say otherwise)
    expect(names).toEqual(['10', '2', 'q"\\\n', 'z', '\uFFFD', '\u{1F600}']);
  });

  it('refuses tensors it cannot write', () => {
    const bad = (t: unknown) => () => encodeSafetensors({ x: t as SafetensorsTensor });
    expect(bad({ dtype: 'F32', shape: [2], data: new Float64Array(2) })).toThrow(
      /F32 data must be a Float32Array, got Float64Array/,
    );
    expect(bad({ dtype: 'F32', shape: [3], data: new Float32Array(2) })).toThrow(/2 values for shape \[3\]/);
    expect(bad({ dtype: 'F8_E4M3', shape: [1], data: new Uint8Array(1) })).toThrow(
      /unsupported dtype 'F8_E4M3'/,
    );
    expect(bad({ dtype: 'U8', shape: [-1], data: new Uint8Array(1) })).toThrow(/invalid shape \[-1\]/);
    const ok: SafetensorsTensor = { dtype: 'U8', shape: [1], data: new Uint8Array(1) };
    expect(() => encodeSafetensors({ __metadata__: ok })).toThrow(/cannot be named '__metadata__'/);
    expect(() => encodeSafetensors({}, { n: 1 as unknown as string })).toThrow(
      /metadata 'n' must be a string/,
    );
    expect(() => encodeSafetensors({ x: ok })).not.toThrow();
  });
});

describe('decodeSafetensors', () => {
  it('round-trips every dtype, shapes including scalars and empty tensors, and metadata', () => {
    const tensors: Record<string, SafetensorsTensor> = {
      f64: { dtype: 'F64', shape: [2], data: Float64Array.from([Math.PI, -0]) },
      f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, NaN]) },
      f16: { dtype: 'F16', shape: [3], data: toFloat16([0.5, -2, 65504]) },
      bf16: { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x3f80]) },
      i64: { dtype: 'I64', shape: [2], data: BigInt64Array.from([2n ** 62n, -5n]) },
      i32: { dtype: 'I32', shape: [1, 1], data: Int32Array.from([-7]) },
      i16: { dtype: 'I16', shape: [1], data: Int16Array.from([-300]) },
      i8: { dtype: 'I8', shape: [1], data: Int8Array.from([-8]) },
      u64: { dtype: 'U64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
      u32: { dtype: 'U32', shape: [1], data: Uint32Array.from([4e9]) },
      u16: { dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
      u8: { dtype: 'U8', shape: [3], data: Uint8Array.from([1, 2, 255]) },
      bool: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
      scalar: { dtype: 'F32', shape: [], data: Float32Array.from([42]) },
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      '0': { dtype: 'U8', shape: [1], data: Uint8Array.from([9]) },
    };
    const metadata = { format: 'pt', ünïcode: '✓ "quoted"\n' };
    const bytes = encodeSafetensors(tensors, metadata);
    const decoded = decodeSafetensors(bytes);
    expect({ ...decoded.metadata }).toEqual(metadata);
    expect(Object.keys(decoded.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const d = decoded.tensors[name];
      expect(d.dtype).toBe(t.dtype);
      expect(d.shape).toEqual(t.shape);
      expect(d.data).toEqual(t.data);
      // aligned, so a view of the input bytes
      expect(d.data.buffer).toBe(bytes.buffer);
    }
    // in file order, largest alignment first (except integer-like names, which JS objects put first)
    expect(Object.keys(decoded.tensors).slice(0, 7)).toEqual([
      '0',
      'u64',
      'i64',
      'f64',
      'empty',
      'f32',
      'scalar',
    ]);
    // copies on request
    const copied = decodeSafetensors(bytes, { copy: true });
    expect(copied.tensors.f32.data.buffer).not.toBe(bytes.buffer);
    expect(copied.tensors.f32.data).toEqual(tensors.f32.data);
  });

  it('reads files that are not padded or not in offset order, copying misaligned tensors', () => {
    // header of 90 bytes (not a multiple of 8), "w" listed before "v" but stored after it
    const header =
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[2,10]},"v":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
    const bytes = file(header, [7, 8, ...f32Bytes(1.5, -2)], false);
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(Object.keys(metadata)).toEqual([]);
    expect(Object.keys(tensors)).toEqual(['v', 'w']);
    expect(tensors.v.data).toEqual(Uint8Array.from([7, 8]));
    expect(tensors.w.data).toEqual(Float32Array.from([1.5, -2]));
    // also from a Uint8Array that starts at an odd offset of its buffer
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(decodeSafetensors(shifted.subarray(1)).tensors.w.data).toEqual(Float32Array.from([1.5, -2]));
  });

  it('reports every kind of corruption with a clear SafetensorsError', () => {
    const entry = (dtype: string, shape: unknown, offsets: unknown) =>
      `{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /5 bytes is too short/],
      [
        Uint8Array.from([0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0, ...ascii('{}')]),
        /header length 100000001 is over the limit/,
      ],
      [Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1]), /header length 72057594037927936 is over the limit/],
      [Uint8Array.from([...le64(16), ...ascii('{}')]), /header length 16 runs past the end of the 10 bytes/],
      [Uint8Array.from([...le64(4), 0x7b, 0xff, 0xfe, 0x7d]), /not valid UTF-8/],
      [file('{"a":'), /not valid JSON/],
      [file('[1, 2]'), /must be a JSON object/],
      [file(`{"x":${entry('F8_E4M3', [1], [0, 1])}}`, [0]), /tensor 'x': unsupported dtype "F8_E4M3"/],
      [file(`{"x":${entry('F32', [1.5], [0, 4])}}`, f32Bytes(1)), /tensor 'x': invalid shape \[1.5\]/],
      [file(`{"x":${entry('F32', [-1], [0, 4])}}`, f32Bytes(1)), /tensor 'x': invalid shape \[-1\]/],
      [file(`{"x":${entry('F32', [1], [4, 0])}}`, f32Bytes(1)), /tensor 'x': invalid data_offsets \[4,0\]/],
      [file(`{"x":${entry('F32', [1], [0])}}`, f32Bytes(1)), /tensor 'x': invalid data_offsets \[0\]/],
      [file('{"x":[1,2]}', []), /tensor 'x': expected an object/],
      [
        file(`{"x":${entry('F32', [2], [0, 4])}}`, f32Bytes(1)),
        /'x': F32 \[2\] takes 8 bytes, but data_offsets \[0, 4\] span 4/,
      ],
      [
        file(`{"x":${entry('F32', [1], [0, 4])},"y":${entry('F32', [1], [8, 12])}}`, f32Bytes(1, 2, 3)),
        /tensor 'y': data_offsets \[8, 12\] leaves a gap after the previous tensor \(which ends at 4\)/,
      ],
      [
        file(`{"x":${entry('F32', [2], [0, 8])},"y":${entry('F32', [1], [4, 8])}}`, f32Bytes(1, 2)),
        /tensor 'y': data_offsets \[4, 8\] overlaps the previous tensor \(which ends at 8\)/,
      ],
      [file(`{"x":${entry('F32', [1], [4, 8])}}`, f32Bytes(1, 2)), /tensor 'x': .* leaves a gap/],
      [
        file(`{"x":${entry('F32', [2], [0, 8])}}`, f32Bytes(1)),
        /\[0, 8\] are out of bounds \(the data has 4 bytes\)/,
      ],
      [
        file(`{"x":${entry('F32', [1], [0, 4])}}`, f32Bytes(1, 2)),
        /the tensors cover 4 bytes of data, but 8 follow the header/,
      ],
      [
        file(`{"x":${entry('U8', [2 ** 40, 2 ** 40], [0, 1])}}`, [0]),
        /'x': U8 \[1099511627776, 1099511627776\] is too large/,
      ],
      [file('{"__metadata__":{"a":1}}'), /metadata 'a' must be a string, got 1/],
      [file('{"__metadata__":"pt"}'), /'__metadata__' must be an object of strings/],
    ];
    for (const [bytes, message] of cases) {
      let error: unknown;
      try {
        decodeSafetensors(bytes);
      } catch (e) {
        error = e;
      }
      expect(error, String(message)).toBeInstanceOf(SafetensorsError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('safetensors files', () => {
  it('writes atomically and reads back; read errors name the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msp-safetensors-'));
    try {
      const path = join(dir, 'weights.safetensors');
      const tensors: Record<string, SafetensorsTensor> = {
        'unet.conv.weight': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
      };
      await writeSafetensorsFile(path, tensors, { step: '12' });
      await writeSafetensorsFile(path, tensors, { step: '13' }); // replaces it
      expect(await readdir(dir)).toEqual(['weights.safetensors']);
      expect(await readFile(path)).toEqual(Buffer.from(encodeSafetensors(tensors, { step: '13' })));
      const { tensors: read, metadata } = await readSafetensorsFile(path);
      expect(read['unet.conv.weight'].data).toEqual(tensors['unet.conv.weight'].data);
      expect(metadata.step).toBe('13');

      const broken = join(dir, 'broken.safetensors');
      await writeFile(broken, file('{"a":'));
      await expect(readSafetensorsFile(broken)).rejects.toThrow(`${broken}: the header is not valid JSON`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('float conversions', () => {
  it('toFloat32Tensor decodes F16, BF16 and F64, returns F32 data as is, refuses integers', () => {
    const f32 = Float32Array.from([1, -2.5]);
    expect(toFloat32Tensor({ dtype: 'F32', shape: [2], data: f32 })).toBe(f32);
    expect(toFloat32Tensor({ dtype: 'F16', shape: [2], data: Uint16Array.from([0x3c00, 0xc100]) })).toEqual(
      f32,
    );
    expect(toFloat32Tensor({ dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc020]) })).toEqual(
      f32,
    );
    expect(toFloat32Tensor({ dtype: 'F64', shape: [2], data: Float64Array.from([1, -2.5]) })).toEqual(f32);
    expect(() => toFloat32Tensor({ dtype: 'I32', shape: [1], data: new Int32Array(1) })).toThrow(
      /cannot convert a I32 tensor to float32/,
    );
  });

  it('fromFloat32 rounds to nearest even for BF16 and F16, and keeps NaN', () => {
    const values = Float32Array.from([
      1,
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -8 + 2 ** -20,
      -0,
      Infinity,
      NaN,
      3.4e38,
    ]);
    const bf16 = fromFloat32(values, [8], 'BF16');
    expect(bf16.dtype).toBe('BF16');
    expect(Array.from(bf16.data as Uint16Array, (b) => b.toString(16))).toEqual([
      '3f80', // 1
      '3f80', // tie -> even (down)
      '3f82', // tie -> even (up)
      '3f81', // above the tie -> up
      '8000', // -0
      '7f80', // Infinity
      '7fc0', // NaN
      '7f80', // rounds up past the largest bfloat16 -> Infinity
    ]);
    const back = toFloat32Tensor(bf16);
    expect(Number.isNaN(back[6])).toBe(true);
    expect(Array.from(fromFloat32(Float32Array.from([1, 0.5]), [2], 'F16').data as Uint16Array)).toEqual([
      0x3c00, 0x3800,
    ]);
    expect(fromFloat32(values, [8], 'F64').data).toEqual(Float64Array.from(values));
  });
});
