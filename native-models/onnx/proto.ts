/**
 * Hand-written protobuf codec for the parts of onnx/onnx.proto (IR version 10) modelled in
 * `proto-types.ts`.
 *
 * Decoding is zero-copy for bulk bytes: `TensorProto.rawData`, `stringData` and attribute `s`/`strings`
 * are views into the input buffer. Unknown fields of every wire type except groups are skipped. Encoding
 * runs the same writer functions twice: once with a {@link ProtoSizer} that computes every nested
 * message's length, then with a {@link ProtoWriter} that fills a single preallocated buffer.
 *
 * Wire format reference: https://protobuf.dev/programming-guides/encoding/
 */
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  OperatorSetIdProto,
  StringStringEntryProto,
  TensorProto,
  TensorShapeDimension,
  TypeProto,
  ValueInfoProto,
} from './proto-types.js';
import { AttributeType } from './proto-types.js';

/** Thrown for input that is not a well-formed ONNX protobuf (truncated, corrupt, unsupported encoding). */
export class OnnxFormatError extends Error {
  /** Byte offset in the decoded buffer where the problem was found (-1 if unknown). */
  readonly offset: number;

  constructor(message: string, offset = -1, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OnnxFormatError';
    this.offset = offset;
  }
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const WIRE_NAMES = ['varint', 'fixed64', 'length-delimited', 'group start', 'group end', 'fixed32'];

/** Same limit as protobuf's default recursion limit; guards against stack overflow on hostile input. */
const MAX_NESTING = 100;
/** Protobuf messages (and ONNX files without external data) cannot exceed 2 GiB. */
const MAX_MESSAGE_BYTES = 0x7fffffff;
const TWO_POW_32 = 2 ** 32;
const TWO_POW_63 = 2 ** 63;

const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------------------

/**
 * Cursor over protobuf bytes. `end` is the end of the message being read; nested messages narrow it.
 * All reads check bounds against `end` and fail with an {@link OnnxFormatError} naming the byte offset and
 * the message being read.
 */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos = 0;
  end: number;
  /** Field number of the last tag read by {@link readTag}. */
  field = 0;
  /** Wire type of the last tag read by {@link readTag}. */
  wire = 0;
  private tagPos = 0;
  private lo = 0;
  private hi = 0;
  private readonly view: DataView;
  private readonly path: string[];

  constructor(buf: Uint8Array, messageName: string) {
    this.buf = buf;
    this.end = buf.length;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.path = [messageName];
  }

  /** Throws an OnnxFormatError: "corrupt ONNX: <what> at byte <at> while reading <message> (<path>)". */
  fail(what: string, at = this.pos): never {
    const where = this.path.length > 1 ? ` (${this.path.join(' > ')})` : '';
    throw new OnnxFormatError(
      `corrupt ONNX: ${what} at byte ${at} while reading ${this.path[this.path.length - 1]}${where}`,
      at,
    );
  }

