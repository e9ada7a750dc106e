import { afterAll, describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildToyUnet } from './toy-unet.js';
import { ToyDenoisingData } from './toy-data.js';
import { TrainStep } from './train-step.js';
import { bakeParameters, Trainer, TrainingError, type TrainerOptions } from './trainer.js';
import { AdamW, constantWithWarmup, cosineWithWarmup } from './optimizers.js';
import { mseLoss } from './losses.js';
import { Rng } from '../tensor/random.js';
import { cleanupTempDirs, makeTempDir } from '../../test/helpers/random-model.js';

afterAll(cleanupTempDirs);

const SMALL = { batch: 8, size: 16, channels: 16, groups: 4, heads: 2, embedding: 32 } as const;

async function toyStep(seed = 1) {
  const net = buildToyUnet({ ...SMALL, seed, mode: 'input' });
  const g = net.builder.g;
  const target = g.input('target', g.shape(net.prediction));
  const loss = mseLoss(g, net.prediction, target, { reduction: 'mean' });
  return TrainStep.create({
    graph: g,
    loss,
    parameters: net.builder.values,
    sessionOptions: { intraOpNumThreads: 1 },
  });
}

function options(step: TrainStep, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    model: step,
    data: new ToyDenoisingData(SMALL.batch, SMALL.size),
    optimizer: new AdamW({ lr: 2e-3, weightDecay: 0 }),
    learningRate: constantWithWarmup({ lr: 2e-3, warmupSteps: 10 }),
    maxGradNorm: 1,
    seed: 7,
    ...extra,
  };
}

async function validationLoss(step: TrainStep): Promise<number> {
  const data = new ToyDenoisingData(SMALL.batch, SMALL.size);
  const rng = new Rng(12345);
  let total = 0;
  for (let i = 0; i < 4; i++) total += (await step.run(data.next(rng))).loss;
  return total / 4;
}

describe('Trainer', () => {
  it('trains the toy UNet on the denoising task: validation MSE falls from ~1 to below 0.35 in 150 steps', async () => {
    const step = await toyStep();
    const before = await validationLoss(step);
    const trainer = await Trainer.create(
      options(step, {
        learningRate: cosineWithWarmup({ lr: 3e-3, warmupSteps: 10, totalSteps: 150, minLr: 3e-4 }),
      }),
    );
    const losses: number[] = [];
    await trainer.train(150, { onProgress: (p) => losses.push(p.loss) });
    const after = await validationLoss(step);
    console.log(
      `toy denoising: validation MSE ${before.toFixed(3)} -> ${after.toFixed(3)} (150 steps, batch 8, 16x16)`,
    );
    expect(before).toBeGreaterThan(0.8);
    expect(after).toBeLessThan(0.35);
    expect(losses).toHaveLength(150);
  });

  it('resuming from a checkpoint gives the same weights as an uninterrupted run', async () => {
    const dir = await makeTempDir();
    const straight = await toyStep();
    await (await Trainer.create(options(straight, { emaDecay: 0.9 }))).train(12);

    const first = await toyStep();
    const a = await Trainer.create(options(first, { emaDecay: 0.9, checkpointDir: dir, checkpointEvery: 6 }));
    await a.train(6);
    const second = await toyStep(99); // different initial weights: the checkpoint must overwrite them
    const b = await Trainer.create(options(second, { emaDecay: 0.9, checkpointDir: dir }), { resume: true });
    expect(b.step).toBe(6);
    await b.train(12);
    let maxDiff = 0;
    straight.parameters.forEach((p, i) => {
      const q = second.parameters[i].data;
      for (let k = 0; k < p.data.length; k++) maxDiff = Math.max(maxDiff, Math.abs(p.data[k] - q[k]));
    });
    expect(maxDiff).toBeLessThan(1e-6);
    expect(JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8'))).toEqual({
      step: 12,
      checkpoint: 'step-000012',
    });
  });

  it('a fresh run in a folder of a longer earlier run keeps its own checkpoints, and resumes from them', async () => {
    const dir = await makeTempDir();
    await (
      await Trainer.create(options(await toyStep(), { checkpointDir: dir, checkpointEvery: 4 }))
    ).train(12);
    expect((await readdir(dir)).filter((n) => n.startsWith('step-')).sort()).toEqual([
      'step-000008',
      'step-000012',
    ]);
    // a new run (no resume) in the same folder: the earlier run's later checkpoints must not win
    const fresh = await Trainer.create(options(await toyStep(7), { checkpointDir: dir, checkpointEvery: 2 }));
    await fresh.train(4);
    expect((await readdir(dir)).filter((n) => n.startsWith('step-')).sort()).toEqual([
      'step-000002',
      'step-000004',
    ]);
    const resumed = await Trainer.create(options(await toyStep(99), { checkpointDir: dir }), {
      resume: true,
    });
    expect(resumed.step).toBe(4);
  });

  it('stops on a NaN loss with a clear error and keeps the last good checkpoint', async () => {
    const dir = await makeTempDir();
    const step = await toyStep();
    const trainer = await Trainer.create(
      options(step, { checkpointDir: dir, checkpointEvery: 2, maxGradNorm: undefined }),
    );
    await trainer.train(2);
    // poison the weights: the next loss is NaN
    step.parameters.find((p) => p.name === 'conv_in.weight')!.data.fill(NaN);
    await expect(trainer.train(4)).rejects.toThrow(TrainingError);
    await expect(trainer.train(4)).rejects.toThrow(
      /diverged at step 3: the loss is NaN; the last good checkpoint \(step 2\) is kept/,
    );
    expect(JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')).step).toBe(2);
    expect((await readdir(dir)).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('is cancelled through an AbortSignal and saves where it stopped', async () => {
    const dir = await makeTempDir();
    const step = await toyStep();
    const controller = new AbortController();
    const trainer = await Trainer.create(options(step, { checkpointDir: dir }));
    const result = await trainer.train(50, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 3) controller.abort();
      },
    });
    expect(result).toMatchObject({ step: 3, stoppedBy: 'cancelled' });
    expect(JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')).step).toBe(3);
  });

  it('exports trained weights baked into an inference model that computes the same prediction', async () => {
    const step = await toyStep();
    await (await Trainer.create(options(step))).train(3);
    const inference = buildToyUnet({ ...SMALL, mode: 'initializer' });
    const g = inference.builder.g;
    bakeParameters(g, step.parameters);
    g.output(inference.prediction, 'prediction');
    const session = await ort.InferenceSession.create(g.toBytes());
    const batch = new ToyDenoisingData(SMALL.batch, SMALL.size).next(new Rng(3));
    const out = await session.run({ sample: batch.sample, timestep: batch.timestep });
    // the training graph's loss on the same batch equals the MSE of the exported prediction
    const pred = out.prediction.data as Float32Array;
    const target = batch.target.data as Float32Array;
    let mse = 0;
    for (let i = 0; i < pred.length; i++) mse += (pred[i] - target[i]) ** 2;
    mse /= pred.length;
    expect(Math.abs(mse - (await step.run(batch)).loss)).toBeLessThan(1e-5);
  });
});
