/**
 * Gradient rules of convolutions and pools: Conv, ConvTranspose (2-D, and 1-D through a unit
 * height), MaxPool, AveragePool, GlobalAveragePool.
 *
 * Conv has several formulations of dW and dX (see WeightGradMethod, InputGradMethod); the rule
 * picks the fastest measured one per geometry (chooseWeightGradMethod, chooseInputGradMethod) and
 * builds only what is needed: no dW for a frozen weight, no dX for a graph input that is not asked.
 *
 * Timings, ms: onnxruntime-node 1.30 CPU, 2 threads, graphOptimizationLevel 'all', float32,
 * weights as graph inputs; each formulation alone in a session (output summed to a scalar), 25th
 * percentile of 30-40 interleaved runs, best of three runs (this machine has spells when
 * everything runs twice as slow). fwd is the forward Conv; [x] marks the formulation chosen.
 * dW: taps, taps-gemm, unfold, gy-taps, conv; dX: flipped-conv, conv-transpose, matmul, each with
 * a trainable weight, then (*) with the weight as a constant initializer (a frozen weight, which
 * onnxruntime folds and prepacks). 3x3 convs have padding 1.
 *
 *                                |              dW               |                 dX
 * N, C->M, map, kernel       fwd |  taps  gemm unfld gytap  conv |  flip   (*) convT   (*)    mm   (*)
 * N8   32->32  32x32 3x3 s1  1.2 | [2.8]   3.0   3.3   3.6   6.1 | [1.2] [0.8]   2.6   2.6     -     -
 * N8   64->64  32x32 3x3 s1  3.2 | [6.2]   6.6   7.7   8.1  14.7 | [3.3] [2.2]   6.2   6.0     -     -
 * N16  64->64  32x32 3x3 s1  6.2 |[11.9]  13.2  15.4  16.3  28.1 | [6.5] [4.5]  12.0  11.7     -     -
 * N8   64->128 16x16 3x3 s1  1.3 |   3.9 [2.8]   2.8   4.9   6.4 | [2.0] [1.1]   2.3   2.0     -     -
 * N8  128->128 16x16 3x3 s1  2.6 |   6.7 [5.2]   5.4   6.3  12.8 | [3.3] [2.1]   4.3   3.8     -     -
 * N16 128->128 16x16 3x3 s1  5.0 |  12.4 [9.2]  11.6  12.2  20.9 | [5.7] [4.0]   8.3   7.6     -     -
 * N8    4->64  32x32 3x3 s1  0.5 |   1.4   1.6 [0.6]   5.4   1.2 |   1.2   0.9 [0.8] [0.7]     -     -
 * N16  64->4   32x32 3x3 s1  2.5 |   7.1   6.9  12.4 [1.4]   7.6 | [1.1] [1.0]   7.8   7.6     -     -
 * N8   32->4   32x32 3x3 s1  0.6 |   1.8   1.9   2.5 [0.6]   2.0 | [0.3] [0.3]   1.9   2.1     -     -
 * N16 128->64  32x32 3x3 s1 11.9 |  23.0  22.5  31.6[20.6]  54.6 |[10.8] [8.3]  20.5  20.0     -     -
 * N16 256->128 16x16 3x3 s1 10.1 |  23.6  17.1  22.9[17.6]  41.3 |[10.0] [8.0]  16.6  14.9     -     -
 * N8  192->64  32x32 3x3 s1  9.4 |  18.4  17.0  23.9[13.4]  44.7 | [8.3] [6.6]  15.5  16.0     -     -
 * N8   64->64  32x32 3x3 s2  1.1 |   4.7   4.6 [2.1]     -   5.0 |     -     - [2.0] [2.1]     -     -
 * N16  64->64  32x32 3x3 s2  2.1 |   9.1   8.2 [4.4]     -   9.2 |     -     - [4.3] [4.2]     -     -
 * N16 128->128 16x16 3x3 s2  3.0 |   8.8   5.5 [3.7]     -   6.6 |     -     - [3.2] [2.9]     -     -
 * N8   64->128 32x32 1x1 s1  1.2 | [0.7]   1.3   4.2   1.3   9.7 | [1.2]   1.1   1.7   1.6   1.4 [1.2]
 * N16 128->64  32x32 1x1 s1  2.8 | [1.5]   2.6  16.4   2.1  22.6 | [2.4]   2.5   4.4   4.2   2.7 [2.4]
 * N8  128->128 16x16 1x1 s1  0.5 | [0.5]   0.7   2.0   0.8   3.1 | [0.5]   0.6   0.8   0.7   0.5 [0.4]
 * N16 256->128 16x16 1x1 s1  1.4 | [1.4]   1.9   9.4   1.8  16.9 | [1.5]   1.8   2.8   2.8   2.0 [1.4]
 *
 * Read: the textbook dW (a Conv over x^T with gy^T as kernel) costs 2-12x the chosen one; the
 * per-tap MatMuls run at about 120 GFLOP/s against 200 for the forward Conv, and the Slices are
 * about a quarter of dW. With a 32x32 output the per-image MatMuls win; at 16x16 one Gemm over the
 * whole batch per tap; with a stride all patches at once by the one-hot Conv (strided Slices are
 * slow); with few output channels shifting gy instead of x; with few input channels the one-hot
 * Conv. dX of a stride-1 conv is a Conv about as fast as the forward one, and faster still with a
 * frozen weight; ConvTranspose costs twice as much but is the best measured for stride 2.
 * Also measured and dropped: patches built once then one Gemm, in NCHW (8.7 for N8 64->64 32x32)
 * or NHWC (9.8); taps cut from a phase-split, flattened map (8.0); for stride 2, dX as one
 * stride-1 Conv with 2x2 sub-kernels into 4C channels plus DepthToSpace (3.3 and 16.9 for
 * N8 64->64 32x32 and N16 128->128 32x32, against 2.4 and 10.0 for ConvTranspose).
 *
 * dW again once the train step ran its convolutions on NCHWc kernels (../nchwc.ts), on a 2-core
 * AVX-512 Xeon so loaded by other jobs that two-thread timings were meaningless: single-thread
 * kernel times from onnxruntime's profiler (min per node over 13 runs), split into the copies
 * onnxruntime runs on one thread only (Slice, Pad, Concat, Transpose, Reshape) + everything else,
 * and after '>' the two-thread estimate copies + rest / 2; N8, 3x3, padding 1, stride 1.
 * 'taps' reuses the unpadded tensor for the centre tap and sums each tap over the batch before
 * stacking; 'gy-taps' and 'gy-taps-gemm' shift gy per tap instead of stacking the shifted copies
 * into one operand ('gy-stack', the former 'gy-taps'), whose Concat runs on one thread.
 *   C->M      map    taps          taps-gemm     gy-stack      gy-taps       gy-taps-gemm  unfold
 *   64->64    32x32 [1.8+4.4>4.0]  2.3+4.0>4.3   4.3+3.7>6.2   1.9+4.6>4.1   2.2+4.1>4.2   0.0+9.9>5.0
 *   192->64   32x32  5.2+14>12     6.3+13>13     5.2+17>14    [2.0+11>7.5]   2.8+12>8.8    0.1+58>29
 *   256->128  16x16  2.8+9.4>7.5   3.0+7.9>7.0   2.4+13>8.8    1.9+8.9>6.3  [1.8+7.7>5.7]  0.2+18>9.1
 *   128->128  16x16  1.3+4.5>3.5  [1.6+3.6>3.4]  2.7+7.4>6.4   1.5+5.0>4.0   1.6+4.1>3.7   0.1+9.2>4.7
 *   128->128  8x8    0.7+1.8>1.6  [0.8+1.0>1.3]  0.9+1.7>1.7   0.8+1.7>1.6   0.8+0.8>1.2   0.1+2.3>1.2
 *   64->3     32x32  1.8+1.3>2.4   1.9+1.1>2.5  [0.2+0.3>0.3]  0.2+1.5>0.9   0.4+1.1>0.9   0.0+7.6>3.8
 * (before these changes: 64->64 taps 2.5+4.4 > 4.6, 192->64 gy-taps 5.8+17.5 > 14.6, 256->128
 * gy-taps 2.9+8.8 > 7.3, 128->128 16x16 taps-gemm 1.9+4.0 > 3.9). The one-hot 'unfold' has no
 * single-thread copies but twice the work; it stays the choice for strides, where strided
 * Slices are slow.
 */
