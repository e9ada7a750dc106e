import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph, type Attrs } from '../../onnx/graph.js';
import { DTYPE_CODE, numel } from '../../onnx/dtype.js';
import { Rng } from '../../tensor/random.js';
import { checkGradients, weightedSum, type GradCheckResult } from '../gradcheck.js';
import { gradients, hasRule } from '../index.js';

type Float = 'float32' | 'float64';
type Values = (n: number, seed: number) => number[];

const randn: Values = (n, seed) => Array.from(new Rng(seed).randn(n));
/** Normal values at least `gap` away from 0, for ops with a kink there. */
const awayFromZero =
  (gap = 0.2): Values =>
  (n, seed) =>
    randn(n, seed).map((v) => (v < 0 ? v - gap : v + gap));
const positive: Values = (n, seed) => randn(n, seed).map((v) => 0.3 + Math.abs(v));

interface Case {
  dtype?: Float;
  shapes: number[][];
  build: (g: Graph, xs: string[]) => string;
  values?: Values | Values[];
  step?: number;
}

/** Builds y = build(inputs), checks d weightedSum(y) / d inputs against finite differences. */
async function check({ dtype = 'float64', shapes, build, values = randn, step }: Case) {
  const g = new Graph({ floatType: dtype });
  const xs = shapes.map((s, i) => g.input(`x${i}`, s, dtype));
  const loss = weightedSum(g, build(g, xs));
  const feeds = Object.fromEntries(
    xs.map((x, i) => {
      const make = Array.isArray(values) ? values[i] : values;
      const v = make(numel(shapes[i]), 11 + i);
      return [x, dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v)];
    }),
  );
  return checkGradients(g, loss, xs, feeds, step === undefined ? {} : { step });
}

/**
 * float64 checks must be < 1e-6, float32 ones < 2e-3. Measured (onnxruntime-node 1.30 CPU):
 * float64 rules <= 4e-11 except Gelu tanh 4.6e-9 (its kernel's constants are float32);
 * float32 rules (no double kernels: Softplus, LeakyRelu, Erf, exact Gelu) <= 8e-5.
 */
function expectAccurate(r: GradCheckResult, dtype: Float = 'float64') {
  const tolerance = dtype === 'float64' ? 1e-6 : 2e-3;
  expect(r.maxError, JSON.stringify(r.worst)).toBeLessThan(tolerance);
  expect(r.directionalError).toBeLessThan(tolerance);
}

const unary =
  (op: string, attrs: Attrs = {}) =>
  (g: Graph, [x]: string[]) =>
    g.op1(op, [x], attrs);

describe('unary elementwise gradient rules', () => {
  const cases: [string, Case][] = [
    ['Sqrt', { shapes: [[2, 3]], build: unary('Sqrt'), values: positive }],
    ['Exp', { shapes: [[2, 3]], build: unary('Exp') }],
    ['Log', { shapes: [[2, 3]], build: unary('Log'), values: positive }],
    ['Abs', { shapes: [[2, 3]], build: unary('Abs'), values: awayFromZero() }],
    ['Reciprocal', { shapes: [[2, 3]], build: unary('Reciprocal'), values: positive }],
    ['Sin', { shapes: [[2, 3]], build: unary('Sin') }],
    ['Cos', { shapes: [[2, 3]], build: unary('Cos') }],
    ['Sigmoid', { shapes: [[2, 3]], build: unary('Sigmoid') }],
    ['Tanh', { shapes: [[2, 3]], build: unary('Tanh') }],
    ['Relu', { shapes: [[2, 3]], build: unary('Relu'), values: awayFromZero() }],
    ['Gelu tanh', { shapes: [[2, 3]], build: unary('Gelu', { approximate: 'tanh' }) }],
    // no float64 kernels in onnxruntime CPU for these forward ops
    ['Softplus', { dtype: 'float32', shapes: [[2, 3]], build: unary('Softplus') }],
    [
      'LeakyRelu',
      {
        dtype: 'float32',
        shapes: [[2, 3]],
        build: unary('LeakyRelu', { alpha: 0.2 }),
        values: awayFromZero(),
      },
    ],
    ['Erf', { dtype: 'float32', shapes: [[2, 3]], build: unary('Erf') }],
    ['Gelu exact', { dtype: 'float32', shapes: [[2, 3]], build: unary('Gelu') }],
  ];
  for (const [name, c] of cases) {
    it(`${name} (${c.dtype ?? 'float64'})`, async () => expectAccurate(await check(c), c.dtype));
  }
});

