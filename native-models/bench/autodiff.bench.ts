/**
 * The training engine against the feasibility prototype, side by side in one run: train-step
 * time and images/s of the ~2M-parameter toy UNet at 32x32 (batch 8 and 16), inference time of
 * the same network, the train/inference ratio, and a LoRA step.
 *
 * The train/inference ratio of the acceptance criterion (<= 3.5; the prototype's FINDINGS.md
 * reports 4.3 = 137 ms / 32 ms) divides by inference of the same graph with the weights as graph
 * inputs, as the prototype did: the form the train step runs its forward pass in. Generation
 * bakes the weights (onnxruntime then prepacks them into its NCHWc layout, 1.3-1.6x faster), so
 * the ratio against baked inference is reported beside it; it is also the like-for-like one, as
 * the train step lowers its convolutions to those NCHWc kernels too (autodiff/nchwc.ts) while the
 * weights-as-inputs session is a plain one, as in the prototype. Both inferences are timed
 * round-robin with the train step, so a load change on the machine shifts all three alike; every
 * session runs with the same options as the prototype's (two intra-op threads, sequential,
 * level 'all').
 *
 * The prototype (../shared/prototypes/ortgrad, plain JS) runs in a child process with this
 * project's node_modules (onnx-proto is a dev dependency for exactly this) and times its own
 * train step and inference the same way; where that folder is absent its figures are left out
 * with a message.
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
import { nchwcBlockSize } from '../autodiff/index.js';
import { Rng } from '../tensor/random.js';
import { median, type BenchSuite, type Figure } from './figures.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const PROTOTYPE = resolve(REPO, '..', 'shared', 'prototypes', 'ortgrad');
const RUNS = 9;

/** The options of every timed session, engine and prototype alike (the prototype's ortutil.session()). */
const SESSION: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 2,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

interface Timed {
  run: () => Promise<unknown>;
  dispose: () => Promise<void>;
}

/** Median ms of each job, two warm-up runs each, then `runs` rounds taking the jobs in turn. */
async function timeRoundRobin<K extends string>(
  jobs: Record<K, Timed>,
  runs = RUNS,
): Promise<Record<K, number>> {
  const entries = Object.entries(jobs) as [K, Timed][];
  for (const [, job] of entries) for (let i = 0; i < 2; i++) await job.run();
  const times = new Map<K, number[]>(entries.map(([k]) => [k, []]));
  for (let r = 0; r < runs; r++) {
    for (const [k, job] of entries) {
      const started = performance.now();
      await job.run();
      times.get(k)?.push(performance.now() - started);
    }
  }
  return Object.fromEntries(entries.map(([k]) => [k, median(times.get(k) ?? [])])) as Record<K, number>;
}

async function engineTrainStep(batch: number): Promise<Timed> {
  const net = buildToyUnet({ batch, size: 32 });
  const g = net.builder.g;
  const loss = mseLoss(g, net.prediction, g.input('target', g.shape(net.prediction)), { reduction: 'mean' });
  const step = await TrainStep.create({
    graph: g,
    loss,
    parameters: net.builder.values,
    sessionOptions: SESSION,
  });
  const data = new ToyDenoisingData(batch, 32).next(new Rng(1));
  return { run: () => step.run(data), dispose: () => step.dispose() };
}

/** Inference of the same network: weights baked (what generation uses) or fed as inputs (the train graph's form). */
async function engineInference(batch: number, weights: 'baked' | 'inputs'): Promise<Timed> {
  const net = buildToyUnet({ batch, size: 32, mode: weights === 'baked' ? 'initializer' : 'input' });
  net.builder.g.output(net.prediction, 'prediction');
  const session = await ort.InferenceSession.create(net.builder.g.toBytes(), SESSION);
  const { sample, timestep } = new ToyDenoisingData(batch, 32).next(new Rng(1));
  const feeds: Record<string, ort.Tensor> = { sample, timestep };
  for (const [name, data] of net.builder.values)
    feeds[name] = new ort.Tensor('float32', data, net.builder.g.shape(name));
  return { run: () => session.run(feeds), dispose: () => session.release() };
}