import { AutodiffError, registerRule, type RuleContext } from '../backward.js';
import type { Graph, GraphNode } from '../../onnx/graph.js';
import { numel, type DType } from '../../onnx/dtype.js';

/**
 * A 2-D convolution y = conv(x, w) as the gradient formulations see it:
 * x [n, c, h, w], w [m, c / group, kernel], y [n, m, ho, wo].
 */
export interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  m: number;
  ho: number;
  wo: number;
  group: number;
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

/**
 * How dW is built. The shifted copies ('taps') are the data movement of dW: onnxruntime runs
 * Slice, Concat and Pad on one thread, so each formulation keeps them few and small.
 * - 'taps': per kernel tap, a Slice of the padded x and one batched MatMul with gy (MatMul with a
 *   transposed operand, which ORT fuses), summed over the batch; the taps are then stacked.
 * - 'taps-gemm': the same on x and gy transposed to channels-first ([c, n*ho*wo]), so each tap is
 *   one Gemm whose inner dimension spans the whole batch.
 * - 'unfold': all patches at once by a Conv of x (one channel per image-channel) with a constant
 *   one-hot kernel, then one batched MatMul. Float32 only (ORT has no float64 Conv).
 * - 'gy-taps' (stride 1): the shifted copies are of gy instead of x (fewer channels when the conv
 *   narrows), one batched MatMul per tap against x.
 * - 'gy-taps-gemm' (stride 1): 'gy-taps' channels-first, one Gemm per tap over the whole batch.
 * - 'gy-stack' (stride 1): the shifted gy stacked into one [m*kh*kw, h*w] operand per image and
 *   one MatMul: best when gy has very few channels (a conv_out).
 * - 'conv': the textbook Conv of x^T with gy^T as kernel (dilation = stride); kept for reference.
 * The tap whose window is the unpadded tensor (the centre of a stride-1 'same' conv) is never copied.
 */
export type WeightGradMethod =
  'taps' | 'taps-gemm' | 'unfold' | 'gy-taps' | 'gy-taps-gemm' | 'gy-stack' | 'conv';

/**
 * How dX is built.
 * - 'matmul': 1x1, stride 1, no padding, one group: W^T gy as one MatMul. Chosen for a constant
 *   (frozen) weight; with a trainable one the 1x1 Conv that 'flipped-conv' becomes is faster.
 * - 'flipped-conv': stride 1: a Conv of gy with the spatially flipped, transposed kernel.
 * - 'conv-transpose': ConvTranspose of gy with W (explicit pads and output_padding).
 */
export type InputGradMethod = 'matmul' | 'flipped-conv' | 'conv-transpose';

