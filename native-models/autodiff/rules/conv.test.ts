import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph, type Attrs } from '../../onnx/graph.js';
import { numel } from '../../onnx/dtype.js';
import { Rng } from '../../tensor/random.js';
import { checkGradients, weightedSum, type GradCheckResult } from '../gradcheck.js';
import { gradients } from '../index.js';
import {
  convInputGradient,
  convWeightGradient,
  chooseInputGradMethod,
  chooseWeightGradMethod,
  type ConvGeometry,
  type InputGradMethod,
  type WeightGradMethod,
} from './conv.js';

// ORT has no float64 Conv, ConvTranspose or AveragePool kernels: those checks run in float32.
// Errors are relative to max |grad| (measured: entries <= 3e-6, directional <= 4e-4).
const F32_TOL = 5e-4;
const F32_DIRECTIONAL_TOL = 1e-3;

const randn = (shape: readonly number[], seed: number) => new Rng(seed).randn(numel(shape));

interface ConvCase {
  op?: 'Conv' | 'ConvTranspose';
  x: number[];
  w: number[];
  attrs: Attrs;
  bias?: boolean;
  /** The weight as a constant initializer (frozen), not differentiated. */
  frozenWeight?: boolean;
}

/** y = op(x, w[, b]); loss = weighted sum of y; checks d loss / d (x, w, b) in float32. */
async function checkConv({
  op = 'Conv',
  x: xs,
  w: ws,
  attrs,
  bias = true,
  frozenWeight = false,
}: ConvCase): Promise<GradCheckResult> {
  const g = new Graph();
  const x = g.input('x', xs);
  const w = frozenWeight ? g.initializer('w', randn(ws, 2), ws) : g.input('w', ws);
  const outChannels = op === 'Conv' ? ws[0] : ws[1] * ((attrs.group as number | undefined) ?? 1);
  const b = bias ? g.input('b', [outChannels]) : undefined;
  const y = g.op1(op, b ? [x, w, b] : [x, w], attrs);
  const loss = weightedSum(g, y);
  const feeds: Record<string, Float32Array> = { x: randn(xs, 1) };
  if (!frozenWeight) feeds.w = randn(ws, 2);
  if (b) feeds.b = randn([outChannels], 3);
  const wrt = [x, ...(frozenWeight ? [] : [w]), ...(b ? [b] : [])];
  // The loss is linear in each input and bilinear in (x, w): central differences are exact for any
  // step, so a large one keeps float32 rounding of the loss out of the numeric derivative.
  return checkGradients(g, loss, wrt, feeds, { step: 0.25 });
}