  /** Reads a varint into the 32-bit halves `lo`/`hi`. */
  private readVarintParts(): void {
    const buf = this.buf;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    if (pos < end && buf[pos] < 0x80) {
      this.lo = buf[pos];
      this.hi = 0;
      this.pos = pos + 1;
      return;
    }
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) this.fail('truncated varint', start);
      b = buf[pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        this.pos = pos;
        return;
      }
    }
    if (pos >= end) this.fail('truncated varint', start);
    b = buf[pos++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) this.fail('varint longer than 10 bytes', start);
        if (pos >= end) this.fail('truncated varint', start);
        b = buf[pos++];
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    this.pos = pos;
  }

  /** Reads an unsigned varint as a number (exact up to 2^53). */
  readVarint(): number {
    this.readVarintParts();
    return this.hi * TWO_POW_32 + this.lo;
  }

  /**
   * Reads a field tag and returns its field number; the wire type is left in `wire`. Rejects field number
   * 0, groups (wire types 3 and 4) and the undefined wire types 6 and 7.
   */
  readTag(): number {
    const at = this.pos;
    this.readVarintParts();
    const tag = this.lo;
    const field = tag >>> 3;
    const wire = tag & 7;
    if (this.hi !== 0 || field === 0) this.fail(`invalid field tag ${this.hi * TWO_POW_32 + tag}`, at);
    if (wire === 3 || wire === 4) this.fail(`unsupported group (wire type ${wire}) in field ${field}`, at);
    if (wire > 5) this.fail(`invalid wire type ${wire} in field ${field}`, at);
    this.tagPos = at;
    this.field = field;
    this.wire = wire;
    return field;
  }

  private expectWire(wire: number): void {
    if (this.wire !== wire) {
      this.fail(
        `field ${this.field} has wire type ${this.wire} (${WIRE_NAMES[this.wire]}), expected ${wire} (${WIRE_NAMES[wire]})`,
        this.tagPos,
      );
    }
  }

  /** Reads a length prefix and checks that that many bytes remain in the current message. */
  private readLength(): number {
    const at = this.pos;
    const len = this.readVarint();
    const remaining = this.end - this.pos;
    if (len > remaining) this.fail(`length ${len} exceeds the ${remaining} bytes left`, at);
    return len;
  }

  /** Skips the value of the field whose tag was just read. */
  skip(): void {
    switch (this.wire) {
      case WIRE_VARINT:
        this.readVarintParts();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN: {
        const len = this.readLength(); // read first: `this.pos += ...` would use the pos before the length
        this.pos += len;
        return;
      }
      case WIRE_I32:
        this.advance(4);
        return;
      default:
        this.fail(`cannot skip wire type ${this.wire}`, this.tagPos);
    }
  }

  private advance(n: number): number {
    const at = this.pos;
    if (this.end - at < n) this.fail(`truncated ${n}-byte value`, at);
    this.pos = at + n;
    return at;
  }

  /** Length-delimited bytes as a view into the input (no copy). */
  readBytes(): Uint8Array {
    this.expectWire(WIRE_LEN);
    const len = this.readLength();
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  readString(): string {
    this.expectWire(WIRE_LEN);
    const len = this.readLength();
    const start = this.pos;
    this.pos = start + len;
    return decodeUtf8(this.buf, start, start + len);
  }

  /** int32 / enum field. */
  readInt32(): number {
    this.expectWire(WIRE_VARINT);
    this.readVarintParts();
    return this.lo | 0;
  }

  /** int64 field as a number (exact within ±2^53). */
  readInt64(): number {
    this.expectWire(WIRE_VARINT);
    return this.int64Value();
  }

  private int64Value(): number {
    this.readVarintParts();
    const hi = this.hi;
    if (hi & 0x80000000) return -((~hi >>> 0) * TWO_POW_32 + (~this.lo >>> 0) + 1);
    return hi * TWO_POW_32 + this.lo;
  }

  private bigValue(unsigned: boolean): bigint {
    this.readVarintParts();
    const v = (BigInt(this.hi) << 32n) | BigInt(this.lo);
    return unsigned ? v : BigInt.asIntN(64, v);
  }

  /** fixed32 float field. */
  readFloat(): number {
    this.expectWire(WIRE_I32);
    return this.view.getFloat32(this.advance(4), true);
  }

  /** Repeated int64 (packed or not) appended to `out` as numbers. */
  readInt64s(out: number[]): void {
    this.readPackedVarints(() => out.push(this.int64Value()));
  }

  /** Repeated int32 (packed or not) appended to `out`. */
  readInt32s(out: number[]): void {
    this.readPackedVarints(() => {
      this.readVarintParts();
      out.push(this.lo | 0);
    });
  }

  /** Repeated int64 or uint64 (packed or not) appended to `out` as bigints. */
  readBigInts(out: bigint[], unsigned: boolean): void {
    this.readPackedVarints(() => out.push(this.bigValue(unsigned)));
  }

  private readPackedVarints(readOne: () => void): void {
    if (this.wire === WIRE_VARINT) {
      readOne();
      return;
    }
    this.expectWire(WIRE_LEN);
    const len = this.readLength();
    const outerEnd = this.end;
    this.end = this.pos + len;
    while (this.pos < this.end) readOne();
    this.end = outerEnd;
  }

  /** Repeated float (packed or not) appended to `out`. */
  readFloats(out: number[]): void {
    if (this.wire === WIRE_I32) {
      out.push(this.readFloat());
      return;
    }
    const start = this.readPackedFixed(4);
    for (let p = start; p < this.pos; p += 4) out.push(this.view.getFloat32(p, true));
  }

  /** Repeated double (packed or not) appended to `out`. */
  readDoubles(out: number[]): void {
    if (this.wire === WIRE_I64) {
      out.push(this.view.getFloat64(this.advance(8), true));
      return;
    }
    const start = this.readPackedFixed(8);
    for (let p = start; p < this.pos; p += 8) out.push(this.view.getFloat64(p, true));
  }

  /** Consumes a packed run of fixed-size values and returns its start offset. */
  private readPackedFixed(size: number): number {
    this.expectWire(WIRE_LEN);
    const len = this.readLength();
    if (len % size !== 0) this.fail(`packed ${size * 8}-bit values have length ${len}`, this.pos);
    const start = this.pos;
    this.pos = start + len;
    return start;
  }

  /** Reads an embedded message with `decode`, which must loop `while (r.pos < r.end)`. */
  readMessage<T>(name: string, decode: (r: ProtoReader) => T): T {
    this.expectWire(WIRE_LEN);
    const len = this.readLength();
    if (this.path.length >= MAX_NESTING) this.fail(`messages nested more than ${MAX_NESTING} deep`);
    const outerEnd = this.end;
    this.end = this.pos + len;
    this.path.push(name);
    const value = decode(this);
    this.path.pop();
    this.end = outerEnd;
    return value;
  }
}

