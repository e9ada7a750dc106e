/**
 * Gradient rules of shape and data-movement ops: Reshape, Flatten, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Pad, Expand, Tile, Gather, GatherElements, Resize,
 * DepthToSpace and SpaceToDepth (default domain, opset 21).
 *
 * Every rule emits only dense standard ops with static shapes. Choices worth knowing:
 * - Slice scatters its gradient back with dense ops only, axis by axis: a negative step is a
 *   reversal (Slice with step -1) followed by the positive case; a step s > 1 is undone by the
 *   "interleave with zeros" trick (Reshape to [n, 1], Pad to [n, s], Reshape to [n * s]); one final
 *   Pad puts the block at its offset. No scatter, no index tensors, float64 kernels everywhere.
 * - Gather and GatherElements accumulate with ScatterND / ScatterElements, reduction 'add', into
 *   zeros, so repeated indices sum. For an embedding table [1000, 64] gathered with [8, 77]
 *   indices, ScatterND-add took 0.23-0.26 ms (float32) and 0.29-0.39 ms (float64) per run, against
 *   0.28-0.43 / 0.49-0.62 ms for ScatterElements-add and 0.83-0.95 / 1.84-1.94 ms for
 *   OneHot + MatMul (onnxruntime-node 1.30 CPU, one thread).
 * - Resize builds its interpolation matrices in TypeScript from the static shapes and applies their
 *   transposes with one MatMul per resized axis (dX = W_h^T dY W_w), which is its exact adjoint.
 *   Nearest resizes that replicate each pixel f times are summed back with Reshape + ReduceSum.
 */
import { registerRule, sumToShape, type RuleContext } from '../backward.js';
import { GraphError, type Graph } from '../../onnx/graph.js';
import { DTYPE_CODE, numel, type DType } from '../../onnx/dtype.js';
import { normalizeAxis, sliceRange } from '../../onnx/shape-inference.js';

type Grads = (string | undefined)[];

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

