import { afterAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  degradeLikeGenerator,
  evaluateSegmentation,
  folderJudgeWeights,
  segmentationInferenceModel,
  segmentationParameterCount,
  trainSegmentation,
  worldClassWeights,
  worldSegmentationSample,
  writeSegmentation,
  TINY_SEGMENTATION,
  type SegmentationArchitecture,
  type SegmentationSample,
  type SegmentationSource,
} from './segmentation-stage.js';
import { SegmentationJudge } from './judge.js';
import { Graph, OPSET } from '../onnx/graph.js';
import { importInto } from '../onnx/import.js';
import { InputGradient } from '../training/input-gradient.js';
import { loadSegmentationModel, SalGuidance } from '../pipelines/sal.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { Runtime } from '../runtime/session.js';
import { Rng } from '../tensor/random.js';
import { WORLD_CLASSES } from '../world/classes.js';
import { cleanupTempDirs, makeTempDir, sharedRandomModel } from '../../test/helpers/random-model.js';

const runtime = new Runtime({ intraOpNumThreads: 1 });
afterAll(async () => {
  await runtime.dispose();
  await cleanupTempDirs();
});

/** The ResNet-34 layout cut to one block per stage, a few channels. */
const SMALL: SegmentationArchitecture = {
  imageSize: 32,
  stemChannels: 8,
  stageChannels: [8, 8, 16, 16],
  stageBlocks: [1, 1, 1, 1],
  decoderChannels: [16, 8, 8, 8],
  normGroups: 4,
  classes: WORLD_CLASSES,
};

/** The same 4 world examples in every batch, so a few steps must fit them. */
function fixedSamples(count: number): SegmentationSource {
  const rng = new Rng(3);
  const pool: SegmentationSample[] = Array.from({ length: count }, () => worldSegmentationSample(rng, 32));
  let i = 0;
  return () => pool[i++ % count];
}

