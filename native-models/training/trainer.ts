/**
 * The training loop: batches from a data loader, one compiled step (loss + gradients),
 * gradient clipping, the optimizer in TypeScript, optional EMA of the weights, progress events,
 * cancellation, and checkpoints written atomically so a run can resume in a later session and
 * continue exactly as if it had not stopped.
 *
 * A checkpoint is a folder `step-000123/` holding weights.safetensors, optimizer.safetensors,
 * ema.safetensors (with EMA) and state.json (step, RNG state, optimizer and EMA metadata);
 * `latest.json` names the newest complete one. A folder is written under a temporary name and
 * renamed when complete, and `latest.json` is replaced atomically after it, so a crash at any
 * moment leaves the previous checkpoint usable.
 *
 * @example
 * const trainer = await Trainer.create({ model: step, data, optimizer: new AdamW({ lr: 1e-3 }),
 *   learningRate: cosineWithWarmup({ lr: 1e-3, warmupSteps: 50, totalSteps: 2000 }),
 *   seed: 1, checkpointDir: 'runs/toy', checkpointEvery: 200 });
 * await trainer.train(2000, { onProgress: (p) => console.log(p.step, p.loss) });
 */
import type * as ort from 'onnxruntime-node';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng, type RngState } from '../tensor/random.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import type { Graph } from '../onnx/graph.js';
import { AdamW, clipGradNorm, cosineWithWarmup, Ema, type ParameterTensor } from './optimizers.js';
import { readSafetensorsFile, toFloat32Tensor, writeSafetensorsFile } from './safetensors.js';

export type Batch = Record<string, ort.Tensor>;

/** Something that computes the loss and the gradients of its parameters on a batch (TrainStep). */
export interface TrainableModel {
  readonly parameters: ParameterTensor[];
  run(batch: Batch): Promise<{ loss: number; gradients: Map<string, Float32Array> }>;
}

/** Batches for training. Sampling must use only `rng`, so that a resumed run sees the same data. */
export interface DataLoader {
  readonly batchSize: number;
  next(rng: Rng, step: number): Batch | Promise<Batch>;
}

/** The optimizer interface the trainer uses (AdamW and SGD implement it). */
export interface Optimizer {
  step(params: ParameterTensor[], grads: Map<string, Float32Array>, lr: number): void;
  state(): { meta: object; buffers: Record<string, Float32Array> };
  loadState(state: { meta: object; buffers: Record<string, Float32Array> }): void;
}

export interface TrainerOptions {
  model: TrainableModel;
  data: DataLoader;
  optimizer: Optimizer;
  /** Learning rate for a (0-based) step. */
  learningRate: (step: number) => number;
  /** Clip the global gradient norm to this value. */
  maxGradNorm?: number;
  /** Keep an exponential moving average of the weights with this decay. */
  emaDecay?: number;
  seed: number;
  checkpointDir?: string;
  /** Save every N steps (and when cancelled, and at the end). */
  checkpointEvery?: number;
  /** Complete checkpoints to keep (default 2). */
  keepCheckpoints?: number;
}

/**
 * AdamW with decoupled weight decay, a linear warm-up then cosine decay from `lr` to `minLr` over
 * `steps` (a resumed run with another `steps` re-stretches it), gradient clipping at norm 1, and a
 * checkpoint every `checkpointEvery` steps when `checkpointDir` is given.
 */
export interface AdamWRecipe {
  steps: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** Decoupled weight decay (default 0). */
  weightDecay?: number;
  /** Parameters exempt from weight decay (e.g. biases and norm scales). */
  noWeightDecay?: (p: ParameterTensor) => boolean;
  /** Keep an exponential moving average of the weights with this decay. */
  emaDecay?: number;
  seed: number;
  checkpointDir?: string | undefined;
  checkpointEvery: number;
  /** Continue from the latest checkpoint in checkpointDir when there is one. */
  resume?: boolean;
}

/** The options every training stage takes besides its data and model. */
export interface TrainingRunOptions {
  /** Total steps (counting steps before a resume); also the length of the lr schedule. */
  steps: number;
  batch?: number;
  lr?: number;
  seed?: number;
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Continue from the latest checkpoint in checkpointDir when there is one. */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  imagesPerSecond: number;
}

export interface TrainResult {
  step: number;
  lastLoss: number;
  stoppedBy: 'done' | 'cancelled';
}

export class TrainingError extends Error {
  override name = 'TrainingError';
}

interface CheckpointState {
  version: 1;
  step: number;
  seed: number;
  rng: RngState;
  optimizer: object;
  ema: object | null;
  parameters: { name: string; shape: number[] }[];
  lastLoss: number;
}