function intAttr(ctx: RuleContext, key: string, fallback: number): number {
  const v = ctx.node.attrs[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new GraphError(`attribute '${key}' must be an integer`);
  return v;
}

function stringAttr(ctx: RuleContext, key: string, fallback: string): string {
  const v = ctx.node.attrs[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new GraphError(`attribute '${key}' must be a string`);
  return v;
}

/** The value of a constant input, or an error naming it. */
function constInput(ctx: RuleContext, i: number, what: string): number[] {
  const name = ctx.node.inputs[i];
  const v = name ? ctx.g.constValue(name) : undefined;
  if (!v) throw new GraphError(`${what} (input ${i}) must be a constant`);
  return v;
}

const hasInput = (ctx: RuleContext, i: number) => (ctx.node.inputs[i] ?? '') !== '';

/** Reshape that keeps zero-sized dimensions literal. */
function reshape(g: Graph, x: string, shape: readonly number[]): string {
  const s = g.shape(x);
  if (s.length === shape.length && s.every((d, i) => d === shape[i])) return x;
  return g.op1('Reshape', [x, g.ints(shape)], shape.includes(0) ? { allowzero: 1 } : {});
}

/** Zeros of a shape, as an Expand of a cached scalar (no full-size initializer). */
function zeros(g: Graph, dtype: DType, shape: readonly number[]): string {
  const zero = g.scalar(0, dtype);
  return shape.length === 0 ? zero : g.op1('Expand', [zero, g.ints(shape)]);
}

function inversePerm(perm: readonly number[]): number[] {
  const inv: number[] = [];
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Slice along one axis: [start, end) with step (ends may be negative for reversed slices). */
function sliceAxis(g: Graph, x: string, axis: number, start: number, end: number, step = 1): string {
  const inputs = [x, g.ints([start]), g.ints([end]), g.ints([axis])];
  if (step !== 1) inputs.push(g.ints([step]));
  return g.op1('Slice', inputs);
}

/** Reverses `x` along `axis`. */
function reverseAxis(g: Graph, x: string, axis: number): string {
  return sliceAxis(g, x, axis, -1, -(g.shape(x)[axis] + 1), -1);
}

/** Zero-pads (or, for negative amounts, crops) `x` along one axis. */
function padAxis(g: Graph, x: string, axis: number, begin: number, end: number): string {
  if (begin === 0 && end === 0) return x;
  const rank = g.shape(x).length;
  const pads = new Array<number>(2 * rank).fill(0);
  pads[axis] = begin;
  pads[axis + rank] = end;
  return g.op1('Pad', [x, g.ints(pads)]);
}

/** Int64 indices with negative values wrapped into [0, size). */
function normalizedIndices(g: Graph, indices: string, size: number): string {
  const known = g.constValue(indices);
  if (known)
    return g.ints(
      known.map((i) => (i < 0 ? i + size : i)),
      g.shape(indices),
    );
  const idx = g.dtype(indices) === 'int64' ? indices : g.op1('Cast', [indices], { to: DTYPE_CODE.int64 });
  return g.op1('Mod', [idx, g.ints([size], [])]);
}

/** A float constant of `dtype` holding `data` (float16 goes through a float32 constant and a Cast). */
function floatConstant(g: Graph, data: readonly number[], shape: readonly number[], dtype: DType): string {
  if (dtype === 'float64') return g.initializer(g.fresh('const'), Float64Array.from(data), shape, 'float64');
  const f32 = g.initializer(g.fresh('const'), Float32Array.from(data), shape, 'float32');
  return dtype === 'float32' ? f32 : g.op1('Cast', [f32], { to: DTYPE_CODE[dtype] });
}

/** Gradient of a pure permutation of elements: y = Reshape(Transpose(Reshape(x, pre), perm), out). */
function permutationAdjoint(
  g: Graph,
  gy: string,
  pre: readonly number[],
  perm: readonly number[],
  xShape: readonly number[],
): string {
  const moved = reshape(
    g,
    gy,
    perm.map((p) => pre[p]),
  );
  return reshape(g, g.op1('Transpose', [moved], { perm: inversePerm(perm) }), xShape);
}

// ---------------------------------------------------------------- pure reshapes

const reshapeBack = (ctx: RuleContext): Grads => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  return [reshape(ctx.g, gy, ctx.g.shape(ctx.node.inputs[0]))];
};

for (const op of ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']) registerRule(op, reshapeBack);

registerRule('Transpose', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const rank = ctx.g.shape(ctx.node.inputs[0]).length;
  const perm = (ctx.node.attrs.perm as number[] | undefined) ?? range(0, rank).reverse();
  return [ctx.g.op1('Transpose', [gy], { perm: inversePerm(perm) })];
});

registerRule('DepthToSpace', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const x = ctx.g.shape(ctx.node.inputs[0]);
  const [n, c, h, w] = x;
  const b = intAttr(ctx, 'blocksize', 1);
  const mode = stringAttr(ctx, 'mode', 'DCR');
  const c2 = c / (b * b);
  if (mode === 'DCR') return [permutationAdjoint(ctx.g, gy, [n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], x)];
  if (mode === 'CRD') return [permutationAdjoint(ctx.g, gy, [n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], x)];
  throw new GraphError(`unknown DepthToSpace mode '${mode}'`);
});

registerRule('SpaceToDepth', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const x = ctx.g.shape(ctx.node.inputs[0]);
  const [n, c, h, w] = x;
  const b = intAttr(ctx, 'blocksize', 1);
  return [permutationAdjoint(ctx.g, gy, [n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], x)];
});

// ---------------------------------------------------------------- joining and splitting

registerRule('Concat', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const { g, node, needs } = ctx;
  const axis = normalizeAxis(intAttr(ctx, 'axis', 0), g.shape(gy).length);
  const sizes = node.inputs.map((x) => g.shape(x)[axis]);
  if (node.inputs.length > 1 && needs.every(Boolean) && sizes.every((s) => s > 0)) {
    return g.op('Split', [gy, g.ints(sizes)], { axis }, { count: sizes.length });
  }
  let offset = 0;
  return sizes.map((size, i) => {
    const start = offset;
    offset += size;
    if (!needs[i]) return undefined;
    return size === g.shape(gy)[axis] ? gy : sliceAxis(g, gy, axis, start, start + size);
  });
});

