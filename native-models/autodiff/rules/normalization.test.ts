import { describe, expect, it } from 'vitest';
import { Graph, float, type Attrs } from '../../onnx/graph.js';
import { numel } from '../../onnx/dtype.js';
import { Rng } from '../../tensor/random.js';
import { checkGradients, weightedSum, type GradCheckResult } from '../gradcheck.js';
import { gradients, registerRule, sumToShape, type RuleContext } from '../index.js';
import { siluGradient } from './normalization.js';

type Float = 'float32' | 'float64';

function values(
  shape: readonly number[],
  seed: number,
  dtype: Float,
  offset = 0,
): Float32Array | Float64Array {
  const v = new Rng(seed).randn(numel(shape)).map((e) => e + offset);
  return dtype === 'float64' ? Float64Array.from(v) : v;
}

interface NormCase {
  op: string;
  x: number[];
  /** Shapes of the inputs after x (scale, bias, ...). */
  params: number[][];
  attrs: Attrs;
  dtype: Float;
  /** Which of x and the params are differentiated (default: all). */
  wrt?: boolean[];
  /** Extra outputs whose values enter the loss too (LayerNormalization's Mean and InvStdDev). */
  outputs?: number;
  /** Params made positive: |value| + lift, by param index (e.g. a variance). */
  positive?: Partial<Record<number, number>>;
}

async function checkNorm(c: NormCase, opset?: number): Promise<GradCheckResult> {
  const g = new Graph({ floatType: c.dtype, ...(opset === undefined ? {} : { opset }) });
  const x = g.input('x', c.x, c.dtype);
  const params = c.params.map((shape, i) => g.input(`p${i}`, shape, c.dtype));
  const outs = g.op(c.op, [x, ...params], c.attrs, { count: c.outputs ?? 1 });
  let loss = weightedSum(g, outs[0]);
  for (const extra of outs.slice(1)) loss = g.op1('Add', [loss, weightedSum(g, extra, 7)]);
  const feeds: Record<string, Float32Array | Float64Array> = { x: values(c.x, 1, c.dtype, 0.7) };
  params.forEach((p, i) => {
    const v = values(g.shape(p), 2 + i, c.dtype);
    const lift = c.positive?.[i];
    feeds[p] = lift === undefined ? v : v.map((e) => Math.abs(e) + lift);
  });
  const wrt = [x, ...params].filter((_, i) => c.wrt?.[i] ?? true);
  return checkGradients(g, loss, wrt, feeds);
}

describe('GroupNormalization gradient', () => {
  // stash_type 11 makes onnxruntime compute the float64 forward in float64 (the default stashes
  // the statistics in float32, which would swamp the finite differences)
  it('4 groups of 2 channels, non-trivial scale and bias (float64)', async () => {
    const r = await checkNorm({
      op: 'GroupNormalization',
      x: [2, 8, 3, 4],
      params: [[8], [8]],
      attrs: { num_groups: 4, epsilon: float(1e-5), stash_type: 11 },
      dtype: 'float64',
    });
    expect(r.maxError).toBeLessThan(1e-8);
    expect(r.directionalError).toBeLessThan(1e-8);
  });

  it('one group, 1-D spatial input, frozen scale (float64)', async () => {
    const r = await checkNorm({
      op: 'GroupNormalization',
      x: [3, 4, 5],
      params: [[4], [4]],
      attrs: { num_groups: 1, epsilon: float(1e-3), stash_type: 11 },
      dtype: 'float64',
      wrt: [true, false, true],
    });
    expect(r.maxError).toBeLessThan(1e-8);
  });

  it('opset 18: one scale and bias per group (float64)', async () => {
    const r = await checkNorm(
      {
        op: 'GroupNormalization',
        x: [2, 6, 2, 3],
        params: [[3], [3]],
        attrs: { num_groups: 3, epsilon: float(1e-5) },
        dtype: 'float64',
      },
      18,
    );
    expect(r.maxError).toBeLessThan(1e-8);
  });

  it('32 channels in 8 groups (float32)', async () => {
    const r = await checkNorm({
      op: 'GroupNormalization',
      x: [2, 32, 4, 4],
      params: [[32], [32]],
      attrs: { num_groups: 8, epsilon: float(1e-5) },
      dtype: 'float32',
    });
    expect(r.maxError).toBeLessThan(1e-3);
    expect(r.directionalError).toBeLessThan(1e-3);
  });
});

describe('InstanceNormalization gradient (float32: no float64 kernel)', () => {
  it('non-trivial scale and bias', async () => {
    const r = await checkNorm({
      op: 'InstanceNormalization',
      x: [2, 3, 4, 5],
      params: [[3], [3]],
      attrs: { epsilon: float(1e-5) },
      dtype: 'float32',
    });
    expect(r.maxError).toBeLessThan(1e-3);
    expect(r.directionalError).toBeLessThan(1e-3);
  });
});