function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i];
      if (c >= 0x80) return utf8Decoder.decode(buf.subarray(start, end));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8Decoder.decode(buf.subarray(start, end));
}

function emptyGraph(): GraphProto {
  return { name: '', node: [], initializer: [], input: [], output: [], valueInfo: [] };
}

function decodeModelBody(r: ProtoReader): ModelProto {
  const m: ModelProto = {
    irVersion: 0,
    opsetImport: [],
    producerName: '',
    producerVersion: '',
    domain: '',
    modelVersion: 0,
    docString: '',
    graph: emptyGraph(),
    metadataProps: [],
  };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        m.irVersion = r.readInt64();
        break;
      case 2:
        m.producerName = r.readString();
        break;
      case 3:
        m.producerVersion = r.readString();
        break;
      case 4:
        m.domain = r.readString();
        break;
      case 5:
        m.modelVersion = r.readInt64();
        break;
      case 6:
        m.docString = r.readString();
        break;
      case 7:
        m.graph = r.readMessage('GraphProto', decodeGraph);
        break;
      case 8:
        m.opsetImport.push(r.readMessage('OperatorSetIdProto', decodeOpset));
        break;
      case 14:
        m.metadataProps.push(r.readMessage('StringStringEntryProto', decodeEntry));
        break;
      default:
        r.skip(); // training_info, functions, configuration, ...
    }
  }
  return m;
}

function decodeOpset(r: ProtoReader): OperatorSetIdProto {
  const o: OperatorSetIdProto = { domain: '', version: 0 };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        o.domain = r.readString();
        break;
      case 2:
        o.version = r.readInt64();
        break;
      default:
        r.skip();
    }
  }
  return o;
}

function decodeEntry(r: ProtoReader): StringStringEntryProto {
  const e: StringStringEntryProto = { key: '', value: '' };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        e.key = r.readString();
        break;
      case 2:
        e.value = r.readString();
        break;
      default:
        r.skip();
    }
  }
  return e;
}

function decodeGraph(r: ProtoReader): GraphProto {
  const g = emptyGraph();
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        g.node.push(r.readMessage('NodeProto', decodeNode));
        break;
      case 2:
        g.name = r.readString();
        break;
      case 5:
        g.initializer.push(r.readMessage('TensorProto', decodeTensorBody));
        break;
      case 10:
        g.docString = r.readString();
        break;
      case 11:
        g.input.push(r.readMessage('ValueInfoProto', decodeValueInfo));
        break;
      case 12:
        g.output.push(r.readMessage('ValueInfoProto', decodeValueInfo));
        break;
      case 13:
        g.valueInfo.push(r.readMessage('ValueInfoProto', decodeValueInfo));
        break;
      default:
        r.skip(); // sparse_initializer, quantization_annotation, metadata_props
    }
  }
  return g;
}