registerRule('Split', (ctx) => {
  const { g, node, gradOutputs } = ctx;
  if (!ctx.needs[0]) return [];
  const x = g.shape(node.inputs[0]);
  const axis = normalizeAxis(intAttr(ctx, 'axis', 0), x.length);
  const dtype = g.dtype(node.inputs[0]);
  const sizes = node.outputs.map((o) => g.shape(o)[axis]);
  const given = range(0, sizes.length).filter((i) => gradOutputs[i] !== undefined);
  if (given.length === 1) {
    // one output has a gradient: zero-pad it to the input's extent
    const [i] = given;
    const before = sizes.slice(0, i).reduce((a, b) => a + b, 0);
    return [padAxis(g, gradOutputs[i] as string, axis, before, x[axis] - before - sizes[i])];
  }
  // outputs that get no gradient contribute zeros
  const parts = node.outputs.map((o, i) => gradOutputs[i] ?? zeros(g, dtype, g.shape(o)));
  const nonEmpty = parts.filter((_, i) => g.shape(node.outputs[i])[axis] > 0);
  return [nonEmpty.length === 1 ? nonEmpty[0] : g.op1('Concat', nonEmpty, { axis })];
});

// ---------------------------------------------------------------- Slice and Pad

registerRule('Slice', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const { g } = ctx;
  const x = g.shape(ctx.node.inputs[0]);
  const starts = constInput(ctx, 1, 'starts');
  const ends = constInput(ctx, 2, 'ends');
  const axes = hasInput(ctx, 3) ? constInput(ctx, 3, 'axes') : starts.map((_, i) => i);
  const steps = hasInput(ctx, 4) ? constInput(ctx, 4, 'steps') : starts.map(() => 1);
  if (numel(g.shape(gy)) === 0) return [zeros(g, g.dtype(gy), x)];
  const pads = new Array<number>(2 * x.length).fill(0);
  let r = gy;
  axes.forEach((a, i) => {
    const axis = normalizeAxis(a, x.length);
    const [first, count, signedStep] = sliceRange(x[axis], starts[i], ends[i], steps[i]);
    let lo = first;
    const step = Math.abs(signedStep);
    if (signedStep < 0) {
      // the slice read lo, lo - step, ...: reversed, it reads upwards from its last element
      if (count > 1) r = reverseAxis(g, r, axis);
      lo -= (count - 1) * step;
    }
    let span = count;
    if (step > 1 && count > 1) {
      // interleave with step - 1 zeros: [.., n, ..] -> [.., n, 1, ..] -> pad [.., n, step, ..] -> [.., n * step, ..]
      const s = g.shape(r);
      const split = [...s.slice(0, axis), count, 1, ...s.slice(axis + 1)];
      const padded = padAxis(g, reshape(g, r, split), axis + 1, 0, step - 1);
      r = reshape(g, padded, [...s.slice(0, axis), count * step, ...s.slice(axis + 1)]);
      span = count * step;
      // the trailing zeros of the last element may run past the end of the input
      if (lo + span > x[axis]) {
        span = x[axis] - lo;
        r = sliceAxis(g, r, axis, 0, span);
      }
    }
    pads[axis] = lo;
    pads[axis + x.length] = x[axis] - lo - span;
  });
  return [pads.some((p) => p !== 0) ? g.op1('Pad', [r, g.ints(pads)]) : r];
});

/** Begin and end padding of every axis of a Pad node (the optional axes input selects axes). */
function padAmounts(ctx: RuleContext): [number[], number[]] {
  const rank = ctx.g.shape(ctx.node.inputs[0]).length;
  const pads = constInput(ctx, 1, 'pads');
  const axes = hasInput(ctx, 3)
    ? constInput(ctx, 3, 'axes').map((a) => normalizeAxis(a, rank))
    : range(0, rank);
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axes.forEach((a, i) => {
    begin[a] = pads[i];
    end[a] = pads[i + axes.length];
  });
  return [begin, end];
}

