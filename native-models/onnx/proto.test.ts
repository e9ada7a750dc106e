import { sharedData } from '../../test/helpers/shared-data.js';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { decodeModel, decodeTensor, encodeModel, encodeTensor, OnnxFormatError } from './proto.js';
import type { GraphProto, ModelProto, TensorProto } from './proto-types.js';
import { AttributeType, DataType } from './proto-types.js';

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic PRNG (mulberry32) so failures are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function floatBytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function subgraph(name: string): GraphProto {
  return {
    name,
    node: [
      { input: ['a'], output: ['b'], name: `${name}_id`, opType: 'Identity', domain: '', attribute: [] },
    ],
    initializer: [],
    input: [],
    output: [{ name: 'b', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [] } } } }],
    valueInfo: [],
  };
}

/** A model that uses every field this codec models, with awkward values. */
function kitchenSinkModel(): ModelProto {
  const smallTensor: TensorProto = { name: 'st', dims: [2], dataType: DataType.INT64, int64Data: [-1n, 5n] };
  return {
    irVersion: 10,
    opsetImport: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ],
    producerName: 'msp-studio',
    producerVersion: '0.1.0',
    domain: 'ai.msp.test',
    modelVersion: 7,
    docString: 'Ünïcødé doc — with an emoji 😀.',
    metadataProps: [
      { key: 'author', value: 'tests' },
      { key: 'empty', value: '' },
    ],
    graph: {
      name: 'main',
      docString: 'main graph',
      node: [
        {
          input: ['X', 'W', ''],
          output: ['Y'],
          name: 'everything',
          opType: 'Custom',
          domain: 'com.microsoft',
          docString: 'node doc',
          attribute: [
            { name: 'f', type: AttributeType.FLOAT, f: -1.25, docString: 'attr doc' },
            { name: 'f0', type: AttributeType.FLOAT, f: 0 },
            { name: 'i', type: AttributeType.INT, i: -1 },
            { name: 'i0', type: AttributeType.INT, i: 0 },
            { name: 'ibig', type: AttributeType.INT, i: Number.MAX_SAFE_INTEGER },
            { name: 'ineg', type: AttributeType.INT, i: Number.MIN_SAFE_INTEGER },
            { name: 's', type: AttributeType.STRING, s: utf8('héllo') },
            { name: 't', type: AttributeType.TENSOR, t: smallTensor },
            { name: 'g', type: AttributeType.GRAPH, g: subgraph('then') },
            { name: 'floats', type: AttributeType.FLOATS, floats: [0.5, -2, 0.25] },
            { name: 'ints', type: AttributeType.INTS, ints: [-1, 0, 1, 2 ** 40, -(2 ** 40)] },
            { name: 'strings', type: AttributeType.STRINGS, strings: [utf8('a'), utf8(''), utf8('ß')] },
            {
              name: 'tensors',
              type: AttributeType.TENSORS,
              tensors: [smallTensor, { ...smallTensor, name: 'st2' }],
            },
            { name: 'graphs', type: AttributeType.GRAPHS, graphs: [subgraph('g1'), subgraph('g2')] },
            { name: 'emptyints', type: AttributeType.INTS, ints: [] },
          ],
        },
        { input: ['Y'], output: ['Z'], name: '', opType: 'Relu', domain: '', attribute: [] },
      ],
      initializer: [
        {
          name: 'raw',
          dims: [2, 2],
          dataType: DataType.FLOAT,
          rawData: floatBytes([1, 2, 3, 4]),
          docString: 'w',
        },
        { name: 'fd', dims: [3], dataType: DataType.FLOAT, floatData: [1.5, -0, Infinity] },
        { name: 'i32', dims: [4], dataType: DataType.INT32, int32Data: [-1, 0, 2147483647, -2147483648] },
        {
          name: 'i64',
          dims: [5],
          dataType: DataType.INT64,
          int64Data: [-1n, 0n, INT64_MAX, INT64_MIN, 1234567890123n],
        },
        { name: 'dbl', dims: [3], dataType: DataType.DOUBLE, doubleData: [Math.PI, -1e300, 5e-324] },
        { name: 'u64', dims: [3], dataType: DataType.UINT64, uint64Data: [0n, UINT64_MAX, 1n << 63n] },
        { name: 'str', dims: [2], dataType: DataType.STRING, stringData: [utf8('x'), utf8('yz')] },
        {
          name: 'ext',
          dims: [16],
          dataType: DataType.FLOAT,
          dataLocation: 1,
          externalData: [
            { key: 'location', value: 'weights.pb' },
            { key: 'offset', value: '4096' },
            { key: 'length', value: '64' },
          ],
        },
        { name: 'scalar', dims: [], dataType: DataType.FLOAT, rawData: floatBytes([7]) },
        { name: 'negdim', dims: [-1, 0], dataType: DataType.FLOAT, rawData: new Uint8Array(0) },
      ],
      input: [
        {
          name: 'X',
          docString: 'input doc',
          type: {
            tensorType: {
              elemType: DataType.FLOAT,
              shape: { dim: [{ dimParam: 'batch' }, { dimValue: 64 }, {}, { dimValue: 0 }] },
            },
          },
        },
        { name: 'W', type: { tensorType: { elemType: DataType.FLOAT } } }, // unknown rank
      ],
      output: [{ name: 'Z', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [] } } } }],
      valueInfo: [
        { name: 'Y', type: {} }, // non-tensor type (not modelled)
        { name: 'untyped' },
      ],
    },
  };
}

