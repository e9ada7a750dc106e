import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/graph.js';
import { numel } from '../onnx/dtype.js';
import { Rng } from '../tensor/random.js';
import { checkGradients } from '../autodiff/gradcheck.js';
import { gradients } from '../autodiff/index.js'; // also registers every gradient rule
import {
  bceWithLogitsLoss,
  cosineEmbeddingLoss,
  cosineSimilarity,
  crossEntropyLoss,
  mseLoss,
  type Reduction,
} from './losses.js';

type Dtype = 'float32' | 'float64';
type FloatArray = Float32Array | Float64Array;

function values(n: number, seed: number, dtype: Dtype = 'float64', map = (v: number) => v): FloatArray {
  const data = Array.from(new Rng(seed).randn(n), map);
  return dtype === 'float64' ? Float64Array.from(data) : Float32Array.from(data);
}

/** Runs `g` with `value` as its only output and returns it as numbers. */
async function evaluate(g: Graph, value: string, feeds: Record<string, FloatArray>): Promise<number[]> {
  g.output(value, 'result');
  const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 1 });
  const tensors = Object.fromEntries(
    g.inputs.map((name) => [name, new ort.Tensor(g.dtype(name) as Dtype, feeds[name], g.shape(name))]),
  );
  const out = await session.run(tensors, ['result']);
  await session.release();
  expect(out.result.dims).toEqual(g.shape(value));
  return Array.from(out.result.data as FloatArray);
}

const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
const reduce = (xs: number[], reduction: Reduction) => (reduction === 'sum' ? sum(xs) : sum(xs) / xs.length);
const pairs = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (x, i) => [x, b[i]] as const);

describe('mseLoss', () => {
  for (const reduction of ['mean', 'sum'] as const) {
    it(`${reduction}: matches a JS reference and has the right gradients`, async () => {
      const shape = [2, 3, 4];
      const n = numel(shape);
      const feeds = { p: values(n, 1), t: values(n, 2) };
      const expected = reduce(
        pairs(feeds.p, feeds.t).map(([p, t]) => (p - t) ** 2),
        reduction,
      );
      const g = new Graph({ floatType: 'float64' });
      const loss = mseLoss(g, g.input('p', shape), g.input('t', shape), { reduction });
      expect(g.shape(loss)).toEqual([]);
      expect((await evaluate(g, loss, feeds))[0]).toBeCloseTo(expected, 12);

      const gg = new Graph({ floatType: 'float64' });
      const r = await checkGradients(
        gg,
        mseLoss(gg, gg.input('p', shape), gg.input('t', shape), { reduction }),
        ['p', 't'],
        feeds,
      );
      expect(r.maxError).toBeLessThan(1e-7);
      expect(r.directionalError).toBeLessThan(1e-7);
    });
  }

  it('refuses shapes that differ', () => {
    const g = new Graph();
    expect(() => mseLoss(g, g.input('a', [2, 3]), g.input('b', [3]))).toThrow(
      /mseLoss: shapes \[2, 3\] and \[3\] differ/,
    );
  });
});

/** max(x, 0) - x t + log(1 + exp(-|x|)), evaluated in JS. */
const bce = (x: number, t: number) => Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));