registerRule('Pad', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const { g, node, needs } = ctx;
  const x = g.shape(node.inputs[0]);
  const y = g.shape(gy);
  const [begin, end] = padAmounts(ctx);
  const mode = stringAttr(ctx, 'mode', 'constant');
  const grads: Grads = [];

  if (mode === 'constant') {
    // positive pads are cut off again, negative ones (crops) are zero-padded back
    const axes = range(0, x.length).filter((a) => begin[a] > 0 || end[a] > 0);
    const inner =
      axes.length === 0
        ? gy
        : g.op1('Slice', [
            gy,
            g.ints(axes.map((a) => Math.max(0, begin[a]))),
            g.ints(axes.map((a) => y[a] - Math.max(0, end[a]))),
            g.ints(axes),
          ]);
    if (needs[0]) {
      const back = [...begin, ...end].map((p) => Math.max(0, -p));
      grads[0] = back.some((p) => p > 0) ? g.op1('Pad', [inner, g.ints(back)]) : inner;
    }
    if (needs[2] && hasInput(ctx, 2)) {
      // the constant fills every output element that does not come from the input
      const total = g.op1('ReduceSum', [gy], { keepdims: 0 });
      const fromX = g.op1('ReduceSum', [inner], { keepdims: 0 });
      grads[2] = reshape(g, g.op1('Sub', [total, fromX]), g.shape(node.inputs[2]));
    }
    return grads;
  }

  if (mode !== 'reflect' && mode !== 'edge' && mode !== 'wrap') {
    throw new GraphError(`Pad mode '${mode}' has no gradient rule (constant, reflect, edge and wrap do)`);
  }
  if (!needs[0]) return [];
  let r = gy;
  for (let a = 0; a < x.length; a++) {
    const [b, e, d] = [begin[a], end[a], x[a]];
    if (b === 0 && e === 0) continue;
    if (b < 0 || e < 0) throw new GraphError(`Pad mode '${mode}' with negative pads has no gradient rule`);
    const len = b + d + e;
    if (mode === 'wrap') {
      // onnxruntime 1.30 computes a wrap wider than the axis differently from ONNX: refuse it
      if (b > d || e > d)
        throw new GraphError(`Pad wrap pads larger than the axis size ${d} have no gradient rule`);
      // y[i] = x[(i - b) mod d]: shift so that position k maps to x[k mod d], fold into [m, d], sum over m
      const left = (d - (b % d)) % d;
      const right = Math.ceil((left + len) / d) * d - (left + len);
      const s = g.shape(r);
      const folded = reshape(g, padAxis(g, r, a, left, right), [
        ...s.slice(0, a),
        (left + len + right) / d,
        d,
        ...s.slice(a + 1),
      ]);
      r = g.op1('ReduceSum', [folded, g.ints([a])], { keepdims: 0 });
      continue;
    }
    let acc = sliceAxis(g, r, a, b, b + d);
    if (mode === 'reflect') {
      if (b >= d || e >= d) throw new GraphError(`reflect pads must be smaller than the axis size ${d}`);
      // y[i] = x[b - i] for i < b; y[b + d + k] = x[d - 2 - k]
      if (b > 0)
        acc = g.op1('Add', [acc, padAxis(g, sliceAxis(g, r, a, b - 1, -len - 1, -1), a, 1, d - 1 - b)]);
      if (e > 0)
        acc = g.op1('Add', [acc, padAxis(g, sliceAxis(g, r, a, len - 1, b + d - 1, -1), a, d - 1 - e, 1)]);
    } else {
      // edge: every left pad copies x[0], every right pad copies x[d - 1]
      const sum = (from: number, to: number) =>
        g.op1('ReduceSum', [sliceAxis(g, r, a, from, to), g.ints([a])], { keepdims: 1 });
      if (b > 0) acc = g.op1('Add', [acc, padAxis(g, sum(0, b), a, 0, d - 1)]);
      if (e > 0) acc = g.op1('Add', [acc, padAxis(g, sum(b + d, len), a, d - 1, 0)]);
    }
    r = acc;
  }
  return [r];
});

// ---------------------------------------------------------------- broadcasting copies

registerRule('Expand', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  return [sumToShape(ctx.g, gy, ctx.g.shape(ctx.node.inputs[0]))];
});

