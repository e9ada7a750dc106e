/**
 * A typed, fixed-shape ONNX graph IR.
 *
 * Every value carries a static shape and a dtype, inferred when a node is added, so that
 * errors surface where a graph is built rather than inside onnxruntime. Small integer
 * constants (shapes, axes, slice bounds) are tracked so shape inference and the autodiff
 * engine can read them. The node list is a tape in topological order: the autodiff pass
 * walks it backwards and appends gradient nodes to the same graph.
 *
 * @example
 * const g = new Graph({ name: 'affine' });
 * const x = g.input('x', [2, 3]);
 * const w = g.initializer('w', new Float32Array(12), [3, 4]);
 * g.output(g.op('MatMul', [x, w]), 'y');
 * const bytes = g.toBytes();
 */
import { AttributeType, type AttributeProto, type ModelProto, type TensorProto } from './proto-types.js';
import {
  type AnyTypedArray,
  type DType,
  DTYPE_CODE,
  dtypeFromCode,
  float32ToFloat16Bits,
  fromFloat16,
  numel,
  toFloat16,
} from './dtype.js';
import { inferShapes } from './shape-inference.js';
import { encodeModel } from './proto.js';

/** The project-wide opset of the default ONNX domain, and the IR version written. */
export const OPSET = 21;
export const IR_VERSION = 10;

export interface ValueMeta {
  shape: number[];
  dtype: DType;
}

/** A float attribute; plain numbers become INT attributes unless the attribute is known to be a float. */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export function float(value: number): FloatAttr {
  return new FloatAttr(value);
}

export type AttrValue =
  number | string | FloatAttr | readonly number[] | readonly string[] | { floats: number[] };
export type Attrs = Record<string, AttrValue | undefined>;

export interface ModelOptions {
  producerName?: string;
  docString?: string;
  /**
   * Symbolic dimensions of graph inputs/outputs, e.g. `{ sample: { 0: 'batch', 2: 'height' } }`.
   * The IR infers with the example sizes; the exported model accepts any size on these axes,
   * provided the builder used size-agnostic reshapes (0, -1 or a runtime Shape).
   */
  dynamicAxes?: Record<string, Record<number, string>>;
}

export interface GraphNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

export interface Initializer {
  name: string;
  /** Replaced by setInitializer; otherwise fixed. */
  data: AnyTypedArray;
  shape: number[];
  dtype: DType;
}

/** Attributes that ONNX types as FLOAT, so plain numbers for them are written as floats. */
const FLOAT_ATTRS = new Set([
  'alpha',
  'beta',
  'gamma',
  'epsilon',
  'momentum',
  'value_float',
  'extrapolation_value',
  'cubic_coeff_a',
  'lambd',
  'bias',
  'spatial_scale',
  'min',
  'max',
]);

const TYPED_FOR: Record<DType, (n: number) => AnyTypedArray> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  float16: (n) => new Uint16Array(n),
  int64: (n) => new BigInt64Array(n),
  int32: (n) => new Int32Array(n),
  int8: (n) => new Int8Array(n),
  uint8: (n) => new Uint8Array(n),
  bool: (n) => new Uint8Array(n),
};

export class GraphError extends Error {
  override name = 'GraphError';
}

export class Graph {
  readonly name: string;
  readonly opset: number;
  /** Default float type for constants made with scalar(). */
  readonly floatType: DType;
  readonly nodes: GraphNode[] = [];
  readonly inputs: string[] = [];
  readonly outputs: string[] = [];
  readonly initializers = new Map<string, Initializer>();
  readonly meta = new Map<string, ValueMeta>();
  /** Values of small constants (<= 64 elements), as numbers, for shape inference and gradient rules. */
  readonly constValues = new Map<string, number[]>();
  /** Model-level metadata written into ModelProto.metadata_props. */
  readonly metadata = new Map<string, string>();
  private readonly constCache = new Map<string, string>();
  private readonly nodeNames = new Set<string>();
  private counter = 0;

  constructor({ name = 'graph', opset = OPSET, floatType = 'float32' as DType } = {}) {
    this.name = name;
    this.opset = opset;
    this.floatType = floatType;
  }

