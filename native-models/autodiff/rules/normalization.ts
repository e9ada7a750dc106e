/**
 * Gradient rules of normalizations: GroupNormalization (opset 21 per-channel scale and bias; the
 * opset-18 per-group form too), InstanceNormalization, LayerNormalization (opset 17, with its
 * optional Mean and InvStdDev outputs) and BatchNormalization (inference form: fixed statistics).
 * Also the fused gradient of SiLU, x * Sigmoid(x) (see siluGradient).
 *
 * Every op here is memory-bound, so the formulations minimize full-size passes: statistics by
 * two reductions (E[x], E[x^2]), group means from per-(image, channel) sums, and affine maps with
 * per-(image, channel) coefficients as ONE BatchNormalization pass instead of a Mul and an Add.
 *
 * Timings, ms (onnxruntime-node 1.30 CPU, 2 threads, level 'all', float32, 25th percentile of 40
 * interleaved runs). GroupNormalization, 32 groups unless noted; the forward pass with a loss,
 * then forward + backward with the textbook gradient (recomputed xhat, group means of dxhat and
 * dxhat * xhat) and with this rule; in brackets with scale and bias frozen (dx only):
 *   N16 C128 16x16:       2.52 | textbook 5.93 (5.90) | this rule 4.81 (4.60)
 *   N16 C64  32x32:       5.02 | textbook 10.75 (11.97) | this rule 9.68 (9.40)
 *   N8  C32  32x32, G8:   0.83 | textbook 2.13 (2.10) | this rule 1.67 (1.64)
 *   N8  C128 8x8:         0.21 | textbook 0.44 (0.44) | this rule 0.47 (0.44)
 * so the backward pass costs 20-35% less (on 8x8 maps the small ops even out). The backward pass
 * alone, N16 C128 16x16 and N16 C64 32x32 (two runs): textbook 1.88-1.97 and 3.65-3.70, this rule
 * 1.49-1.58 and 3.03-3.06; also tried: statistics and xhat from a LayerNormalization over the
 * groups 1.65-1.71 and 3.00-3.04, two-pass variance 1.72-1.76 and 3.62, ReduceSumSquare for E[x^2]
 * 1.47-1.53 and 2.94-2.99 (a tie, and less accurate), the gy term through BatchNormalization too
 * 1.54-1.64 and 3.20-3.22, the sums of gy * x as a batched MatMul 1.80-1.82 and 3.23-3.32.
 *
 * SiLU, forward + backward (with a loss pass) through the generic Mul and Sigmoid rules against
 * siluGradient (the forward alone 0.77, 0.35, 0.20):
 *   16x64x32x32: 4.45 -> 3.52;  16x128x16x16: 2.18 -> 1.72;  8x32x32x32: 1.10 -> 0.85
 * Attention, forward + backward: folding the softmax scale into dq and dk (one [B, h, N, N] pass
 * less) gave 45.5 -> 43.4 (B16 h4 N256 dh32), 237 -> 241 (B8 h4 N1024 dh16), 80.0 -> 76.0
 * (B16 h8 N256 dh16): within the noise, so attention keeps the generic rules.
 */
import { AutodiffError, registerRule, sumToShape, type RuleContext } from '../backward.js';
import { float, FloatAttr, type Graph, type GraphNode } from '../../onnx/graph.js';
import { numel } from '../../onnx/dtype.js';
import { normalizeAxis } from '../../onnx/shape-inference.js';

const reshape = (g: Graph, x: string, shape: readonly number[]) => g.op1('Reshape', [x, g.ints(shape)]);
const mul = (g: Graph, a: string, b: string) => g.op1('Mul', [a, b]);
const sub = (g: Graph, a: string, b: string) => g.op1('Sub', [a, b]);
const add = (g: Graph, a: string, b: string) => g.op1('Add', [a, b]);
const reduceSum = (g: Graph, x: string, axes: readonly number[], keepdims = 1) =>
  g.op1('ReduceSum', [x, g.ints(axes)], { keepdims });
const reduceMean = (g: Graph, x: string, axes: readonly number[]) =>
  g.op1('ReduceMean', [x, g.ints(axes)], { keepdims: 1 });