function decodeNode(r: ProtoReader): NodeProto {
  const n: NodeProto = { input: [], output: [], name: '', opType: '', domain: '', attribute: [] };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        n.input.push(r.readString());
        break;
      case 2:
        n.output.push(r.readString());
        break;
      case 3:
        n.name = r.readString();
        break;
      case 4:
        n.opType = r.readString();
        break;
      case 5:
        n.attribute.push(r.readMessage('AttributeProto', decodeAttribute));
        break;
      case 6:
        n.docString = r.readString();
        break;
      case 7:
        n.domain = r.readString();
        break;
      default:
        r.skip(); // overload, metadata_props, ...
    }
  }
  return n;
}

function decodeAttribute(r: ProtoReader): AttributeProto {
  const a: AttributeProto = { name: '', type: 0 };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        a.name = r.readString();
        break;
      case 2:
        a.f = r.readFloat();
        break;
      case 3:
        a.i = r.readInt64();
        break;
      case 4:
        a.s = r.readBytes();
        break;
      case 5:
        a.t = r.readMessage('TensorProto', decodeTensorBody);
        break;
      case 6:
        a.g = r.readMessage('GraphProto', decodeGraph);
        break;
      case 7:
        r.readFloats((a.floats ??= []));
        break;
      case 8:
        r.readInt64s((a.ints ??= []));
        break;
      case 9:
        (a.strings ??= []).push(r.readBytes());
        break;
      case 10:
        (a.tensors ??= []).push(r.readMessage('TensorProto', decodeTensorBody));
        break;
      case 11:
        (a.graphs ??= []).push(r.readMessage('GraphProto', decodeGraph));
        break;
      case 13:
        a.docString = r.readString();
        break;
      case 20:
        a.type = r.readInt32();
        break;
      default:
        r.skip(); // ref_attr_name, sparse_tensor(s), tp, type_protos
    }
  }
  // proto2 defaults for the value field the type names, so callers can rely on it being present.
  switch (a.type) {
    case AttributeType.FLOAT:
      a.f ??= 0;
      break;
    case AttributeType.INT:
      a.i ??= 0;
      break;
    case AttributeType.STRING:
      a.s ??= new Uint8Array(0);
      break;
    case AttributeType.FLOATS:
      a.floats ??= [];
      break;
    case AttributeType.INTS:
      a.ints ??= [];
      break;
    case AttributeType.STRINGS:
      a.strings ??= [];
      break;
    case AttributeType.TENSORS:
      a.tensors ??= [];
      break;
    case AttributeType.GRAPHS:
      a.graphs ??= [];
      break;
  }
  return a;
}

function decodeTensorBody(r: ProtoReader): TensorProto {
  const t: TensorProto = { name: '', dims: [], dataType: 0 };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        r.readInt64s(t.dims);
        break;
      case 2:
        t.dataType = r.readInt32();
        break;
      case 4:
        r.readFloats((t.floatData ??= []));
        break;
      case 5:
        r.readInt32s((t.int32Data ??= []));
        break;
      case 6:
        (t.stringData ??= []).push(r.readBytes());
        break;
      case 7:
        r.readBigInts((t.int64Data ??= []), false);
        break;
      case 8:
        t.name = r.readString();
        break;
      case 9:
        t.rawData = r.readBytes();
        break;
      case 10:
        r.readDoubles((t.doubleData ??= []));
        break;
      case 11:
        r.readBigInts((t.uint64Data ??= []), true);
        break;
      case 12:
        t.docString = r.readString();
        break;
      case 13:
        (t.externalData ??= []).push(r.readMessage('StringStringEntryProto', decodeEntry));
        break;
      case 14:
        t.dataLocation = r.readInt32();
        break;
      default:
        r.skip(); // segment, metadata_props
    }
  }
  return t;
}

function decodeValueInfo(r: ProtoReader): ValueInfoProto {
  const v: ValueInfoProto = { name: '' };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        v.name = r.readString();
        break;
      case 2:
        v.type = r.readMessage('TypeProto', decodeType);
        break;
      case 3:
        v.docString = r.readString();
        break;
      default:
        r.skip();
    }
  }
  return v;
}

function decodeType(r: ProtoReader): TypeProto {
  const t: TypeProto = {};
  while (r.pos < r.end) {
    if (r.readTag() === 1) t.tensorType = r.readMessage('TypeProto.Tensor', decodeTensorType);
    else r.skip(); // sequence, map, optional, sparse tensor types; denotation
  }
  return t;
}