registerRule('Tile', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const { g } = ctx;
  const x = g.shape(ctx.node.inputs[0]);
  const repeats = constInput(ctx, 1, 'repeats');
  // y along axis i is [repeats[i], x[i]] row-major: split each tiled axis and sum over the copies
  const split: number[] = [];
  const axes: number[] = [];
  x.forEach((d, i) => {
    if (repeats[i] !== 1) {
      axes.push(split.length);
      split.push(repeats[i]);
    }
    split.push(d);
  });
  if (axes.length === 0) return [gy];
  return [reshape(g, g.op1('ReduceSum', [reshape(g, gy, split), g.ints(axes)], { keepdims: 0 }), x)];
});

// ---------------------------------------------------------------- gathers (scatter-add back)

registerRule('Gather', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const { g, node } = ctx;
  const [data, indices] = node.inputs;
  const x = g.shape(data);
  const axis = normalizeAxis(intAttr(ctx, 'axis', 0), x.length);
  const q = g.shape(indices).length;
  const n = numel(g.shape(indices));
  const pre = x.slice(0, axis);
  const post = x.slice(axis + 1);
  // gy is [pre, indices, post]: bring the index axes to the front and flatten them
  const yRank = g.shape(gy).length;
  const perm = [...range(axis, axis + q), ...range(0, axis), ...range(axis + q, yRank)];
  const front = perm.every((p, i) => p === i) ? gy : g.op1('Transpose', [gy], { perm });
  const updates = reshape(g, front, [n, ...pre, ...post]);
  const idx = reshape(g, normalizedIndices(g, indices, x[axis]), [n, 1]);
  const base = zeros(g, g.dtype(gy), [x[axis], ...pre, ...post]);
  const scattered = g.op1('ScatterND', [base, idx, updates], { reduction: 'add' });
  if (axis === 0) return [scattered];
  // [x[axis], pre, post] -> [pre, x[axis], post]
  return [
    g.op1('Transpose', [scattered], { perm: [...range(1, axis + 1), 0, ...range(axis + 1, x.length)] }),
  ];
});

registerRule('GatherElements', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const { g, node } = ctx;
  const [data, indices] = node.inputs;
  const x = g.shape(data);
  const axis = normalizeAxis(intAttr(ctx, 'axis', 0), x.length);
  const idx = normalizedIndices(g, indices, x[axis]);
  const base = zeros(g, g.dtype(gy), x);
  return [g.op1('ScatterElements', [base, idx, gy], { axis, reduction: 'add' })];
});

// ---------------------------------------------------------------- Resize

/** Input coordinate of output index `i` (ONNX coordinate_transformation_mode), in float32 like onnxruntime. */
function originalCoordinate(mode: string, i: number, scale: number, outLen: number, inLen: number): number {
  const f = Math.fround;
  switch (mode) {
    case 'half_pixel':
      return f(f(f(i + 0.5) / scale) - 0.5);
    case 'pytorch_half_pixel':
      return outLen > 1 ? f(f(f(i + 0.5) / scale) - 0.5) : 0;
    case 'asymmetric':
      return f(i / scale);
    case 'align_corners':
      return outLen === 1 ? 0 : f(f(i * (inLen - 1)) / (outLen - 1));
    case 'half_pixel_symmetric': {
      const adjustment = f(outLen / f(scale * inLen));
      const offset = f(f(inLen / 2) * f(1 - adjustment));
      return f(offset + f(f(f(i + 0.5) / scale) - 0.5));
    }
    default:
      throw new GraphError(`Resize coordinate_transformation_mode '${mode}' has no gradient rule`);
  }
}

function nearestIndex(mode: string, v: number): number {
  const tie = v === Math.trunc(v) + 0.5;
  switch (mode) {
    case 'round_prefer_floor':
      return tie ? Math.floor(v) : Math.round(v);
    case 'round_prefer_ceil':
      return tie ? Math.ceil(v) : Math.round(v);
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    default:
      throw new GraphError(`Resize nearest_mode '${mode}' has no gradient rule`);
  }
}

