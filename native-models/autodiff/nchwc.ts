/**
 * Lowers convolutions whose weights are only known at run time (trainable weights fed as inputs,
 * the flipped kernels of dX convolutions) to onnxruntime's blocked NCHWc convolution kernel.
 *
 * onnxruntime's CPU provider runs a Conv with a constant weight on its NCHWc kernel (channels in
 * blocks of 8 or 16, weights reordered once when the session loads), which is what makes baked
 * inference fast. A weight that is a graph input gets the generic im2col + GEMM Conv instead,
 * 1.2-1.7x slower at the toy UNet's sizes (CPU time, N8 3x3: 64->64 at 32x32 7.9 against 4.8 ms,
 * 192->64 18.7 against 12.8, 128->128 at 16x16 5.7 against 4.8). The NCHWc kernel itself
 * (com.microsoft.nchwc Conv) takes any weight tensor in its blocked layout, so this pass reorders
 * the weight inside the graph (two single-axis transposes per weight, 3-4 ms a step for the toy
 * UNet's forward and dX kernels on one thread) and wraps the convolution in ReorderInput /
 * ReorderOutput:
 *
 *   x [n, c, h, w] -> ReorderInput -> nchwc.Conv(W blocked [, b]) -> ReorderOutput -> y [n, m, ho, wo]
 *
 * Layouts (B the block size, T = kh * kw taps):
 * - c a multiple of B: weight OIHWBiBo, [m/B, c/B, kh, kw, B(in), B(out)], input reordered;
 * - c < B: weight OIHWBo, [m/B, c, kh, kw, B(out)], the NCHW input read directly;
 * - m not a multiple of B: the weight (and bias) padded with zero output channels, which
 *   ReorderOutput drops.
 * A dX kernel from rules/conv.ts ('flipped-conv') is reordered from its source weight in one go,
 * the tap reversal being a Gather over the tap axis.
 *
 * Only float32 2-D convs with one group are lowered; the rest (and anything with a constant
 * weight, which onnxruntime lowers itself and prepacks) are left alone. The ops exist only in the
 * CPU provider, and only where MLAS has NCHWc kernels (its block size is above 1; 16 with
 * AVX-512, 8 with AVX2), so callers ask {@link nchwcBlockSize} first.
 *
 * Train step of the ~2M-parameter toy UNet (32x32, batch 8), single thread, kernel time summed
 * from onnxruntime's profiler (min per node over 8-14 runs, three runs on a loaded 2-core Xeon):
 * 313-316 ms without this pass, 230-268 ms with it; the convolutions go from 145-156 to 88-108,
 * the reorders add 10-12 and the weight reorders 3-4. About 190 nodes more.
 *
 * @example
 * const block = await nchwcBlockSize();
 * if (block > 0) lowerConvsToNchwc(g, block);
 */
import * as ort from 'onnxruntime-node';
import { Graph, type GraphNode } from '../onnx/graph.js';
import { flippedKernelSource } from './rules/conv.js';

const NCHWC_DOMAIN = 'com.microsoft.nchwc';

let blockSizeProbe: Promise<number> | undefined;

/**
 * The NCHWc channel block of this machine's onnxruntime CPU provider (16 with AVX-512, 8 with
 * AVX2), or 0 where it has no NCHWc kernels. Probed once per process with a tiny ReorderInput model.
 */
export function nchwcBlockSize(): Promise<number> {
  blockSizeProbe ??= probeBlockSize();
  return blockSizeProbe;
}

async function probeBlockSize(): Promise<number> {
  const g = new Graph({ name: 'nchwc_probe' });
  const x = g.input('x', [1, 4, 1, 1]);
  g.nodes.push({
    opType: 'ReorderInput',
    domain: NCHWC_DOMAIN,
    name: 'reorder',
    inputs: [x],
    outputs: ['y'],
    attrs: {},
  });
  g.meta.set('y', { shape: [1, 4, 1, 1], dtype: 'float32' });
  g.output('y');
  try {
    const session = await ort.InferenceSession.create(
      g.toBytes({ dynamicAxes: { y: { 1: 'blocked_channels' } } }),
    );
    try {
      const { y } = await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
      const block = y.dims[1];
      return block > 4 && (block & (block - 1)) === 0 ? block : 0;
    } finally {
      await session.release();
    }
  } catch {
    return 0;
  }
}

const roundUp = (v: number, block: number) => Math.ceil(v / block) * block;

/**
 * Rewrites every eligible Conv node of `g` (see the module comment) into the NCHWc form, in
 * place, and drops what no longer feeds an output (so call it once the outputs are set).
 * Returns how many convolutions were lowered.
 */