/** The fastest measured dW formulation for a geometry (see the timings above). */
export function chooseWeightGradMethod(geo: ConvGeometry): WeightGradMethod {
  const cg = geo.c / geo.group;
  const mg = geo.m / geo.group;
  const [kh, kw] = geo.kernel;
  if (geo.strides[0] !== 1 || geo.strides[1] !== 1) return 'unfold';
  if (kh * kw === 1 || cg === 1) return 'taps';
  if (cg <= 8) return 'unfold';
  const bigMap = geo.ho * geo.wo >= 1024;
  if (2 * mg <= cg) return mg <= 8 ? 'gy-stack' : bigMap ? 'gy-taps' : 'gy-taps-gemm';
  return bigMap ? 'taps' : 'taps-gemm';
}

/**
 * The fastest measured dX formulation for a geometry (see the timings above). A constant weight
 * (a frozen initializer) lets onnxruntime fold the weight transforms and prepack the kernel, which
 * changes the 1x1 winner.
 */
export function chooseInputGradMethod(geo: ConvGeometry, constantWeight = false): InputGradMethod {
  const [kh, kw] = geo.kernel;
  if (geo.strides[0] !== 1 || geo.strides[1] !== 1) return 'conv-transpose';
  // A Conv producing only a few channels (dX of a conv_in) is slower than the transposed conv.
  if (geo.group === 1 && geo.c <= 8) return 'conv-transpose';
  const plain1x1 = kh === 1 && kw === 1 && geo.group === 1 && geo.pads.every((p) => p === 0);
  return plain1x1 && constantWeight ? 'matmul' : 'flipped-conv';
}

// ---------------------------------------------------------------------------------------------
// Small graph helpers

const reshape = (g: Graph, x: string, shape: readonly number[]) => g.op1('Reshape', [x, g.ints(shape)]);
const transpose = (g: Graph, x: string, perm: readonly number[]) => g.op1('Transpose', [x], { perm });
/** Transposes the last two axes of a tensor of rank `rank`. */
const swapLast = (g: Graph, x: string, rank: number) =>
  transpose(g, x, [...Array(rank - 2).keys(), rank - 1, rank - 2]);
const reduceSum = (g: Graph, x: string, axes: readonly number[], keepdims = 0) =>
  g.op1('ReduceSum', [x, g.ints(axes)], { keepdims });

/** Stacks same-shaped tensors on a new last axis (a single tensor gets a unit axis). */
function stackLast(g: Graph, parts: string[]): string {
  const unsqueezed = parts.map((p) => g.op1('Unsqueeze', [p, g.ints([-1])]));
  return unsqueezed.length === 1 ? unsqueezed[0] : g.op1('Concat', unsqueezed, { axis: -1 });
}

function attrInts(node: GraphNode, key: string, fallback: number[]): number[] {
  const v = node.attrs[key];
  if (v === undefined) return fallback;
  if (Array.isArray(v) && v.every((e) => typeof e === 'number')) return v as number[];
  throw new AutodiffError(`attribute '${key}' must be a list of integers`);
}