/** Hand-assembled protobuf bytes. */
function bytes(...parts: (number | number[] | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else out.push(...p);
  }
  return new Uint8Array(out);
}

/** Varint encoding of a non-negative bigint (test helper, independent of the codec). */
function varint(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    out.push(x > 0n ? b | 0x80 : b);
  } while (x > 0n);
  return out;
}

function lenDelimited(field: number, payload: Uint8Array): number[] {
  return [...varint(BigInt((field << 3) | 2)), ...varint(BigInt(payload.length)), ...payload];
}

function expectFormatError(fn: () => unknown, pattern?: RegExp): OnnxFormatError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(OnnxFormatError);
  const err = caught as OnnxFormatError;
  expect(err.message).toMatch(/^corrupt ONNX: .+ at byte \d+ while reading \S+/);
  if (pattern) expect(err.message).toMatch(pattern);
  return err;
}

describe('encodeModel / decodeModel round trip', () => {
  it('round-trips every modelled field kind', () => {
    const model = kitchenSinkModel();
    const encoded = encodeModel(model);
    const decoded = decodeModel(encoded);
    expect(decoded).toEqual(model);
    // Encoding is deterministic and stable under a second round trip.
    expect(encodeModel(decoded)).toEqual(encoded);
  });

  it('decodes rawData and string data as views into the input (zero copy)', () => {
    const encoded = encodeModel(kitchenSinkModel());
    const decoded = decodeModel(encoded);
    const raw = decoded.graph.initializer[0].rawData;
    expect(raw?.buffer).toBe(encoded.buffer);
    expect(raw?.byteOffset).toBeGreaterThan(0);
    expect(decoded.graph.initializer.find((t) => t.name === 'str')?.stringData?.[0].buffer).toBe(
      encoded.buffer,
    );
    // A Buffer input yields plain Uint8Array views that still share its memory.
    const buf = Buffer.from(encoded);
    const fromBuffer = decodeModel(buf).graph.initializer[0].rawData;
    expect(Object.getPrototypeOf(fromBuffer)).toBe(Uint8Array.prototype);
    expect(fromBuffer?.buffer).toBe(buf.buffer);
  });

  it('fills defaults for absent fields', () => {
    const empty = decodeModel(new Uint8Array(0));
    expect(empty).toEqual({
      irVersion: 0,
      opsetImport: [],
      producerName: '',
      producerVersion: '',
      domain: '',
      modelVersion: 0,
      docString: '',
      graph: { name: '', node: [], initializer: [], input: [], output: [], valueInfo: [] },
      metadataProps: [],
    });
    // Node with only op_type; attributes whose value field is absent get the type's default.
    const attrs = [
      { name: 'a', type: AttributeType.INTS },
      { name: 'b', type: AttributeType.FLOAT },
      { name: 'c', type: AttributeType.STRINGS },
    ];
    const model = kitchenSinkModel();
    model.graph.node = [{ input: [], output: [], name: '', opType: 'Op', domain: '', attribute: attrs }];
    const node = decodeModel(encodeModel(model)).graph.node[0];
    expect(node).toEqual({
      input: [],
      output: [],
      name: '',
      opType: 'Op',
      domain: '',
      attribute: [
        { name: 'a', type: AttributeType.INTS, ints: [] },
        { name: 'b', type: AttributeType.FLOAT, f: 0 },
        { name: 'c', type: AttributeType.STRINGS, strings: [] },
      ],
    });
  });

  it('writes lone surrogates as U+FFFD, like TextEncoder', () => {
    const model = { ...kitchenSinkModel(), docString: 'a\ud800b\udc00' };
    expect(decodeModel(encodeModel(model)).docString).toBe('a\ufffdb\ufffd');
  });

  it('writes negative int64 values as 10-byte varints and packs repeated scalars', () => {
    const encoded = encodeTensor({ name: '', dims: [-1], dataType: DataType.INT64 });
    // dims: field 1, packed, 10 bytes; data_type: field 2 = 7
    expect([...encoded]).toEqual([
      0x0a, 10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 7,
    ]);
    expect(decodeTensor(encoded).dims).toEqual([-1]);

    const floats = encodeTensor({ name: '', dims: [], dataType: 1, floatData: [1, 2] });
    expect([...floats.subarray(2, 4)]).toEqual([0x22, 8]); // field 4, wire type 2, 8 bytes
  });

  it('keeps INT64_MAX / INT64_MIN attribute ints (stored as numbers) at the int64 limits', () => {
    for (const [value, asNumber] of [
      [INT64_MAX, 2 ** 63],
      [INT64_MIN, -(2 ** 63)],
    ] as const) {
      const attr = bytes(lenDelimited(1, utf8('ends')), 0x18, varint(value), 0xa0, 0x01, 2);
      const node = bytes(lenDelimited(4, utf8('Slice')), lenDelimited(5, attr));
      const model = bytes(0x08, 10, lenDelimited(7, bytes(lenDelimited(1, node))));
      const decoded = decodeModel(model);
      expect(decoded.graph.node[0].attribute[0].i).toBe(asNumber);
      expect(encodeModel(decoded)).toEqual(model);
    }
  });

  it('round-trips random int64/uint64 values of every bit length', () => {
    const rand = rng(99);
    const signed: bigint[] = [];
    const unsigned: bigint[] = [];
    const dims: number[] = [];
    for (let bits = 0; bits <= 64; bits++) {
      for (let k = 0; k < 20; k++) {
        let v = 0n;
        for (let b = 0; b < bits; b++) v = (v << 1n) | (rand() < 0.5 ? 1n : 0n);
        if (bits > 0) v |= 1n << BigInt(bits - 1); // exactly `bits` bits long
        unsigned.push(v);
        signed.push(BigInt.asIntN(64, v));
        if (bits <= 53) dims.push(Number(v) * (rand() < 0.5 && v !== 0n ? -1 : 1));
      }
    }
    const tensor: TensorProto = { name: 't', dims, dataType: 7, int64Data: signed, uint64Data: unsigned };
    const encoded = encodeTensor(tensor);
    expect(decodeTensor(encoded)).toEqual(tensor);
    // Cross-check the varint bytes of int64_data against the independent test encoder.
    const expected = signed.flatMap((v) => varint(v));
    const packed = lenDelimited(7, new Uint8Array(expected));
    expect(Buffer.from(encoded).includes(Buffer.from(packed))).toBe(true);
  });

  it('accepts unpacked and mixed packed/unpacked repeated scalars', () => {
    const f32 = new Uint8Array(new Float32Array([1.5]).buffer);
    const f64 = new Uint8Array(new Float64Array([-2.25]).buffer);
    const tensor = bytes(
      0x08, // dims, unpacked
      2,
      lenDelimited(1, bytes(3, 4)), // dims, packed
      0x08,
      5,
      0x10, // data_type
      1,
      0x25, // float_data, unpacked fixed32
      f32,
      lenDelimited(4, bytes(f32, f32)),
      0x28, // int32_data, unpacked, -1 as a 10-byte varint
      varint(-1n),
      0x38, // int64_data, unpacked
      varint(INT64_MIN),
      0x51, // double_data, unpacked fixed64
      f64,
      0x58, // uint64_data, unpacked
      varint(UINT64_MAX),
    );
    expect(decodeTensor(tensor)).toEqual({
      name: '',
      dims: [2, 3, 4, 5],
      dataType: 1,
      floatData: [1.5, 1.5, 1.5],
      int32Data: [-1],
      int64Data: [INT64_MIN],
      doubleData: [-2.25],
      uint64Data: [UINT64_MAX],
    });
  });

  it('skips unknown fields of every wire type, at every level', () => {
    const unknown = bytes(
      [0x98, 0x06, 0x2a], // field 99, varint
      [0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8], // field 100, fixed64
      lenDelimited(101, utf8('ignored')), // field 101, length-delimited
      [0xb5, 0x06, 1, 2, 3, 4], // field 102, fixed32
    );
    const node = bytes(unknown, lenDelimited(4, utf8('Relu')), unknown);
    const graph = bytes(lenDelimited(1, node), unknown, lenDelimited(2, utf8('g')));
    const model = bytes(
      unknown,
      0x08,
      9,
      lenDelimited(20, utf8('training_info')),
      lenDelimited(7, graph),
      unknown,
    );
    const decoded = decodeModel(model);
    expect(decoded.irVersion).toBe(9);
    expect(decoded.graph.name).toBe('g');
    expect(decoded.graph.node.map((n) => n.opType)).toEqual(['Relu']);
  });

  it('rejects groups and invalid wire types with OnnxFormatError', () => {
    expectFormatError(() => decodeModel(bytes(0x0b, 0x0c)), /group \(wire type 3\) in field 1/); // start group
    expectFormatError(() => decodeModel(bytes(0x0c)), /group \(wire type 4\)/);
    expectFormatError(() => decodeModel(bytes(0x0e, 0)), /invalid wire type 6/);
    expectFormatError(() => decodeModel(bytes(0x00, 0)), /invalid field tag 0 at byte 0/);
    // A known field with the wrong wire type (producer_name as a varint).
    expectFormatError(() => decodeModel(bytes(0x10, 1)), /field 2 has wire type 0 \(varint\), expected 2/);
  });
});

