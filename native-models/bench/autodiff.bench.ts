/**
 * The training engine against the feasibility prototype, side by side in one run: train-step
 * time and images/s of the ~2M-parameter toy UNet at 32x32 (batch 8 and 16), inference time of
 * the same network with baked weights, the train/inference ratio, and a LoRA step.
 *
 * The prototype (../shared/prototypes/ortgrad, plain JS) runs in a child process with this
 * project's node_modules (onnx-proto is a dev dependency for exactly this); where that folder
 * is absent its figures are left out with a message.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { buildToyUnet } from '../training/toy-unet.js';
import { ToyDenoisingData } from '../training/toy-data.js';
import { TrainStep } from '../training/train-step.js';
import { injectLora } from '../training/lora.js';
import { mseLoss } from '../training/losses.js';
import { Rng } from '../tensor/random.js';
import { median, type BenchSuite, type Figure } from './figures.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const PROTOTYPE = resolve(REPO, '..', 'shared', 'prototypes', 'ortgrad');
const RUNS = 7;

async function timeIt(fn: () => Promise<unknown>, runs = RUNS): Promise<number> {
  await fn();
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return median(times);
}

async function engineTrainMs(batch: number): Promise<number> {
  const net = buildToyUnet({ batch, size: 32 });
  const g = net.builder.g;
  const loss = mseLoss(g, net.prediction, g.input('target', g.shape(net.prediction)), { reduction: 'mean' });
  const step = await TrainStep.create({ graph: g, loss, parameters: net.builder.values });
  const data = new ToyDenoisingData(batch, 32).next(new Rng(1));
  const ms = await timeIt(() => step.run(data));
  await step.dispose();
  return ms;
}

/** Inference of the same network: weights baked (what generation uses) or fed as inputs (the train graph's form). */
async function engineInferMs(batch: number, weights: 'baked' | 'inputs'): Promise<number> {
  const net = buildToyUnet({ batch, size: 32, mode: weights === 'baked' ? 'initializer' : 'input' });
  net.builder.g.output(net.prediction, 'prediction');
  const session = await ort.InferenceSession.create(net.builder.g.toBytes(), {
    graphOptimizationLevel: 'all',
  });
  const { sample, timestep } = new ToyDenoisingData(batch, 32).next(new Rng(1));
  const feeds: Record<string, ort.Tensor> = { sample, timestep };
  for (const [name, data] of net.builder.values)
    feeds[name] = new ort.Tensor('float32', data, net.builder.g.shape(name));
  const ms = await timeIt(() => session.run(feeds));
  await session.release();
  return ms;
}

/** LoRA rank 8 on the attention projections and the four up-path convs of the baked toy UNet. */
async function engineLoraMs(batch: number): Promise<number> {
  const net = buildToyUnet({ batch, size: 32, mode: 'initializer' });
  const g = net.builder.g;
  const lora = injectLora(g, {
    rank: 8,
    targets: /attentions\.0\.to_(q|k|v|out\.0)\.weight$|up_blocks\.[01]\.(conv1|conv2)\.weight$/,
  });
  const loss = mseLoss(g, net.prediction, g.input('target', g.shape(net.prediction)), { reduction: 'mean' });
  const step = await TrainStep.create({ graph: g, loss, parameters: lora.parameters });
  const data = new ToyDenoisingData(batch, 32).next(new Rng(1));
  const ms = await timeIt(() => step.run(data));
  await step.dispose();
  return ms;
}