function attrInt(node: GraphNode, key: string, fallback: number): number {
  const v = node.attrs[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  throw new AutodiffError(`attribute '${key}' must be an integer`);
}

/**
 * Explicit [begin..., end...] pads of a Conv/pool along `spatial` axes, resolving auto_pad from the
 * output sizes the IR inferred (the same rule as shape inference: SAME_UPPER puts the extra one at
 * the end).
 */
function resolvePads(
  node: GraphNode,
  inSizes: number[],
  outSizes: number[],
  kernel: number[],
  strides: number[],
  dilations: number[],
): number[] {
  const sp = inSizes.length;
  const autoPad = node.attrs.auto_pad ?? 'NOTSET';
  if (autoPad === 'NOTSET') return attrInts(node, 'pads', Array<number>(2 * sp).fill(0));
  if (autoPad === 'VALID') return Array<number>(2 * sp).fill(0);
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER')
    throw new AutodiffError(`unknown auto_pad '${String(autoPad)}'`);
  const pads = Array<number>(2 * sp).fill(0);
  for (let i = 0; i < sp; i++) {
    const total = Math.max(
      0,
      (outSizes[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - inSizes[i],
    );
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + sp] = total - pads[i];
  }
  return pads;
}

/** Spatial attributes of a 1-D op lifted to 2-D by a unit height (identity for 2-D). */
function lift2d(values: number[], unit: number): [number, number] {
  if (values.length === 1) return [unit, values[0]];
  if (values.length === 2) return [values[0], values[1]];
  throw new AutodiffError(`only 1-D and 2-D ops are supported, got ${values.length} spatial axes`);
}

function liftPads(pads: number[]): [number, number, number, number] {
  if (pads.length === 2) return [0, pads[0], 0, pads[1]];
  if (pads.length === 4) return [pads[0], pads[1], pads[2], pads[3]];
  throw new AutodiffError(`only 1-D and 2-D ops are supported, got pads [${pads.join(', ')}]`);
}

/** A rank-3 tensor [n, c, l] viewed as [n, c, 1, l]; rank 4 as is. */
function to4d(g: Graph, x: string): string {
  const s = g.shape(x);
  return s.length === 3 ? reshape(g, x, [s[0], s[1], 1, s[2]]) : x;
}

/** The geometry of a Conv node (x, w, y given; 1-D convs are lifted to 2-D). */
function convNodeGeometry(g: Graph, node: GraphNode): ConvGeometry {
  const [x, w] = node.inputs;
  const xs = g.shape(x);
  const ws = g.shape(w);
  const ys = g.shape(node.outputs[0]);
  const sp = xs.length - 2;
  const kernel = ws.slice(2);
  const strides = attrInts(node, 'strides', Array<number>(sp).fill(1));
  const dilations = attrInts(node, 'dilations', Array<number>(sp).fill(1));
  const pads = resolvePads(node, xs.slice(2), ys.slice(2), kernel, strides, dilations);
  const [h, wd] = lift2d(xs.slice(2), 1);
  const [ho, wo] = lift2d(ys.slice(2), 1);
  return {
    n: xs[0],
    c: xs[1],
    h,
    w: wd,
    m: ws[0],
    ho,
    wo,
    group: attrInt(node, 'group', 1),
    kernel: lift2d(kernel, 1),
    strides: lift2d(strides, 1),
    dilations: lift2d(dilations, 1),
    pads: liftPads(pads),
  };
}

// ---------------------------------------------------------------------------------------------
// dW formulations

/**
 * Zero-pads x (whose spatial axes are `axes`) by the conv's leading pads and by as many trailing
 * rows/columns as the last tap reaches (trailing pads no window uses are skipped).
 */
function padForTaps(g: Graph, x: string, geo: ConvGeometry, axes: [number, number]): string {
  const [pt, pl] = geo.pads;
  const [kh, kw] = geo.kernel;
  const [sh, sw] = geo.strides;
  const [dh, dw] = geo.dilations;
  const endH = Math.max(0, (geo.ho - 1) * sh + (kh - 1) * dh + 1 - pt - geo.h);
  const endW = Math.max(0, (geo.wo - 1) * sw + (kw - 1) * dw + 1 - pl - geo.w);
  if (pt === 0 && pl === 0 && endH === 0 && endW === 0) return x;
  const rank = g.shape(x).length;
  const pads = Array<number>(2 * rank).fill(0);
  pads[axes[0]] = pt;
  pads[axes[1]] = pl;
  pads[rank + axes[0]] = endH;
  pads[rank + axes[1]] = endW;
  return g.op1('Pad', [x, g.ints(pads)]);
}

/**
 * One strided Slice per kernel tap (row-major over the kernel) of the padded `xp`: each
 * [.., ho, wo] on `axes`. The tap whose window is the unpadded `x` itself (the centre tap of a
 * stride-1 'same' conv) takes `x` without a copy.
 */
function tapSlices(g: Graph, xp: string, x: string, geo: ConvGeometry, axes: [number, number]): string[] {
  const [kh, kw] = geo.kernel;
  const [sh, sw] = geo.strides;
  const [dh, dw] = geo.dilations;
  const [pt, pl] = geo.pads;
  const xs = g.shape(xp);
  const sameSize = sh === 1 && sw === 1 && geo.ho === geo.h && geo.wo === geo.w;
  const out: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const starts = [i * dh, j * dw];
      const ends = [i * dh + (geo.ho - 1) * sh + 1, j * dw + (geo.wo - 1) * sw + 1];
      const whole =
        starts[0] === 0 &&
        starts[1] === 0 &&
        sh === 1 &&
        sw === 1 &&
        ends[0] === xs[axes[0]] &&
        ends[1] === xs[axes[1]];
      if (whole) out.push(xp);
      else if (sameSize && starts[0] === pt && starts[1] === pl) out.push(x);
      else out.push(g.op1('Slice', [xp, g.ints(starts), g.ints(ends), g.ints(axes), g.ints([sh, sw])]));
    }
  }
  return out;
}

/**
 * gy shifted under each kernel tap (stride 1), row-major over the kernel: for tap (i, j) the
 * [.., m, h, w] tensor s with s[t] = gy[t + p - d (i, j)] (zero outside), so that
 * dW[., ., i, j] = sum_t x[t] s[t]. gy's spatial axes are `axes`; the tap that is gy itself
 * (the centre of a 'same' conv) takes gy without a copy.
 */
function shiftedGradients(g: Graph, gy: string, geo: ConvGeometry, axes: [number, number]): string[] {
  const [kh, kw] = geo.kernel;
  const [sh, sw] = geo.strides;
  if (sh !== 1 || sw !== 1) throw new AutodiffError('shifting gy over the kernel taps needs stride 1');
  const [dh, dw] = geo.dilations;
  const [pt, pl, pb, pr] = geo.pads;
  const begin = [Math.max(0, (kh - 1) * dh - pt), Math.max(0, (kw - 1) * dw - pl)];
  const end = [Math.max(0, (kh - 1) * dh - pb), Math.max(0, (kw - 1) * dw - pr)];
  const rank = g.shape(gy).length;
  const pads = Array<number>(2 * rank).fill(0);
  [pads[axes[0]], pads[axes[1]], pads[rank + axes[0]], pads[rank + axes[1]]] = [...begin, ...end];
  const gyp = pads.some((p) => p > 0) ? g.op1('Pad', [gy, g.ints(pads)]) : gy;
  const sameSize = geo.ho === geo.h && geo.wo === geo.w;
  const shifted: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      if (sameSize && pt === i * dh && pl === j * dw) {
        shifted.push(gy);
        continue;
      }
      const starts = [pt - i * dh + begin[0], pl - j * dw + begin[1]];
      const ends = [starts[0] + geo.h, starts[1] + geo.w];
      shifted.push(g.op1('Slice', [gyp, g.ints(starts), g.ints(ends), g.ints(axes)]));
    }
  }
  return shifted;
}

const unfoldKernels = new WeakMap<Graph, Map<string, string>>();

