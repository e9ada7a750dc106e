import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModelFile } from '../onnx/external-data.js';
import { importModel } from '../onnx/import.js';
import type { Graph } from '../onnx/graph.js';
import { injectLora, loadLora, mergeLora, saveLora } from './lora.js';
import { TrainStep } from './train-step.js';
import { AdamW } from './optimizers.js';
import { mseLoss } from './losses.js';
import { checkGradients } from '../autodiff/gradcheck.js';
import { Rng } from '../tensor/random.js';
import { cleanupTempDirs, makeTempDir, sharedRandomModel } from '../../test/helpers/random-model.js';

afterAll(cleanupTempDirs);

const SHAPES = { sample: [1, 4, 8, 8], timestep: [1], encoder_hidden_states: [1, 16, 32] };
const TARGETS = /attn[12]\.to_(q|k|v|out\.0)\.weight$|conv_in\.weight$/;

async function unetGraph(): Promise<Graph> {
  const model = await readModelFile(join(await sharedRandomModel(), 'unet', 'model.onnx'));
  return importModel(model, { inputShapes: SHAPES });
}

function inputs(seed = 1): Record<string, ort.Tensor> {
  const rng = new Rng(seed);
  return {
    sample: new ort.Tensor('float32', rng.randn(4 * 64), SHAPES.sample),
    timestep: new ort.Tensor('int64', BigInt64Array.of(500n), [1]),
    encoder_hidden_states: new ort.Tensor('float32', rng.randn(16 * 32), SHAPES.encoder_hidden_states),
  };
}

describe('LoRA on the random SD UNet', () => {
  it('injects adapters into attention projections and conv_in; the graph computes the same until trained', async () => {
    const g = await unetGraph();
    g.output('out_sample', 'plain');
    const base = await (await ort.InferenceSession.create(g.toBytes())).run(inputs());
    const h = await unetGraph();
    const lora = injectLora(h, { rank: 2, targets: TARGETS });
    expect(lora.adapters.map((a) => a.kind).sort()).toContain('conv');
    expect(lora.adapters.filter((a) => a.kind === 'matmul').length).toBeGreaterThanOrEqual(8);
    const session = await ort.InferenceSession.create(h.toBytes());
    const feeds = { ...inputs() };
    for (const [name, data] of lora.parameters) feeds[name] = new ort.Tensor('float32', data, h.shape(name));
    const out = await session.run(feeds);
    const a = base.out_sample.data as Float32Array;
    const b = out.out_sample.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
  });

  it('passes a finite-difference check of the adapter gradients', async () => {
    const g = await unetGraph();
    const lora = injectLora(g, { rank: 2, targets: /attn1\.to_q\.weight$|conv_in\.weight$/ });
    const rng = new Rng(4);
    // B starts at zero, which would hide A's gradient: give both random values
    for (const data of lora.parameters.values()) data.set(rng.randn(data.length).map((v) => v * 0.3));
    const target = g.input('target', g.shape('out_sample'));
    const loss = mseLoss(g, 'out_sample', target, { reduction: 'sum' });
    const names = [...lora.parameters.keys()].slice(0, 4);
    const feeds: Record<string, Float32Array | BigInt64Array> = {
      sample: inputs().sample.data as Float32Array,
      timestep: BigInt64Array.of(500n),
      encoder_hidden_states: inputs().encoder_hidden_states.data as Float32Array,
      target: rng.randn(4 * 64),
    };
    for (const [name, data] of lora.parameters) feeds[name] = data;
    const r = await checkGradients(g, loss, names, feeds, { entries: 4 });
    console.log(
      `LoRA gradient check: max error ${r.maxError.toExponential(2)}, directional ${r.directionalError.toExponential(2)}`,
    );
    expect(r.maxError).toBeLessThan(5e-3);
    expect(r.directionalError).toBeLessThan(5e-3);
  });

  it('trains only the adapters, and save -> load -> merge reproduces the adapted outputs (1e-5)', async () => {
    const g = await unetGraph();
    const baseWeights = new Map([...g.initializers].map(([k, v]) => [k, (v.data as Float32Array).slice()]));
    const lora = injectLora(g, { rank: 4, alpha: 8, targets: TARGETS, seed: 3 });
    const target = g.input('target', g.shape('out_sample'));
    const loss = mseLoss(g, 'out_sample', target, { reduction: 'mean' });
    const step = await TrainStep.create({
      graph: g,
      loss,
      parameters: lora.parameters,
      extraOutputs: ['out_sample'],
    });
    expect(step.parameters.every((p) => p.name.includes('.lora_'))).toBe(true);
    const optimizer = new AdamW({ lr: 1e-2, weightDecay: 0 });
    const batch = { ...inputs(), target: new ort.Tensor('float32', new Rng(9).randn(256), SHAPES.sample) };
    const first = (await step.run(batch)).loss;
    let last = first;
    for (let i = 0; i < 10; i++) {
      const { loss: l, gradients } = await step.run(batch);
      optimizer.step(step.parameters, gradients, 1e-2);
      last = l;
    }
    expect(last).toBeLessThan(first);
    // the frozen weights were never touched
    for (const [name, init] of g.initializers) {
      const before = baseWeights.get(name);
      if (before)
        expect(Buffer.from((init.data as Float32Array).buffer).equals(Buffer.from(before.buffer))).toBe(true);
    }
    const adapted = (await step.run(batch)).extras.out_sample.data as Float32Array;

    const file = join(await makeTempDir(), 'cast.safetensors');
    await saveLora(file, lora.adapters, step.parameters);
    const loaded = await loadLora(file);
    expect(loaded).toMatchObject({ rank: 4, alpha: 8 });
    const merged = await unetGraph();
    expect(mergeLora(merged, loaded).length).toBe(lora.adapters.length);
    merged.output('out_sample', 'merged');
    const out = await (await ort.InferenceSession.create(merged.toBytes())).run(inputs());
    const m = out.merged.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < m.length; i++) maxDiff = Math.max(maxDiff, Math.abs(m[i] - adapted[i]));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('says when no weight matches and when a file holds no LoRA weights', async () => {
    const g = await unetGraph();
    expect(() => injectLora(g, { rank: 2, targets: /nothing_like_this/ })).toThrow(
      /no MatMul, Gemm or Conv weight matches/,
    );
    expect(() => injectLora(g, { rank: 0, targets: TARGETS })).toThrow(/rank must be a positive integer/);
  });
});