export class Trainer {
  step = 0;
  lastLoss = NaN;
  readonly rng: Rng;
  readonly ema: Ema | undefined;
  private lastCheckpointStep = -1;

  private constructor(readonly options: TrainerOptions) {
    this.rng = new Rng(options.seed);
    this.ema =
      options.emaDecay !== undefined ? new Ema(options.model.parameters, options.emaDecay) : undefined;
  }

  /** A trainer; with `resume`, continues from the latest checkpoint in checkpointDir when there is one. */
  static async create(options: TrainerOptions, { resume = false } = {}): Promise<Trainer> {
    const trainer = new Trainer(options);
    if (resume) await trainer.loadLatestCheckpoint();
    return trainer;
  }

  /** A trainer with the recipe every stage of this project uses: see {@link AdamWRecipe}. */
  static async adamW(model: TrainableModel, data: DataLoader, r: AdamWRecipe): Promise<Trainer> {
    return Trainer.create(
      {
        model,
        data,
        optimizer: new AdamW({
          lr: r.lr,
          weightDecay: r.weightDecay ?? 0,
          ...(r.noWeightDecay ? { noWeightDecay: r.noWeightDecay } : {}),
        }),
        learningRate: cosineWithWarmup({
          lr: r.lr,
          warmupSteps: r.warmupSteps,
          totalSteps: r.steps,
          minLr: r.minLr,
        }),
        maxGradNorm: 1,
        ...(r.emaDecay !== undefined ? { emaDecay: r.emaDecay } : {}),
        seed: r.seed,
        ...(r.checkpointDir ? { checkpointDir: r.checkpointDir, checkpointEvery: r.checkpointEvery } : {}),
      },
      { resume: r.resume === true },
    );
  }