describe('Pow with a constant exponent', () => {
  const constPow =
    (e: number) =>
    (g: Graph, [x]: string[]) =>
      g.op1('Pow', [x, g.scalar(e, g.dtype(x))]);
  for (const e of [2, 3, 1, 0, -1.5]) {
    it(`x^${e}`, async () => {
      const r = await check({ shapes: [[2, 3]], build: constPow(e), values: e < 0 ? positive : randn });
      expectAccurate(r);
    });
  }

  it('with a broadcast tensor exponent, larger than the base', async () => {
    const r = await check({
      shapes: [[4]],
      values: positive,
      build: (g, [x]) =>
        g.op1('Pow', [x, g.initializer('p', Float64Array.of(1, 2, 3, 0.5, -1, 2.5), [3, 2, 1], 'float64')]),
    });
    expectAccurate(r);
  });

  it('with an int64 exponent', async () => {
    const r = await check({ shapes: [[2, 3]], build: (g, [x]) => g.op1('Pow', [x, g.ints([3], [])]) });
    expectAccurate(r);
  });

  it('refuses an exponent that is not a constant', () => {
    const g = new Graph();
    const x = g.input('x', [3]);
    const p = g.input('p', [3]);
    const loss = g.op1('ReduceSum', [g.op1('Pow', [x, p])], { keepdims: 0 });
    expect(() => gradients(g, loss, [x])).toThrow(/exponent 'p' must be a constant/);
  });
});

