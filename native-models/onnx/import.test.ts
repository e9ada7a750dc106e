import { sharedData } from '../../test/helpers/shared-data.js';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { importInto, importModel } from './import.js';
import { readModelFile } from './external-data.js';
import { Rng } from '../tensor/random.js';
import { numel } from './dtype.js';

const DATA = sharedData('onnx-thirdparty');
const present = existsSync(DATA);
if (!present) console.warn(`skipping third-party import tests: ${DATA} is absent`);

/** Third-party graphs and the sizes their symbolic inputs get. */
const MODELS: [string, Record<string, number[]>][] = [
  ['mnist.onnx', {}],
  ['pytorch_super_resolution.onnx', {}],
  ['Ultraface_version-RFB-320.onnx', {}],
  ['FastestDet.onnx', {}],
  ['tiny_distilbert_cls.onnx', {}],
];

function feedsFor(
  session: ort.InferenceSession,
  shapes: Record<string, readonly number[]>,
): Record<string, ort.Tensor> {
  const rng = new Rng(5);
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) {
    const shape = shapes[name];
    const meta = session.inputMetadata.find((m) => m.name === name);
    const type = meta && meta.isTensor ? meta.type : 'float32';
    feeds[name] =
      type === 'int64'
        ? new ort.Tensor(
            'int64',
            BigInt64Array.from({ length: numel(shape) }, (_, i) => BigInt(i % 7)),
            shape,
          )
        : new ort.Tensor('float32', rng.randn(numel(shape)), shape);
  }
  return feeds;
}

describe.skipIf(!present)('importModel (third-party graphs)', () => {
  for (const [file, given] of MODELS) {
    it(`imports ${file} at fixed sizes, re-exports it and onnxruntime computes the same`, async () => {
      const model = await readModelFile(join(DATA, file));
      // symbolic dims not given take 1 (batch) or 16 (sequence)
      const inputShapes: Record<string, number[]> = { ...given };
      const inits = new Set(model.graph.initializer.map((t) => t.name));
      for (const v of model.graph.input) {
        if (inits.has(v.name) || inputShapes[v.name]) continue;
        inputShapes[v.name] = (v.type?.tensorType?.shape?.dim ?? []).map((d, i) =>
          d.dimValue && d.dimValue > 0 ? d.dimValue : i === 0 ? 1 : 16,
        );
      }
      const g = importModel(model, { inputShapes });
      expect(g.nodes.length).toBeGreaterThan(0);
      const original = await ort.InferenceSession.create(join(DATA, file));
      const reexported = await ort.InferenceSession.create(g.toBytes());
      const feeds = feedsFor(original, inputShapes);
      const a = await original.run(feeds);
      const b = await reexported.run(feeds);
      for (const name of original.outputNames) {
        expect(b[name].dims, name).toEqual(a[name].dims);
        // inferred static shapes agree with what onnxruntime computed
        expect(g.shape(name), name).toEqual([...a[name].dims]);
        const x = a[name].data as Float32Array;
        const y = b[name].data as Float32Array;
        let diff = 0;
        for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(Number(x[i]) - Number(y[i])));
        expect(diff, name).toBeLessThan(1e-4);
      }
    });
  }
});

describe('importModel', () => {
  it('asks for the size of a symbolic input', async () => {
    const { Graph } = await import('./graph.js');
    const g = new Graph();
    g.output(g.op1('Relu', [g.input('x', [1, 3])]), 'y');
    const model = g.toModel({ dynamicAxes: { x: { 0: 'batch' }, y: { 0: 'batch' } } });
    expect(() => importModel(model)).toThrow(
      /input 'x' has a symbolic dimension 0 \('batch'\); give its size in inputShapes/,
    );
    expect(importModel(model, { inputShapes: { x: [4, 3] } }).shape('y')).toEqual([4, 3]);
  });

  it('names the node and op it cannot infer', async () => {
    const { Graph } = await import('./graph.js');
    const g = new Graph();
    g.output(g.op1('Relu', [g.input('x', [1, 3])]), 'y');
    const model = g.toModel();
    model.graph.node[0].opType = 'FancyOp';
    expect(() => importModel(model)).toThrow(
      /node 0 'Relu_0' \(FancyOp\): FancyOp: no shape inference for op 'FancyOp'/,
    );
  });
});

describe.skipIf(!present)('importInto (composition at the project opset)', () => {
  for (const [file] of MODELS) {
    it(`appends ${file} to an opset-21 graph under a prefix and computes the same`, async () => {
      const { Graph } = await import('./graph.js');
      const model = await readModelFile(join(DATA, file));
      const inits = new Set(model.graph.initializer.map((t) => t.name));
      const inputShapes: Record<string, number[]> = {};
      for (const v of model.graph.input) {
        if (inits.has(v.name)) continue;
        inputShapes[v.name] = (v.type?.tensorType?.shape?.dim ?? []).map((d, i) =>
          d.dimValue && d.dimValue > 0 ? d.dimValue : i === 0 ? 1 : 16,
        );
      }
      const g = new Graph({ name: 'composed' });
      const first = Object.keys(inputShapes)[0];
      const bound = g.input(
        'outer_input',
        inputShapes[first],
        model.graph.input.find((v) => v.name === first)?.type?.tensorType?.elemType === 7
          ? 'int64'
          : 'float32',
      );
      const { outputs, inputs } = importInto(g, model, {
        prefix: 'm',
        bind: { [first]: bound },
        inputShapes,
      });
      for (const [name, value] of Object.entries(outputs)) g.output(value, `out_${name}`);
      const composed = await ort.InferenceSession.create(g.toBytes());
      const original = await ort.InferenceSession.create(join(DATA, file));
      const feeds = feedsFor(original, inputShapes);
      const composedFeeds: Record<string, ort.Tensor> = { outer_input: feeds[first] };
      for (const [name, value] of Object.entries(inputs)) composedFeeds[value] = feeds[name];
      const a = await original.run(feeds);
      const b = await composed.run(composedFeeds);
      for (const name of original.outputNames) {
        const x = a[name].data as Float32Array;
        const y = b[`out_${name}`].data as Float32Array;
        let diff = 0;
        for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(Number(x[i]) - Number(y[i])));
        expect(diff, name).toBeLessThan(1e-4);
      }
    });
  }
});