describe('bceWithLogitsLoss', () => {
  it('matches a JS reference, with weights, in float64', async () => {
    const shape = [3, 5];
    const feeds = {
      x: values(15, 3, 'float64', (v) => 3 * v),
      t: values(15, 4, 'float64', (v) => 1 / (1 + Math.exp(-v))), // soft targets
      w: values(5, 5, 'float64', Math.abs),
    };
    for (const reduction of ['mean', 'sum'] as const) {
      const g = new Graph({ floatType: 'float64' });
      const loss = bceWithLogitsLoss(g, g.input('x', shape), g.input('t', shape), {
        weight: g.input('w', [5]),
        reduction,
      });
      const expected = reduce(
        pairs(feeds.x, feeds.t).map(([x, t], i) => bce(x, t) * feeds.w[i % 5]),
        reduction,
      );
      expect((await evaluate(g, loss, feeds))[0]).toBeCloseTo(expected, 10);
    }
  });

  it('stays finite and accurate for large logits in float32', async () => {
    const x = Float32Array.from([100, -100, 100, -100, 30, -30, 0, 0]);
    const t = Float32Array.from([0, 1, 1, 0, 0.5, 0.5, 0, 1]);
    const g = new Graph();
    const loss = bceWithLogitsLoss(g, g.input('x', [8]), g.input('t', [8]), { reduction: 'sum' });
    const expected = sum(pairs(x, t).map(([a, b]) => bce(a, b)));
    const got = (await evaluate(g, loss, { x, t }))[0];
    expect(Number.isFinite(got)).toBe(true);
    expect(got).toBeCloseTo(expected, 3);
  });

  it('has gradient sigmoid(x) - t, also at x = 0, and gradients for targets and weights', async () => {
    const shape = [2, 6];
    const x = values(12, 6, 'float64', (v) => 2 * v);
    x[0] = 0;
    x[7] = 0;
    const feeds = {
      x,
      t: values(12, 7, 'float64', (v) => 1 / (1 + Math.exp(-v))),
      w: values(12, 8, 'float64', (v) => 0.5 + Math.abs(v)),
    };
    const g = new Graph({ floatType: 'float64' });
    const loss = bceWithLogitsLoss(g, g.input('x', shape), g.input('t', shape), {
      weight: g.input('w', shape),
    });
    const r = await checkGradients(g, loss, ['x', 't', 'w'], feeds);
    expect(r.maxError).toBeLessThan(1e-7);
    expect(r.directionalError).toBeLessThan(1e-7);

    // the analytic gradient at 0, exactly: (sigmoid(0) - t) / n
    const g2 = new Graph({ floatType: 'float64' });
    const loss2 = bceWithLogitsLoss(g2, g2.input('x', [2]), g2.input('t', [2]), { reduction: 'sum' });
    const grad = gradients(g2, loss2, ['x']).get('x')!;
    const got = await evaluate(g2, grad, { x: Float64Array.from([0, 0]), t: Float64Array.from([0, 1]) });
    expect(got).toEqual([0.5, -0.5]);
  });

  it('refuses weights that would broadcast the loss to a larger shape', () => {
    const g = new Graph();
    expect(() =>
      bceWithLogitsLoss(g, g.input('x', [3]), g.input('t', [3]), { weight: g.input('w', [2, 3]) }),
    ).toThrow(/weight must broadcast/);
  });
});

/** -sum_c t log softmax(x) per position along axis 1 of [N, C, K], in JS. */
function crossEntropyReference(x: FloatArray, t: FloatArray, [n, c, k]: number[]): number[] {
  const losses: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const at = (cls: number) => i * c * k + cls * k + j;
      let max = -Infinity;
      for (let cls = 0; cls < c; cls++) max = Math.max(max, x[at(cls)]);
      let z = 0;
      for (let cls = 0; cls < c; cls++) z += Math.exp(x[at(cls)] - max);
      let loss = 0;
      for (let cls = 0; cls < c; cls++) loss -= t[at(cls)] * (x[at(cls)] - max - Math.log(z));
      losses.push(loss);
    }
  }
  return losses;
}

/** Random probability vectors along axis 1 of [N, C, K]. */
function probabilities(shape: number[], seed: number): Float64Array {
  const [n, c, k] = shape;
  const raw = values(n * c * k, seed, 'float64', Math.exp);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let cls = 0; cls < c; cls++) s += raw[i * c * k + cls * k + j];
      for (let cls = 0; cls < c; cls++) raw[i * c * k + cls * k + j] /= s;
    }
  }
  return raw as Float64Array;
}

describe('crossEntropyLoss', () => {
  const shape = [2, 4, 3];

  it('matches a JS reference over axis 1 of [N, C, K], with probability and one-hot targets', async () => {
    const x = values(24, 9, 'float64', (v) => 4 * v);
    const onehot = new Float64Array(24);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) onehot[i * 12 + ((i + j) % 4) * 3 + j] = 1;
    for (const t of [probabilities(shape, 10), onehot]) {
      for (const reduction of ['mean', 'sum'] as const) {
        const g = new Graph({ floatType: 'float64' });
        const loss = crossEntropyLoss(g, g.input('x', shape), g.input('t', shape), { reduction });
        const expected = reduce(crossEntropyReference(x, t, shape), reduction);
        expect((await evaluate(g, loss, { x, t }))[0]).toBeCloseTo(expected, 10);
      }
    }
  });

  it('takes the class axis from the end, and large logits in float32 stay finite', async () => {
    const x = Float32Array.from([1000, 0, -1000, 0, 0, 0]);
    const t = Float32Array.from([0, 1, 0, 0.5, 0.25, 0.25]);
    const g = new Graph();
    const loss = crossEntropyLoss(g, g.input('x', [2, 3]), g.input('t', [2, 3]), { axis: -1 });
    const expected = (1000 + Math.log(3)) / 2;
    expect((await evaluate(g, loss, { x, t }))[0]).toBeCloseTo(expected, 2);
  });

  it('has the right gradients for logits and targets', async () => {
    const g = new Graph({ floatType: 'float64' });
    const loss = crossEntropyLoss(g, g.input('x', shape), g.input('t', shape));
    const r = await checkGradients(g, loss, ['x', 't'], { x: values(24, 11), t: probabilities(shape, 12) });
    expect(r.maxError).toBeLessThan(1e-7);
    expect(r.directionalError).toBeLessThan(1e-7);
  });

  it('refuses an axis out of range', () => {
    const g = new Graph();
    expect(() => crossEntropyLoss(g, g.input('x', [4]), g.input('t', [4]))).toThrow(
      /axis 1 is out of range for rank 1/,
    );
  });
});