describe('Clip, Min, Max, Where, Cast', () => {
  // entries at least 0.1 away from the bounds -0.5 and 0.5
  const clipValues: Values = (n) =>
    Array.from({ length: n }, (_, i) => [-1.3, -0.7, -0.3, 0.1, 0.35, 0.8][i % 6]);

  it('Clip with constant bounds', async () => {
    const r = await check({
      shapes: [[2, 3]],
      values: clipValues,
      build: (g, [x]) => g.op1('Clip', [x, g.scalar(-0.5, 'float64'), g.scalar(0.5, 'float64')]),
    });
    expectAccurate(r);
  });

  it('Clip with only a max, and with no bounds', async () => {
    const r = await check({
      shapes: [[2, 3]],
      values: clipValues,
      build: (g, [x]) => g.op1('Clip', [g.op1('Clip', [x, '', g.scalar(0.5, 'float64')]), '', '']),
    });
    expectAccurate(r);
  });

  it('Clip with bounds that need a gradient', async () => {
    const r = await check({
      shapes: [[2, 3], [], []],
      values: [clipValues, () => [-0.5], () => [0.5]],
      build: (g, [x, lo, hi]) => g.op1('Clip', [x, lo, hi]),
    });
    expectAccurate(r);
  });

  for (const op of ['Min', 'Max']) {
    it(`${op} with broadcasting on both sides`, async () => {
      const r = await check({
        shapes: [
          [2, 3, 4],
          [3, 1],
        ],
        build: (g, xs) => g.op1(op, xs),
      });
      expectAccurate(r);
    });

    it(`${op} of three inputs`, async () => {
      const r = await check({ shapes: [[3, 4], [4], [3, 1]], build: (g, xs) => g.op1(op, xs) });
      expectAccurate(r);
    });
  }

  it('Min/Max and ReduceMax on ties: first input takes all, reductions split evenly', async () => {
    const g = new Graph({ floatType: 'float64' });
    const a = g.input('a', [3], 'float64');
    const b = g.input('b', [3], 'float64');
    const m = g.op1('Max', [a, b]);
    const r = g.op1('ReduceMax', [a], { keepdims: 0 });
    const loss = g.op1('Add', [g.op1('ReduceSum', [m], { keepdims: 0 }), r]);
    const grads = gradients(g, loss, [a, b]);
    g.output(grads.get(a)!, 'ga');
    g.output(grads.get(b)!, 'gb');
    const session = await ort.InferenceSession.create(g.toBytes(), { graphOptimizationLevel: 'basic' });
    const t = (v: number[]) => new ort.Tensor('float64', Float64Array.from(v), [3]);
    const out = await session.run({ a: t([2, 1, 2]), b: t([2, 1, 0]) });
    await session.release();
    // Max: a gets ties and its own wins; ReduceMax: the two 2s share the gradient
    expect(Array.from(out.ga.data as Float64Array)).toEqual([1.5, 1, 1.5]);
    expect(Array.from(out.gb.data as Float64Array)).toEqual([0, 0, 0]);
  });

  it('Where masks the gradients of X and Y, with broadcasting', async () => {
    const r = await check({
      shapes: [[2, 3, 4], [4]],
      build: (g, [a, b]) => {
        const c = g.initializer('c', Float64Array.from(randn(12, 5)), [3, 4], 'float64');
        return g.op1('Where', [g.op1('Greater', [c, g.scalar(0, 'float64')]), a, b]);
      },
    });
    expectAccurate(r);
  });

  it('Cast float64 -> float32 passes the gradient back as float64', async () => {
    // the computation is float32, so the check runs with float32 steps and tolerance
    const g = new Graph();
    const x = g.input('x', [2, 3], 'float64');
    const y = g.op1('Cast', [x], { to: DTYPE_CODE.float32 });
    const loss = weightedSum(g, g.op1('Mul', [y, g.op1('Sin', [y])]));
    const r = await checkGradients(
      g,
      loss,
      [x],
      { x: Float64Array.from(randn(6, 1)) },
      { step: 1e-2, directionalStep: 1e-2 },
    );
    expectAccurate(r, 'float32');
  });

  it('Cast float32 -> float64, and an int64 -> float cast gets no gradient', async () => {
    const g = new Graph({ floatType: 'float64' });
    const x = g.input('x', [2, 3], 'float32');
    const i = g.input('i', [3], 'int64');
    const y = g.op1('Cast', [x], { to: DTYPE_CODE.float64 });
    const scale = g.op1('Cast', [i], { to: DTYPE_CODE.float64 });
    const loss = weightedSum(g, g.op1('Mul', [g.op1('Mul', [y, y]), scale]));
    const r = await checkGradients(
      g,
      loss,
      [x],
      { x: Float32Array.from(randn(6, 1)), i: BigInt64Array.of(1n, -2n, 3n) },
      { step: 1e-2 },
    );
    expect(r.maxError).toBeLessThan(1e-5);
  });
});