  /** A fresh value name that collides with no existing value. */
  fresh(prefix = 't'): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.meta.has(name));
    return name;
  }

  has(name: string): boolean {
    return this.meta.has(name);
  }

  info(name: string): ValueMeta {
    const m = this.meta.get(name);
    if (!m) throw new GraphError(`unknown value '${name}' in graph '${this.name}'`);
    return m;
  }

  shape(name: string): number[] {
    return this.info(name).shape;
  }

  dtype(name: string): DType {
    return this.info(name).dtype;
  }

  /** The numeric value of a small constant, or undefined when `name` is not a known constant. */
  constValue(name: string): number[] | undefined {
    return this.constValues.get(name);
  }

  input(name: string, shape: readonly number[], dtype: DType = this.floatType): string {
    this.declare(name, { shape: [...shape], dtype });
    this.inputs.push(name);
    return name;
  }

  /** Marks `value` as a graph output, renaming it through an Identity node when `as` differs. */
  output(value: string, as?: string): string {
    let name = value;
    if (as !== undefined && as !== value) name = this.op('Identity', [value], {}, { outputs: [as] })[0];
    this.info(name);
    this.outputs.push(name);
    return name;
  }

  initializer(name: string, data: AnyTypedArray, shape: readonly number[], dtype?: DType): string {
    const dt = dtype ?? dtypeOfArray(data);
    if (data.length !== numel(shape)) {
      throw new GraphError(`initializer '${name}': ${data.length} values for shape [${shape.join(', ')}]`);
    }
    this.declare(name, { shape: [...shape], dtype: dt });
    this.initializers.set(name, { name, data, shape: [...shape], dtype: dt });
    if (data.length <= 64 && dt !== 'float16')
      this.constValues.set(name, Array.from(data as ArrayLike<number | bigint>, Number));
    return name;
  }

  /** A cached int64 constant (shapes, axes, slice bounds). */
  ints(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const key = `i64:${shape.join('x')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.initializer(this.fresh('const_i64'), BigInt64Array.from(values, toInt64), shape, 'int64');
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A cached float constant filled with `value` (a scalar by default). */
  scalar(value: number, dtype: DType = this.floatType, shape: readonly number[] = []): string {
    const key = `${dtype}:${shape.join('x')}:${Object.is(value, -0) ? '-0' : value}`;
    let name = this.constCache.get(key);
    if (!name) {
      const data = TYPED_FOR[dtype](numel(shape));
      if (data instanceof BigInt64Array) data.fill(BigInt(value));
      else if (dtype === 'float16') data.fill(float32ToFloat16Bits(value));
      else data.fill(value);
      name = this.initializer(this.fresh('const'), data, shape, dtype);
      this.constCache.set(key, name);
    }
    return name;
  }

  /**
   * Appends a node and infers its outputs' shapes and dtypes.
   * Returns the output names (one per output; pass `outputs` to name them or `count` for several).
   */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Attrs = {},
    options: { outputs?: readonly string[]; count?: number; domain?: string; name?: string } = {},
  ): string[] {
    for (const x of inputs) if (x !== '') this.info(x);
    const domain = options.domain ?? '';
    const count = options.outputs?.length ?? options.count ?? 1;
    const inferred = inferShapes(this, opType, inputs, attrs, count, domain);
    const outputs = options.outputs ? [...options.outputs] : inferred.map(() => this.fresh(opType));
    if (inferred.length !== count) {
      throw new GraphError(`${opType} yields ${inferred.length} outputs, ${count} were requested`);
    }
    outputs.forEach((o, i) => {
      const { value, ...meta } = inferred[i];
      this.declare(o, meta);
      if (value !== undefined) this.constValues.set(o, value);
    });
    let name = options.name ?? `${opType}_${this.nodes.length}`;
    // node names must be unique in ONNX; imported graphs may already use our generated ones
    while (this.nodeNames.has(name))
      name = `${options.name ?? opType}_${this.nodes.length}_${this.counter++}`;
    this.nodeNames.add(name);
    this.nodes.push({ opType, domain, name, inputs: [...inputs], outputs, attrs });
    return outputs;
  }

  /** Shorthand for single-output ops. */
  op1(opType: string, inputs: readonly string[], attrs: Attrs = {}, name?: string): string {
    return this.op(opType, inputs, attrs, name === undefined ? {} : { name })[0];
  }

  /**
   * Turns an initializer into a graph input (a trainable weight fed zero-copy each step).
   * Returns its current values, which the caller now owns.
   */
  promoteToInput(name: string): Initializer {
    const init = this.initializers.get(name);
    if (!init) throw new GraphError(`'${name}' is not an initializer of graph '${this.name}'`);
    this.initializers.delete(name);
    this.constValues.delete(name);
    for (const [key, value] of this.constCache) if (value === name) this.constCache.delete(key);
    this.inputs.push(name);
    return init;
  }

  /** Replaces the values of an initializer (same shape and dtype), e.g. to bake trained weights. */
  setInitializer(name: string, data: AnyTypedArray): void {
    const init = this.initializers.get(name);
    if (!init) throw new GraphError(`'${name}' is not an initializer of graph '${this.name}'`);
    if (data.length !== init.data.length || dtypeOfArray(data) !== dtypeOfArray(init.data)) {
      throw new GraphError(
        `new values for '${name}' do not match its shape [${init.shape.join(', ')}] and type`,
      );
    }
    init.data = data;
  }

  /**
   * Splices a computation into the graph: consumers of `value` (a node output) will see
   * `build(original)` instead, where `original` is the old value under a new name. The new
   * nodes go right after the producer, so the tape stays in topological order.
   * Used to inject adapters (LoRA) into an existing graph.
   */
  substitute(value: string, build: (original: string) => string): void {
    const producerIndex = this.nodes.findIndex((n) => n.outputs.includes(value));
    if (producerIndex < 0)
      throw new GraphError(`'${value}' is not produced by a node of graph '${this.name}'`);
    const producer = this.nodes[producerIndex];
    const original = this.fresh(`${value}_base`);
    this.meta.set(original, this.info(value));
    producer.outputs = producer.outputs.map((o) => (o === value ? original : o));
    this.meta.delete(value);
    const firstNew = this.nodes.length;
    const result = build(original);
    const resultNode = this.nodes.slice(firstNew).find((n) => n.outputs.includes(result));
    if (!resultNode) throw new GraphError('substitute: build() must return the output of a node it added');
    const resultMeta = this.info(result);
    const expected = this.info(original);
    if (resultMeta.dtype !== expected.dtype || resultMeta.shape.join() !== expected.shape.join()) {
      throw new GraphError(
        `substitute: '${value}' must keep shape [${expected.shape.join(', ')}] and type ${expected.dtype}`,
      );
    }
    resultNode.outputs = resultNode.outputs.map((o) => (o === result ? value : o));
    this.meta.delete(result);
    this.meta.set(value, resultMeta);
    const added = this.nodes.splice(firstNew);
    this.nodes.splice(producerIndex + 1, 0, ...added);
  }

  /**
   * Replaces nodes whose integer outputs are known constants (Shape -> Gather -> Concat chains
   * at fixed sizes) by initializers, then removes nodes nothing uses. Returns how many nodes went.
   */
  foldConstants(): number {
    const before = this.nodes.length;
    const kept: GraphNode[] = [];
    for (const node of this.nodes) {
      const foldable =
        node.outputs.length > 0 &&
        node.outputs.every((o) => {
          const m = this.meta.get(o);
          return m !== undefined && (m.dtype === 'int64' || m.dtype === 'int32') && this.constValues.has(o);
        });
      if (!foldable) {
        kept.push(node);
        continue;
      }
      for (const o of node.outputs) {
        const m = this.info(o);
        const values = this.constValues.get(o) as number[];
        const data =
          m.dtype === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Int32Array.from(values);
        this.initializers.set(o, { name: o, data, shape: [...m.shape], dtype: m.dtype });
      }
    }
    this.nodes.splice(0, this.nodes.length, ...kept);
    this.prune();
    return before - this.nodes.length;
  }

  /** Removes nodes and initializers that no graph output depends on. */
  prune(): void {
    const live = new Set(this.outputs);
    const kept: GraphNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (!node.outputs.some((o) => live.has(o))) continue;
      kept.push(node);
      for (const x of node.inputs) if (x !== '') live.add(x);
    }
    kept.reverse();
    this.nodes.splice(0, this.nodes.length, ...kept);
    for (const name of [...this.initializers.keys()]) {
      if (!live.has(name)) {
        this.initializers.delete(name);
        for (const [key, value] of this.constCache) if (value === name) this.constCache.delete(key);
      }
    }
  }

  private declare(name: string, meta: ValueMeta): void {
    if (this.meta.has(name)) throw new GraphError(`value '${name}' is defined twice in graph '${this.name}'`);
    if (meta.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new GraphError(`value '${name}' has an invalid shape [${meta.shape.join(', ')}]`);
    }
    this.meta.set(name, meta);
  }

  /**
   * Stores float32 initializers with at least `minElements` values as float16, each followed by
   * a Cast back to float32 (onnxruntime folds the casts when it loads the model, so inference
   * still runs in float32). Halves the file size of shipped weights. Returns the bytes saved.
   */
  storeWeightsAsFloat16(minElements = 256): number {
    let saved = 0;
    const casts: GraphNode[] = [];
    for (const init of [...this.initializers.values()]) {
      if (init.dtype !== 'float32' || init.data.length < minElements) continue;
      const half = `${init.name}__fp16`;
      this.initializers.delete(init.name);
      this.initializers.set(half, {
        name: half,
        data: toFloat16(init.data as Float32Array),
        shape: init.shape,
        dtype: 'float16',
      });
      this.meta.set(half, { shape: [...init.shape], dtype: 'float16' });
      casts.push({
        opType: 'Cast',
        domain: '',
        name: `${init.name}__cast`,
        inputs: [half],
        outputs: [init.name],
        attrs: { to: 1 },
      });
      saved += init.data.length * 2;
    }
    this.nodes.unshift(...casts);
    return saved;
  }

  /**
   * The inverse of {@link storeWeightsAsFloat16}: every float16 initializer `X__fp16` whose only
   * use is a Cast to float32 named `X` becomes the float32 initializer `X` again (the Cast goes), so
   * the weights can be trained, merged or read by name. Returns how many weights it restored.
   */
  restoreFloat32Weights(): number {
    const uses = new Map<string, number>();
    for (const node of this.nodes) for (const i of node.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    const removed = new Set<GraphNode>();
    for (const node of this.nodes) {
      if (node.opType !== 'Cast' || node.attrs.to !== 1 || node.inputs.length !== 1) continue;
      const half = this.initializers.get(node.inputs[0]);
      if (!half || half.dtype !== 'float16' || uses.get(half.name) !== 1) continue;
      const name = node.outputs[0];
      if (this.initializers.has(name)) continue;
      this.initializers.delete(half.name);
      this.meta.delete(half.name);
      this.initializers.set(name, {
        name,
        data: fromFloat16(half.data as Uint16Array),
        shape: half.shape,
        dtype: 'float32',
      });
      this.meta.set(name, { shape: [...half.shape], dtype: 'float32' });
      removed.add(node);
    }
    if (removed.size > 0)
      this.nodes.splice(0, this.nodes.length, ...this.nodes.filter((n) => !removed.has(n)));
    return removed.size;
  }

  /** The graph as an ONNX ModelProto (opset OPSET, IR version 10). */
  toModel(options: ModelOptions = {}): ModelProto {
    const { producerName = 'msp-studio', docString = '', dynamicAxes = {} } = options;
    if (this.outputs.length === 0) throw new GraphError(`graph '${this.name}' has no outputs`);
    const valueInfo = (name: string) => {
      const m = this.info(name);
      const symbolic = dynamicAxes[name] ?? {};
      const dim = m.shape.map((d, i) =>
        symbolic[i] !== undefined ? { dimParam: symbolic[i] } : { dimValue: d },
      );
      return { name, type: { tensorType: { elemType: DTYPE_CODE[m.dtype], shape: { dim } } } };
    };
    const domains = new Set(this.nodes.map((n) => n.domain).filter((d) => d !== ''));
    return {
      irVersion: IR_VERSION,
      opsetImport: [
        { domain: '', version: this.opset },
        ...[...domains].map((domain) => ({ domain, version: 1 })),
      ],
      producerName,
      producerVersion: '1',
      domain: '',
      modelVersion: 1,
      docString,
      metadataProps: [...this.metadata].map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes.map((n) => ({
          input: n.inputs,
          output: n.outputs,
          name: n.name,
          opType: n.opType,
          domain: n.domain,
          attribute: Object.entries(n.attrs)
            .filter((e): e is [string, AttrValue] => e[1] !== undefined)
            .map(([k, v]) => encodeAttr(k, v)),
        })),
        initializer: [...this.initializers.values()].map(tensorProtoOf),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
        valueInfo: [],
      },
    };
  }

  toBytes(options?: ModelOptions): Uint8Array {
    return encodeModel(this.toModel(options));
  }
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** A JS number as int64, saturating at the int64 range (slice bounds like INT64_MAX arrive as 2^63). */
export function toInt64(v: number): bigint {
  if (!Number.isFinite(v)) return v > 0 ? INT64_MAX : INT64_MIN;
  const b = BigInt(Math.trunc(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

export function dtypeOfArray(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint16Array) return 'float16';
  return 'uint8';
}

export function tensorProtoOf(init: Initializer): TensorProto {
  const { data } = init;
  return {
    name: init.name,
    dims: init.shape,
    dataType: DTYPE_CODE[init.dtype],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** Reads the values of a TensorProto with inline data into a typed array of its dtype. */
export function tensorDataOf(t: TensorProto): { data: AnyTypedArray; dtype: DType; shape: number[] } {
  const dtype = dtypeFromCode(t.dataType);
  if (!dtype) throw new GraphError(`tensor '${t.name}' has unsupported data type ${t.dataType}`);
  const n = numel(t.dims);
  const out = TYPED_FOR[dtype](n);
  if (t.rawData && t.rawData.byteLength > 0) {
    if (t.rawData.byteLength !== out.byteLength) {
      throw new GraphError(
        `tensor '${t.name}' holds ${t.rawData.byteLength} bytes, expected ${out.byteLength}`,
      );
    }
    new Uint8Array(out.buffer).set(t.rawData);
  } else if (out instanceof BigInt64Array) {
    (t.int64Data ?? []).forEach((v, i) => (out[i] = v));
  } else if (dtype === 'float32' && t.floatData) {
    (out as Float32Array).set(t.floatData);
  } else if (dtype === 'float64' && t.doubleData) {
    (out as Float64Array).set(t.doubleData);
  } else if (t.int32Data) {
    // int32_data holds int32, int8, uint8, bool and float16 (as bits) values.
    for (let i = 0; i < n; i++) (out as Int32Array)[i] = t.int32Data[i];
  } else if (n > 0 && t.dataLocation === 1) {
    throw new GraphError(`tensor '${t.name}' has external data that was not loaded`);
  }
  return { data: out, dtype, shape: [...t.dims] };
}

function encodeAttr(name: string, v: AttrValue): AttributeProto {
  if (v instanceof FloatAttr) return { name, type: AttributeType.FLOAT, f: v.value };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (FLOAT_ATTRS.has(name) || !Number.isInteger(v)) return { name, type: AttributeType.FLOAT, f: v };
    return { name, type: AttributeType.INT, i: v };
  }
  if ('floats' in v) return { name, type: AttributeType.FLOATS, floats: v.floats };
  const arr = v as readonly (number | string)[];
  if (arr.length > 0 && typeof arr[0] === 'string') {
    return {
      name,
      type: AttributeType.STRINGS,
      strings: (arr as string[]).map((s) => new TextEncoder().encode(s)),
    };
  }
  const nums = arr as readonly number[];
  if (nums.some((x) => !Number.isInteger(x))) return { name, type: AttributeType.FLOATS, floats: [...nums] };
  return { name, type: AttributeType.INTS, ints: [...nums] };
}