function floatAttr(node: GraphNode, key: string, fallback: number): number {
  const v = node.attrs[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  if (v instanceof FloatAttr) return v.value;
  throw new AutodiffError(`attribute '${key}' must be a number`);
}

function intAttr(node: GraphNode, key: string, fallback: number): number {
  const v = node.attrs[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  throw new AutodiffError(`attribute '${key}' must be an integer`);
}

/**
 * Mean and 1/sqrt(var + eps) over the last axis of `x` (kept as a unit axis). One pass for E[x]
 * and one for E[x^2], as onnxruntime's LayerNormalization does; the variance is clamped at 0
 * against rounding.
 */
function rowStatistics(g: Graph, x: string, epsilon: number): { mean: string; rstd: string } {
  const dtype = g.dtype(x);
  const last = g.shape(x).length - 1;
  const mean = reduceMean(g, x, [last]);
  const variance = g.op1('Max', [
    sub(g, reduceMean(g, mul(g, x, x), [last]), mul(g, mean, mean)),
    g.scalar(0, dtype),
  ]);
  const rstd = g.op1('Reciprocal', [g.op1('Sqrt', [add(g, variance, g.scalar(epsilon, dtype))])]);
  return { mean, rstd };
}

/**
 * a * x + b per channel in ONE pass: BatchNormalization with mean `mean` (or 0), variance 1 and
 * epsilon 0 computes scale * (x - mean) + bias. `x` is viewed as [1, rows, rest] so the "channels"
 * are its rows and the coefficients [rows] can differ per image and channel.
 */
function rowAffine(g: Graph, x: string, rows: number, scale: string, bias: string, mean?: string): string {
  const dtype = g.dtype(x);
  const rest = numel(g.shape(x)) / rows;
  const zeros = g.scalar(0, dtype, [rows]);
  return g.op1(
    'BatchNormalization',
    [reshape(g, x, [1, rows, rest]), scale, bias, mean ?? zeros, g.scalar(1, dtype, [rows])],
    { epsilon: float(0) },
  );
}

// ---------------------------------------------------------------------------------------------
// GroupNormalization and InstanceNormalization

interface GroupNormInputs {
  x: string;
  scale: string;
  gy: string;
  groups: number;
  epsilon: number;
  needs: boolean[];
}

/**
 * Gradients of y = scale * xhat + bias, xhat = (x - mean) / sqrt(var + eps) with statistics per
 * (image, group). With S_gy and S_gx the per-(image, channel) sums of gy and gy * x:
 *   dbias = sum_n S_gy, dscale = sum_n rstd (S_gx - mean S_gy)
 *   dx = rstd scale gy - rstd m2 xhat - rstd m1,  m1 = mean_group(scale gy), m2 = mean_group(scale gy xhat)
 * so every group mean comes from the [n, c] sums, xhat is never materialized, and dx costs one
 * Mul, one BatchNormalization (the per-(image, channel) affine term in x) and one Add.
 */
function groupNormGradient(g: Graph, { x, scale, gy, groups, epsilon, needs }: GroupNormInputs) {
  const xs = g.shape(x);
  const [n, c] = xs;
  if (c % groups !== 0) throw new AutodiffError(`${c} channels do not split into ${groups} groups`);
  const cg = c / groups;
  const spatial = numel(xs.slice(2));
  const count = cg * spatial;
  const dtype = g.dtype(x);
  // opset 18 GroupNormalization takes one scale per group, opset 21 one per channel
  const perGroup = numel(g.shape(scale)) !== c;

  const gy4 = reshape(g, gy, [n, groups, cg, spatial]);
  const sumGy = reduceSum(g, gy4, [3]); // [n, groups, cg, 1]
  const paramGrad = (perChannel: string) =>
    perGroup ? reduceSum(g, perChannel, [0, 2, 3], 0) : reshape(g, reduceSum(g, perChannel, [0], 0), [c]);
  const dBias = needs[2] ? paramGrad(sumGy) : undefined;
  if (!needs[0] && !needs[1]) return [undefined, undefined, dBias];

  const { mean, rstd } = rowStatistics(g, reshape(g, x, [n, groups, count]), epsilon);
  const mean4 = reshape(g, mean, [n, groups, 1, 1]);
  const rstd4 = reshape(g, rstd, [n, groups, 1, 1]);
  // sum over the image of gy * xhat, per (image, channel)
  const sumGyX = reduceSum(g, mul(g, gy4, reshape(g, x, [n, groups, cg, spatial])), [3]);
  const sumGyXhat = mul(g, rstd4, sub(g, sumGyX, mul(g, mean4, sumGy)));
  const dScale = needs[1] ? reshape(g, paramGrad(sumGyXhat), g.shape(scale)) : undefined;
  if (!needs[0]) return [undefined, dScale, dBias];

  const s4 = reshape(g, scale, perGroup ? [1, groups, 1, 1] : [1, groups, cg, 1]);
  const inverseCount = g.scalar(1 / count, dtype);
  const m1 = mul(g, reduceSum(g, mul(g, sumGy, s4), [2]), inverseCount); // [n, groups, 1, 1]
  const m2 = mul(g, reduceSum(g, mul(g, sumGyXhat, s4), [2]), inverseCount);
  const gyCoefficient = mul(g, rstd4, s4);
  // -rstd m2 xhat - rstd m1 = (-rstd^2 m2) (x - mean) - rstd m1, as a per-(image, channel) affine map of x
  const rows = n * c;
  const perRow = (t: string) => reshape(g, g.op1('Expand', [t, g.ints([n, groups, cg, 1])]), [rows]);
  const xTerm = rowAffine(
    g,
    x,
    rows,
    perRow(g.op1('Neg', [mul(g, mul(g, rstd4, rstd4), m2)])),
    perRow(g.op1('Neg', [mul(g, rstd4, m1)])),
    perRow(mean4),
  );
  const gyTerm = reshape(g, mul(g, gy4, gyCoefficient), [1, rows, spatial]);
  return [reshape(g, add(g, gyTerm, xTerm), xs), dScale, dBias];
}

registerRule('GroupNormalization', (ctx: RuleContext) => {
  const { g, node, needs } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const [x, scale] = node.inputs;
  const groups = intAttr(node, 'num_groups', 0);
  if (groups <= 0) throw new AutodiffError('GroupNormalization needs a positive num_groups');
  return groupNormGradient(g, { x, scale, gy, groups, epsilon: floatAttr(node, 'epsilon', 1e-5), needs });
});

registerRule('InstanceNormalization', (ctx: RuleContext) => {
  const { g, node, needs } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const [x, scale] = node.inputs;
  const groups = g.shape(x)[1];
  return groupNormGradient(g, { x, scale, gy, groups, epsilon: floatAttr(node, 'epsilon', 1e-5), needs });
});

// ---------------------------------------------------------------------------------------------
// LayerNormalization

/**
 * y = scale * xhat + bias over the axes from `axis` on, plus the optional Mean and InvStdDev
 * outputs. With rows the leading axes and d the normalized size:
 *   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = scale * gy
 * xhat is one BatchNormalization pass over x, and so is the xhat term of dx.
 */
registerRule('LayerNormalization', (ctx: RuleContext) => {
  const { g, node, needs } = ctx;
  const [gy, gMean, gInvStd] = ctx.gradOutputs;
  const [x, scale, bias] = node.inputs;
  const xs = g.shape(x);
  const dtype = g.dtype(x);
  const axis = normalizeAxis(intAttr(node, 'axis', -1), xs.length);
  const epsilon = floatAttr(node, 'epsilon', 1e-5);
  const rows = numel(xs.slice(0, axis));
  const d = numel(xs.slice(axis));
  const normalizedShape = xs.slice(axis);
  const x2 = reshape(g, x, [rows, d]);

  // Statistics: the node's own Mean/InvStdDev outputs when it has them in x's dtype (onnxruntime
  // writes them as float32 even for float64 inputs), else recomputed. Built only when used.
  const [, meanOut, invStdOut] = node.outputs;
  const own = meanOut && invStdOut && g.dtype(meanOut) === dtype && g.dtype(invStdOut) === dtype;
  let stats: { rstd: string; rowRstd: string; xhat: string } | undefined;
  const statistics = () => {
    if (stats) return stats;
    const { mean, rstd } = own
      ? { mean: reshape(g, meanOut, [rows, 1]), rstd: reshape(g, invStdOut, [rows, 1]) }
      : rowStatistics(g, x2, epsilon);
    const rowRstd = reshape(g, rstd, [rows]);
    const xhat = rowAffine(g, x2, rows, rowRstd, g.scalar(0, dtype, [rows]), reshape(g, mean, [rows]));
    return (stats = { rstd, rowRstd, xhat: reshape(g, xhat, [rows, d]) });
  };

  let dx: string | undefined;
  let dScale: string | undefined;
  let dBias: string | undefined;
  if (gy !== undefined) {
    const gy2 = reshape(g, gy, [rows, d]);
    if (needs[1]) {
      const full = reshape(g, reduceSum(g, mul(g, gy2, statistics().xhat), [0], 0), normalizedShape);
      dScale = sumToShape(g, full, g.shape(scale));
    }
    if (bias && needs[2])
      dBias = sumToShape(g, reshape(g, reduceSum(g, gy2, [0], 0), normalizedShape), g.shape(bias));
    if (needs[0]) {
      const { rstd, rowRstd, xhat } = statistics();
      const scaleShape = g.shape(scale);
      const fullScale = numel(scaleShape) === d ? scale : g.op1('Expand', [scale, g.ints(normalizedShape)]);
      const dxhat = mul(g, gy2, reshape(g, fullScale, [1, d]));
      const m1 = reshape(g, reduceMean(g, dxhat, [1]), [rows]);
      const m2 = reshape(g, reduceMean(g, mul(g, dxhat, xhat), [1]), [rows]);
      const xhatTerm = rowAffine(
        g,
        xhat,
        rows,
        g.op1('Neg', [mul(g, rowRstd, m2)]),
        g.op1('Neg', [mul(g, rowRstd, m1)]),
      );
      dx = add(g, reshape(g, mul(g, dxhat, rstd), [1, rows, d]), xhatTerm);
    }
  }
  if (needs[0] && (gMean !== undefined || gInvStd !== undefined)) {
    // d mean / dx = 1/d,  d rstd / dx = -rstd^2 xhat / d
    const asX = (t: string) =>
      g.dtype(t) === dtype ? t : g.op1('Cast', [t], { to: dtype === 'float64' ? 11 : 1 });
    const terms: string[] = [];
    if (gMean !== undefined) terms.push(mul(g, reshape(g, asX(gMean), [rows, 1]), g.scalar(1 / d, dtype)));
    if (gInvStd !== undefined) {
      const { rstd, xhat } = statistics();
      const perRow = mul(
        g,
        mul(g, reshape(g, asX(gInvStd), [rows, 1]), mul(g, rstd, rstd)),
        g.scalar(-1 / d, dtype),
      );
      terms.push(mul(g, xhat, perRow));
    }
    const extra = terms.length === 2 ? add(g, terms[1], terms[0]) : terms[0];
    if (dx !== undefined) dx = add(g, reshape(g, dx, [rows, d]), extra);
    else dx = g.shape(extra)[1] === d ? extra : g.op1('Expand', [extra, g.ints([rows, d])]);
  }
  return [dx === undefined ? undefined : reshape(g, dx, xs), dScale, dBias];
});

// ---------------------------------------------------------------------------------------------
// BatchNormalization (inference form)

/**
 * y = scale (x - mean) / sqrt(var + eps) + bias with the statistics as inputs. dx is the same op
 * applied to gy with a zero mean and bias, one pass; the parameter gradients come from the
 * per-channel sums of gy and gy * x.
 */
registerRule('BatchNormalization', (ctx: RuleContext) => {
  const { g, node, needs } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  if (intAttr(node, 'training_mode', 0) !== 0 || node.outputs.length > 1) {
    throw new AutodiffError('only the inference form of BatchNormalization (training_mode 0) is supported');
  }
  const [x, scale, , mean, variance] = node.inputs;
  const xs = g.shape(x);
  const c = xs[1];
  const dtype = g.dtype(x);
  const epsilon = floatAttr(node, 'epsilon', 1e-5);
  const zeros = g.scalar(0, dtype, [c]);
  const dx = needs[0]
    ? g.op1('BatchNormalization', [gy, scale, zeros, zeros, variance], { epsilon: float(epsilon) })
    : undefined;
  if (!needs.slice(1).some(Boolean)) return [dx];

  const axes = xs.flatMap((_, i) => (i === 1 ? [] : [i]));
  const sumGy = reduceSum(g, gy, axes, 0); // [c]
  const rstd = g.op1('Reciprocal', [g.op1('Sqrt', [add(g, variance, g.scalar(epsilon, dtype))])]);
  const needsCentered = needs[1] || needs[4];
  // sum of gy * (x - mean) per channel
  const centered = needsCentered
    ? sub(g, reduceSum(g, mul(g, gy, x), axes, 0), mul(g, mean, sumGy))
    : undefined;
  const dScale = needs[1] && centered ? mul(g, centered, rstd) : undefined;
  const dBias = needs[2] ? sumGy : undefined;
  const dMean = needs[3] ? g.op1('Neg', [mul(g, mul(g, scale, rstd), sumGy)]) : undefined;
  const dVar =
    needs[4] && centered
      ? mul(g, mul(g, mul(g, scale, mul(g, rstd, mul(g, rstd, rstd))), centered), g.scalar(-0.5, dtype))
      : undefined;
  return [dx, dScale, dBias, dMean, dVar];
});

// ---------------------------------------------------------------------------------------------
// SiLU

const producers = new WeakMap<Graph, { indexed: number; byOutput: Map<string, GraphNode> }>();

/** The node that outputs `value`, or undefined for graph inputs and initializers. */
function producerOf(g: Graph, value: string): GraphNode | undefined {
  let index = producers.get(g);
  if (!index) producers.set(g, (index = { indexed: 0, byOutput: new Map() }));
  for (; index.indexed < g.nodes.length; index.indexed++) {
    for (const o of g.nodes[index.indexed].outputs) index.byOutput.set(o, g.nodes[index.indexed]);
  }
  return index.byOutput.get(value);
}

/**
 * The fused gradient of SiLU as the layers emit it, Mul(x, Sigmoid(x)) (either operand order):
 * dx = gy * s * (1 + x - y) with s = Sigmoid(x) and y = x * s, four elementwise ops instead of the
 * six the generic Mul and Sigmoid rules and the gradient sum take.
 *
 * Returns the Mul's input gradients (dx for x, nothing for s: the path through s is included in
 * dx), or undefined when the node is not a SiLU, so a Mul rule can fall back to the generic
 * product rule:
 *
 * @example
 * registerRule('Mul', (ctx) => siluGradient(ctx) ?? productRule(ctx));
 *
 * Other uses of s still get their gradient through the Sigmoid rule. Asking for the gradient with
 * respect to s itself is not supported through a fused SiLU (s is an intermediate value).
 */
export function siluGradient(ctx: RuleContext): (string | undefined)[] | undefined {
  const { g, node, needs } = ctx;
  const [gy] = ctx.gradOutputs;
  if (node.opType !== 'Mul' || node.inputs.length !== 2 || gy === undefined) return undefined;
  const [a, b] = node.inputs;
  for (const xIndex of [0, 1]) {
    const x = xIndex === 0 ? a : b;
    const s = xIndex === 0 ? b : a;
    const sigmoid = producerOf(g, s);
    if (sigmoid?.opType !== 'Sigmoid' || sigmoid.inputs[0] !== x || x === s) continue;
    const shape = g.shape(x);
    const y = node.outputs[0];
    if (g.shape(y).length !== shape.length || g.shape(y).some((dim, i) => dim !== shape[i])) continue;
    const result: (string | undefined)[] = [undefined, undefined];
    if (needs[xIndex]) {
      const onePlusXMinusY = add(g, sub(g, x, y), g.scalar(1, g.dtype(x)));
      result[xIndex] = mul(g, gy, mul(g, s, onePlusXMinusY));
    }
    return result;
  }
  return undefined;
}
