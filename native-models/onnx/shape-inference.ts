/**
 * Static shape and dtype inference for the ONNX ops the project emits or imports
 * (default domain, opset 21 semantics). Integer results computed from constants (Shape,
 * Gather on a shape, Concat of shape pieces...) are folded into constant values, which is
 * what lets exported models with Shape->Gather->Concat->Reshape chains run at fixed sizes.
 */
import { type DType, dtypeFromCode, numel } from './dtype.js';
import { type Attrs, FloatAttr, GraphError } from './graph.js';
import type { Graph, ValueMeta } from './graph.js';

export interface InferredValue extends ValueMeta {
  /** Folded value of a small integer/float result computed from constants. */
  value?: number[];
}

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[i - (r - a.length)] ?? 1;
    const y = b[i - (r - b.length)] ?? 1;
    if (x !== y && x !== 1 && y !== 1)
      throw new GraphError(`cannot broadcast [${a.join(', ')}] with [${b.join(', ')}]`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphError(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

const UNARY_SAME = new Set([
  'Identity',
  'Neg',
  'Abs',
  'Sqrt',
  'Exp',
  'Log',
  'Reciprocal',
  'Sigmoid',
  'Tanh',
  'Relu',
  'LeakyRelu',
  'Elu',
  'Erf',
  'Gelu',
  'Softplus',
  'Sin',
  'Cos',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Clip',
  'Softmax',
  'LogSoftmax',
  'HardSigmoid',
  'HardSwish',
  'InstanceNormalization',
  'LayerNormalization',
  'GroupNormalization',
  'BatchNormalization',
  'Dropout',
  'ScatterND',
  'ScatterElements',
  'CumSum',
]);

const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Mod']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']);

