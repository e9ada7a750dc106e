import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph, GraphError, float } from './graph.js';
import { decodeModel } from './proto.js';
import { importModel } from './import.js';
import { AttributeType } from './proto-types.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from './dtype.js';

async function run(
  g: Graph,
  feeds: Record<string, ort.Tensor>,
  dynamicAxes?: Record<string, Record<number, string>>,
) {
  const session = await ort.InferenceSession.create(g.toBytes(dynamicAxes ? { dynamicAxes } : {}), {
    intraOpNumThreads: 1,
  });
  return session.run(feeds);
}

describe('Graph', () => {
  it('infers shapes for convolution, pooling, matmul and reshapes, and onnxruntime agrees', async () => {
    const g = new Graph({ name: 'shapes' });
    const x = g.input('x', [2, 3, 9, 7]);
    const w = g.initializer('w', new Float32Array(4 * 3 * 3 * 3).fill(0.1), [4, 3, 3, 3]);
    const conv = g.op1('Conv', [x, w], { strides: [2, 2], pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
    expect(g.shape(conv)).toEqual([2, 4, 5, 4]);
    const pooled = g.op1('MaxPool', [conv], { kernel_shape: [2, 2], strides: [2, 2] });
    expect(g.shape(pooled)).toEqual([2, 4, 2, 2]);
    const flat = g.op1('Reshape', [pooled, g.ints([0, -1])]);
    expect(g.shape(flat)).toEqual([2, 16]);
    const dense = g.op1('MatMul', [flat, g.initializer('d', new Float32Array(16 * 5).fill(0.01), [16, 5])]);
    const up = g.op1('Resize', [conv, '', g.initializer('s', Float32Array.from([1, 1, 2, 2]), [4])], {
      mode: 'nearest',
    });
    expect(g.shape(up)).toEqual([2, 4, 10, 8]);
    const [a, b] = g.op('Split', [dense, g.ints([2, 3])], { axis: 1 }, { count: 2 });
    expect([g.shape(a), g.shape(b)]).toEqual([
      [2, 2],
      [2, 3],
    ]);
    const t = g.op1('Transpose', [conv], { perm: [0, 2, 3, 1] });
    expect(g.shape(t)).toEqual([2, 5, 4, 4]);
    const mean = g.op1('ReduceMean', [t, g.ints([1, 2])], { keepdims: 0 });
    expect(g.shape(mean)).toEqual([2, 4]);
    for (const [v, name] of [
      [a, 'a'],
      [b, 'b'],
      [up, 'up'],
      [mean, 'mean'],
    ] as const) {
      g.output(v, name);
    }
    const out = await run(g, {
      x: new ort.Tensor('float32', new Float32Array(2 * 3 * 9 * 7).fill(1), [2, 3, 9, 7]),
    });
    expect(out.a.dims).toEqual([2, 2]);
    expect(out.b.dims).toEqual([2, 3]);
    expect(out.up.dims).toEqual([2, 4, 10, 8]);
    expect(out.mean.dims).toEqual([2, 4]);
  });

  it('computes the right values (y = relu(x W + b)) in onnxruntime', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const w = g.initializer('w', Float32Array.from([1, -1, 2, 0.5, 1, -2]), [3, 2]);
    const b = g.initializer('b', Float32Array.from([0.25, -0.5]), [2]);
    g.output(g.op1('Relu', [g.op1('Add', [g.op1('MatMul', [x, w]), b])]), 'y');
    const out = await run(g, {
      x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, -1, 0, 1]), [2, 3]),
    });
    // row 0: [1 + 2*2 + 3*1, -1 + 2*0.5 - 3*2] + b = [8.25, -6.5] -> relu
    // row 1: [-1 + 0 + 1, 1 + 0 - 2] + b = [0.25, -1.5] -> relu
    expect(Array.from(out.y.data as Float32Array)).toEqual([8.25, 0, 0.25, 0]);
  });

  it('folds constant shape arithmetic (Shape -> Gather -> Concat -> Reshape)', () => {
    const g = new Graph();
    const x = g.input('x', [4, 6, 5]);
    const shape = g.op1('Shape', [x]);
    expect(g.constValue(shape)).toEqual([4, 6, 5]);
    const batch = g.op1('Gather', [shape, g.ints([0])], { axis: 0 });
    expect(g.constValue(batch)).toEqual([4]);
    const target = g.op1('Concat', [batch, g.ints([-1])], { axis: 0 });
    expect(g.constValue(target)).toEqual([4, -1]);
    const y = g.op1('Reshape', [x, target]);
    expect(g.shape(y)).toEqual([4, 30]);
    const doubled = g.op1('Mul', [batch, g.ints([2])]);
    expect(g.constValue(doubled)).toEqual([8]);
  });

  it('folds Shape chains into constants and prunes dead nodes, computing the same', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 3, 4]);
    const shape = g.op1('Shape', [x]);
    const batch = g.op1('Gather', [shape, g.ints([0])], { axis: 0 });
    const target = g.op1('Concat', [batch, g.ints([-1])], { axis: 0 });
    const y = g.op1('Reshape', [g.op1('Relu', [x]), target]);
    g.op1('Neg', [x]); // dead
    g.output(y, 'y');
    const feeds = {
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 24 }, (_, i) => i - 12),
        [2, 3, 4],
      ),
    };
    const before = await run(g, feeds);
    expect(g.foldConstants()).toBe(4); // Shape, Gather, Concat and the dead Neg
    expect(g.nodes.map((n) => n.opType)).toEqual(['Relu', 'Reshape', 'Identity']);
    const after = await run(g, feeds);
    expect(Array.from(after.y.data as Float32Array)).toEqual(Array.from(before.y.data as Float32Array));
  });

  it('stores large weights as float16 with casts, halving their size; outputs agree to float16 precision', async () => {
    const build = () => {
      const g = new Graph();
      const x = g.input('x', [2, 64]);
      const w = Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i) * 0.1);
      g.output(g.op1('MatMul', [x, g.initializer('w', w, [64, 32])]), 'y');
      return g;
    };
    const feeds = {
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 128 }, (_, i) => Math.cos(i)),
        [2, 64],
      ),
    };
    const full = build();
    const half = build();
    expect(half.storeWeightsAsFloat16()).toBe(64 * 32 * 2);
    expect(half.toBytes().length).toBeLessThan(full.toBytes().length * 0.6);
    const a = (await run(full, feeds)).y.data as Float32Array;
    const b = (await run(half, feeds)).y.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(2e-3);

    // and back: float32 initializers under the original names, the casts gone, the same outputs
    const restored = importModel(decodeModel(half.toBytes()));
    expect(restored.restoreFloat32Weights()).toBe(1);
    expect(restored.nodes.filter((n) => n.opType === 'Cast')).toEqual([]);
    expect(restored.initializers.get('w')?.dtype).toBe('float32');
    const c = (await run(restored, feeds)).y.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(c[i]).toBeCloseTo(b[i], 6);
  });

  it('writes INT, FLOAT, INTS, FLOATS and STRING attributes with the right types', () => {
    const g = new Graph();
    const x = g.input('x', [1, 4, 2, 2]);
    const gn = g.op1(
      'GroupNormalization',
      [x, g.initializer('s', new Float32Array(4).fill(1), [4]), g.initializer('b', new Float32Array(4), [4])],
      { num_groups: 2, epsilon: float(1e-5) },
    );
    g.output(
      g.op1('Resize', [gn, '', g.initializer('sc', Float32Array.from([1, 1, 2, 2]), [4])], {
        mode: 'nearest',
      }),
      'y',
    );
    const model = decodeModel(g.toBytes());
    const attrs = model.graph.node.flatMap((n) => n.attribute);
    expect(attrs.find((a) => a.name === 'num_groups')).toMatchObject({ type: AttributeType.INT, i: 2 });
    expect(attrs.find((a) => a.name === 'epsilon')?.type).toBe(AttributeType.FLOAT);
    expect(attrs.find((a) => a.name === 'mode')?.type).toBe(AttributeType.STRING);
    expect(model.opsetImport).toEqual([{ domain: '', version: 21 }]);
    expect(model.irVersion).toBe(10);
  });

  it('exports symbolic dimensions so a model built at one size runs at another', async () => {
    const g = new Graph();
    const x = g.input('x', [1, 2, 4, 4]);
    const shape = g.op1('Shape', [x]);
    const flat = g.op1('Reshape', [x, g.ints([0, 0, -1])]);
    const back = g.op1('Reshape', [g.op1('Neg', [flat]), shape]);
    g.output(back, 'y');
    const out = await run(
      g,
      { x: new ort.Tensor('float32', new Float32Array(3 * 2 * 5 * 7).fill(2), [3, 2, 5, 7]) },
      {
        x: { 0: 'b', 2: 'h', 3: 'w' },
        y: { 0: 'b', 2: 'h', 3: 'w' },
      },
    );
    expect(out.y.dims).toEqual([3, 2, 5, 7]);
    expect((out.y.data as Float32Array)[0]).toBe(-2);
  });

  it('rejects what cannot work with an error naming the op', () => {
    const g = new Graph();
    const a = g.input('a', [2, 3]);
    const b = g.input('b', [4, 5]);
    expect(() => g.op1('MatMul', [a, b])).toThrow(/MatMul: inner dimensions differ/);
    expect(() => g.op1('Add', [a, b])).toThrow(/Add: cannot broadcast \[2, 3\] with \[4, 5\]/);
    expect(() => g.op1('Reshape', [a, g.ints([4, -1])])).toThrow(/Reshape: cannot reshape/);
    expect(() => g.op1('Reshape', [a, b])).toThrow(/must be a constant/);
    expect(() => g.op1('NoSuchOp', [a])).toThrow(GraphError);
    expect(() => g.op1('Relu', ['missing'])).toThrow(/unknown value 'missing'/);
    expect(() => g.input('a', [1])).toThrow(/defined twice/);
    expect(() => g.initializer('w', new Float32Array(5), [2, 3])).toThrow(/5 values for shape \[2, 3\]/);
    expect(() => new Graph().toModel()).toThrow(/no outputs/);
  });

  it('never hands out a fresh name that is taken', () => {
    const g = new Graph();
    g.input('t_0', [1]);
    g.input('t_1', [1]);
    expect(g.fresh('t')).toBe('t_2');
  });
});

describe('float16 conversion', () => {
  it('round-trips representable values and rounds to nearest even', () => {
    for (const v of [0, 1, -2, 0.5, 65504, -65504, 6.103515625e-5, 5.960464477539063e-8]) {
      expect(float16BitsToFloat32(float32ToFloat16Bits(v))).toBe(v);
    }
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (1.0)
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (upwards)
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });
});