/** LoRA rank 8 on the attention projections and the four up-path convs of the baked toy UNet. */
async function engineLoraStep(batch: number): Promise<Timed> {
  const net = buildToyUnet({ batch, size: 32, mode: 'initializer' });
  const g = net.builder.g;
  const lora = injectLora(g, {
    rank: 8,
    targets: /attentions\.0\.to_(q|k|v|out\.0)\.weight$|up_blocks\.[01]\.(conv1|conv2)\.weight$/,
  });
  const loss = mseLoss(g, net.prediction, g.input('target', g.shape(net.prediction)), { reduction: 'mean' });
  const step = await TrainStep.create({
    graph: g,
    loss,
    parameters: lora.parameters,
    sessionOptions: SESSION,
  });
  const data = new ToyDenoisingData(batch, 32).next(new Rng(1));
  return { run: () => step.run(data), dispose: () => step.dispose() };
}

async function timeAlone(make: () => Promise<Timed>): Promise<number> {
  const job = await make();
  try {
    return (await timeRoundRobin({ job })).job;
  } finally {
    await job.dispose();
  }
}

/** Runs the prototype's train steps and, round-robin with its b8 step, its inference both ways. */
const DRIVER = `'use strict';
const { buildUNet } = require(process.env.PROTO_DIR + '/layers.js');
const { session, tensor, randn } = require(process.env.PROTO_DIR + '/ortutil.js');
const CFG = { ch: 64, groups: 8, T: 1000, E: 128, heads: 4 };
const RUNS = ${RUNS};
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
function feedsFor(B, P, { target = true, params = true } = {}) {
  const f = { x: tensor(randn([B, 3, 32, 32]), [B, 3, 32, 32]), t: tensor(BigInt64Array.from({ length: B }, (_, i) => BigInt((i * 97) % 1000)), [B], 'int64') };
  if (target) f.target = tensor(randn([B, 3, 32, 32]), [B, 3, 32, 32]);
  if (params) for (const p of P.list) f[p.name] = tensor(p.data, p.shape);
  return f;
}
async function job(options, feedOptions) {
  const { g, P } = buildUNet({ H: 32, cfg: CFG, ...options });
  const s = await session(g.toModel(), { level: 'all' });
  const feeds = feedsFor(options.B, P, feedOptions);
  return () => s.run(feeds);
}
async function roundRobin(jobs) {
  for (const f of Object.values(jobs)) { await f(); await f(); }
  const ts = Object.fromEntries(Object.keys(jobs).map((k) => [k, []]));
  for (let r = 0; r < RUNS; r++) for (const [k, f] of Object.entries(jobs)) { const t0 = performance.now(); await f(); ts[k].push(performance.now() - t0); }
  return Object.fromEntries(Object.entries(ts).map(([k, v]) => [k, median(v)]));
}
(async () => {
  const b8 = await roundRobin({
    train: await job({ B: 8 }),
    inputs: await job({ B: 8, train: false }, { target: false }),
    baked: await job({ B: 8, train: false, weightsAsInitializers: true }, { target: false, params: false }),
  });
  const b16 = await roundRobin({ train: await job({ B: 16 }) });
  process.stdout.write(JSON.stringify({ b8: b8.train, b16: b16.train, inferInputsB8: b8.inputs, inferBakedB8: b8.baked }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

interface PrototypeTimes {
  b8: number;
  b16: number;
  inferInputsB8: number;
  inferBakedB8: number;
}

async function prototypeTimes(): Promise<PrototypeTimes | undefined> {
  if (!existsSync(join(PROTOTYPE, 'layers.js'))) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'msp-proto-'));
  try {
    const driver = join(dir, 'driver.cjs');
    await writeFile(driver, DRIVER);
    const { stdout } = await promisify(execFile)(process.execPath, [driver], {
      env: { ...process.env, PROTO_DIR: PROTOTYPE, NODE_PATH: join(REPO, 'node_modules') },
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout) as PrototypeTimes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const autodiffSuite: BenchSuite = {
  name: 'autodiff',
  async run(log) {
    const net = buildToyUnet({ batch: 1, size: 32 });
    const block = await nchwcBlockSize();
    log(
      `autodiff: toy UNet with ${net.parameterCount} parameters; convolutions with run-time weights on ` +
        (block > 0
          ? `onnxruntime's NCHWc kernels (block ${block})`
          : 'the generic Conv (no NCHWc kernels here)'),
    );
    // 1. batch 8: the train step and both inferences round-robin (the ratio's three numbers)
    const jobs = {
      train: await engineTrainStep(8),
      inputs: await engineInference(8, 'inputs'),
      baked: await engineInference(8, 'baked'),
    };
    const b8 = await timeRoundRobin(jobs);
    for (const job of Object.values(jobs)) await job.dispose();
    // 2. the prototype between the engine's runs, so a load change hits both
    const proto = await prototypeTimes();
    const train16 = await timeAlone(() => engineTrainStep(16));
    const lora16 = await timeAlone(() => engineLoraStep(16));

    const ratio = b8.train / b8.inputs;
    log(
      `autodiff: train step ${b8.train.toFixed(1)} ms / inference with weights as inputs ${b8.inputs.toFixed(1)} ms ` +
        `= ${ratio.toFixed(2)} (the criterion's ratio, <= 3.5; the prototype's FINDINGS.md: 137 / 32 = 4.3); ` +
        `/ baked inference ${b8.baked.toFixed(1)} ms = ${(b8.train / b8.baked).toFixed(2)}`,
    );
    if (!proto) log(`autodiff: prototype not found at ${PROTOTYPE}; its figures are left out`);
    else {
      log(
        `autodiff: prototype ${proto.b8.toFixed(1)} / ${proto.b16.toFixed(1)} ms, engine ${b8.train.toFixed(1)} / ${train16.toFixed(1)} ms (b8 / b16)`,
      );
      log(
        `autodiff: prototype in this run: ${proto.b8.toFixed(1)} / ${proto.inferInputsB8.toFixed(1)} ms = ` +
          `${(proto.b8 / proto.inferInputsB8).toFixed(2)} (weights as inputs), / ${proto.inferBakedB8.toFixed(1)} ms = ` +
          `${(proto.b8 / proto.inferBakedB8).toFixed(2)} (baked)`,
      );
    }
    const figures: Figure[] = [
      {
        name: 'autodiff.train_ms_32_b8',
        value: b8.train,
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
        value: b8.baked,
        unit: 'ms',
        label: 'inference, baked weights, batch 8',
      },
      {
        name: 'autodiff.infer_inputs_ms_32_b8',
        value: b8.inputs,
        unit: 'ms',
        label: 'inference, weights as inputs, batch 8',
      },
      {
        name: 'autodiff.train_infer_ratio_32_b8',
        value: ratio,
        unit: 'x',
        label:
          "train step / inference with weights as inputs, batch 8 (the prototype's 4.3; criterion <= 3.5)",
      },
      {
        name: 'autodiff.train_infer_baked_ratio_32_b8',
        value: b8.train / b8.baked,
        unit: 'x',
        label: 'train step / inference with baked weights, batch 8',
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
          name: 'autodiff.prototype_train_infer_ratio_32_b8',
          value: proto.b8 / proto.inferInputsB8,
          unit: 'x',
          label: 'prototype train step / its inference with weights as inputs, batch 8',
        },
        {
          name: 'autodiff.speedup_vs_prototype_32_b8',
          value: proto.b8 / b8.train,
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