describe('LayerNormalization gradient', () => {
  it('last axis, scale and bias (float64)', async () => {
    const r = await checkNorm({
      op: 'LayerNormalization',
      x: [2, 3, 6],
      params: [[6], [6]],
      attrs: { axis: -1, epsilon: float(1e-5) },
      dtype: 'float64',
    });
    expect(r.maxError).toBeLessThan(1e-8);
    expect(r.directionalError).toBeLessThan(1e-8);
  });

  it('over the last two axes, without bias, scale broadcast along one of them (float64)', async () => {
    const r = await checkNorm({
      op: 'LayerNormalization',
      x: [3, 4, 5],
      params: [[1, 5]],
      attrs: { axis: 1, epsilon: float(1e-2) },
      dtype: 'float64',
    });
    expect(r.maxError).toBeLessThan(1e-8);
  });

  it('with the Mean and InvStdDev outputs in the loss (float32)', async () => {
    const r = await checkNorm({
      op: 'LayerNormalization',
      x: [4, 8],
      params: [[8], [8]],
      attrs: { axis: -1, epsilon: float(1e-5) },
      dtype: 'float32',
      outputs: 3,
    });
    expect(r.maxError).toBeLessThan(1e-3);
    expect(r.directionalError).toBeLessThan(1e-3);
  });
});

describe('BatchNormalization gradient (inference form, float64)', () => {
  it('x, scale, bias, mean and variance', async () => {
    const r = await checkNorm({
      op: 'BatchNormalization',
      x: [2, 3, 4, 5],
      params: [[3], [3], [3], [3]],
      attrs: { epsilon: float(1e-3) },
      dtype: 'float64',
      positive: { 3: 0.5 },
    });
    expect(r.maxError).toBeLessThan(1e-8);
    expect(r.directionalError).toBeLessThan(1e-8);
  });

  it('refuses the training form', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const p = g.input('p', [3]);
    const y = g.op1('BatchNormalization', [x, p, p, p, p], { training_mode: 1 });
    const loss = g.op1('ReduceSum', [y], { keepdims: 0 });
    expect(() => gradients(g, loss, [x])).toThrow(/only the inference form of BatchNormalization/);
  });
});

describe('fused SiLU gradient', () => {
  // The generic Mul rule is owned by rules/elementwise.ts; here Mul dispatches to siluGradient
  // first and falls back to a plain product rule, as the hook is meant to be used.
  registerRule('Mul', (ctx: RuleContext) => {
    const fused = siluGradient(ctx);
    if (fused) return fused;
    const [gy] = ctx.gradOutputs;
    if (gy === undefined) return [];
    const [a, b] = ctx.node.inputs;
    const { g, needs } = ctx;
    return [
      needs[0] ? sumToShape(g, g.op1('Mul', [gy, b]), g.shape(a)) : undefined,
      needs[1] ? sumToShape(g, g.op1('Mul', [gy, a]), g.shape(b)) : undefined,
    ];
  });

  for (const order of ['x * Sigmoid(x)', 'Sigmoid(x) * x']) {
    it(`${order} (float64)`, async () => {
      const g = new Graph({ floatType: 'float64' });
      const x = g.input('x', [3, 5], 'float64');
      const s = g.op1('Sigmoid', [x]);
      const y = g.op1('Mul', order.startsWith('x') ? [x, s] : [s, x]);
      const loss = weightedSum(g, y);
      const r = await checkGradients(g, loss, [x], {
        x: Float64Array.from(values([3, 5], 4, 'float64'), (v) => 3 * v),
      });
      expect(r.maxError).toBeLessThan(1e-8);
      expect(r.directionalError).toBeLessThan(1e-8);
    });
  }

  it('is four elementwise ops and gives nothing to Sigmoid(x)', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const gy = g.input('gy', [2, 3]);
    g.op1('Mul', [x, g.op1('Sigmoid', [x])]);
    const node = g.nodes[g.nodes.length - 1];
    const before = g.nodes.length;
    const result = siluGradient({ g, node, gradOutputs: [gy], needs: [true, true] });
    expect(result?.[0]).toBeDefined();
    expect(result?.[1]).toBeUndefined();
    expect(g.nodes.slice(before).map((n) => n.opType)).toEqual(['Sub', 'Add', 'Mul', 'Mul']);
  });

  it('leaves other products to the generic rule', () => {
    const g = new Graph({ floatType: 'float64' });
    const x = g.input('x', [4], 'float64');
    const z = g.input('z', [4], 'float64');
    const y = g.op1('Mul', [x, g.op1('Sigmoid', [z])]);
    const node = g.nodes[g.nodes.length - 1];
    expect(siluGradient({ g, node, gradOutputs: [y], needs: [true, true] })).toBeUndefined();
  });
});
