/**
 * Runs cast trainings off the main thread: {@link WorkerTrainingRunner} starts one `worker_threads`
 * Worker (training-worker.ts) per training, relays its progress, prepared samples and previews, and
 * ends it when the training ends (its memory goes with it). Cancelling asks the worker to stop at the
 * next step, so the trainer keeps a checkpoint; a worker that dies fails the training with the reason.
 *
 * {@link InlineTrainingRunner} runs the same engine on the calling thread (tests, tools).
 */
import { Worker } from 'node:worker_threads';
import { runTrainingTask } from './training-engine.js';
import type { TrainingCallbacks, TrainingOutput, TrainingTask } from './training-engine.js';
import type { FromTrainingWorker, ToTrainingWorker, WorkerError } from './training-protocol.js';

/** What the studio needs from a trainer. */
export interface TrainingRunner {
  /** Trains; resolves with `stoppedBy: 'cancelled'` (or rejects with an AbortError) when cancelled. */
  train(task: TrainingTask, callbacks?: TrainingCallbacks): Promise<TrainingOutput>;
  /** Stops a training in flight at once (no checkpoint beyond the last one). */
  close(): Promise<void>;
}

function fromWorkerError(error: WorkerError): Error {
  const err = new Error(error.message);
  err.name = error.name;
  return err;
}

/** Starts the worker; from the TypeScript sources (tests, development) through dev/ts-hooks.mjs. */
function startWorker(task: TrainingTask): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const hooks = new URL('./dev/ts-hooks.mjs', here).href;
    const entry = new URL('./training-worker.ts', here).href;
    const bootstrap =
      `require('node:module').register(${JSON.stringify(hooks)});` +
      `import(${JSON.stringify(entry)}).catch((e) => { setImmediate(() => { throw e; }); });`;
    return new Worker(bootstrap, { eval: true, workerData: task });
  }
  return new Worker(new URL('./training-worker.js', here), { workerData: task });
}

/** Copies bytes that crossed the thread boundary into plain Uint8Arrays. */
const bytes = (b: Uint8Array) => new Uint8Array(b);

export class WorkerTrainingRunner implements TrainingRunner {
  private readonly workers = new Set<Worker>();

  async train(task: TrainingTask, callbacks: TrainingCallbacks = {}): Promise<TrainingOutput> {
    callbacks.signal?.throwIfAborted();
    const worker = startWorker(task);
    this.workers.add(worker);
    return new Promise<TrainingOutput>((resolve, reject) => {
      let settled = false;
      const onAbort = () => worker.postMessage({ type: 'cancel' } satisfies ToTrainingWorker);
      callbacks.signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        callbacks.signal?.removeEventListener('abort', onAbort);
        this.workers.delete(worker);
        void worker.terminate();
        fn();
      };
      worker.on('message', (message: FromTrainingWorker) => {
        switch (message.type) {
          case 'progress':
            callbacks.onProgress?.(message.progress);
            break;
          case 'prepared':
            callbacks.onPrepared?.({
              cutOuts: message.prepared.cutOuts.map((c) => ({ ...c, png: bytes(c.png) })),
              samples: message.prepared.samples.map((s) => ({ ...s, png: bytes(s.png) })),
            });
            break;
          case 'preview':
            callbacks.onPreview?.({
              step: message.preview.step,
              images: message.preview.images.map((i) => ({ ...i, png: bytes(i.png) })),
            });
            break;
          case 'result':
            settle(() => resolve(message.output));
            break;
          case 'error':
            settle(() => reject(fromWorkerError(message.error)));
            break;
        }
      });
      worker.on('error', (err) => settle(() => reject(new Error(`the training stopped: ${err.message}`))));
      worker.on('exit', (code) =>
        settle(() => reject(new Error(`the training worker stopped unexpectedly (exit code ${code})`))),
      );
    });
  }

  async close(): Promise<void> {
    const workers = [...this.workers];
    this.workers.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The engine on the calling thread (no worker). */
export class InlineTrainingRunner implements TrainingRunner {
  train(task: TrainingTask, callbacks: TrainingCallbacks = {}): Promise<TrainingOutput> {
    return runTrainingTask(task, callbacks);
  }

  async close(): Promise<void> {}
}
