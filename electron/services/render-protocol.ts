/**
 * Messages between the main thread (render-runner.ts) and the render worker (render-worker.ts).
 * The worker's `workerData` is the engine's {@link EngineOptions}.
 */
import type { ModelInfo } from '../api/contract.js';
import type { EngineOptions, EngineProgress, RenderOutput, RenderTask } from './render-engine.js';

export type { EngineOptions };

/** Main thread -> worker. */
export type ToWorker = { type: 'render'; id: string; task: RenderTask } | { type: 'cancel'; id: string };

/** An error as it crosses the thread boundary. */
export interface WorkerError {
  name: string;
  message: string;
}

/** Worker -> main thread. */
export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'init-error'; error: WorkerError }
  | ({ type: 'progress'; id: string } & EngineProgress)
  | { type: 'result'; id: string; output: RenderOutput }
  | { type: 'error'; id: string; error: WorkerError };