function attrInt(attrs: Attrs, key: string, fallback: number): number {
  const v = attrs[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  if (v instanceof FloatAttr) return v.value;
  throw new GraphError(`attribute '${key}' must be a number`);
}

function attrInts(attrs: Attrs, key: string): number[] | undefined {
  const v = attrs[key];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v as number[];
  throw new GraphError(`attribute '${key}' must be a list of integers`);
}

/** Infers the outputs of one node. Throws a GraphError naming the op when the inputs do not fit. */
export function inferShapes(
  g: Graph,
  opType: string,
  inputs: readonly string[],
  attrs: Attrs,
  count: number,
  domain: string,
): InferredValue[] {
  try {
    return infer(g, opType, inputs, attrs, count, domain);
  } catch (e) {
    if (e instanceof GraphError && !e.message.startsWith(`${opType}:`)) {
      throw new GraphError(`${opType}: ${e.message}`);
    }
    throw e;
  }
}

function infer(
  g: Graph,
  opType: string,
  inputs: readonly string[],
  attrs: Attrs,
  count: number,
  domain: string,
): InferredValue[] {
  const has = (i: number) => inputs[i] !== undefined && inputs[i] !== '';
  const S = (i: number) => g.shape(inputs[i]);
  const D = (i: number) => g.dtype(inputs[i]);
  const C = (i: number) => (has(i) ? g.constValue(inputs[i]) : undefined);
  const needConst = (i: number, what: string): number[] => {
    const v = C(i);
    if (!v) throw new GraphError(`${what} (input ${i}, '${inputs[i]}') must be a constant`);
    return v;
  };
  const one = (shape: number[], dtype: DType = D(0), value?: number[]): InferredValue[] => [
    value === undefined ? { shape, dtype } : { shape, dtype, value },
  ];

  if (domain !== '' && domain !== 'ai.onnx') {
    if (domain === 'com.microsoft' && (opType === 'QuickGelu' || opType === 'BiasGelu')) return one(S(0));
    throw new GraphError(`no shape inference for ${domain}.${opType}`);
  }

  if (UNARY_SAME.has(opType)) {
    const out = one(S(0));
    if (opType === 'Dropout' && count > 1) out.push({ shape: S(0), dtype: 'bool' });
    if (opType === 'Identity' && C(0)) out[0].value = C(0);
    if (opType === 'LayerNormalization' && count > 1) {
      const axis = normalizeAxis(attrInt(attrs, 'axis', -1), S(0).length);
      const stat = S(0).map((d, i) => (i < axis ? d : 1));
      for (let i = 1; i < count; i++) out.push({ shape: stat, dtype: 'float32' });
    }
    return out;
  }

  if (BINARY.has(opType)) {
    const shape = broadcastShapes(S(0), S(1));
    const a = C(0);
    const b = C(1);
    let value: number[] | undefined;
    if (a && b && numel(shape) <= 64 && (D(0) === 'int64' || D(0) === 'int32')) {
      value = foldBinary(opType, a, S(0), b, S(1), shape);
    }
    return one(shape, D(0), value);
  }

  if (COMPARE.has(opType)) return one(broadcastShapes(S(0), S(1)), 'bool');
  if (opType === 'Not') return one(S(0), 'bool');

  switch (opType) {
    case 'Constant': {
      const v = attrs.value_ints ?? attrs.value_int ?? attrs.value_float ?? attrs.value_floats;
      if (Array.isArray(v)) return one([v.length], 'int64', v as number[]);
      if (typeof v === 'number') return one([], 'int64', [v]);
      if (v instanceof FloatAttr) return one([], 'float32', [v.value]);
      throw new GraphError(
        'Constant: only value_int(s)/value_float(s) attributes are supported by the builder',
      );
    }
    case 'Cast': {
      const to = dtypeFromCode(attrInt(attrs, 'to', 1));
      if (!to) throw new GraphError(`Cast: unsupported target type ${String(attrs.to)}`);
      const v = C(0);
      return one(S(0), to, v && to !== 'bool' ? (to.startsWith('int') ? v.map(Math.trunc) : v) : undefined);
    }
    case 'Where':
      return one(broadcastShapes(broadcastShapes(S(0), S(1)), S(2)), D(1));
    case 'Shape': {
      const x = S(0);
      const r = x.length;
      let start = attrInt(attrs, 'start', 0);
      let end = attrInt(attrs, 'end', r);
      start = Math.max(0, Math.min(r, start < 0 ? start + r : start));
      end = Math.max(0, Math.min(r, end < 0 ? end + r : end));
      const value = x.slice(start, Math.max(start, end));
      return one([value.length], 'int64', value);
    }
    case 'Size':
      return one([], 'int64', [numel(S(0))]);
    case 'ConstantOfShape': {
      const shape = needConst(0, 'shape');
      return one(shape, 'float32');
    }
    case 'Range': {
      const [start] = needConst(0, 'start');
      const [limit] = needConst(1, 'limit');
      const [delta] = needConst(2, 'delta');
      const n = Math.max(0, Math.ceil((limit - start) / delta));
      const value = n <= 64 ? Array.from({ length: n }, (_, i) => start + i * delta) : undefined;
      return one([n], D(0), value);
    }
    case 'Conv':
    case 'ConvTranspose':
    case 'MaxPool':
    case 'AveragePool': {
      const x = S(0);
      const sp = x.length - 2;
      if (sp < 1) throw new GraphError(`input must have rank >= 3, got [${x.join(', ')}]`);
      const kernel = attrInts(attrs, 'kernel_shape') ?? S(1).slice(2);
      const strides = attrInts(attrs, 'strides') ?? Array<number>(sp).fill(1);
      const dil = attrInts(attrs, 'dilations') ?? Array<number>(sp).fill(1);
      let pads = attrInts(attrs, 'pads') ?? Array<number>(2 * sp).fill(0);
      const group = attrInt(attrs, 'group', 1);
      const autoPad = attrs.auto_pad ?? 'NOTSET';
      if (autoPad === 'VALID') pads = Array<number>(2 * sp).fill(0);
      else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
        if (opType === 'ConvTranspose')
          throw new GraphError('auto_pad SAME is not supported for ConvTranspose');
        // output = ceil(input / stride); the padding that achieves it, extra on the end (UPPER) or start (LOWER)
        pads = Array<number>(2 * sp).fill(0);
        for (let i = 0; i < sp; i++) {
          const out = Math.ceil(x[2 + i] / strides[i]);
          const total = Math.max(0, (out - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - x[2 + i]);
          const small = Math.floor(total / 2);
          pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
          pads[i + sp] = total - pads[i];
        }
      } else if (autoPad !== 'NOTSET') throw new GraphError(`unknown auto_pad '${String(autoPad)}'`);
      const out = [x[0]];
      if (opType === 'Conv') {
        const w = S(1);
        if (w[1] * group !== x[1]) {
          throw new GraphError(
            `weight [${w.join(', ')}] does not fit ${x[1]} input channels with group ${group}`,
          );
        }
        out.push(w[0]);
      } else if (opType === 'ConvTranspose') {
        const w = S(1);
        if (w[0] !== x[1])
          throw new GraphError(`weight [${w.join(', ')}] does not fit ${x[1]} input channels`);
        out.push(w[1] * group);
      } else out.push(x[1]);
      const ceil = attrInt(attrs, 'ceil_mode', 0) === 1;
      for (let i = 0; i < sp; i++) {
        const span = dil[i] * (kernel[i] - 1) + 1;
        if (opType === 'ConvTranspose') {
          const outputShape = attrInts(attrs, 'output_shape');
          const opad = (attrInts(attrs, 'output_padding') ?? [])[i] ?? 0;
          out.push(
            outputShape ? outputShape[i] : strides[i] * (x[2 + i] - 1) + opad + span - pads[i] - pads[i + sp],
          );
        } else {
          const free = x[2 + i] + pads[i] + pads[i + sp] - span;
          if (free < 0)
            throw new GraphError(`kernel ${kernel[i]} is larger than the padded input ${x[2 + i]}`);
          out.push((ceil ? Math.ceil(free / strides[i]) : Math.floor(free / strides[i])) + 1);
        }
      }
      const res = one(out);
      if (opType === 'MaxPool' && count > 1) res.push({ shape: out, dtype: 'int64' });
      return res;
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
      return one(S(0).map((d, i) => (i < 2 ? d : 1)));
    case 'MatMul': {
      const a = S(0);
      const b = S(1);
      if (a.length < 2 || b.length < 2) throw new GraphError('1-D operands are not supported');
      if (a[a.length - 1] !== b[b.length - 2]) {
        throw new GraphError(`inner dimensions differ: [${a.join(', ')}] x [${b.join(', ')}]`);
      }
      return one([...broadcastShapes(a.slice(0, -2), b.slice(0, -2)), a[a.length - 2], b[b.length - 1]]);
    }
    case 'Gemm': {
      const a = S(0);
      const b = S(1);
      const ta = attrInt(attrs, 'transA', 0);
      const tb = attrInt(attrs, 'transB', 0);
      const [m, k1] = ta ? [a[1], a[0]] : [a[0], a[1]];
      const [k2, n] = tb ? [b[1], b[0]] : [b[0], b[1]];
      if (k1 !== k2) throw new GraphError(`inner dimensions differ: [${a.join(', ')}] x [${b.join(', ')}]`);
      if (has(2)) broadcastShapes([m, n], S(2));
      return one([m, n]);
    }
    case 'Reshape': {
      const x = S(0);
      const target = needConst(1, 'shape').slice();
      let inferAt = -1;
      target.forEach((v, i) => {
        if (v === 0 && attrInt(attrs, 'allowzero', 0) === 0) target[i] = x[i];
        if (v === -1) {
          if (inferAt >= 0) throw new GraphError('shape has more than one -1');
          inferAt = i;
        }
      });
      if (inferAt >= 0) {
        const rest = numel(target.filter((_, i) => i !== inferAt));
        target[inferAt] = rest === 0 ? 0 : numel(x) / rest;
      }
      if (numel(target) !== numel(x) || !Number.isInteger(target[inferAt] ?? 0)) {
        throw new GraphError(`cannot reshape [${x.join(', ')}] to [${needConst(1, 'shape').join(', ')}]`);
      }
      return one(target, D(0), C(0));
    }
    case 'Flatten': {
      const x = S(0);
      const axis = attrInt(attrs, 'axis', 1);
      const ax = axis < 0 ? axis + x.length : axis;
      return one([numel(x.slice(0, ax)), numel(x.slice(ax))]);
    }
    case 'Transpose': {
      const x = S(0);
      const perm = attrInts(attrs, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      if (perm.length !== x.length)
        throw new GraphError(`perm [${perm.join(', ')}] does not fit rank ${x.length}`);
      return one(perm.map((p) => x[p]));
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceProd':
    case 'ReduceL2':
    case 'ReduceSumSquare':
    case 'ReduceLogSumExp': {
      const x = S(0);
      const keep = attrInt(attrs, 'keepdims', 1) === 1;
      // Opset 18+: axes is an input for every Reduce op; older imported graphs may carry an attribute.
      const axesList = has(1) ? needConst(1, 'axes') : attrInts(attrs, 'axes');
      const noop = attrInt(attrs, 'noop_with_empty_axes', 0) === 1;
      const axes =
        axesList && axesList.length > 0
          ? axesList.map((a) => normalizeAxis(a, x.length))
          : noop
            ? []
            : x.map((_, i) => i);
      const out: number[] = [];
      x.forEach((d, i) => {
        if (!axes.includes(i)) out.push(d);
        else if (keep) out.push(1);
      });
      return one(out);
    }
    case 'ArgMax':
    case 'ArgMin': {
      const x = S(0);
      const ax = normalizeAxis(attrInt(attrs, 'axis', 0), x.length);
      const keep = attrInt(attrs, 'keepdims', 1) === 1;
      return one(
        x.flatMap((d, i) => (i === ax ? (keep ? [1] : []) : [d])),
        'int64',
      );
    }
    case 'Resize': {
      const x = S(0);
      if (has(3)) return one(needConst(3, 'sizes'));
      const scales = needConst(2, 'scales');
      return one(x.map((d, i) => Math.floor(d * scales[i])));
    }
    case 'Upsample': {
      const scales = needConst(1, 'scales');
      return one(S(0).map((d, i) => Math.floor(d * scales[i])));
    }
    case 'DepthToSpace': {
      const [n, c, h, w] = S(0);
      const b = attrInt(attrs, 'blocksize', 1);
      return one([n, c / (b * b), h * b, w * b]);
    }
    case 'SpaceToDepth': {
      const [n, c, h, w] = S(0);
      const b = attrInt(attrs, 'blocksize', 1);
      return one([n, c * b * b, h / b, w / b]);
    }
    case 'Concat': {
      const first = S(0);
      const ax = normalizeAxis(attrInt(attrs, 'axis', 0), first.length);
      const out = first.slice();
      out[ax] = 0;
      for (let i = 0; i < inputs.length; i++) {
        const s = S(i);
        if (s.length !== first.length || s.some((d, j) => j !== ax && d !== first[j])) {
          throw new GraphError(
            `input ${i} [${s.join(', ')}] does not fit [${first.join(', ')}] on axis ${ax}`,
          );
        }
        out[ax] += s[ax];
      }
      let value: number[] | undefined;
      if (first.length === 1 && inputs.every((_, i) => C(i))) value = inputs.flatMap((_, i) => C(i) ?? []);
      return one(out, D(0), value);
    }
    case 'Split': {
      const x = S(0);
      const ax = normalizeAxis(attrInt(attrs, 'axis', 0), x.length);
      let sizes: number[];
      const legacySplit = attrInts(attrs, 'split');
      if (has(1)) sizes = needConst(1, 'split');
      else if (legacySplit) sizes = legacySplit;
      else {
        const parts = attrInt(attrs, 'num_outputs', count);
        const chunk = Math.ceil(x[ax] / parts);
        sizes = Array.from({ length: parts }, (_, i) => Math.min(chunk, x[ax] - i * chunk));
      }
      if (sizes.reduce((a, b) => a + b, 0) !== x[ax]) {
        throw new GraphError(`split sizes [${sizes.join(', ')}] do not sum to ${x[ax]}`);
      }
      return sizes.map((sz) => ({ shape: x.map((d, i) => (i === ax ? sz : d)), dtype: D(0) }));
    }
    case 'Slice': {
      const x = S(0).slice();
      // opset < 10 carries starts/ends/axes as attributes
      const legacy = attrInts(attrs, 'starts');
      const starts = legacy ?? needConst(1, 'starts');
      const ends = attrInts(attrs, 'ends') ?? needConst(2, 'ends');
      const axes = legacy
        ? (attrInts(attrs, 'axes') ?? starts.map((_, i) => i))
        : has(3)
          ? needConst(3, 'axes')
          : starts.map((_, i) => i);
      const steps = !legacy && has(4) ? needConst(4, 'steps') : starts.map(() => 1);
      const src = C(0);
      let value: number[] | undefined;
      axes.forEach((a, i) => {
        const ax = normalizeAxis(a, x.length);
        const [lo, count, step] = sliceRange(x[ax], starts[i], ends[i], steps[i]);
        if (src && x.length === 1) value = Array.from({ length: count }, (_, k) => src[lo + k * step]);
        x[ax] = count;
      });
      return one(x, D(0), value);
    }
    case 'Pad': {
      const x = S(0);
      const pads = needConst(1, 'pads');
      if (has(3)) {
        const axes = needConst(3, 'axes').map((a) => normalizeAxis(a, x.length));
        const out = x.slice();
        axes.forEach((ax, i) => (out[ax] += pads[i] + pads[i + axes.length]));
        return one(out);
      }
      return one(x.map((d, i) => d + pads[i] + pads[i + x.length]));
    }
    case 'Expand':
      return one(broadcastShapes(S(0), needConst(1, 'shape')));
    case 'Tile': {
      const reps = needConst(1, 'repeats');
      return one(S(0).map((d, i) => d * reps[i]));
    }
    case 'Gather': {
      const x = S(0);
      const ax = normalizeAxis(attrInt(attrs, 'axis', 0), x.length);
      const idx = S(1);
      const src = C(0);
      const ind = C(1);
      let value: number[] | undefined;
      if (src && ind && x.length === 1) value = ind.map((i) => src[i < 0 ? i + x[0] : i]);
      return one([...x.slice(0, ax), ...idx, ...x.slice(ax + 1)], D(0), value);
    }
    case 'GatherElements':
      return one(S(1));
    case 'OneHot': {
      const [depth] = needConst(1, 'depth');
      const idx = S(0);
      const ax = attrInt(attrs, 'axis', -1);
      const pos = ax < 0 ? ax + idx.length + 1 : ax;
      const out = idx.slice();
      out.splice(pos, 0, depth);
      return one(out, D(2));
    }
    case 'Unsqueeze': {
      const x = S(0);
      const axesIn = has(1) ? needConst(1, 'axes') : (attrInts(attrs, 'axes') ?? []);
      const r = x.length + axesIn.length;
      const axes = axesIn.map((a) => normalizeAxis(a, r));
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : x[j++]);
      return one(out, D(0), C(0));
    }
    case 'Squeeze': {
      const x = S(0);
      const axesIn = has(1) ? needConst(1, 'axes') : attrInts(attrs, 'axes');
      const axes = axesIn
        ? axesIn.map((a) => normalizeAxis(a, x.length))
        : x.flatMap((d, i) => (d === 1 ? [i] : []));
      for (const a of axes) if (x[a] !== 1) throw new GraphError(`cannot squeeze axis ${a} of size ${x[a]}`);
      return one(
        x.filter((_, i) => !axes.includes(i)),
        D(0),
        C(0),
      );
    }
    case 'Einsum':
      throw new GraphError('Einsum is not supported by the builder; use MatMul');
    default:
      throw new GraphError(`no shape inference for op '${opType}'`);
  }
}

/** [first index, element count, step] of a Slice along one axis of size `dim` (ONNX clamping rules). */
export function sliceRange(dim: number, start: number, end: number, step: number): [number, number, number] {
  if (step === 0) throw new GraphError('slice step must not be 0');
  const adj = (v: number) => (v < 0 ? v + dim : v);
  if (step > 0) {
    const s = Math.max(0, Math.min(dim, adj(start)));
    const e = Math.max(0, Math.min(dim, adj(end)));
    return [s, Math.max(0, Math.ceil((e - s) / step)), step];
  }
  const s = Math.max(0, Math.min(dim - 1, adj(start)));
  const e = Math.max(-1, Math.min(dim - 1, adj(end)));
  return [s, Math.max(0, Math.ceil((s - e) / -step)), step];
}

function foldBinary(
  op: string,
  a: number[],
  sa: number[],
  b: number[],
  sb: number[],
  shape: number[],
): number[] | undefined {
  const n = numel(shape);
  const at = (v: number[], s: number[], i: number) =>
    numel(s) === 1 ? v[0] : s.length === 1 && s[0] === n ? v[i] : NaN;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = at(a, sa, i);
    const y = at(b, sb, i);
    if (Number.isNaN(x) || Number.isNaN(y)) return undefined;
    switch (op) {
      case 'Add':
        out.push(x + y);
        break;
      case 'Sub':
        out.push(x - y);
        break;
      case 'Mul':
        out.push(x * y);
        break;
      case 'Div':
        out.push(Math.trunc(x / y));
        break;
      default:
        return undefined;
    }
  }
  return out;
}
