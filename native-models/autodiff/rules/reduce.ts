/**
 * Gradient rules of reductions and matrix products.
 */
import { registerRule, sumToShape, type RuleContext } from '../backward.js';
import { normalizeAxis } from '../../onnx/shape-inference.js';
import { DTYPE_CODE } from '../../onnx/dtype.js';
import { float, type Graph } from '../../onnx/graph.js';
import { floatAttr, numberAttr, scalarOf } from './elementwise.js';

/** Axes a Reduce* node reduces over (opset 18+: an input; older graphs: an attribute). */
export function reducedAxes(ctx: RuleContext): number[] {
  const { g, node } = ctx;
  const rank = g.shape(node.inputs[0]).length;
  const fromInput = node.inputs[1] ? g.constValue(node.inputs[1]) : undefined;
  const fromAttr = node.attrs.axes as number[] | undefined;
  const axes = fromInput ?? fromAttr;
  if (axes && axes.length > 0) return axes.map((a) => normalizeAxis(a, rank));
  if (node.attrs.noop_with_empty_axes === 1) return [];
  return [...Array(rank).keys()];
}

/** Broadcasts the gradient of a reduction back over the reduced axes, times `scale`. */
function spreadBack(ctx: RuleContext, scale: number): (string | undefined)[] {
  const { g, node, gradOutputs } = ctx;
  const [gy] = gradOutputs;
  if (gy === undefined) return [];
  const x = g.shape(node.inputs[0]);
  const axes = reducedAxes(ctx);
  const keep = (node.attrs.keepdims ?? 1) === 1;
  let r = keep ? gy : g.op1('Reshape', [gy, g.ints(x.map((d, i) => (axes.includes(i) ? 1 : d)))]);
  if (scale !== 1) r = g.op1('Mul', [r, g.scalar(scale, g.dtype(gy))]);
  return [g.op1('Expand', [r, g.ints(x)]), undefined];
}

registerRule('ReduceSum', (ctx) => spreadBack(ctx, 1));

registerRule('ReduceMean', (ctx) => {
  const x = ctx.g.shape(ctx.node.inputs[0]);
  const count = reducedAxes(ctx).reduce((n, a) => n * x[a], 1);
  return spreadBack(ctx, 1 / count);
});

/** `v` (the output of a reduction or its gradient) with the reduced axes kept as size 1. */
function withKeptDims(ctx: RuleContext, v: string): string {
  const { g, node } = ctx;
  if (numberAttr(node, 'keepdims', 1) === 1) return v;
  const axes = reducedAxes(ctx);
  return g.op1('Reshape', [v, g.ints(g.shape(node.inputs[0]).map((d, i) => (axes.includes(i) ? 1 : d)))]);
}

/**
 * Registers a reduction whose input gradient is `dx(g, x, y, gy)`, with y and gy broadcastable
 * to x (reduced axes kept as size 1). Over no axes (noop_with_empty_axes) onnxruntime applies
 * the op elementwise (ReduceSumSquare gives x^2, ReduceL2 |x|), which the same formulas cover.
 */
function reduction(opType: string, dx: (g: Graph, x: string, y: string, gy: string) => string): void {
  registerRule(opType, (ctx) => {
    const { g, node, gradOutputs } = ctx;
    const [gy] = gradOutputs;
    if (gy === undefined || !ctx.needs[0]) return [];
    const x = node.inputs[0];
    return [dx(g, x, withKeptDims(ctx, node.outputs[0]), withKeptDims(ctx, gy)), undefined];
  });
}

const mul = (g: Graph, a: string, b: string) => g.op1('Mul', [a, b]);

// y = sum x^2: dx = 2 x gy
reduction('ReduceSumSquare', (g, x, _y, gy) => mul(g, mul(g, x, scalarOf(g, 2, g.dtype(x))), gy));
// y = sqrt(sum x^2): dx = x gy / y (infinite where y = 0)
reduction('ReduceL2', (g, x, y, gy) => mul(g, x, g.op1('Div', [gy, y])));
// y = log sum exp x: dx = gy exp(x - y)
reduction('ReduceLogSumExp', (g, x, y, gy) => mul(g, gy, g.op1('Exp', [g.op1('Sub', [x, y])])));

/**
 * ReduceMax / ReduceMin: the gradient goes to the entries equal to the result, split evenly
 * between ties (the maximum of [2, 2] gives 1/2 to each).
 */
function extremumReduction(opType: string): void {
  registerRule(opType, (ctx) => {
    const { g, node, gradOutputs } = ctx;
    const [gy] = gradOutputs;
    if (gy === undefined || !ctx.needs[0]) return [];
    const axes = reducedAxes(ctx);
    if (axes.length === 0) return [gy, undefined]; // noop_with_empty_axes: the identity
    const x = node.inputs[0];
    const hit = g.op1('Cast', [g.op1('Equal', [x, withKeptDims(ctx, node.outputs[0])])], {
      to: DTYPE_CODE[g.dtype(x)],
    });
    const count = g.op1('ReduceSum', [hit, g.ints(axes)], { keepdims: 1 });
    return [mul(g, hit, g.op1('Div', [withKeptDims(ctx, gy), count])), undefined];
  });
}
extremumReduction('ReduceMax');
extremumReduction('ReduceMin');