const DRIVER = `'use strict';
const { buildUNet } = require(process.env.PROTO_DIR + '/layers.js');
const { session, tensor, randn } = require(process.env.PROTO_DIR + '/ortutil.js');
(async () => {
  const out = {};
  for (const B of [8, 16]) {
    const { g, P } = buildUNet({ B, H: 32, cfg: { ch: 64, groups: 8, T: 1000, E: 128, heads: 4 } });
    const s = await session(g.toModel(), { level: 'all' });
    const feeds = { x: tensor(randn([B, 3, 32, 32]), [B, 3, 32, 32]), t: tensor(BigInt64Array.from({ length: B }, (_, i) => BigInt((i * 97) % 1000)), [B], 'int64'), target: tensor(randn([B, 3, 32, 32]), [B, 3, 32, 32]) };
    for (const p of P.list) feeds[p.name] = tensor(p.data, p.shape);
    await s.run(feeds); await s.run(feeds);
    const ts = [];
    for (let i = 0; i < ${RUNS}; i++) { const t0 = performance.now(); await s.run(feeds); ts.push(performance.now() - t0); }
    ts.sort((a, b) => a - b);
    out['b' + B] = ts[ts.length >> 1];
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

async function prototypeTrainMs(): Promise<{ b8: number; b16: number } | undefined> {
  if (!existsSync(join(PROTOTYPE, 'layers.js'))) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'msp-proto-'));
  try {
    const driver = join(dir, 'driver.cjs');
    await writeFile(driver, DRIVER);
    const { stdout } = await promisify(execFile)(process.execPath, [driver], {
      env: { ...process.env, PROTO_DIR: PROTOTYPE, NODE_PATH: join(REPO, 'node_modules') },
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout) as { b8: number; b16: number };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const autodiffSuite: BenchSuite = {
  name: 'autodiff',
  async run(log) {
    const net = buildToyUnet({ batch: 1, size: 32 });
    log(`autodiff: toy UNet with ${net.parameterCount} parameters`);
    // interleave engine and prototype so machine noise hits both alike
    const train8 = await engineTrainMs(8);
    const train16 = await engineTrainMs(16);
    const proto = await prototypeTrainMs();
    const infer8 = await engineInferMs(8, 'baked');
    const inferInputs8 = await engineInferMs(8, 'inputs');
    const lora16 = await engineLoraMs(16);
    if (!proto) log(`autodiff: prototype not found at ${PROTOTYPE}; its figures are left out`);
    else
      log(
        `autodiff: prototype ${proto.b8.toFixed(1)} / ${proto.b16.toFixed(1)} ms, engine ${train8.toFixed(1)} / ${train16.toFixed(1)} ms (b8 / b16)`,
      );
    const figures: Figure[] = [
      {
        name: 'autodiff.train_ms_32_b8',
        value: train8,
        unit: 'ms',
        label: 'train step, toy UNet 32x32, batch 8',
      },
      {
        name: 'autodiff.train_ms_32_b16',
        value: train16,
        unit: 'ms',
        label: 'train step, toy UNet 32x32, batch 16',
      },
      {
        name: 'autodiff.train_images_per_s_32_b16',
        value: (16 * 1000) / train16,
        unit: 'img/s',
        label: 'training throughput, batch 16',
      },
      {
        name: 'autodiff.infer_ms_32_b8',
        value: infer8,
        unit: 'ms',
        label: 'inference, baked weights, batch 8',
      },
      {
        name: 'autodiff.train_infer_ratio_32_b8',
        value: train8 / infer8,
        unit: 'x',
        label: 'train step / inference (baked weights), batch 8',
      },
      {
        name: 'autodiff.infer_inputs_ms_32_b8',
        value: inferInputs8,
        unit: 'ms',
        label: 'inference, weights as inputs, batch 8',
      },
      {
        name: 'autodiff.train_infer_inputs_ratio_32_b8',
        value: train8 / inferInputs8,
        unit: 'x',
        label: "train step / inference with weights as inputs (the prototype's 4.3)",
      },
      {
        name: 'autodiff.lora_ms_32_b16',
        value: lora16,
        unit: 'ms',
        label: 'LoRA r8 step (attention + 4 convs), batch 16',
      },
    ];
    if (proto) {
      figures.push(
        {
          name: 'autodiff.prototype_train_ms_32_b8',
          value: proto.b8,
          unit: 'ms',
          label: 'prototype train step, batch 8',
        },
        {
          name: 'autodiff.prototype_train_ms_32_b16',
          value: proto.b16,
          unit: 'ms',
          label: 'prototype train step, batch 16',
        },
        {
          name: 'autodiff.speedup_vs_prototype_32_b8',
          value: proto.b8 / train8,
          unit: 'x',
          label: 'prototype time / engine time, batch 8',
        },
        {
          name: 'autodiff.speedup_vs_prototype_32_b16',
          value: proto.b16 / train16,
          unit: 'x',
          label: 'prototype time / engine time, batch 16',
        },
      );
    }
    return figures;
  },
};
