import { describe, expect, it } from 'vitest';
import { Graph } from '../../onnx/graph.js';
import { Rng } from '../../tensor/random.js';
import { checkGradients, weightedSum } from '../gradcheck.js';
import { gradients } from '../index.js';

const f64 = (n: number, seed: number) => Float64Array.from(new Rng(seed).randn(n));

/** y = op(a, b) with broadcasting; checks the gradients of both inputs in float64. */
async function checkBinary(op: string, sa: number[], sb: number[], positiveB = false) {
  const g = new Graph({ floatType: 'float64' });
  const a = g.input('a', sa, 'float64');
  const b = g.input('b', sb, 'float64');
  const loss = weightedSum(g, g.op1(op, [a, b]));
  const bv = f64(
    sb.reduce((x, y) => x * y, 1),
    2,
  ).map((v) => (positiveB ? 1 + Math.abs(v) : v));
  return checkGradients(g, loss, [a, b], {
    a: f64(
      sa.reduce((x, y) => x * y, 1),
      1,
    ),
    b: bv,
  });
}

describe('elementwise gradient rules (float64 finite differences)', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    it(`${op} with broadcasting on both sides`, async () => {
      const r = await checkBinary(op, [2, 3, 4], [3, 1], op === 'Div');
      expect(r.maxError).toBeLessThan(1e-7);
      expect(r.directionalError).toBeLessThan(1e-7);
    });
  }

  it('Neg and Identity, and a value used twice gets the sum of its gradients', async () => {
    const g = new Graph({ floatType: 'float64' });
    const x = g.input('x', [5], 'float64');
    const y = g.op1('Mul', [g.op1('Neg', [x]), g.op1('Identity', [x])]); // -x^2: gradient -2x
    const loss = weightedSum(g, y);
    const r = await checkGradients(g, loss, [x], { x: f64(5, 4) });
    expect(r.maxError).toBeLessThan(1e-7);
  });

  it('refuses a loss that is not a scalar and an integer tensor to differentiate', () => {
    const g = new Graph();
    const x = g.input('x', [3]);
    const i = g.input('i', [3], 'int64');
    expect(() => gradients(g, x, [x])).toThrow(/the loss 'x' must be a scalar, but has shape \[3\]/);
    const loss = g.op1('ReduceSum', [x], { keepdims: 0 });
    expect(() => gradients(g, loss, [i])).toThrow(
      /cannot differentiate with respect to 'i': it is a int64 tensor/,
    );
  });

  it('names the op and node without a rule', () => {
    const g = new Graph();
    const x = g.input('x', [3]);
    const loss = g.op1('ReduceSum', [g.op1('Floor', [x], {}, 'my_floor')], { keepdims: 0 });
    expect(() => gradients(g, loss, [x])).toThrow(/no gradient rule for op 'Floor' \(node 'my_floor'\)/);
  });
});
