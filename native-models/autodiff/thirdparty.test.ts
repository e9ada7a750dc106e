/**
 * Exported third-party graphs: imported at fixed sizes, then the gradient of a weighted sum of
 * their output with respect to their input and to a weight is checked by finite differences.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readModelFile } from '../onnx/external-data.js';
import { importModel } from '../onnx/import.js';
import { numel } from '../onnx/dtype.js';
import { Rng } from '../tensor/random.js';
import { checkGradients, weightedSum } from './gradcheck.js';
import { gradients } from './index.js';
import { Graph, OPSET } from '../onnx/graph.js';
import { sharedData } from '../../test/helpers/shared-data.js';

const DATA = sharedData('onnx-thirdparty');
const present = existsSync(DATA);
if (!present) console.warn(`skipping third-party gradient tests: ${DATA} is absent`);

interface Case {
  file: string;
  shapes: Record<string, number[]>;
  /** Which weight (initializer) to differentiate: the first one whose name matches. */
  weight: RegExp;
  /** Differentiate the (float) graph input too. */
  input: boolean;
  tolerance: number;
  /**
   * Per-entry tolerance where float32 finite differences cannot do better: one weight of a deep
   * ReLU detector moves every position at once, so a step large enough to rise above float32
   * rounding crosses kinks. The directional check (all inputs at once) stays at `tolerance`.
   */
  entryTolerance?: number;
}

const CASES: Case[] = [
  { file: 'mnist.onnx', shapes: {}, weight: /Parameter5$/, input: true, tolerance: 5e-3 },
  {
    file: 'pytorch_super_resolution.onnx',
    shapes: { input: [1, 1, 16, 16] },
    weight: /conv4\.weight|.*/,
    input: true,
    tolerance: 5e-3,
  },
  {
    file: 'tiny_distilbert_cls.onnx',
    shapes: {},
    weight: /^pre_classifier\.weight$/,
    input: false,
    tolerance: 5e-3,
  },
  { file: 'Ultraface_version-RFB-320.onnx', shapes: {}, weight: /.*/, input: true, tolerance: 5e-3 },
  { file: 'FastestDet.onnx', shapes: {}, weight: /.*/, input: true, tolerance: 5e-3, entryTolerance: 5e-2 },
];

describe.skipIf(!present)('gradients through exported third-party graphs', () => {
  for (const c of CASES) {
    it(`${c.file}: d(output)/d(input) and d(output)/d(weight) match finite differences`, async () => {
      const model = await readModelFile(join(DATA, c.file));
      const inits = new Set(model.graph.initializer.map((t) => t.name));
      const shapes: Record<string, number[]> = { ...c.shapes };
      for (const v of model.graph.input) {
        if (inits.has(v.name) || shapes[v.name]) continue;
        shapes[v.name] = (v.type?.tensorType?.shape?.dim ?? []).map((d, i) =>
          d.dimValue && d.dimValue > 0 ? d.dimValue : i === 0 ? 1 : 8,
        );
      }
      const g = importModel(model, { inputShapes: shapes, opset: OPSET });
      g.outputs.length = 0;
      const output = model.graph.output[0].name;
      const loss = weightedSum(g, output);
      // a float weight that the output depends on
      const used = new Set(g.nodes.flatMap((n) => n.inputs));
      const weight = [...g.initializers.values()].find(
        (t) => t.dtype === 'float32' && t.data.length > 1 && used.has(t.name) && c.weight.test(t.name),
      );
      if (!weight) throw new Error(`${c.file}: no float weight matches ${String(c.weight)}`);
      g.promoteToInput(weight.name);
      const rng = new Rng(1);
      const feeds: Record<string, Float32Array | BigInt64Array> = {
        [weight.name]: weight.data as Float32Array,
      };
      const wrt = [weight.name];
      for (const [name, shape] of Object.entries(shapes)) {
        if (g.dtype(name) === 'int64')
          feeds[name] = BigInt64Array.from({ length: numel(shape) }, (_, i) => BigInt(1 + (i % 5)));
        else {
          feeds[name] = rng.randn(numel(shape));
          if (c.input) wrt.push(name);
        }
      }
      // a small step: ReLU and MaxPool kinks are near for single-pixel perturbations
      const r = await checkGradients(g, loss, wrt, feeds, { entries: 6, step: 2e-3 });
      console.log(
        `${c.file}: max error ${r.maxError.toExponential(2)}, directional ${r.directionalError.toExponential(2)} (wrt ${wrt.join(', ')})`,
      );
      expect(r.maxAbsGradient).toBeGreaterThan(1e-4);
      expect(r.maxError).toBeLessThan(c.entryTolerance ?? c.tolerance);
      expect(r.directionalError).toBeLessThan(c.tolerance);
    });
  }
});

describe('gradients of an op without a rule', () => {
  it('fail with an error naming the op and the node', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const y = g.op1('ArgMax', [x], { axis: 1, keepdims: 1 }, 'pick_best');
    const z = g.op1('Mul', [x, g.op1('Cast', [y], { to: 1 })]);
    const loss = g.op1('ReduceSum', [g.op1('Round', [z], {}, 'round_it')], { keepdims: 0 });
    expect(() => gradients(g, loss, [x])).toThrow(/no gradient rule for op 'Round' \(node 'round_it'\)/);
  });
});
