/**
 * Runs renders off the main thread: {@link WorkerRenderRunner} keeps one `worker_threads` Worker
 * (render-worker.ts) with the model loaded, sends it one task at a time and relays progress,
 * previews, results and cancellation. If the worker dies, the task in flight fails with the reason
 * and the next call starts a new worker.
 *
 * {@link InlineRenderRunner} runs the same engine on the calling thread (for tools and tests that
 * want no worker).
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { ModelInfo } from '../api/contract.js';
import { RenderEngine } from './render-engine.js';
import type { EngineOptions, EngineProgress, RenderOutput, RenderTask } from './render-engine.js';
import type { FromWorker, ToWorker, WorkerError } from './render-protocol.js';

export interface RenderCallOptions {
  signal?: AbortSignal;
  onProgress?: (p: EngineProgress) => void;
}

/** What the studio needs from a renderer. */
export interface RenderRunner {
  /** The model's info; rejects when the model cannot be loaded. */
  info(): Promise<ModelInfo>;
  render(task: RenderTask, options?: RenderCallOptions): Promise<RenderOutput>;
  close(): Promise<void>;
}

/** Rebuilds an error from the worker, keeping its name (AbortError for cancelled renders). */
function fromWorkerError(error: WorkerError): Error {
  const err = new Error(error.message);
  err.name = error.name;
  return err;
}

/**
 * Starts the worker. Built code runs `render-worker.js`; when running from the TypeScript sources
 * (tests, development), the worker first registers dev/ts-hooks.mjs so that it can load `.ts`.
 */
function startWorker(options: EngineOptions): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const hooks = new URL('./dev/ts-hooks.mjs', here).href;
    const entry = new URL('./render-worker.ts', here).href;
    const bootstrap =
      `require('node:module').register(${JSON.stringify(hooks)});` +
      `import(${JSON.stringify(entry)}).catch((e) => { setImmediate(() => { throw e; }); });`;
    return new Worker(bootstrap, { eval: true, workerData: options });
  }
  return new Worker(new URL('./render-worker.js', here), { workerData: options });
}

interface Pending {
  resolve: (output: RenderOutput) => void;
  reject: (err: Error) => void;
  onProgress?: (p: EngineProgress) => void;
}

export class WorkerRenderRunner implements RenderRunner {
  private worker: Worker | undefined;
  private ready: Promise<ModelInfo> | undefined;
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly options: EngineOptions) {}

  info(): Promise<ModelInfo> {
    return this.start();
  }

  async render(task: RenderTask, options: RenderCallOptions = {}): Promise<RenderOutput> {
    options.signal?.throwIfAborted();
    await this.start();
    const worker = this.worker;
    if (!worker) throw new Error('the render worker stopped before the render began');
    const id = randomUUID();
    return new Promise<RenderOutput>((resolve, reject) => {
      const onAbort = () => worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => options.signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (output) => {
          done();
          resolve(output);
        },
        reject: (err) => {
          done();
          reject(err);
        },
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      worker.postMessage({ type: 'render', id, task } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Promise<ModelInfo> {
    if (this.ready) return this.ready;
    const worker = startWorker(this.options);
    this.worker = worker;
    this.ready = new Promise<ModelInfo>((resolve, reject) => {
      const fail = (reason: string) => {
        if (this.worker === worker) {
          this.worker = undefined;
          this.ready = undefined;
        }
        const err = new Error(reason);
        reject(err);
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          p.reject(err);
        }
      };
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            resolve(message.info);
            break;
          case 'init-error':
            fail(`cannot load the model: ${message.error.message}`);
            void worker.terminate();
            break;
          case 'progress': {
            const { type: _type, id, ...progress } = message;
            if (progress.previewPng) progress.previewPng = new Uint8Array(progress.previewPng);
            this.pending.get(id)?.onProgress?.(progress);
            break;
          }
          case 'result': {
            const p = this.pending.get(message.id);
            this.pending.delete(message.id);
            p?.resolve({ ...message.output, png: new Uint8Array(message.output.png) });
            break;
          }
          case 'error': {
            const p = this.pending.get(message.id);
            this.pending.delete(message.id);
            p?.reject(fromWorkerError(message.error));
            break;
          }
        }
      });
      worker.on('error', (err) => fail(`the render worker crashed: ${err.message}`));
      worker.on('exit', (code) => fail(`the render worker stopped (exit code ${code})`));
    });
    // Callers that never ask (e.g. a failing model at startup) must not cause an unhandled rejection.
    this.ready.catch(() => undefined);
    return this.ready;
  }
}

/** The engine on the calling thread (no worker). */
export class InlineRenderRunner implements RenderRunner {
  private engine: Promise<RenderEngine> | undefined;

  constructor(private readonly options: EngineOptions) {}

  async info(): Promise<ModelInfo> {
    return (await this.load()).info;
  }

  async render(task: RenderTask, options: RenderCallOptions = {}): Promise<RenderOutput> {
    return (await this.load()).render(task, options);
  }

  async close(): Promise<void> {
    const engine = this.engine;
    this.engine = undefined;
    if (engine) await (await engine.catch(() => undefined))?.dispose();
  }

  private load(): Promise<RenderEngine> {
    if (!this.engine) {
      this.engine = RenderEngine.create(this.options);
      this.engine.catch(() => (this.engine = undefined));
    }
    return this.engine;
  }
}