/** A constant [kh*kw, 1, kh, kw] kernel whose output channel t picks kernel tap t. */
function oneHotKernel(g: Graph, kh: number, kw: number, dtype: DType): string {
  let cache = unfoldKernels.get(g);
  if (!cache) unfoldKernels.set(g, (cache = new Map()));
  const key = `${kh}x${kw}:${dtype}`;
  let name = cache.get(key);
  if (!name) {
    const kk = kh * kw;
    const ONE_FLOAT16 = 0x3c00;
    const data =
      dtype === 'float64'
        ? new Float64Array(kk * kk)
        : dtype === 'float16'
          ? new Uint16Array(kk * kk)
          : new Float32Array(kk * kk);
    for (let t = 0; t < kk; t++) data[t * kk + t] = dtype === 'float16' ? ONE_FLOAT16 : 1;
    name = g.initializer(g.fresh('unfold_kernel'), data, [kk, 1, kh, kw], dtype);
    cache.set(key, name);
  }
  return name;
}

/**
 * dW [m, c / group, kh, kw] of y = conv(x, w) given x and gy = dL/dy.
 * `method` defaults to the fastest measured one for the geometry.
 */
export function convWeightGradient(
  g: Graph,
  geo: ConvGeometry,
  x: string,
  gy: string,
  method: WeightGradMethod = chooseWeightGradMethod(geo),
): string {
  const { n, c, m, group } = geo;
  const [kh, kw] = geo.kernel;
  const cg = c / group;
  const mg = m / group;
  const l = geo.ho * geo.wo;
  const wShape = [m, cg, kh, kw];
  // Grouped convs carry a group axis right after the batch axis.
  const lead = group > 1 ? [n, group] : [n];

  switch (method) {
    case 'taps': {
      const gy3 = reshape(g, gy, [...lead, mg, l]);
      const rank = lead.length + 2;
      const parts = tapSlices(g, padForTaps(g, x, geo, [2, 3]), x, geo, [2, 3]).map((t) => {
        const t3 = reshape(g, t, [...lead, cg, l]);
        // One input channel per group (depthwise): a broadcast product, no 1-column MatMul.
        if (cg === 1) return reduceSum(g, g.op1('Mul', [gy3, t3]), [0, rank - 1]);
        // summed over the batch per tap, so the stack is small
        return reduceSum(g, g.op1('MatMul', [gy3, swapLast(g, t3, rank)]), [0]);
      });
      return reshape(g, stackLast(g, parts), wShape);
    }
    case 'taps-gemm': {
      const xt = transpose(g, x, [1, 0, 2, 3]);
      const nl = n * l;
      const gyt = reshape(g, transpose(g, gy, [1, 0, 2, 3]), group > 1 ? [group, mg, nl] : [m, nl]);
      const parts = tapSlices(g, padForTaps(g, xt, geo, [2, 3]), xt, geo, [2, 3]).map((t) =>
        group > 1
          ? g.op1('MatMul', [gyt, swapLast(g, reshape(g, t, [group, cg, nl]), 3)])
          : g.op1('Gemm', [gyt, reshape(g, t, [c, nl])], { transB: 1 }),
      );
      return reshape(g, stackLast(g, parts), wShape);
    }
    case 'unfold': {
      const kk = kh * kw;
      const patches = g.op1(
        'Conv',
        [reshape(g, x, [n * c, 1, geo.h, geo.w]), oneHotKernel(g, kh, kw, g.dtype(x))],
        {
          kernel_shape: [kh, kw],
          strides: geo.strides,
          dilations: geo.dilations,
          pads: geo.pads,
        },
      );
      const rank = lead.length + 2;
      const p3 = reshape(g, patches, [...lead, cg * kk, l]);
      const prod = g.op1('MatMul', [reshape(g, gy, [...lead, mg, l]), swapLast(g, p3, rank)]);
      return reshape(g, reduceSum(g, prod, [0]), wShape);
    }
    case 'gy-stack': {
      // dW[., ., i, j] = sum_t x[t] gy[t + p - d i] (stride 1): the shifted gy stacked into one
      // [n, (group,) mg*kk, h*w] operand, one MatMul per image (and group) with x^T [.., h*w, cg]
      const hw = geo.h * geo.w;
      const rank = lead.length + 2;
      const stacked = shiftedGradients(g, gy, geo, [2, 3]).map((t) => reshape(g, t, [...lead, mg, 1, hw]));
      const patches = reshape(
        g,
        stacked.length === 1 ? stacked[0] : g.op1('Concat', stacked, { axis: rank - 1 }),
        [...lead, mg * kh * kw, hw],
      );
      const prod = g.op1('MatMul', [patches, swapLast(g, reshape(g, x, [...lead, cg, hw]), rank)]);
      // [(group,) mg*kk, cg] -> [m, cg, kh, kw]
      const r = reshape(g, reduceSum(g, prod, [0]), [group, mg, kh, kw, cg]);
      return reshape(g, transpose(g, r, [0, 1, 4, 2, 3]), wShape);
    }
    case 'gy-taps': {
      // per tap: x [n, (group,) cg, h*w] times the shifted gy^T, summed over the batch
      const hw = geo.h * geo.w;
      const rank = lead.length + 2;
      const x3 = reshape(g, x, [...lead, cg, hw]);
      const parts = shiftedGradients(g, gy, geo, [2, 3]).map((t) =>
        reduceSum(g, g.op1('MatMul', [x3, swapLast(g, reshape(g, t, [...lead, mg, hw]), rank)]), [0]),
      );
      // [(group,) cg, mg, kk] -> [m, cg, kh, kw]
      const r = reshape(g, stackLast(g, parts), [group, cg, mg, kh * kw]);
      return reshape(g, transpose(g, r, [0, 2, 1, 3]), wShape);
    }
    case 'gy-taps-gemm': {
      // per tap: the shifted gy^T [(group,) mg, n*h*w] times x^T, the batch inside the inner dimension
      const nhw = n * geo.h * geo.w;
      const xt = reshape(g, transpose(g, x, [1, 0, 2, 3]), group > 1 ? [group, cg, nhw] : [c, nhw]);
      const parts = shiftedGradients(g, transpose(g, gy, [1, 0, 2, 3]), geo, [2, 3]).map((t) =>
        group > 1
          ? g.op1('MatMul', [reshape(g, t, [group, mg, nhw]), swapLast(g, xt, 3)])
          : g.op1('Gemm', [reshape(g, t, [m, nhw]), xt], { transB: 1 }),
      );
      return reshape(g, stackLast(g, parts), wShape);
    }
    case 'conv': {
      // dW[m, c, i, j] = sum_{n,u,v} gy[n, m, u, v] xpad[n, c, s u + d i, s v + d j]: a Conv over
      // x^T (channels as batch, batch as channels) with gy^T as kernel and dilation = stride.
      if (group !== 1) throw new AutodiffError("the 'conv' dW formulation handles one group only");
      const [sh, sw] = geo.strides;
      const [dh, dw] = geo.dilations;
      const [pt, pl] = geo.pads;
      // The output must be exactly kh x kw: crop or pad x at the end to the extent the windows use.
      const endH = (geo.ho - 1) * sh + (kh - 1) * dh + 1 - pt - geo.h;
      const endW = (geo.wo - 1) * sw + (kw - 1) * dw + 1 - pl - geo.w;
      let xt = transpose(g, x, [1, 0, 2, 3]);
      if (endH < 0 || endW < 0) {
        xt = g.op1('Slice', [
          xt,
          g.ints([0, 0]),
          g.ints([geo.h + Math.min(0, endH), geo.w + Math.min(0, endW)]),
          g.ints([2, 3]),
        ]);
      }
      const r = g.op1('Conv', [xt, transpose(g, gy, [1, 0, 2, 3])], {
        strides: geo.dilations,
        dilations: geo.strides,
        pads: [pt, pl, Math.max(0, endH), Math.max(0, endW)],
      });
      return transpose(g, r, [1, 0, 2, 3]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// dX formulations

const flippedKernels = new WeakMap<Graph, Map<string, string>>();

/** Remembers that `flipped` is `weight` [m, c, kh, kw] with its channels swapped and its taps reversed. */
function recordFlippedKernel(g: Graph, flipped: string, weight: string): void {
  let kernels = flippedKernels.get(g);
  if (!kernels) flippedKernels.set(g, (kernels = new Map()));
  kernels.set(flipped, weight);
}

/**
 * The weight [m, c, kh, kw] a 'flipped-conv' dX kernel [c, m, kh, kw] was made from (one group),
 * or undefined. The NCHWc lowering (../nchwc.ts) reorders that weight straight into its blocked
 * layout instead of transposing and flipping it first.
 */
export function flippedKernelSource(g: Graph, kernel: string): string | undefined {
  return flippedKernels.get(g)?.get(kernel);
}

/** dX [n, c, h, w] of y = conv(x, w) given w and gy. */
export function convInputGradient(
  g: Graph,
  geo: ConvGeometry,
  w: string,
  gy: string,
  method: InputGradMethod = chooseInputGradMethod(geo),
): string {
  const { n, c, m, group } = geo;
  const [kh, kw] = geo.kernel;
  const [sh, sw] = geo.strides;
  const [dh, dw] = geo.dilations;
  const [pt, pl, pb, pr] = geo.pads;
  const cg = c / group;
  const mg = m / group;

  switch (method) {
    case 'matmul': {
      if (kh !== 1 || kw !== 1 || sh !== 1 || sw !== 1 || group !== 1 || geo.pads.some((p) => p !== 0))
        throw new AutodiffError(
          "the 'matmul' dX formulation needs a 1x1, stride-1, unpadded, one-group conv",
        );
      const wt = transpose(g, reshape(g, w, [m, c]), [1, 0]);
      const dx = g.op1('MatMul', [wt, reshape(g, gy, [n, m, geo.ho * geo.wo])]);
      return reshape(g, dx, [n, c, geo.h, geo.w]);
    }
    case 'flipped-conv': {
      if (sh !== 1 || sw !== 1) throw new AutodiffError("the 'flipped-conv' dX formulation needs stride 1");
      // dx[t] = sum_i gy[t + p - d i] w[i]: a stride-1 Conv of gy with the flipped kernel, whose
      // input/output channels swap within each group.
      let wf =
        group === 1
          ? transpose(g, w, [1, 0, 2, 3])
          : reshape(g, transpose(g, reshape(g, w, [group, mg, cg, kh, kw]), [0, 2, 1, 3, 4]), [
              c,
              mg,
              kh,
              kw,
            ]);
      const flipAxes = [kh > 1 ? 2 : -1, kw > 1 ? 3 : -1].filter((a) => a >= 0);
      if (flipAxes.length > 0) {
        wf = g.op1('Slice', [
          wf,
          g.ints(flipAxes.map(() => -1)),
          g.ints(flipAxes.map((a) => -(a === 2 ? kh : kw) - 1)),
          g.ints(flipAxes),
          g.ints(flipAxes.map(() => -1)),
        ]);
      }
      if (group === 1) recordFlippedKernel(g, wf, w);
      // Pads (k-1)d - p; a negative one (padding wider than the kernel) crops gy instead.
      const begin = [(kh - 1) * dh - pt, (kw - 1) * dw - pl];
      const end = [(kh - 1) * dh - pb, (kw - 1) * dw - pr];
      let src = gy;
      if ([...begin, ...end].some((p) => p < 0)) {
        src = g.op1('Slice', [
          gy,
          g.ints([Math.max(0, -begin[0]), Math.max(0, -begin[1])]),
          g.ints([geo.ho - Math.max(0, -end[0]), geo.wo - Math.max(0, -end[1])]),
          g.ints([2, 3]),
        ]);
      }
      return g.op1('Conv', [src, wf], {
        kernel_shape: [kh, kw],
        dilations: geo.dilations,
        group,
        pads: [...begin, ...end].map((p) => Math.max(0, p)),
      });
    }
    case 'conv-transpose': {
      // Rows the forward windows never reached (floor division by the stride) come back as output_padding.
      const outputPadding = [
        geo.h - ((geo.ho - 1) * sh + (kh - 1) * dh + 1 - pt - pb),
        geo.w - ((geo.wo - 1) * sw + (kw - 1) * dw + 1 - pl - pr),
      ];
      return g.op1('ConvTranspose', [gy, w], {
        kernel_shape: [kh, kw],
        strides: geo.strides,
        dilations: geo.dilations,
        group,
        pads: geo.pads,
        output_padding: outputPadding.some((p) => p !== 0) ? outputPadding : undefined,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rules

/** Sum of gy over every axis but the channel axis: the gradient of a per-channel bias. */
const biasGradient = (g: Graph, gy: string) =>
  reduceSum(
    g,
    gy,
    g.shape(gy).flatMap((_, i) => (i === 1 ? [] : [i])),
  );

registerRule('Conv', (ctx: RuleContext) => {
  const { g, node, needs } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const [x, w] = node.inputs;
  const geo = convNodeGeometry(g, node);
  const gy4 = to4d(g, gy);
  const method = chooseInputGradMethod(geo, g.initializers.has(w));
  const dx = needs[0]
    ? reshape(g, convInputGradient(g, geo, to4d(g, w), gy4, method), g.shape(x))
    : undefined;
  const dw = needs[1] ? reshape(g, convWeightGradient(g, geo, to4d(g, x), gy4), g.shape(w)) : undefined;
  const db = needs[2] ? biasGradient(g, gy) : undefined;
  return [dx, dw, db];
});

/**
 * ConvTranspose is the adjoint of a Conv from its output space to its input space with the same
 * weight: y = convT(x, w) means <y, gy> = <x, conv(gy, w)>. So dX = conv(gy, w) (a forward Conv)
 * and dW is that Conv's weight gradient with gy as its input and x as its output gradient.
 */
registerRule('ConvTranspose', (ctx: RuleContext) => {
  const { g, node, needs } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const [x, w] = node.inputs;
  const xs = g.shape(x);
  const ws = g.shape(w);
  const ys = g.shape(node.outputs[0]);
  const sp = xs.length - 2;
  const group = attrInt(node, 'group', 1);
  const kernel = ws.slice(2);
  const strides = attrInts(node, 'strides', Array<number>(sp).fill(1));
  const dilations = attrInts(node, 'dilations', Array<number>(sp).fill(1));
  const autoPad = node.attrs.auto_pad ?? 'NOTSET';
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID')
    throw new AutodiffError(`ConvTranspose with auto_pad ${String(autoPad)} is not supported`);
  let pads =
    autoPad === 'VALID'
      ? Array<number>(2 * sp).fill(0)
      : attrInts(node, 'pads', Array<number>(2 * sp).fill(0));
  const outputShape = node.attrs.output_shape === undefined ? undefined : attrInts(node, 'output_shape', []);
  if (outputShape) {
    // As onnxruntime places the padding an output_shape implies: the larger half first.
    const outputPadding = attrInts(node, 'output_padding', Array<number>(sp).fill(0));
    pads = Array<number>(2 * sp).fill(0);
    for (let i = 0; i < sp; i++) {
      const total =
        strides[i] * (xs[2 + i] - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1 - outputShape[i];
      pads[i] = total - Math.floor(total / 2);
      pads[i + sp] = Math.floor(total / 2);
    }
  }
  const [h, wd] = lift2d(ys.slice(2), 1);
  const [ho, wo] = lift2d(xs.slice(2), 1);
  // The adjoint Conv maps gy [n, c_out, ...] to x-space [n, c_in, ...] with w [c_in, c_out/group, ...].
  const geo: ConvGeometry = {
    n: ys[0],
    c: ys[1],
    h,
    w: wd,
    m: xs[1],
    ho,
    wo,
    group,
    kernel: lift2d(kernel, 1),
    strides: lift2d(strides, 1),
    dilations: lift2d(dilations, 1),
    pads: liftPads(pads),
  };
  const gy4 = to4d(g, gy);
  const dx = needs[0]
    ? reshape(
        g,
        g.op1('Conv', [gy4, to4d(g, w)], {
          kernel_shape: geo.kernel,
          strides: geo.strides,
          dilations: geo.dilations,
          group,
          pads: geo.pads,
        }),
        xs,
      )
    : undefined;
  const dw = needs[1] ? reshape(g, convWeightGradient(g, geo, gy4, to4d(g, x)), ws) : undefined;
  const db = needs[2] ? biasGradient(g, gy) : undefined;
  return [dx, dw, db];
});

/**
 * MaxPool routes each output's gradient to the input element its window picked: the Indices
 * output (flat positions over the whole [n, c, ...] tensor, storage_order 0) scatters gy back with
 * ScatterElements(reduction 'add'), so overlapping windows add up. Ties go to the one element
 * onnxruntime's Indices name (the first maximum in the window), as in PyTorch, and not to all tied
 * elements as an Equal(x, y) mask would. When the node does not output Indices the rule recomputes
 * them with a second MaxPool.
 */
registerRule('MaxPool', (ctx: RuleContext) => {
  const { g, node } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const x = node.inputs[0];
  const xs = g.shape(x);
  const ownIndices =
    node.outputs.length > 1 && node.outputs[1] !== '' && attrInt(node, 'storage_order', 0) === 0;
  const indices = ownIndices
    ? node.outputs[1]
    : g.op('MaxPool', [x], { ...node.attrs, storage_order: 0 }, { count: 2 })[1];
  const zeros = g.op1('Expand', [g.scalar(0, g.dtype(gy)), g.ints([numel(xs)])]);
  const flat = g.op1('ScatterElements', [zeros, reshape(g, indices, [-1]), reshape(g, gy, [-1])], {
    axis: 0,
    reduction: 'add',
  });
  return [reshape(g, flat, xs)];
});

/**
 * Divisors of an AveragePool along one axis: how many elements each output window averages
 * (padding counts only with count_include_pad, and never the overhang of a ceil_mode window).
 */
function poolDivisors(
  size: number,
  out: number,
  k: number,
  s: number,
  d: number,
  padBegin: number,
  padEnd: number,
  includePad: boolean,
): number[] {
  const lo = includePad ? -padBegin : 0;
  const hi = includePad ? size + padEnd : size;
  return Array.from({ length: out }, (_, u) => {
    let count = 0;
    for (let i = 0; i < k; i++) {
      const p = u * s - padBegin + i * d;
      if (p >= lo && p < hi) count++;
    }
    return count;
  });
}

/**
 * AveragePool spreads gy / divisor uniformly over each window. Windows that tile the input exactly
 * (kernel = stride, no padding) are an Expand; other pools are a ConvTranspose with a ones kernel
 * over one image-channel at a time, after dividing gy by a constant of per-window divisors.
 */
registerRule('AveragePool', (ctx: RuleContext) => {
  const { g, node } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const x = node.inputs[0];
  const xs = g.shape(x);
  const ys = g.shape(gy);
  if (xs.length !== 4) throw new AutodiffError('only 2-D AveragePool is supported');
  const [n, c, h, w] = xs;
  const [, , ho, wo] = ys;
  const kernel = attrInts(node, 'kernel_shape', []);
  const strides = attrInts(node, 'strides', [1, 1]);
  const dilations = attrInts(node, 'dilations', [1, 1]);
  const pads = resolvePads(node, [h, w], [ho, wo], kernel, strides, dilations);
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  const dtype = g.dtype(gy);
  const [kh, kw] = kernel;

  const tiles =
    kh === strides[0] && kw === strides[1] && dilations.every((d) => d === 1) && pads.every((p) => p === 0);
  if (tiles && ho * kh === h && wo * kw === w) {
    const scaled = g.op1('Mul', [reshape(g, gy, [n, c, ho, 1, wo, 1]), g.scalar(1 / (kh * kw), dtype)]);
    return [reshape(g, g.op1('Expand', [scaled, g.ints([n, c, ho, kh, wo, kw])]), xs)];
  }

  const rows = poolDivisors(h, ho, kh, strides[0], dilations[0], pads[0], pads[2], includePad);
  const cols = poolDivisors(w, wo, kw, strides[1], dilations[1], pads[1], pads[3], includePad);
  const inverse = rows.flatMap((r) => cols.map((q) => 1 / (r * q)));
  const uniform = inverse.every((v) => v === inverse[0]);
  const weights = uniform
    ? g.scalar(inverse[0], dtype)
    : g.initializer(
        g.fresh('avgpool_inverse_divisors'),
        dtype === 'float64' ? Float64Array.from(inverse) : Float32Array.from(inverse),
        [ho, wo],
        dtype,
      );
  const scaled = reshape(g, g.op1('Mul', [gy, weights]), [n * c, 1, ho, wo]);
  // The transposed conv reaches (ho-1)s + span - pad_begin rows; trim the rest with an end pad, or
  // extend to h with output_padding when the forward windows stopped short of the input's end.
  const endPads = [0, 1].map(
    (i) => (ys[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - xs[2 + i],
  );
  const ones = g.scalar(1, dtype, [1, 1, kh, kw]);
  const spread = g.op1('ConvTranspose', [scaled, ones], {
    kernel_shape: [kh, kw],
    strides,
    dilations,
    pads: [pads[0], pads[1], Math.max(0, endPads[0]), Math.max(0, endPads[1])],
    output_padding: endPads.some((p) => p < 0) ? endPads.map((p) => Math.max(0, -p)) : undefined,
  });
  return [reshape(g, spread, xs)];
});

registerRule('GlobalAveragePool', (ctx: RuleContext) => {
  const { g, node } = ctx;
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const xs = g.shape(node.inputs[0]);
  const count = numel(xs.slice(2));
  return [g.op1('Expand', [g.op1('Mul', [gy, g.scalar(1 / count, g.dtype(gy))]), g.ints(xs)])];
});