  /** Trains until `totalSteps` steps have been taken in all (counting steps before a resume). */
  async train(
    totalSteps: number,
    {
      signal,
      onProgress,
    }: { signal?: AbortSignal | undefined; onProgress?: ((p: TrainProgress) => void) | undefined } = {},
  ): Promise<TrainResult> {
    const { model, data, optimizer, checkpointEvery } = this.options;
    let stoppedBy: TrainResult['stoppedBy'] = 'done';
    while (this.step < totalSteps) {
      if (signal?.aborted) {
        stoppedBy = 'cancelled';
        break;
      }
      const started = performance.now();
      // 1. batch and gradients
      const batch = await data.next(this.rng, this.step);
      const { loss, gradients } = await model.run(batch);
      // 2. stop on divergence before anything is updated
      const gradNorm = clipGradNorm(gradients, this.options.maxGradNorm ?? Infinity);
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        const kept =
          this.lastCheckpointStep >= 0
            ? `the last good checkpoint (step ${this.lastCheckpointStep}) is kept in ${this.options.checkpointDir}`
            : 'no checkpoint was written yet';
        throw new TrainingError(
          `training diverged at step ${this.step + 1}: the ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} is ${Number.isFinite(loss) ? gradNorm : loss}; ${kept}. Lower the learning rate or clip gradients.`,
        );
      }
      // 3. update
      const lr = this.options.learningRate(this.step);
      optimizer.step(model.parameters, gradients, lr);
      this.ema?.update(model.parameters);
      this.step++;
      this.lastLoss = loss;
      onProgress?.({
        step: this.step,
        totalSteps,
        loss,
        lr,
        gradNorm,
        imagesPerSecond: (data.batchSize * 1000) / (performance.now() - started),
      });
      if (checkpointEvery && this.step % checkpointEvery === 0 && this.step < totalSteps)
        await this.saveCheckpoint();
    }
    if (this.options.checkpointDir && this.lastCheckpointStep !== this.step) await this.saveCheckpoint();
    return { step: this.step, lastLoss: this.lastLoss, stoppedBy };
  }

  /** Writes a complete checkpoint of the current step. Returns its folder. */
  async saveCheckpoint(): Promise<string> {
    const dir = this.options.checkpointDir;
    if (!dir) throw new TrainingError('no checkpointDir was given');
    await mkdir(dir, { recursive: true });
    const name = `step-${String(this.step).padStart(6, '0')}`;
    const final = join(dir, name);
    const partial = join(dir, `${name}.partial-${process.pid}`);
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial);
    const params = this.options.model.parameters;
    const f32 = (data: Float32Array, shape: number[]) => ({ dtype: 'F32' as const, shape, data });
    await writeSafetensorsFile(
      join(partial, 'weights.safetensors'),
      Object.fromEntries(params.map((p) => [p.name, f32(p.data, p.shape)])),
    );
    const opt = this.options.optimizer.state();
    await writeSafetensorsFile(
      join(partial, 'optimizer.safetensors'),
      Object.fromEntries(Object.entries(opt.buffers).map(([k, v]) => [k, f32(v, [v.length])])),
    );
    let emaMeta: object | null = null;
    if (this.ema) {
      const s = this.ema.state();
      emaMeta = s.meta;
      await writeSafetensorsFile(
        join(partial, 'ema.safetensors'),
        Object.fromEntries(Object.entries(s.buffers).map(([k, v]) => [k, f32(v, [v.length])])),
      );
    }
    const state: CheckpointState = {
      version: 1,
      step: this.step,
      seed: this.options.seed,
      rng: this.rng.getState(),
      optimizer: opt.meta,
      ema: emaMeta,
      parameters: params.map((p) => ({ name: p.name, shape: p.shape })),
      lastLoss: this.lastLoss,
    };
    await writeFileAtomic(join(partial, 'state.json'), JSON.stringify(state, null, 1));
    await rm(final, { recursive: true, force: true });
    await rename(partial, final);
    await writeFileAtomic(
      join(dir, 'latest.json'),
      JSON.stringify({ step: this.step, checkpoint: name }) + '\n',
    );
    this.lastCheckpointStep = this.step;
    await this.pruneCheckpoints(dir);
    return final;
  }

  /**
   * Keeps the newest `keepCheckpoints` of this run. Checkpoints past the step just saved belong to
   * an earlier run that went further (a fresh run in the same folder): they go too, or pruning by
   * name would keep them and delete this run's own.
   */
  private async pruneCheckpoints(dir: string): Promise<void> {
    const keep = this.options.keepCheckpoints ?? 2;
    const all = (await readdir(dir)).filter((n) => /^step-\d+$/.test(n)).sort();
    const stepOf = (name: string) => Number(name.slice('step-'.length));
    const stale = all.filter((n) => stepOf(n) > this.step);
    const ours = all.filter((n) => stepOf(n) <= this.step);
    for (const old of [...stale, ...ours.slice(0, Math.max(0, ours.length - keep))])
      await rm(join(dir, old), { recursive: true, force: true });
  }

  /** Loads the checkpoint named by latest.json, if any. Returns whether one was loaded. */
  async loadLatestCheckpoint(): Promise<boolean> {
    const dir = this.options.checkpointDir;
    if (!dir) throw new TrainingError('resume needs a checkpointDir');
    let latest: { checkpoint: string };
    try {
      latest = JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')) as { checkpoint: string };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new TrainingError(`${join(dir, 'latest.json')} is unreadable: ${(e as Error).message}`);
    }
    await this.loadCheckpoint(join(dir, latest.checkpoint));
    return true;
  }

  async loadCheckpoint(folder: string): Promise<void> {
    const state = JSON.parse(await readFile(join(folder, 'state.json'), 'utf8')) as CheckpointState;
    if (state.version !== 1)
      throw new TrainingError(`${folder}: unknown checkpoint version ${String(state.version)}`);
    const params = this.options.model.parameters;
    const expected = params.map((p) => `${p.name}[${p.shape.join(',')}]`).join(' ');
    const saved = state.parameters.map((p) => `${p.name}[${p.shape.join(',')}]`).join(' ');
    if (expected !== saved) {
      throw new TrainingError(
        `${folder} was saved for different parameters than this model has; it cannot be resumed here`,
      );
    }
    const weights = (await readSafetensorsFile(join(folder, 'weights.safetensors'))).tensors;
    for (const p of params) p.data.set(toFloat32Tensor(weights[p.name]));
    const opt = (await readSafetensorsFile(join(folder, 'optimizer.safetensors'))).tensors;
    this.options.optimizer.loadState({
      meta: state.optimizer,
      buffers: Object.fromEntries(Object.entries(opt).map(([k, v]) => [k, toFloat32Tensor(v)])),
    });
    if (this.ema && state.ema) {
      const ema = (await readSafetensorsFile(join(folder, 'ema.safetensors'))).tensors;
      this.ema.loadState({
        meta: state.ema,
        buffers: Object.fromEntries(Object.entries(ema).map(([k, v]) => [k, toFloat32Tensor(v)])),
      });
    }
    this.rng.setState(state.rng);
    this.step = state.step;
    this.lastLoss = state.lastLoss;
    this.lastCheckpointStep = state.step;
  }
}

/**
 * Bakes trained values into an inference graph built with the same parameter names
 * (initializers), e.g. the same ModelBuilder network in 'initializer' mode.
 */
export function bakeParameters(g: Graph, params: readonly ParameterTensor[]): void {
  for (const p of params) {
    if (!g.initializers.has(p.name)) throw new TrainingError(`the inference graph has no weight '${p.name}'`);
    g.setInitializer(p.name, p.data.slice());
  }
}
