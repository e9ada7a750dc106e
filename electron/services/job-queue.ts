/**
 * The job queue: a small, persisted state machine that runs one job at a time.
 *
 * ```
 * queued ──> running ──> finished
 *   │           ├──────> failed
 *   └───────────┴──────> cancelled
 * ```
 *
 * Every transition is written to the store and announced to listeners; progress too. Cancelling a
 * running job aborts its `AbortSignal` (the render stops at its next step). {@link JobQueue.recover}
 * runs at startup: a job that was `running` when the process died is marked failed, and queued
 * jobs run again in their order.
 *
 * @example
 * const queue = new JobQueue(db.jobs, async (job, { signal, reportProgress }) => {
 *   reportProgress({ step: 1, totalSteps: 4, stage: 'global' });
 *   return { renderId: 'r1' };
 * });
 * queue.recover();
 * const job = queue.enqueue({ kind: 'render', panelId, input: {}, totalSteps: 4 });
 */
import { randomUUID } from 'node:crypto';
import type { JobKind, JobProgress, JobState } from '../api/contract.js';
import type { JobRow } from './database.js';

/** Where the queue keeps jobs (the database's JobsRepository, or a Map in tests). */
export interface JobStore {
  insert(job: JobRow): void;
  update(job: JobRow): void;
  get(id: string): JobRow | undefined;
  /** Jobs in a state, oldest first. */
  inState(state: JobState): JobRow[];
}

export interface JobContext {
  /** Aborted when the job is cancelled or the queue closes. */
  signal: AbortSignal;
  /** Reports progress; `previewHash` names a stored preview image. */
  reportProgress(progress: Omit<JobProgress, 'elapsedMs'>, previewHash?: string): void;
}

/** Runs a job; resolves with what it produced, rejects to fail it (or after a cancel). */
export type JobRunner = (job: JobRow, context: JobContext) => Promise<JobRow['result']>;

export type JobQueueEvent =
  { type: 'updated'; job: JobRow } | { type: 'progress'; job: JobRow; previewHash?: string };

/** The message of a job that was running when the studio stopped. */
export const INTERRUPTED_MESSAGE = 'MSP Studio stopped while this job was running; start it again to retry';

const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  queued: ['running', 'cancelled'],
  running: ['finished', 'failed', 'cancelled'],
  finished: [],
  failed: [],
  cancelled: [],
};

/** True when the state machine allows `from -> to`. */
export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** True for finished, failed and cancelled. */
export function isTerminal(state: JobState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** Thrown for a transition the state machine does not allow. */
export class JobStateError extends Error {
  override name = 'JobStateError';
}

export class JobQueue {
  private readonly listeners = new Set<(event: JobQueueEvent) => void>();
  private running: { id: string; controller: AbortController; done: Promise<void> } | undefined;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly store: JobStore,
    private readonly runner: JobRunner,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Startup recovery: running jobs (the process died under them) become failed; queued jobs are
   * scheduled to run. Returns both lists.
   */
  recover(): { failed: JobRow[]; queued: JobRow[] } {
    const failed = this.store
      .inState('running')
      .map((job) => this.transition(job, 'failed', { error: INTERRUPTED_MESSAGE, finishedAt: this.now() }));
    const queued = this.store.inState('queued');
    if (queued.length > 0) this.schedule();
    return { failed, queued };
  }

  /** Subscribes to job events; returns the unsubscribe function. */
  on(listener: (event: JobQueueEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds a job at the end of the queue. */
  enqueue(input: { kind: JobKind; panelId: string; input: unknown; totalSteps: number }): JobRow {
    if (this.closed) throw new JobStateError('the job queue is closed');
    const job: JobRow = {
      id: randomUUID(),
      kind: input.kind,
      state: 'queued',
      panelId: input.panelId,
      input: input.input,
      progress: { step: 0, totalSteps: input.totalSteps, stage: 'queued' },
      error: null,
      result: null,
      preview: null,
      createdAt: this.now(),
      startedAt: null,
      finishedAt: null,
    };
    this.store.insert(job);
    this.emit({ type: 'updated', job });
    this.schedule();
    return job;
  }

  /**
   * Cancels a queued job at once, or a running one by aborting its signal (its state becomes
   * `cancelled` when the runner returns). A job that already ended is returned unchanged.
   *
   * @throws Error when there is no such job.
   */
  cancel(id: string): JobRow {
    const job = this.store.get(id);
    if (!job) throw new Error(`job ${id} does not exist`);
    if (job.state === 'queued') {
      return this.transition(job, 'cancelled', { finishedAt: this.now() });
    }
    if (job.state === 'running' && this.running?.id === id) this.running.controller.abort();
    return job;
  }

  /** Resolves when no job is running or queued. */
  whenIdle(): Promise<void> {
    if (!this.running && !this.scheduled && this.store.inState('queued').length === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking jobs, cancels the running one and waits for it to end. Queued jobs stay queued. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.running;
    if (running) {
      running.controller.abort();
      await running.done;
    }
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.running) return;
    const next = this.closed ? undefined : this.store.inState('queued')[0];
    if (!next) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
      return;
    }
    const controller = new AbortController();
    const started = this.clock().getTime();
    let job = this.transition(next, 'running', {
      startedAt: this.now(),
      progress: { ...next.progress, stage: 'loading', elapsedMs: 0 },
    });
    const context: JobContext = {
      signal: controller.signal,
      reportProgress: (progress, previewHash) => {
        const current = this.store.get(job.id);
        if (!current || current.state !== 'running') return;
        job = {
          ...current,
          progress: { ...progress, elapsedMs: this.clock().getTime() - started },
          preview: previewHash ?? current.preview,
        };
        this.store.update(job);
        this.emit({ type: 'progress', job, ...(previewHash ? { previewHash } : {}) });
      },
    };
    const done = (async () => {
      try {
        const result = await this.runner(job, context);
        const current = this.store.get(job.id) ?? job;
        this.transition(current, 'finished', {
          result: result ?? null,
          finishedAt: this.now(),
          progress: {
            ...current.progress,
            step: current.progress.totalSteps,
            stage: 'done',
            elapsedMs: this.clock().getTime() - started,
          },
        });
      } catch (err) {
        const current = this.store.get(job.id) ?? job;
        const progress = { ...current.progress, elapsedMs: this.clock().getTime() - started };
        if (controller.signal.aborted) {
          this.transition(current, 'cancelled', { finishedAt: this.now(), progress });
        } else {
          this.transition(current, 'failed', {
            error: errorMessage(err),
            finishedAt: this.now(),
            progress,
          });
        }
      } finally {
        this.running = undefined;
        this.schedule();
        if (this.closed) this.pump();
      }
    })();
    this.running = { id: job.id, controller, done };
  }

  private transition(job: JobRow, to: JobState, patch: Partial<JobRow> = {}): JobRow {
    if (!canTransition(job.state, to)) {
      throw new JobStateError(`job ${job.id} cannot go from ${job.state} to ${to}`);
    }
    const next: JobRow = { ...job, ...patch, state: to };
    this.store.update(next);
    this.emit({ type: 'updated', job: next });
    return next;
  }

  private emit(event: JobQueueEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // A listener's failure must not break the queue.
      }
    }
  }

  private now(): string {
    return this.clock().toISOString();
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