describe('softmax and reduction gradient rules', () => {
  for (const axis of [-1, 1, 0]) {
    it(`Softmax and LogSoftmax over axis ${axis}`, async () => {
      const shapes = [[2, 3, 4]];
      expectAccurate(await check({ shapes, build: unary('Softmax', { axis }) }));
      expectAccurate(await check({ shapes, build: unary('LogSoftmax', { axis }) }));
    });
  }

  it('Softmax with the default axis', async () => {
    expectAccurate(await check({ shapes: [[3, 5]], build: unary('Softmax') }));
  });

  const reduce =
    (op: string, axes: number[] | undefined, keepdims: number) =>
    (g: Graph, [x]: string[]) =>
      g.op1(op, axes ? [x, g.ints(axes)] : [x], { keepdims });
  for (const op of ['ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMin']) {
    it(`${op} over some axes and over all`, async () => {
      expectAccurate(await check({ shapes: [[2, 3, 4]], build: reduce(op, [0, 2], 0) }));
      expectAccurate(await check({ shapes: [[2, 3, 4]], build: reduce(op, [-1], 1) }));
      expectAccurate(await check({ shapes: [[3, 4]], build: reduce(op, undefined, 0) }));
    });
  }

  for (const op of ['ReduceMax', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp']) {
    it(`${op} over no axes with noop_with_empty_axes (elementwise in onnxruntime)`, async () => {
      const r = await check({
        shapes: [[2, 3]],
        values: awayFromZero(),
        build: (g, [x]) => g.op1(op, [x], { keepdims: 1, noop_with_empty_axes: 1 }),
      });
      expectAccurate(r);
    });
  }
});

describe('MatMul and Gemm gradient rules', () => {
  const matmul = (g: Graph, xs: string[]) => g.op1('MatMul', xs);
  const shapes: [number[], number[]][] = [
    [
      [3, 4],
      [4, 5],
    ],
    [
      [2, 1, 4, 3],
      [3, 3, 5],
    ],
    [
      [2, 5, 4],
      [4, 3],
    ],
    [
      [2, 5, 4],
      [1, 4, 3],
    ],
    [
      [4, 3],
      [2, 3, 5],
    ],
    [
      [2, 3, 4],
      [2, 4, 5],
    ],
  ];
  for (const [sa, sb] of shapes) {
    it(`MatMul [${sa.join(', ')}] x [${sb.join(', ')}]`, async () => {
      expectAccurate(await check({ shapes: [sa, sb], build: matmul }));
    });
  }

  /** Counts the MatMul/Gemm nodes the gradient adds when only some inputs are requested. */
  function productsAdded(sa: number[], sb: number[], which: 'a' | 'b') {
    const g = new Graph();
    const a = g.input('a', sa);
    const w = g.input('w', sb);
    const loss = weightedSum(g, g.op1('MatMul', [a, w]));
    const before = g.nodes.length;
    gradients(g, loss, [which === 'a' ? a : w]);
    return g.nodes.slice(before).filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
  }

  it('emits one product per requested input and nothing for the others', () => {
    for (const [sa, sb] of [shapes[0], shapes[1], shapes[2]]) {
      for (const which of ['a', 'b'] as const) expect(productsAdded(sa, sb, which)).toHaveLength(1);
    }
    // a shared weight matrix: dW is one Gemm over the flattened batch, with no ReduceSum
    const g = new Graph();
    const x = g.input('x', [2, 5, 4]);
    const w = g.input('w', [4, 3]);
    const loss = weightedSum(g, g.op1('MatMul', [x, w]));
    const before = g.nodes.length;
    gradients(g, loss, [w]);
    expect(g.nodes.slice(before).map((n) => n.opType)).not.toContain('ReduceSum');
    expect(productsAdded([2, 5, 4], [4, 3], 'b')[0].opType).toBe('Gemm');
  });

  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      for (const [alpha, beta] of [
        [1, 1],
        [0.7, -1.3],
      ]) {
        it(`Gemm transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}`, async () => {
          const [m, k, n] = [3, 4, 2];
          const sa = transA ? [k, m] : [m, k];
          const sb = transB ? [n, k] : [k, n];
          for (const sc of [[n], [m, 1], [m, n]]) {
            const r = await check({
              shapes: [sa, sb, sc],
              build: (g, xs) => g.op1('Gemm', xs, { transA, transB, alpha, beta }),
            });
            expectAccurate(r);
          }
          const r = await check({
            shapes: [sa, sb],
            build: (g, xs) => g.op1('Gemm', xs, { transA, transB, alpha }),
          });
          expectAccurate(r);
        });
      }
    }
  }
});

describe('coverage', () => {
  it('every elementwise/reduction/product op the model layers emit has a rule', () => {
    // ops of native-models/onnx/layers.ts in this family (Conv, norms and shape ops live elsewhere)
    for (const op of ['MatMul', 'Add', 'Mul', 'Sigmoid', 'Gelu', 'Softmax', 'Cast', 'Sin', 'Cos']) {
      expect(hasRule(op), op).toBe(true);
    }
  });
});