describe('cosineSimilarity and cosineEmbeddingLoss', () => {
  /** Cosines of the rows of [n, d] arrays, in JS. */
  const cosines = (a: FloatArray, b: FloatArray, n: number, d: number) =>
    Array.from({ length: n }, (_, i) => {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let j = 0; j < d; j++) {
        dot += a[i * d + j] * b[i * d + j];
        na += a[i * d + j] ** 2;
        nb += b[i * d + j] ** 2;
      }
      return dot / (Math.max(Math.sqrt(na), 1e-8) * Math.max(Math.sqrt(nb), 1e-8));
    });

  it('gives one cosine per row, matching JS, and 0 for a zero vector', async () => {
    const a = values(20, 13);
    a.fill(0, 5, 10); // row 1 is zero
    const b = values(20, 14);
    const g = new Graph({ floatType: 'float64' });
    const cos = cosineSimilarity(g, g.input('a', [4, 5]), g.input('b', [4, 5]));
    expect(g.shape(cos)).toEqual([4]);
    const got = await evaluate(g, cos, { a, b });
    const expected = cosines(a, b, 4, 5);
    expect(expected[1]).toBe(0);
    got.forEach((c, i) => expect(c).toBeCloseTo(expected[i], 12));
  });

  it('works along another axis and broadcasts', async () => {
    // a: [2, 3] vectors along axis 0; b: [2, 1] broadcast over the 3 columns
    const a = Float64Array.from([1, 0, 3, 0, 2, 4]);
    const b = Float64Array.from([1, 1]);
    const g = new Graph({ floatType: 'float64' });
    const cos = cosineSimilarity(g, g.input('a', [2, 3]), g.input('b', [2, 1]), { axis: 0 });
    expect(g.shape(cos)).toEqual([3]);
    const got = await evaluate(g, cos, { a, b });
    const expected = [1 / Math.SQRT2, 2 / (2 * Math.SQRT2), 7 / (5 * Math.SQRT2)];
    got.forEach((c, i) => expect(c).toBeCloseTo(expected[i], 12));
  });

  it('cosineEmbeddingLoss is the mean (or sum) of 1 - cos', async () => {
    const a = values(12, 15);
    const b = values(12, 16);
    for (const reduction of ['mean', 'sum'] as const) {
      const g = new Graph({ floatType: 'float64' });
      const loss = cosineEmbeddingLoss(g, g.input('a', [3, 4]), g.input('b', [3, 4]), { reduction });
      const expected = reduce(
        cosines(a, b, 3, 4).map((c) => 1 - c),
        reduction,
      );
      expect((await evaluate(g, loss, { a, b }))[0]).toBeCloseTo(expected, 12);
    }
  });

  it('has the right gradients, and finite ones for a zero vector', async () => {
    const g = new Graph({ floatType: 'float64' });
    const loss = cosineEmbeddingLoss(g, g.input('a', [3, 4]), g.input('b', [3, 4]));
    const r = await checkGradients(g, loss, ['a', 'b'], { a: values(12, 17), b: values(12, 18) });
    expect(r.maxError).toBeLessThan(1e-7);
    expect(r.directionalError).toBeLessThan(1e-7);

    const g2 = new Graph({ floatType: 'float64' });
    const loss2 = cosineEmbeddingLoss(g2, g2.input('a', [2, 3]), g2.input('b', [2, 3]));
    const grad = gradients(g2, loss2, ['a']).get('a')!;
    const got = await evaluate(g2, grad, { a: new Float64Array(6), b: values(6, 19) });
    got.forEach((v) => expect(Number.isFinite(v)).toBe(true));
  });
});