describe('tiny segmentation stage', () => {
  it('draws world examples with aligned labels, degrades them within range, weights rare classes up', () => {
    const count = segmentationParameterCount(TINY_SEGMENTATION);
    expect(count).toBeGreaterThan(1_000_000);
    expect(count).toBeLessThan(2_000_000);

    const rng = new Rng(8);
    for (let k = 0; k < 10; k++) {
      const { pixels, labels } = worldSegmentationSample(rng, 64);
      expect(pixels.length).toBe(3 * 64 * 64);
      expect(labels.length).toBe(64 * 64);
      expect(Math.max(...labels)).toBeLessThan(WORLD_CLASSES.length);
      expect(labels.some((v) => v > 0)).toBe(true);
      for (const v of pixels) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    }
    // a step edge stays in range and gets softened
    const edge = new Float32Array(3 * 32 * 32);
    for (let p = 0; p < edge.length; p++) edge[p] = p % 32 < 16 ? -1 : 1;
    const rough = degradeLikeGenerator(new Rng(1), edge.slice(), 32);
    for (const v of rough) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    expect(Math.abs(rough[16 * 32 + 16] - rough[16 * 32 + 15])).toBeLessThan(1.9);

    const w = worldClassWeights(WORLD_CLASSES.length, 48);
    expect(w[0]).toBeLessThan(1);
    for (let k = 1; k < w.length; k++) expect(w[k]).toBeGreaterThan(2 * w[0]);
  });

  it('lowers its loss in a few steps, exports a model SAL can differentiate through, and resumes', async () => {
    const work = await makeTempDir();
    const losses: number[] = [];
    const options = {
      architecture: SMALL,
      batch: 4,
      lr: 5e-3,
      warmupSteps: 2,
      source: fixedSamples(4),
      classWeights: worldClassWeights(WORLD_CLASSES.length, 32),
      checkpointDir: join(work, 'segmentation'),
      checkpointEvery: 10,
    };
    const result = await trainSegmentation({ ...options, steps: 40, onProgress: (p) => losses.push(p.loss) });
    expect(result.step).toBe(40);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    // untrained: about ln 14 = 2.6 per (weighted) pixel
    expect(losses[0]).toBeGreaterThan(1.5);
    expect(mean(losses.slice(-5))).toBeLessThan(0.6 * mean(losses.slice(0, 5)));

    // resuming at or below the checkpoint's step trains nothing and gives the saved weights
    const again = await trainSegmentation({ ...options, steps: 40, resume: true });
    expect(again.step).toBe(40);
    const name = 'encoder.layer3.0.conv1.weight';
    const saved = result.parameters.find((p) => p.name === name)?.data;
    expect(again.parameters.find((p) => p.name === name)?.data).toEqual(saved);

    // export: the SAL contract, dynamic sizes, float16 storage
    const model = segmentationInferenceModel(result.parameters, SMALL);
    expect(model.byteLength).toBeLessThan(3 * segmentationParameterCount(SMALL));
    const dir = join(work, 'model', 'segmentation');
    await writeSegmentation(dir, model, SMALL);
    const seg = await loadSegmentationModel(dir);
    expect(seg.classes).toEqual([...WORLD_CLASSES]);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toMatchObject({ image_size: 32 });
    const session = await ort.InferenceSession.create(model);
    const pixels = new Rng(5).randn(2 * 3 * 48 * 48).map((v) => Math.tanh(v));
    const out = await session.run({ image: new ort.Tensor('float32', pixels, [2, 3, 48, 48]) });
    expect(out.logits.dims).toEqual([2, WORLD_CLASSES.length, 48, 48]);
    await session.release();

    // a fine-tuning run starts from a folder's judge of its own architecture only
    const start = await folderJudgeWeights(dir, SMALL);
    expect(start.find((p) => p.name === name)?.data.length).toBe(saved?.length);
    await expect(folderJudgeWeights(dir)).rejects.toThrow(
      /model.onnx: encoder\.\S+ is of \d+ values, not \d+: another judge architecture/,
    );
    await expect(folderJudgeWeights(join(work, 'nowhere'))).rejects.toThrow(
      /model.onnx is missing: a fine-tuning run starts from the folder's judge; train one first/,
    );

    // every op has a gradient rule: d(mean cat logit)/d(image) through the exported graph
    const g = new Graph({ name: 'through_segmentation', opset: OPSET });
    const image = g.input('image', [1, 3, 32, 32]);
    const logits = importInto(g, seg.model, { bind: { image }, prefix: 'seg', inputShapes: {} }).outputs
      .logits;
    const cat = g.op1('Slice', [logits, g.ints([5]), g.ints([6]), g.ints([1])]);
    const value = g.op1('ReduceMean', [cat], { keepdims: 0 });
    const guide = await InputGradient.create({ graph: g, value, wrt: image });
    const x = new Rng(6).randn(3 * 32 * 32).map((v) => Math.tanh(v));
    const { value: v0, gradient } = await guide.run({ image: new ort.Tensor('float32', x, [1, 3, 32, 32]) });
    expect(gradient.length).toBe(x.length);
    expect(gradient.every(Number.isFinite)).toBe(true);
    let norm = 0;
    for (const d of gradient) norm += d * d;
    expect(norm).toBeGreaterThan(0);
    // a small step along the gradient raises the value as predicted to first order
    const h = 1e-2 / Math.sqrt(norm);
    const { value: v1 } = await guide.run({
      image: new ort.Tensor(
        'float32',
        x.map((xi, i) => xi + h * gradient[i]),
        [1, 3, 32, 32],
      ),
    });
    expect(v1 - v0).toBeGreaterThan(0);
    expect(Math.abs((v1 - v0) / (h * norm) - 1)).toBeLessThan(0.2);
    await guide.dispose();

    // SAL runs through it: latent -> tiny random VAE decoder (64x64) -> this model -> BCE
    const sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
    const mask = new Float32Array(64).fill(0);
    for (let p = 0; p < 32; p++) mask[p] = 1;
    const sal = await SalGuidance.create(sd, seg, {
      width: 64,
      height: 64,
      subjects: [{ className: 'cat', mask }],
    });
    const step = await sal.gradient(new Rng(7).randn(4 * 64));
    expect(Number.isFinite(step.loss)).toBe(true);
    expect(step.gradient.some((d) => d !== 0)).toBe(true);
    await sal.dispose();

    // the held-out evaluation runs end to end (the figures of a 40-step model mean nothing)
    const judge = await SegmentationJudge.create(model, WORLD_CLASSES, 32);
    const e = await evaluateSegmentation(judge, { count: 4, perClass: 1, chunk: 4 });
    await judge.release();
    expect(e.images).toBe(4);
    expect(e.singles).toBe(13);
    for (const f of [
      e.pixelAcc,
      e.mIoU,
      e.subjectClassAcc,
      e.degraded.pixelAcc,
      e.colorAgreement,
      e.silhouetteIoU,
    ]) {
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThanOrEqual(1);
    }
    expect(Object.keys(e.perClassIoU)).toContain('background');
  }, 120_000);
});
