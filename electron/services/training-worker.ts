/**
 * The training worker (a `worker_threads` Worker started by training-runner.ts for one training):
 * runs the task in `workerData`, posting progress, the prepared cut-outs and samples, previews, and
 * then the result or the error. A `cancel` message stops the training at its next step (the trainer
 * writes a checkpoint first, so the training can resume).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runTrainingTask } from './training-engine.js';
import type { FromTrainingWorker, ToTrainingWorker, TrainingTask, WorkerError } from './training-protocol.js';

const port = parentPort;
if (!port) throw new Error('training-worker.ts runs as a worker thread (see training-runner.ts)');

const post = (message: FromTrainingWorker) => port.postMessage(message);
const toWorkerError = (err: unknown): WorkerError =>
  err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };

const controller = new AbortController();
port.on('message', (message: ToTrainingWorker) => {
  if (message.type === 'cancel') controller.abort();
});

runTrainingTask(workerData as TrainingTask, {
  signal: controller.signal,
  onProgress: (progress) => post({ type: 'progress', progress }),
  onPrepared: (prepared) => post({ type: 'prepared', prepared }),
  onPreview: (preview) => post({ type: 'preview', preview }),
}).then(
  (output) => post({ type: 'result', output }),
  (err: unknown) => post({ type: 'error', error: toWorkerError(err) }),
);