/** The geometry a Conv node would have, for calling the formulations directly. */
function geometry(xs: number[], ws: number[], attrs: Attrs): ConvGeometry {
  const g = new Graph();
  const y = g.op1('Conv', [g.input('x', xs), g.input('w', ws)], attrs);
  const [, , ho, wo] = g.shape(y);
  const pads = (attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
  return {
    n: xs[0],
    c: xs[1],
    h: xs[2],
    w: xs[3],
    m: ws[0],
    ho,
    wo,
    group: (attrs.group as number | undefined) ?? 1,
    kernel: [ws[2], ws[3]],
    strides: ((attrs.strides as number[] | undefined) ?? [1, 1]) as [number, number],
    dilations: ((attrs.dilations as number[] | undefined) ?? [1, 1]) as [number, number],
    pads: pads as [number, number, number, number],
  };
}

describe('Conv gradient (float32 finite differences)', () => {
  // [name, case, the dW and dX formulations the rule picks for it]
  const cases: [string, ConvCase, [WeightGradMethod, InputGradMethod] | undefined][] = [
    [
      '3x3, padding 1, non-square input',
      { x: [2, 10, 5, 7], w: [12, 10, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
      ['taps-gemm', 'flipped-conv'],
    ],
    [
      'a 32x32 map',
      { x: [1, 9, 32, 32], w: [9, 9, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
      ['taps', 'flipped-conv'],
    ],
    [
      'few output channels (conv_out)',
      { x: [2, 12, 5, 6], w: [3, 12, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
      ['gy-stack', 'flipped-conv'],
    ],
    [
      'a narrowing conv on a 32x32 map',
      { x: [1, 24, 32, 32], w: [10, 24, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
      ['gy-taps', 'flipped-conv'],
    ],
    [
      'a narrowing conv on a small map, asymmetric pads',
      { x: [2, 20, 6, 5], w: [9, 20, 3, 3], attrs: { pads: [2, 1, 0, 1] } },
      ['gy-taps-gemm', 'flipped-conv'],
    ],
    [
      'a narrowing conv, groups 2',
      { x: [2, 40, 6, 5], w: [18, 20, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] } },
      ['gy-taps-gemm', 'flipped-conv'],
    ],
    [
      'few input channels (conv_in)',
      { x: [2, 3, 5, 7], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
      ['unfold', 'conv-transpose'],
    ],
    [
      'stride 2, asymmetric padding, 3x2 kernel, rows the windows never reach',
      { x: [2, 3, 8, 6], w: [4, 3, 3, 2], attrs: { strides: [2, 2], pads: [1, 0, 0, 1] } },
      ['unfold', 'conv-transpose'],
    ],
    [
      'dilation 2',
      { x: [1, 10, 7, 8], w: [3, 10, 3, 3], attrs: { dilations: [2, 2], pads: [2, 1, 2, 1] } },
      ['gy-stack', 'flipped-conv'],
    ],
    [
      'groups 2',
      { x: [2, 20, 6, 5], w: [12, 10, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] } },
      ['taps-gemm', 'flipped-conv'],
    ],
    [
      'depthwise',
      { x: [2, 4, 6, 6], w: [4, 1, 3, 3], attrs: { group: 4, pads: [1, 1, 1, 1] } },
      ['taps', 'flipped-conv'],
    ],
    [
      'depthwise with multiplier 2, stride 2',
      { x: [2, 3, 7, 6], w: [6, 1, 3, 3], attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] } },
      ['unfold', 'conv-transpose'],
    ],
    ['1x1', { x: [2, 10, 4, 3], w: [3, 10, 1, 1], attrs: {} }, ['taps', 'flipped-conv']],
    [
      '1x1 with a frozen weight',
      { x: [2, 10, 4, 3], w: [12, 10, 1, 1], attrs: {}, frozenWeight: true },
      ['taps', 'matmul'],
    ],
    [
      '1x1 with padding wider than the kernel',
      { x: [1, 10, 4, 3], w: [3, 10, 1, 1], attrs: { pads: [1, 2, 0, 1] } },
      ['taps', 'flipped-conv'],
    ],
    [
      'auto_pad SAME_UPPER, stride 2',
      { x: [1, 2, 6, 5], w: [3, 2, 3, 3], attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' } },
      undefined,
    ],
    ['1-D, stride 2', { x: [2, 3, 9], w: [4, 3, 3], attrs: { strides: [2], pads: [1, 1] } }, undefined],
  ];
  for (const [name, c, methods] of cases) {
    it(name, async () => {
      if (methods) {
        const geo = geometry(c.x, c.w, c.attrs);
        expect([chooseWeightGradMethod(geo), chooseInputGradMethod(geo, c.frozenWeight)]).toEqual(methods);
      }
      const r = await checkConv(c);
      expect(r.maxError).toBeLessThan(F32_TOL);
      expect(r.directionalError).toBeLessThan(F32_DIRECTIONAL_TOL);
    });
  }

  it('computes no weight or bias gradient for a frozen weight', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3, 6, 6]);
    const w = g.initializer('w', randn([4, 3, 3, 3], 1), [4, 3, 3, 3]);
    const b = g.initializer('b', randn([4], 2), [4]);
    const loss = weightedSum(g, g.op1('Conv', [x, w, b], { pads: [1, 1, 1, 1] }));
    const before = g.nodes.length;
    gradients(g, loss, [x]);
    const added = new Set(g.nodes.slice(before).map((n) => n.opType));
    for (const op of ['MatMul', 'Gemm', 'Pad', 'ReduceSum']) expect(added.has(op)).toBe(false);
  });
});

describe('Conv gradient formulations agree with each other', () => {
  const geometries: [string, number[], number[], Attrs][] = [
    ['3x3 stride 1', [2, 3, 6, 5], [4, 3, 3, 3], { pads: [1, 1, 1, 1] }],
    ['3x3 stride 1, asymmetric pads', [2, 3, 6, 5], [2, 3, 3, 3], { pads: [0, 2, 1, 0] }],
    ['3x3 stride 1, same padding (centre tap uncopied)', [2, 6, 5, 4], [4, 6, 3, 3], { pads: [1, 1, 1, 1] }],
    ['5x3, dilation 2, same padding', [1, 4, 9, 7], [3, 4, 5, 3], { dilations: [2, 2], pads: [4, 2, 4, 2] }],
    ['1x1 with padding wider than the kernel', [1, 2, 4, 3], [3, 2, 1, 1], { pads: [1, 2, 0, 1] }],
    ['3x3 stride 2, asymmetric pads', [2, 3, 7, 6], [4, 3, 3, 3], { strides: [2, 2], pads: [1, 0, 2, 1] }],
    ['dilation 2, groups 2', [1, 4, 7, 6], [6, 2, 3, 3], { dilations: [2, 2], group: 2, pads: [2, 2, 2, 2] }],
    ['depthwise, stride 2', [2, 4, 6, 6], [4, 1, 3, 3], { group: 4, strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['1x1', [2, 5, 4, 3], [3, 5, 1, 1], {}],
  ];
  const weightMethods: WeightGradMethod[] = [
    'taps',
    'taps-gemm',
    'unfold',
    'gy-taps',
    'gy-taps-gemm',
    'gy-stack',
    'conv',
  ];
  const inputMethods: InputGradMethod[] = ['matmul', 'flipped-conv', 'conv-transpose'];

  for (const [name, xs, ws, attrs] of geometries) {
    it(name, async () => {
      const geo = geometry(xs, ws, attrs);
      const g = new Graph();
      const x = g.input('x', xs);
      const w = g.input('w', ws);
      const gy = g.input('gy', [geo.n, geo.m, geo.ho, geo.wo]);
      const outputs: [string, string][] = [];
      for (const method of weightMethods) {
        if (method === 'conv' && geo.group !== 1) continue;
        if (method.startsWith('gy-') && !geo.strides.every((s) => s === 1)) continue;
        outputs.push([`dw:${method}`, g.output(convWeightGradient(g, geo, x, gy, method), `dw_${method}`)]);
      }
      for (const method of inputMethods) {
        const stride1 = geo.strides.every((s) => s === 1);
        if (method === 'flipped-conv' && !stride1) continue;
        const unpadded = geo.pads.every((p) => p === 0);
        if (method === 'matmul' && !(stride1 && unpadded && geo.group === 1 && ws[2] === 1 && ws[3] === 1))
          continue;
        outputs.push([`dx:${method}`, g.output(convInputGradient(g, geo, w, gy, method), `dx_${method}`)]);
      }
      const session = await ort.InferenceSession.create(g.toBytes());
      const feeds = Object.fromEntries(
        g.inputs.map((name, i) => [
          name,
          new ort.Tensor('float32', randn(g.shape(name), 10 + i), g.shape(name)),
        ]),
      );
      const result = await session.run(feeds);
      await session.release();
      const reference = new Map<string, Float32Array>();
      for (const [label, name] of outputs) {
        const kind = label.slice(0, 2);
        const data = result[name].data as Float32Array;
        const ref = reference.get(kind);
        if (!ref) reference.set(kind, data);
        else {
          let err = 0;
          for (let i = 0; i < data.length; i++) err = Math.max(err, Math.abs(data[i] - ref[i]));
          expect(err, label).toBeLessThan(1e-4);
        }
      }
      // The default choice is one of the compared formulations.
      expect(weightMethods).toContain(chooseWeightGradMethod(geo));
      expect(inputMethods).toContain(chooseInputGradMethod(geo));
    });
  }
});

describe('ConvTranspose gradient (float32 finite differences)', () => {
  it('stride 2, padding 1, output_padding 1, groups 2, bias', async () => {
    const r = await checkConv({
      op: 'ConvTranspose',
      x: [2, 4, 3, 4],
      w: [4, 3, 3, 3],
      attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1], group: 2 },
    });
    expect(r.maxError).toBeLessThan(F32_TOL);
    expect(r.directionalError).toBeLessThan(F32_DIRECTIONAL_TOL);
  });

  it('dilation 2, non-square kernel, output_shape', async () => {
    const r = await checkConv({
      op: 'ConvTranspose',
      x: [1, 3, 4, 3],
      w: [3, 2, 2, 3],
      attrs: { dilations: [2, 2], strides: [2, 1], output_shape: [8, 6] },
    });
    expect(r.maxError).toBeLessThan(F32_TOL);
    expect(r.directionalError).toBeLessThan(F32_DIRECTIONAL_TOL);
  });
});

/** A loss through one pool op; float64 where ORT has the kernel. */
async function checkPool(
  op: string,
  xs: number[],
  attrs: Attrs,
  dtype: 'float32' | 'float64',
  options: { indices?: boolean; distinct?: boolean } = {},
): Promise<GradCheckResult> {
  const g = new Graph({ floatType: dtype });
  const x = g.input('x', xs, dtype);
  const y = options.indices ? g.op(op, [x], attrs, { count: 2 })[0] : g.op1(op, [x], attrs);
  const loss = weightedSum(g, y);
  let values: Float32Array | Float64Array = randn(xs, 5);
  if (options.distinct) {
    // Distinct values 0.05 apart so no finite-difference step changes which element is the max.
    const order = [...values.keys()].sort((a, b) => values[a] - values[b]);
    const spaced = new Float64Array(values.length);
    order.forEach((index, rank) => (spaced[index] = rank * 0.05));
    values = spaced;
  }
  const feed = dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
  // AveragePool is linear (any step is exact); MaxPool inputs are 0.05 apart, so a 1e-4 step never
  // changes a window's maximum.
  return checkGradients(g, loss, [x], { x: feed }, { step: dtype === 'float64' ? 1e-4 : 0.25 });
}

describe('pool gradients (finite differences)', () => {
  it('MaxPool 2x2 stride 2 (float64)', async () => {
    const r = await checkPool('MaxPool', [2, 3, 4, 6], { kernel_shape: [2, 2], strides: [2, 2] }, 'float64', {
      distinct: true,
    });
    expect(r.maxError).toBeLessThan(1e-9);
  });

  it('MaxPool 3x3 stride 2 padding 1, overlapping windows, using its own Indices output (float64)', async () => {
    const attrs = { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] };
    const r = await checkPool('MaxPool', [2, 2, 7, 6], attrs, 'float64', { distinct: true, indices: true });
    expect(r.maxError).toBeLessThan(1e-9);
  });

  it('MaxPool with ceil_mode and dilation 2 (float64)', async () => {
    const attrs = { kernel_shape: [2, 2], strides: [2, 2], dilations: [2, 2], ceil_mode: 1 };
    const r = await checkPool('MaxPool', [1, 2, 7, 8], attrs, 'float64', { distinct: true });
    expect(r.maxError).toBeLessThan(1e-9);
  });

  it('MaxPool sends the gradient of a tie to one element', async () => {
    const g = new Graph({ floatType: 'float64' });
    const x = g.input('x', [1, 1, 2, 2], 'float64');
    const loss = g.op1('ReduceSum', [g.op1('MaxPool', [x], { kernel_shape: [2, 2] })], { keepdims: 0 });
    const dx = g.output(gradients(g, loss, [x]).get(x)!, 'dx');
    const session = await ort.InferenceSession.create(g.toBytes());
    const r = await session.run({
      x: new ort.Tensor('float64', Float64Array.from([1, 3, 3, 0]), [1, 1, 2, 2]),
    });
    await session.release();
    const values = Array.from(r[dx].data as Float64Array);
    expect(values.reduce((a, b) => a + b, 0)).toBe(1);
    expect(values.filter((v) => v === 1)).toHaveLength(1);
    expect(values[0] + values[3]).toBe(0);
  });

  const averagePools: [string, number[], Attrs][] = [
    ['2x2 stride 2 (exact tiling)', [2, 3, 4, 6], { kernel_shape: [2, 2], strides: [2, 2] }],
    [
      '3x3 stride 2 padding 1, count_include_pad 0',
      [2, 2, 7, 6],
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    ],
    [
      '3x3 stride 2 padding 1, count_include_pad 1',
      [2, 2, 7, 6],
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 },
    ],
    [
      '3x2 stride (2, 1), asymmetric padding, ceil_mode',
      [1, 2, 8, 5],
      { kernel_shape: [3, 2], strides: [2, 1], pads: [0, 1, 1, 0], ceil_mode: 1 },
    ],
    ['2x2 dilation 2', [1, 2, 6, 7], { kernel_shape: [2, 2], dilations: [2, 2], strides: [1, 2] }],
  ];
  for (const [name, xs, attrs] of averagePools) {
    it(`AveragePool ${name} (float32)`, async () => {
      const r = await checkPool('AveragePool', xs, attrs, 'float32');
      expect(r.maxError).toBeLessThan(F32_TOL);
      expect(r.directionalError).toBeLessThan(F32_DIRECTIONAL_TOL);
    });
  }

  it('GlobalAveragePool (float32)', async () => {
    const r = await checkPool('GlobalAveragePool', [2, 3, 4, 5], {}, 'float32');
    expect(r.maxError).toBeLessThan(F32_TOL);
  });
});