describe('corrupt input', () => {
  it('reports truncated varints with the byte offset and message being read', () => {
    const node = bytes(lenDelimited(4, utf8('Relu')), 0x0a); // input tag with no length
    const model = bytes(0x08, 10, lenDelimited(7, bytes(lenDelimited(1, node))));
    const err = expectFormatError(() => decodeModel(model));
    expect(err.message).toBe(
      `corrupt ONNX: truncated varint at byte ${model.length} while reading NodeProto (ModelProto > GraphProto > NodeProto)`,
    );
    expect(err.offset).toBe(model.length);
  });

  it('reports lengths that run past the end of the enclosing message', () => {
    expectFormatError(() => decodeModel(bytes(0x3a, 0x05, 0x0a)), /length 5 exceeds the 1 bytes left/);
    expectFormatError(() => decodeModel(bytes(0x3a, 0x02, 0x0a, 0x10)), /length 16 exceeds the 0 bytes left/);
    expectFormatError(() => decodeModel(bytes(0x12, 0xff, 0xff, 0xff, 0xff, 0x0f)), /exceeds/);
    expectFormatError(
      () => decodeModel(bytes(0x08, ...new Array<number>(11).fill(0xff))),
      /longer than 10 bytes/,
    );
    expectFormatError(() => decodeTensor(bytes(0x22, 3, 0, 0, 0)), /packed 32-bit values have length 3/);
    expectFormatError(() => decodeTensor(bytes(0x25, 0, 0)), /truncated 4-byte value/);
  });

  it('every truncation of an encoded model is an OnnxFormatError (or a valid shorter model)', () => {
    const encoded = encodeModel(kitchenSinkModel());
    let failures = 0;
    for (let cut = 0; cut < encoded.length; cut++) {
      try {
        decodeModel(encoded.subarray(0, cut));
      } catch (err) {
        expect(err).toBeInstanceOf(OnnxFormatError);
        failures++;
      }
    }
    // Only cuts exactly between top-level fields can decode (at most one per top-level field).
    expect(failures).toBeGreaterThan(encoded.length - 20);
  });

  it('random garbage is an OnnxFormatError', () => {
    const rand = rng(42);
    for (let round = 0; round < 300; round++) {
      const garbage = new Uint8Array(64 + Math.floor(rand() * 4000));
      for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(rand() * 256);
      expect(() => decodeModel(garbage)).toThrow(OnnxFormatError);
    }
  });

  it('rejects nesting deeper than 100 messages instead of overflowing the stack', () => {
    let graph = subgraph('leaf');
    for (let depth = 0; depth < 60; depth++) {
      graph = {
        ...subgraph(`level${depth}`),
        node: [
          {
            input: [],
            output: [],
            name: '',
            opType: 'If',
            domain: '',
            attribute: [{ name: 'then_branch', type: AttributeType.GRAPH, g: graph }],
          },
        ],
      };
    }
    const model = { ...kitchenSinkModel(), graph };
    expectFormatError(() => decodeModel(encodeModel(model)), /nested more than 100 deep/);
  });

  it('rejects values that cannot be encoded with a clear TypeError', () => {
    const model = kitchenSinkModel();
    model.graph.initializer[0].dims = [1.5];
    expect(() => encodeModel(model)).toThrow(/cannot encode 1.5 as an int64/);
    expect(() => encodeTensor({ name: '', dims: [], dataType: 7, int64Data: [INT64_MAX + 1n] })).toThrow(
      /as an int64/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Real third-party models
// ---------------------------------------------------------------------------------------------------------

const MODEL_DIR = sharedData('onnx-thirdparty');
const haveModels = existsSync(MODEL_DIR);
if (!haveModels) console.warn(`proto.test.ts: ${MODEL_DIR} not found; skipping third-party ONNX model tests`);

const THIRD_PARTY: { file: string; ops: string[] }[] = [
  { file: 'mnist.onnx', ops: ['Conv', 'MaxPool', 'MatMul', 'Reshape'] },
  { file: 'pytorch_super_resolution.onnx', ops: ['Conv', 'Relu', 'DepthToSpace'] },
  { file: 'tiny_distilbert_cls.onnx', ops: ['Gather', 'MatMul', 'Softmax', 'Erf'] },
  { file: 'Ultraface_version-RFB-320.onnx', ops: ['Conv', 'Concat', 'Softmax'] },
  { file: 'FastestDet.onnx', ops: ['Conv', 'Resize', 'Sigmoid'] },
];

/** Random feeds for a model's (non-initializer) inputs; symbolic dims become 1 (batch) or 8 (others). */
function randomFeeds(model: ModelProto, seed: number): Record<string, ort.Tensor> {
  const rand = rng(seed);
  const initNames = new Set(model.graph.initializer.map((t) => t.name));
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of model.graph.input) {
    if (initNames.has(input.name)) continue;
    const tt = input.type?.tensorType;
    if (!tt?.shape) throw new Error(`input ${input.name} has no tensor shape`);
    const dims = tt.shape.dim.map((d, i) => d.dimValue ?? (i === 0 ? 1 : 8));
    const n = dims.reduce((a, b) => a * b, 1);
    if (tt.elemType === DataType.FLOAT) {
      feeds[input.name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: n }, () => rand()),
        dims,
      );
    } else if (tt.elemType === DataType.INT64) {
      const mask = /mask/i.test(input.name);
      const values = BigInt64Array.from({ length: n }, () => (mask ? 1n : BigInt(Math.floor(rand() * 1000))));
      feeds[input.name] = new ort.Tensor('int64', values, dims);
    } else {
      throw new Error(`unsupported input type ${tt.elemType} for ${input.name}`);
    }
  }
  return feeds;
}

async function runModel(
  source: string | Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  const session =
    typeof source === 'string'
      ? await ort.InferenceSession.create(source)
      : await ort.InferenceSession.create(source);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function expectClose(actual: ort.Tensor, expected: ort.Tensor, tolerance: number): void {
  expect(actual.dims).toEqual(expected.dims);
  expect(actual.type).toBe(expected.type);
  const a = actual.data as Float32Array;
  const b = expected.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(Number(a[i]) - Number(b[i])));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

describe.skipIf(!haveModels)('third-party models', () => {
  for (const { file, ops } of THIRD_PARTY) {
    const modelPath = path.join(MODEL_DIR, file);
    it.skipIf(!existsSync(modelPath))(
      `${file}: decodes, matches onnxruntime, re-encodes to an equivalent model`,
      async () => {
        const original = readFileSync(modelPath);
        const model = decodeModel(original);

        expect(model.irVersion).toBeGreaterThan(0);
        expect(model.opsetImport.length).toBeGreaterThan(0);
        expect(model.graph.node.length).toBeGreaterThan(0);
        const opTypes = new Set(model.graph.node.map((n) => n.opType));
        for (const op of ops) expect(opTypes, `op ${op}`).toContain(op);

        const session = await ort.InferenceSession.create(modelPath);
        const initNames = new Set(model.graph.initializer.map((t) => t.name));
        // Older IR versions also list initializers as graph inputs; onnxruntime reports only the real inputs.
        expect(model.graph.input.map((i) => i.name).filter((n) => !initNames.has(n))).toEqual(
          session.inputNames,
        );
        expect(model.graph.output.map((o) => o.name)).toEqual(session.outputNames);
        await session.release();

        const reencoded = encodeModel(model);
        expect(decodeModel(reencoded)).toEqual(model);

        const feeds = randomFeeds(model, 1234);
        const expected = await runModel(modelPath, feeds);
        const actual = await runModel(reencoded, feeds);
        expect(Object.keys(actual)).toEqual(Object.keys(expected));
        for (const name of Object.keys(expected)) expectClose(actual[name], expected[name], 1e-6);
      },
    );
  }

  it.skipIf(!existsSync(path.join(MODEL_DIR, 'mnist.onnx')))(
    'mnist.onnx: corrupted copies never throw anything but OnnxFormatError',
    () => {
      const original = readFileSync(path.join(MODEL_DIR, 'mnist.onnx'));
      // Cuts well inside the graph (field 7 spans nearly the whole file) must fail.
      for (let i = 1; i < 100; i++) {
        const cut = Math.floor((original.length * (10 + (i * 80) / 100)) / 100);
        expect(() => decodeModel(original.subarray(0, cut))).toThrow(OnnxFormatError);
      }
      const rand = rng(7);
      for (let round = 0; round < 200; round++) {
        const copy = Uint8Array.from(original);
        for (let k = 0; k < 4; k++) copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256);
        try {
          decodeModel(copy);
        } catch (err) {
          expect(err).toBeInstanceOf(OnnxFormatError);
        }
      }
    },
  );
});