/**
 * The axes Softmax / LogSoftmax normalize over: opset 13+ one axis (default -1); before 13 the
 * input is coerced to 2-D at `axis` (default 1), i.e. every axis from `axis` on.
 */
function softmaxAxis(ctx: RuleContext): string {
  const { g, node } = ctx;
  const rank = g.shape(node.inputs[0]).length;
  if (g.opset < 13) {
    const axis = normalizeAxis(numberAttr(node, 'axis', 1), rank);
    return g.ints(Array.from({ length: rank - axis }, (_, i) => axis + i));
  }
  return g.ints([normalizeAxis(numberAttr(node, 'axis', -1), rank)]);
}

// y = softmax x: dx = y (gy - sum(gy y))
registerRule('Softmax', (ctx) => {
  const { g, node, gradOutputs } = ctx;
  const [gy] = gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const y = node.outputs[0];
  const dot = g.op1('ReduceSum', [mul(g, gy, y), softmaxAxis(ctx)], { keepdims: 1 });
  return [mul(g, y, g.op1('Sub', [gy, dot]))];
});

// y = log softmax x: dx = gy - exp(y) sum(gy)
registerRule('LogSoftmax', (ctx) => {
  const { g, node, gradOutputs } = ctx;
  const [gy] = gradOutputs;
  if (gy === undefined || !ctx.needs[0]) return [];
  const total = g.op1('ReduceSum', [gy, softmaxAxis(ctx)], { keepdims: 1 });
  return [g.op1('Sub', [gy, mul(g, g.op1('Exp', [node.outputs[0]]), total)])];
});

/** Swaps the last two axes. */
function transposeLast(g: Graph, x: string): string {
  const r = g.shape(x).length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return g.op1('Transpose', [x], { perm });
}

/**
 * MatMul of rank >= 2 operands with broadcast batch dims: dA = gy B^T, dB = A^T gy, each summed
 * over the batch dims its operand was broadcast along. When B has no batch (a weight matrix
 * shared over A's batch, as in linear layers) both products are single Gemms over the
 * flattened batch: dB = A2^T gy2 with A2 = A as [rows, K], gy2 = gy as [rows, N].
 */
registerRule('MatMul', ({ g, node, gradOutputs: [gy], needs }) => {
  if (gy === undefined) return [];
  const [a, b] = node.inputs;
  const sa = g.shape(a);
  const sb = g.shape(b);
  const [k, n] = sb.slice(-2);
  if (sa.length === 2 && sb.length === 2) {
    return [
      needs[0] ? g.op1('Gemm', [gy, b], { transB: 1 }) : undefined,
      needs[1] ? g.op1('Gemm', [a, gy], { transA: 1 }) : undefined,
    ];
  }
  if (sb.slice(0, -2).every((d) => d === 1)) {
    // B is one matrix: Y's batch is A's, so the batch flattens into the rows of A and gy.
    const b2 = sb.length === 2 ? b : g.op1('Reshape', [b, g.ints([k, n])]);
    const gy2 = g.op1('Reshape', [gy, g.ints([-1, n])]);
    const db = () => {
      const r = g.op1('Gemm', [g.op1('Reshape', [a, g.ints([-1, k])]), gy2], { transA: 1 });
      return sb.length === 2 ? r : g.op1('Reshape', [r, g.ints(sb)]);
    };
    return [
      needs[0] ? g.op1('Reshape', [g.op1('Gemm', [gy2, b2], { transB: 1 }), g.ints(sa)]) : undefined,
      needs[1] ? db() : undefined,
    ];
  }
  return [
    needs[0] ? sumToShape(g, g.op1('MatMul', [gy, transposeLast(g, b)]), sa) : undefined,
    needs[1] ? sumToShape(g, g.op1('MatMul', [transposeLast(g, a), gy]), sb) : undefined,
  ];
});

/**
 * Gemm: Y = alpha A' B' + beta C with A' = A or A^T (transA), B' = B or B^T (transB), C
 * broadcast to Y. dA' = alpha gy B'^T and dB' = alpha A'^T gy, written as one Gemm each.
 */
registerRule('Gemm', ({ g, node, gradOutputs: [gy], needs }) => {
  if (gy === undefined) return [];
  const [a, b, c = ''] = node.inputs;
  const alpha = floatAttr(node, 'alpha', 1);
  const beta = floatAttr(node, 'beta', 1);
  const ta = numberAttr(node, 'transA', 0) === 1 ? 1 : 0;
  const tb = numberAttr(node, 'transB', 0) === 1 ? 1 : 0;
  const scale = alpha === 1 ? {} : { alpha: float(alpha) };
  const da = () =>
    ta === 0
      ? g.op1('Gemm', [gy, b], { transB: 1 - tb, ...scale })
      : g.op1('Gemm', [b, gy], { transA: tb, transB: 1, ...scale });
  const db = () =>
    tb === 0
      ? g.op1('Gemm', [a, gy], { transA: 1 - ta, ...scale })
      : g.op1('Gemm', [gy, a], { transA: 1, transB: ta, ...scale });
  const dc = () => sumToShape(g, beta === 1 ? gy : mul(g, gy, scalarOf(g, beta, g.dtype(gy))), g.shape(c));
  return [needs[0] ? da() : undefined, needs[1] ? db() : undefined, c !== '' && needs[2] ? dc() : undefined];
});
