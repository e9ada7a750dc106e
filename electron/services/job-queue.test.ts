import { afterEach, describe, expect, it } from 'vitest';
import type { JobState } from '../api/contract.js';
import { openDatabase } from './database.js';
import type { JobRow, StudioDatabase } from './database.js';
import { canTransition, INTERRUPTED_MESSAGE, isTerminal, JobQueue } from './job-queue.js';
import type { JobContext, JobQueueEvent, JobRunner, JobStore } from './job-queue.js';
import { defaultPanelRequest } from './panel-request.js';

/** An in-memory store (the database's JobsRepository is tested below). */
class MemoryStore implements JobStore {
  readonly jobs = new Map<string, JobRow>();
  insert(job: JobRow) {
    this.jobs.set(job.id, job);
  }
  update(job: JobRow) {
    this.jobs.set(job.id, job);
  }
  get(id: string) {
    return this.jobs.get(id);
  }
  inState(state: JobState) {
    return [...this.jobs.values()].filter((j) => j.state === state);
  }
}

/** A runner that waits until the test releases it (or the job is cancelled). */
function controllableRunner() {
  const started: {
    job: JobRow;
    context: JobContext;
    release: (v?: unknown) => void;
    fail: (e: Error) => void;
  }[] = [];
  const runner: JobRunner = (job, context) =>
    new Promise((resolve, reject) => {
      context.signal.addEventListener('abort', () => reject(new DOMException('cancelled', 'AbortError')));
      started.push({
        job,
        context,
        release: () => resolve({ renderId: `render-of-${job.id}` }),
        fail: reject,
      });
    });
  const next = async () => {
    while (started.length === 0) await new Promise((r) => setTimeout(r, 1));
    return started.shift()!;
  };
  return { runner, next };
}

const queues: JobQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function newQueue(store: JobStore, runner: JobRunner) {
  const queue = new JobQueue(store, runner);
  queues.push(queue);
  const events: JobQueueEvent[] = [];
  queue.on((e) => events.push(e));
  const states = (id: string) =>
    events.flatMap((e) => (e.type === 'updated' && e.job.id === id ? [e.job.state] : []));
  return { queue, events, states };
}

const job = { kind: 'render' as const, panelId: 'p', input: { x: 1 }, totalSteps: 4 };

describe('the job state machine', () => {
  it('allows exactly queued -> running -> finished | failed | cancelled and queued -> cancelled', () => {
    expect(canTransition('queued', 'running')).toBe(true);
    expect(canTransition('queued', 'cancelled')).toBe(true);
    expect(canTransition('queued', 'finished')).toBe(false);
    expect(canTransition('running', 'finished')).toBe(true);
    expect(canTransition('running', 'failed')).toBe(true);
    expect(canTransition('running', 'cancelled')).toBe(true);
    expect(canTransition('running', 'queued')).toBe(false);
    for (const end of ['finished', 'failed', 'cancelled'] as const) {
      expect(isTerminal(end)).toBe(true);
      expect(canTransition(end, 'running')).toBe(false);
    }
  });
});

