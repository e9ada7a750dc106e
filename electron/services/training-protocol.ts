/**
 * Messages between the main thread (training-runner.ts) and the training worker (training-worker.ts).
 * The worker's `workerData` is the {@link TrainingTask}; it trains once and exits.
 */
import type { CastTrainingProgress } from '../../native-models/personalize/cast-training.js';
import type { PreparedOutput, PreviewOutput, TrainingOutput, TrainingTask } from './training-engine.js';
import type { WorkerError } from './render-protocol.js';

export type { TrainingTask, WorkerError };

/** Main thread -> worker. */
export type ToTrainingWorker = { type: 'cancel' };

/** Worker -> main thread. */
export type FromTrainingWorker =
  | { type: 'progress'; progress: CastTrainingProgress }
  | { type: 'prepared'; prepared: PreparedOutput }
  | { type: 'preview'; preview: PreviewOutput }
  | { type: 'result'; output: TrainingOutput }
  | { type: 'error'; error: WorkerError };