function decodeTensorType(r: ProtoReader): NonNullable<TypeProto['tensorType']> {
  const tt: NonNullable<TypeProto['tensorType']> = { elemType: 0 };
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        tt.elemType = r.readInt32();
        break;
      case 2:
        tt.shape = r.readMessage('TensorShapeProto', decodeShape);
        break;
      default:
        r.skip();
    }
  }
  return tt;
}

function decodeShape(r: ProtoReader): { dim: TensorShapeDimension[] } {
  const dim: TensorShapeDimension[] = [];
  while (r.pos < r.end) {
    if (r.readTag() === 1) dim.push(r.readMessage('TensorShapeProto.Dimension', decodeDimension));
    else r.skip();
  }
  return { dim };
}

function decodeDimension(r: ProtoReader): TensorShapeDimension {
  const d: TensorShapeDimension = {};
  while (r.pos < r.end) {
    switch (r.readTag()) {
      case 1:
        d.dimValue = r.readInt64();
        break;
      case 2:
        d.dimParam = r.readString();
        break;
      default:
        r.skip(); // denotation
    }
  }
  return d;
}

function plainBytes(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected the ONNX bytes as a Uint8Array');
  // A Buffer's subarray() returns Buffers; hand out plain Uint8Array views instead.
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes a serialized ONNX ModelProto. Bulk bytes (`rawData`, string data) are views into `bytes`, so keep
 * `bytes` unmodified while the model is in use. Throws {@link OnnxFormatError} on malformed input.
 *
 * @example
 * const model = decodeModel(await readFile('mnist.onnx'));
 * console.log(model.graph.node.map((n) => n.opType));
 */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return decodeModelBody(new ProtoReader(plainBytes(bytes), 'ModelProto'));
}

/**
 * Decodes a serialized TensorProto (e.g. an `onnx.save_tensor` `.pb` file). `rawData` is a view into `bytes`.
 *
 * @example
 * const t = decodeTensor(await readFile('input_0.pb'));
 * const values = new Float32Array(t.rawData!.slice().buffer);
 */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  return decodeTensorBody(new ProtoReader(plainBytes(bytes), 'TensorProto'));
}

// ---------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------

/**
 * What the message writers below emit to. {@link ProtoSizer} only counts bytes (and records each nested
 * message's length); {@link ProtoWriter} writes them. Both must see the same calls in the same order.
 */
export interface ProtoSink {
  int64(field: number, value: number): void;
  int32(field: number, value: number): void;
  float(field: number, value: number): void;
  string(field: number, value: string): void;
  bytes(field: number, value: Uint8Array): void;
  packedInt64(field: number, values: readonly number[]): void;
  packedInt32(field: number, values: readonly number[]): void;
  packedBigInt(field: number, values: readonly bigint[], unsigned: boolean): void;
  packedFloat(field: number, values: readonly number[]): void;
  packedDouble(field: number, values: readonly number[]): void;
  message(field: number, body: () => void): void;
}

// Result slots of the int64 splitters below (avoids allocating a pair per value).
let partLo = 0;
let partHi = 0;

/** Splits an integer-valued number into two's-complement 64-bit halves, saturating at the int64 range. */
function splitInt64(value: number, field: number): void {
  if (!Number.isInteger(value)) {
    throw new TypeError(`cannot encode ${value} as an int64 (protobuf field ${field})`);
  }
  if (value >= TWO_POW_63) {
    // 2^63 is what INT64_MAX becomes as a number; write INT64_MAX back.
    partLo = 0xffffffff;
    partHi = 0x7fffffff;
  } else if (value <= -TWO_POW_63) {
    partLo = 0;
    partHi = 0x80000000;
  } else {
    const hi = Math.floor(value / TWO_POW_32);
    partLo = value - hi * TWO_POW_32;
    partHi = hi >>> 0;
  }
}

function splitInt32(value: number, field: number): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new TypeError(`cannot encode ${value} as an int32 (protobuf field ${field})`);
  }
  partLo = value >>> 0;
  partHi = value < 0 ? 0xffffffff : 0;
}

const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

function splitBigInt(value: bigint, unsigned: boolean, field: number): void {
  if (unsigned ? value < 0n || value > UINT64_MAX : value < INT64_MIN || value >= -INT64_MIN) {
    throw new TypeError(
      `cannot encode ${value} as ${unsigned ? 'a uint64' : 'an int64'} (protobuf field ${field})`,
    );
  }
  const v = BigInt.asUintN(64, value);
  partLo = Number(v & 0xffffffffn);
  partHi = Number(v >> 32n);
}