describe('JobQueue', () => {
  it('runs a job to finished with progress events, and stores the result', async () => {
    const store = new MemoryStore();
    const { runner, next } = controllableRunner();
    const { queue, events, states } = newQueue(store, runner);
    const queued = queue.enqueue(job);
    expect(queued.state).toBe('queued');
    const run = await next();
    run.context.reportProgress({ step: 2, totalSteps: 4, stage: 'scaffolding' }, 'f'.repeat(64));
    run.release();
    await queue.whenIdle();
    expect(states(queued.id)).toEqual(['queued', 'running', 'finished']);
    const progress = events.find((e) => e.type === 'progress');
    expect(progress).toMatchObject({
      previewHash: 'f'.repeat(64),
      job: { progress: { step: 2, stage: 'scaffolding' } },
    });
    expect(store.get(queued.id)).toMatchObject({
      state: 'finished',
      result: { renderId: `render-of-${queued.id}` },
      progress: { step: 4, stage: 'done' },
    });
    expect(store.get(queued.id)?.startedAt).not.toBeNull();
    expect(store.get(queued.id)?.finishedAt).not.toBeNull();
  });

  it('runs one job at a time, in order', async () => {
    const store = new MemoryStore();
    const { runner, next } = controllableRunner();
    const { queue } = newQueue(store, runner);
    const a = queue.enqueue(job);
    const b = queue.enqueue(job);
    const first = await next();
    expect(first.job.id).toBe(a.id);
    expect(store.get(b.id)?.state).toBe('queued');
    first.release();
    const second = await next();
    expect(second.job.id).toBe(b.id);
    second.release();
    await queue.whenIdle();
    expect(store.get(b.id)?.state).toBe('finished');
  });

  it('fails a job whose runner throws, keeping the message', async () => {
    const store = new MemoryStore();
    const { runner, next } = controllableRunner();
    const { queue, states } = newQueue(store, runner);
    const j = queue.enqueue(job);
    (await next()).fail(new Error('segmentMap: colors #00ff00 are not in the request'));
    await queue.whenIdle();
    expect(states(j.id)).toEqual(['queued', 'running', 'failed']);
    expect(store.get(j.id)?.error).toBe('segmentMap: colors #00ff00 are not in the request');
  });

  it('cancels a queued job at once and a running one through its signal', async () => {
    const store = new MemoryStore();
    const { runner, next } = controllableRunner();
    const { queue, states } = newQueue(store, runner);
    const running = queue.enqueue(job);
    const waiting = queue.enqueue(job);
    const run = await next();
    expect(queue.cancel(waiting.id).state).toBe('cancelled');
    queue.cancel(running.id);
    expect(run.context.signal.aborted).toBe(true);
    await queue.whenIdle();
    expect(states(running.id)).toEqual(['queued', 'running', 'cancelled']);
    expect(states(waiting.id)).toEqual(['queued', 'cancelled']);
    // An ended job stays as it is.
    expect(queue.cancel(running.id).state).toBe('cancelled');
    expect(() => queue.cancel('nope')).toThrow(/does not exist/);
  });

  it('ignores progress reported after a job ended', async () => {
    const store = new MemoryStore();
    const { runner, next } = controllableRunner();
    const { queue } = newQueue(store, runner);
    const j = queue.enqueue(job);
    const run = await next();
    run.release();
    await queue.whenIdle();
    run.context.reportProgress({ step: 1, totalSteps: 4, stage: 'global' });
    expect(store.get(j.id)?.state).toBe('finished');
    expect(store.get(j.id)?.progress.stage).toBe('done');
  });
});

describe('crash recovery with the database store', () => {
  let db: StudioDatabase | undefined;
  afterEach(() => db?.close());

  it('marks a job that was running when the process died as failed, and runs queued jobs again', async () => {
    db = openDatabase(':memory:');
    const story = db.stories.create({ title: 'S', castId: null });
    const panel = db.panels.create({ storyId: story.id, title: 'P', request: defaultPanelRequest() });
    const input = { ...job, panelId: panel.id };

    // First "process": one job running, one queued, then it dies (the queue is simply dropped).
    const { runner: hang, next } = controllableRunner();
    const first = new JobQueue(db.jobs, hang);
    const interrupted = first.enqueue(input);
    const waiting = first.enqueue(input);
    await next();
    expect(db.jobs.get(interrupted.id)?.state).toBe('running');

    // Second process: recovery.
    const ran: string[] = [];
    const { queue } = newQueue(db.jobs, async (j) => {
      ran.push(j.id);
      return null;
    });
    const recovered = queue.recover();
    expect(recovered.failed.map((j) => j.id)).toEqual([interrupted.id]);
    expect(recovered.queued.map((j) => j.id)).toEqual([waiting.id]);
    await queue.whenIdle();
    expect(db.jobs.get(interrupted.id)).toMatchObject({ state: 'failed', error: INTERRUPTED_MESSAGE });
    expect(db.jobs.get(waiting.id)?.state).toBe('finished');
    expect(ran).toEqual([waiting.id]);
    expect(
      db.jobs
        .list({ panelId: panel.id })
        .map((j) => j.state)
        .sort(),
    ).toEqual(['failed', 'finished']);
  });
});
