/**
 * The render worker (a `worker_threads` Worker started by render-runner.ts): loads the model once
 * (workerData: EngineOptions), then renders one task at a time, posting progress (with preview
 * PNGs), the result or the error. A `cancel` message aborts the task at its next step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RenderEngine } from './render-engine.js';
import type { EngineOptions, FromWorker, ToWorker, WorkerError } from './render-protocol.js';

const port = parentPort;
if (!port) throw new Error('render-worker.ts runs as a worker thread (see render-runner.ts)');

// Bytes are copied, not transferred: encoders may return views into shared pools.
const post = (message: FromWorker) => port.postMessage(message);
const toWorkerError = (err: unknown): WorkerError =>
  err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };

const controllers = new Map<string, AbortController>();
const engine = RenderEngine.create(workerData as EngineOptions);

engine.then(
  (e) => post({ type: 'ready', info: e.info }),
  (err: unknown) => post({ type: 'init-error', error: toWorkerError(err) }),
);

port.on('message', (message: ToWorker) => {
  if (message.type === 'cancel') {
    controllers.get(message.id)?.abort();
    return;
  }
  const controller = new AbortController();
  controllers.set(message.id, controller);
  void (async () => {
    try {
      const output = await (
        await engine
      ).render(message.task, {
        signal: controller.signal,
        onProgress: (p) => post({ type: 'progress', id: message.id, ...p }),
      });
      post({ type: 'result', id: message.id, output });
    } catch (err) {
      post({ type: 'error', id: message.id, error: toWorkerError(err) });
    } finally {
      controllers.delete(message.id);
    }
  })();
});