export function lowerConvsToNchwc(g: Graph, block: number): number {
  if (block <= 1) return 0;
  const original = g.nodes.splice(0);
  const reorderedInputs = new Map<string, string>();
  const reorderedWeights = new Map<string, string>();
  let lowered = 0;

  const reshape = (x: string, shape: readonly number[]) => g.op1('Reshape', [x, g.ints(shape)]);
  const transpose = (x: string, perm: readonly number[]) => g.op1('Transpose', [x], { perm });
  const padAxis = (x: string, axis: number, to: number) => {
    const shape = g.shape(x);
    if (shape[axis] === to) return x;
    const pads = Array<number>(2 * shape.length).fill(0);
    pads[shape.length + axis] = to - shape[axis];
    return g.op1('Pad', [x, g.ints(pads)]);
  };
  /** Appends a node of the NCHWc domain (no shape inference there) with a declared output. */
  const nchwcNode = (
    opType: string,
    inputs: string[],
    attrs: GraphNode['attrs'],
    shape: number[],
    output?: string,
  ) => {
    const y = output ?? g.fresh(`nchwc_${opType.toLowerCase()}`);
    if (!output) g.meta.set(y, { shape, dtype: 'float32' });
    g.nodes.push({ opType, domain: NCHWC_DOMAIN, name: `${y}_${opType}`, inputs, outputs: [y], attrs });
    return y;
  };

  /** W [m, c, kh, kw] -> blocked [mp, c, kh, kw] (OIHWBiBo when c >= block, else OIHWBo). */
  const blockedWeight = (w: string): string => {
    const [m, c, kh, kw] = g.shape(w);
    const mp = roundUp(m, block);
    const taps = kh * kw;
    const wp = padAxis(w, 0, mp);
    if (c < block) {
      // [mb, B(out), c*T] -> [mb, c*T, B(out)]
      return reshape(transpose(reshape(wp, [mp / block, block, c * taps]), [0, 2, 1]), [mp, c, kh, kw]);
    }
    // [mb, B(out), cb, B(in)*T] -> [mb, cb, B(in), T, B(out)] -> [mb*cb, T, B(in), B(out)]: each step
    // moves one axis, which onnxruntime transposes much faster than one six-axis permutation.
    const outLast = transpose(reshape(wp, [mp / block, block, c / block, block * taps]), [0, 2, 3, 1]);
    const tapsFirst =
      taps === 1
        ? outLast
        : transpose(reshape(outLast, [(mp / block) * (c / block), block, taps, block]), [0, 2, 1, 3]);
    return reshape(tapsFirst, [mp, c, kh, kw]);
  };

  /**
   * The blocked dX kernel built from the forward weight `s` [m, c, kh, kw]: the kernel of the dX
   * Conv is s with channels swapped and taps reversed, [c, m, kh, kw], padded to cp output channels.
   */
  const blockedFlippedWeight = (s: string): string => {
    const [m, c, kh, kw] = g.shape(s);
    const cp = roundUp(c, block);
    const taps = kh * kw;
    const sp = padAxis(s, 1, cp);
    const reverse = (x: string, axis: number) =>
      taps === 1
        ? x
        : g.op1('Gather', [x, g.ints(Array.from({ length: taps }, (_, t) => taps - 1 - t))], { axis });
    if (m < block) {
      // kernel[cb*B+bo, i, t] = s[i, cb*B+bo, T-1-t]: [m, cb, B, T] -> [cb, m, T, B(out)]
      const moved = transpose(reshape(sp, [m, cp / block, block, taps]), [1, 0, 3, 2]);
      return reshape(reverse(moved, 2), [cp, m, kh, kw]);
    }
    // kernel[ob, ib, t, bi, bo] = s[ib*B+bi, ob*B+bo, T-1-t]: s as [ib, B(in), ob, B(out), T]
    const outerFirst = transpose(reshape(sp, [m / block, block, cp / block, block, taps]), [2, 0, 1, 3, 4]);
    const tapsFirst = transpose(
      reshape(outerFirst, [(cp / block) * (m / block), block * block, taps]),
      [0, 2, 1],
    );
    return reshape(reverse(tapsFirst, 1), [cp, m, kh, kw]);
  };

  for (const node of original) {
    const lowerable = node.opType === 'Conv' && (node.domain === '' || node.domain === 'ai.onnx');
    const [x, w, b] = node.inputs;
    if (!lowerable || !canLower(g, node, block)) {
      g.nodes.push(node);
      continue;
    }
    const [n, c, h, wd] = g.shape(x);
    const m = g.shape(w)[0];
    const mp = roundUp(m, block);
    const [, , ho, wo] = g.shape(node.outputs[0]);

    const source = flippedKernelSource(g, w);
    const key = source === undefined ? `w:${w}` : `flipped:${source}`;
    let weight = reorderedWeights.get(key);
    if (!weight) {
      weight = source === undefined ? blockedWeight(w) : blockedFlippedWeight(source);
      reorderedWeights.set(key, weight);
    }
    let input = x;
    if (c >= block) {
      input = reorderedInputs.get(x) ?? nchwcNode('ReorderInput', [x], {}, [n, c, h, wd]);
      reorderedInputs.set(x, input);
    }
    const bias = b === undefined || b === '' ? [] : [padAxis(b, 0, mp)];
    const { group: _group, ...attrs } = node.attrs;
    const y = nchwcNode('Conv', [input, weight, ...bias], attrs, [n, mp, ho, wo]);
    nchwcNode('ReorderOutput', [y], { channels: m }, [n, m, ho, wo], node.outputs[0]);
    lowered++;
  }
  if (g.outputs.length > 0) g.prune();
  return lowered;
}

/** Whether the NCHWc Conv kernel can run this Conv node and onnxruntime would not lower it itself. */
function canLower(g: Graph, node: GraphNode, block: number): boolean {
  const [x, w] = node.inputs;
  if (g.initializers.has(w)) return false; // constant: onnxruntime's own NCHWc transformer takes it
  const source = flippedKernelSource(g, w);
  if (source !== undefined && g.initializers.has(source)) return false; // folded, then the same
  const xs = g.shape(x);
  if (xs.length !== 4 || g.dtype(x) !== 'float32' || g.dtype(w) !== 'float32') return false;
  const group = node.attrs.group ?? 1;
  if (group !== 1) return false;
  const c = xs[1];
  return c < block || c % block === 0;
}