function varintSize32(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

function varintSize64(lo: number, hi: number): number {
  return hi === 0 ? varintSize32(lo) : Math.ceil((64 - Math.clz32(hi)) / 7);
}

function tagSize(field: number): number {
  return varintSize32(field << 3);
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if ((c & 0xfc00) === 0xd800 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3; // BMP character, or a lone surrogate that TextEncoder writes as U+FFFD
  }
  return n;
}

function packedVarintSize(values: readonly number[], field: number, split: typeof splitInt64): number {
  let n = 0;
  for (const v of values) {
    split(v, field);
    n += varintSize64(partLo, partHi);
  }
  return n;
}

function packedBigIntSize(values: readonly bigint[], unsigned: boolean, field: number): number {
  let n = 0;
  for (const v of values) {
    splitBigInt(v, unsigned, field);
    n += varintSize64(partLo, partHi);
  }
  return n;
}

/** First encoding pass: computes the total size and the length of every nested message, in call order. */
export class ProtoSizer implements ProtoSink {
  size = 0;
  readonly sizes: number[] = [];

  int64(field: number, value: number): void {
    splitInt64(value, field);
    this.size += tagSize(field) + varintSize64(partLo, partHi);
  }
  int32(field: number, value: number): void {
    splitInt32(value, field);
    this.size += tagSize(field) + varintSize64(partLo, partHi);
  }
  float(field: number): void {
    this.size += tagSize(field) + 4;
  }
  string(field: number, value: string): void {
    this.lengthDelimited(field, utf8Length(value));
  }
  bytes(field: number, value: Uint8Array): void {
    this.lengthDelimited(field, value.length);
  }
  packedInt64(field: number, values: readonly number[]): void {
    if (values.length > 0) this.lengthDelimited(field, packedVarintSize(values, field, splitInt64));
  }
  packedInt32(field: number, values: readonly number[]): void {
    if (values.length > 0) this.lengthDelimited(field, packedVarintSize(values, field, splitInt32));
  }
  packedBigInt(field: number, values: readonly bigint[], unsigned: boolean): void {
    if (values.length > 0) this.lengthDelimited(field, packedBigIntSize(values, unsigned, field));
  }
  packedFloat(field: number, values: readonly number[]): void {
    if (values.length > 0) this.lengthDelimited(field, values.length * 4);
  }
  packedDouble(field: number, values: readonly number[]): void {
    if (values.length > 0) this.lengthDelimited(field, values.length * 8);
  }
  message(field: number, body: () => void): void {
    const slot = this.sizes.length;
    this.sizes.push(0);
    const start = this.size;
    body();
    const len = this.size - start;
    this.sizes[slot] = len;
    this.size += tagSize(field) + varintSize32(len);
  }
  private lengthDelimited(field: number, len: number): void {
    this.size += tagSize(field) + varintSize32(len) + len;
  }
}

/** Second encoding pass: writes into a preallocated buffer using the lengths a {@link ProtoSizer} recorded. */
export class ProtoWriter implements ProtoSink {
  readonly buf: Uint8Array;
  pos = 0;
  private slot = 0;
  private readonly view: DataView;
  private readonly sizes: readonly number[];

  constructor(buf: Uint8Array, sizes: readonly number[]) {
    this.buf = buf;
    this.sizes = sizes;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private tag(field: number, wire: number): void {
    this.varint32(((field << 3) | wire) >>> 0);
  }
  private varint32(v: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
  }
  private varint64(lo: number, hi: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (hi !== 0 || lo > 0x7f) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[pos++] = lo;
    this.pos = pos;
  }

  int64(field: number, value: number): void {
    splitInt64(value, field);
    this.tag(field, WIRE_VARINT);
    this.varint64(partLo, partHi);
  }
  int32(field: number, value: number): void {
    splitInt32(value, field);
    this.tag(field, WIRE_VARINT);
    this.varint64(partLo, partHi);
  }
  float(field: number, value: number): void {
    this.tag(field, WIRE_I32);
    this.view.setFloat32(this.pos, value, true);
    this.pos += 4;
  }
  string(field: number, value: string): void {
    const len = utf8Length(value);
    this.tag(field, WIRE_LEN);
    this.varint32(len);
    if (len === value.length) {
      // ASCII only: one byte per UTF-16 unit.
      const buf = this.buf;
      const pos = this.pos;
      for (let i = 0; i < len; i++) buf[pos + i] = value.charCodeAt(i);
    } else {
      utf8Encoder.encodeInto(value, this.buf.subarray(this.pos, this.pos + len));
    }
    this.pos += len;
  }
  bytes(field: number, value: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint32(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }
  packedInt64(field: number, values: readonly number[]): void {
    this.packedVarints(field, values, splitInt64);
  }
  packedInt32(field: number, values: readonly number[]): void {
    this.packedVarints(field, values, splitInt32);
  }
  private packedVarints(field: number, values: readonly number[], split: typeof splitInt64): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint32(packedVarintSize(values, field, split));
    for (const v of values) {
      split(v, field);
      this.varint64(partLo, partHi);
    }
  }
  packedBigInt(field: number, values: readonly bigint[], unsigned: boolean): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint32(packedBigIntSize(values, unsigned, field));
    for (const v of values) {
      splitBigInt(v, unsigned, field);
      this.varint64(partLo, partHi);
    }
  }
  packedFloat(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint32(values.length * 4);
    const view = this.view;
    let pos = this.pos;
    for (const v of values) {
      view.setFloat32(pos, v, true);
      pos += 4;
    }
    this.pos = pos;
  }
  packedDouble(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint32(values.length * 8);
    const view = this.view;
    let pos = this.pos;
    for (const v of values) {
      view.setFloat64(pos, v, true);
      pos += 8;
    }
    this.pos = pos;
  }
  message(field: number, body: () => void): void {
    const len = this.sizes[this.slot++];
    this.tag(field, WIRE_LEN);
    this.varint32(len);
    const start = this.pos;
    body();
    if (this.pos - start !== len) {
      throw new Error(
        `internal error: field ${field} message was sized as ${len} bytes but ${this.pos - start} were written ` +
          '(was the model modified during encoding?)',
      );
    }
  }
}

function writeModel(o: ProtoSink, m: ModelProto): void {
  o.int64(1, m.irVersion);
  if (m.producerName) o.string(2, m.producerName);
  if (m.producerVersion) o.string(3, m.producerVersion);
  if (m.domain) o.string(4, m.domain);
  if (m.modelVersion) o.int64(5, m.modelVersion);
  if (m.docString) o.string(6, m.docString);
  o.message(7, () => writeGraph(o, m.graph));
  for (const op of m.opsetImport) o.message(8, () => writeOpset(o, op));
  for (const e of m.metadataProps) o.message(14, () => writeEntry(o, e));
}

function writeOpset(o: ProtoSink, op: OperatorSetIdProto): void {
  if (op.domain) o.string(1, op.domain);
  o.int64(2, op.version);
}

function writeEntry(o: ProtoSink, e: StringStringEntryProto): void {
  o.string(1, e.key);
  o.string(2, e.value);
}

function writeGraph(o: ProtoSink, g: GraphProto): void {
  for (const n of g.node) o.message(1, () => writeNode(o, n));
  if (g.name) o.string(2, g.name);
  for (const t of g.initializer) o.message(5, () => writeTensor(o, t));
  if (g.docString !== undefined) o.string(10, g.docString);
  for (const v of g.input) o.message(11, () => writeValueInfo(o, v));
  for (const v of g.output) o.message(12, () => writeValueInfo(o, v));
  for (const v of g.valueInfo) o.message(13, () => writeValueInfo(o, v));
}

function writeNode(o: ProtoSink, n: NodeProto): void {
  for (const s of n.input) o.string(1, s);
  for (const s of n.output) o.string(2, s);
  if (n.name) o.string(3, n.name);
  o.string(4, n.opType);
  for (const a of n.attribute) o.message(5, () => writeAttribute(o, a));
  if (n.docString !== undefined) o.string(6, n.docString);
  if (n.domain) o.string(7, n.domain);
}

function writeAttribute(o: ProtoSink, a: AttributeProto): void {
  o.string(1, a.name);
  if (a.f !== undefined) o.float(2, a.f);
  if (a.i !== undefined) o.int64(3, a.i);
  if (a.s !== undefined) o.bytes(4, a.s);
  const t = a.t;
  if (t !== undefined) o.message(5, () => writeTensor(o, t));
  const g = a.g;
  if (g !== undefined) o.message(6, () => writeGraph(o, g));
  if (a.floats !== undefined) o.packedFloat(7, a.floats);
  if (a.ints !== undefined) o.packedInt64(8, a.ints);
  for (const s of a.strings ?? []) o.bytes(9, s);
  for (const x of a.tensors ?? []) o.message(10, () => writeTensor(o, x));
  for (const x of a.graphs ?? []) o.message(11, () => writeGraph(o, x));
  if (a.docString !== undefined) o.string(13, a.docString);
  o.int32(20, a.type);
}

function writeTensor(o: ProtoSink, t: TensorProto): void {
  o.packedInt64(1, t.dims);
  o.int32(2, t.dataType);
  if (t.floatData !== undefined) o.packedFloat(4, t.floatData);
  if (t.int32Data !== undefined) o.packedInt32(5, t.int32Data);
  for (const s of t.stringData ?? []) o.bytes(6, s);
  if (t.int64Data !== undefined) o.packedBigInt(7, t.int64Data, false);
  if (t.name) o.string(8, t.name);
  if (t.rawData !== undefined) o.bytes(9, t.rawData);
  if (t.doubleData !== undefined) o.packedDouble(10, t.doubleData);
  if (t.uint64Data !== undefined) o.packedBigInt(11, t.uint64Data, true);
  if (t.docString !== undefined) o.string(12, t.docString);
  for (const e of t.externalData ?? []) o.message(13, () => writeEntry(o, e));
  if (t.dataLocation !== undefined) o.int32(14, t.dataLocation);
}

function writeValueInfo(o: ProtoSink, v: ValueInfoProto): void {
  o.string(1, v.name);
  const type = v.type;
  if (type !== undefined) o.message(2, () => writeType(o, type));
  if (v.docString !== undefined) o.string(3, v.docString);
}

function writeType(o: ProtoSink, type: TypeProto): void {
  const tt = type.tensorType;
  if (tt === undefined) return;
  o.message(1, () => {
    o.int32(1, tt.elemType);
    const shape = tt.shape;
    if (shape !== undefined)
      o.message(2, () => shape.dim.forEach((d) => o.message(1, () => writeDimension(o, d))));
  });
}

function writeDimension(o: ProtoSink, d: TensorShapeDimension): void {
  if (d.dimValue !== undefined) o.int64(1, d.dimValue);
  if (d.dimParam !== undefined) o.string(2, d.dimParam);
}

function encodeWith<T>(value: T, write: (o: ProtoSink, value: T) => void, what: string): Uint8Array {
  const sizer = new ProtoSizer();
  write(sizer, value);
  if (sizer.size > MAX_MESSAGE_BYTES) {
    throw new Error(
      `the encoded ${what} would be ${sizer.size} bytes, over protobuf's 2 GiB limit; ` +
        'store the large tensors as external data (writeModelFile with externalDataFile)',
    );
  }
  const out = new Uint8Array(sizer.size);
  const writer = new ProtoWriter(out, sizer.sizes);
  write(writer, value);
  if (writer.pos !== out.length) {
    throw new Error(
      `internal error: ${what} was sized as ${out.length} bytes but ${writer.pos} were written`,
    );
  }
  return out;
}

/**
 * Serializes a ModelProto to protobuf bytes, with packed repeated scalars. Sizes are computed first, then
 * everything (including `rawData`) is copied once into a single buffer. Throws a TypeError for values that
 * cannot be encoded (e.g. a non-integer dim) and an Error when the result would exceed 2 GiB.
 *
 * @example
 * const bytes = encodeModel(model);
 * const session = await ort.InferenceSession.create(bytes);
 */
export function encodeModel(model: ModelProto): Uint8Array {
  return encodeWith(model, writeModel, 'ModelProto');
}

/**
 * Serializes a single TensorProto (the format of ONNX test-data `.pb` files).
 *
 * @example
 * const bytes = encodeTensor({ name: 'x', dims: [2], dataType: DataType.FLOAT, floatData: [1, 2] });
 */
export function encodeTensor(tensor: TensorProto): Uint8Array {
  return encodeWith(tensor, writeTensor, 'TensorProto');
}