/** Row-major [outLen, inLen] matrix W of one resized axis: y = W x along that axis. */
function interpolationMatrix(ctx: RuleContext, inLen: number, outLen: number, scale: number): number[] {
  const mode = stringAttr(ctx, 'mode', 'nearest');
  const coordinates = stringAttr(ctx, 'coordinate_transformation_mode', 'half_pixel');
  const w = new Array<number>(outLen * inLen).fill(0);
  const clamp = (v: number) => Math.max(0, Math.min(inLen - 1, v));
  for (let i = 0; i < outLen; i++) {
    const c = originalCoordinate(coordinates, i, scale, outLen, inLen);
    if (mode === 'nearest') {
      w[i * inLen + clamp(nearestIndex(stringAttr(ctx, 'nearest_mode', 'round_prefer_floor'), c))] = 1;
    } else {
      const at = clamp(c);
      const lo = Math.min(Math.floor(at), inLen - 1);
      const hi = Math.min(lo + 1, inLen - 1);
      const frac = at - lo;
      w[i * inLen + lo] += hi === lo ? 1 : 1 - frac;
      if (hi !== lo) w[i * inLen + hi] += frac;
    }
  }
  return w;
}

registerRule('Resize', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const { g, node } = ctx;
  const x = g.shape(node.inputs[0]);
  const y = g.shape(node.outputs[0]);
  const dtype = g.dtype(gy);
  const mode = stringAttr(ctx, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear') {
    throw new GraphError(`Resize mode '${mode}' has no gradient rule (nearest and linear do)`);
  }
  if (node.attrs.axes !== undefined)
    throw new GraphError("Resize with an 'axes' attribute has no gradient rule");
  const scales = hasInput(ctx, 2) ? constInput(ctx, 2, 'scales') : [];
  const scaleOf = (a: number) => (scales.length > 0 ? scales[a] : y[a] / x[a]);
  if (mode === 'linear' && intAttr(ctx, 'antialias', 0) === 1 && x.some((d, a) => scaleOf(a) < 1)) {
    throw new GraphError('Resize with antialias when downscaling has no gradient rule');
  }

  // per axis: identity, replication of each element f times (summed back by a reshape), or a matrix
  const replicated: number[] = [];
  const matrices: { axis: number; w: number[] }[] = [];
  x.forEach((inLen, a) => {
    const outLen = y[a];
    const w = interpolationMatrix(ctx, inLen, outLen, scaleOf(a));
    const isCopy = (f: number) =>
      outLen === inLen * f && range(0, outLen).every((i) => w[i * inLen + Math.floor(i / f)] === 1);
    if (outLen === inLen && isCopy(1)) return;
    if (outLen % inLen === 0 && isCopy(outLen / inLen)) replicated.push(a);
    else matrices.push({ axis: a, w });
  });

  let r = gy;
  if (replicated.length > 0) {
    const split: number[] = [];
    const sumAxes: number[] = [];
    x.forEach((d, a) => {
      split.push(d);
      if (replicated.includes(a)) {
        sumAxes.push(split.length);
        split.push(y[a] / d);
      }
    });
    r = g.op1('ReduceSum', [reshape(g, r, split), g.ints(sumAxes)], { keepdims: 0 });
  }
  const rank = x.length;
  for (const { axis, w } of matrices) {
    const [outLen, inLen] = [y[axis], x[axis]];
    if (axis === rank - 2) {
      // dX = W^T dY on the second-to-last axis
      const wt = range(0, inLen * outLen).map((k) => w[(k % outLen) * inLen + Math.floor(k / outLen)]);
      r = g.op1('MatMul', [floatConstant(g, wt, [inLen, outLen], dtype), r]);
      continue;
    }
    const weights = floatConstant(g, w, [outLen, inLen], dtype);
    if (axis === rank - 1) {
      r = g.op1('MatMul', [r, weights]);
      continue;
    }
    const perm = range(0, rank);
    [perm[axis], perm[rank - 1]] = [rank - 1, axis];
    const moved = g.op1('MatMul', [g.op1('Transpose', [r], { perm }), weights]);
    r = g.op1('Transpose', [moved], { perm });
  }
  return [r];
});
