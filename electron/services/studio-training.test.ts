/**
 * Cast training through the studio service: payload validation, the checks that refuse a bad cast
 * before any training, and a real (tiny) training on a random model on the calling thread — cancelled
 * at a step, resumed from its checkpoint, registered as a model of the cast.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type {
  ApiErrorInfo,
  ApiMethod,
  CastTraining,
  ModelEntry,
  ModelInfo,
  Panel,
  StudioEvent,
  TrainingCheck,
} from '../api/contract.js';
import { encodePng } from '../../native-models/image/png.js';
import { createRandomModel } from '../../native-models/models/random-model.js';
import { identityReferenceImages } from '../../native-models/world/identity.js';
import type { RenderOutput, RenderTask } from './render-engine.js';
import type { RenderRunner } from './render-runner.js';
import { INTERRUPTED_MESSAGE } from './job-queue.js';
import { StudioService } from './studio-service.js';
import type { TrainingCallbacks, TrainingOutput, TrainingTask } from './training-engine.js';
import { InlineTrainingRunner } from './training-runner.js';
import type { TrainingRunner } from './training-runner.js';

const MODEL: ModelInfo = {
  name: 'fake',
  source: 'random',
  note: 'a fake model for tests',
  executionProvider: 'cpu',
  sizes: { defaultImageSize: 64, vaeScaleFactor: 8, latentChannels: 4, sequenceLength: 16, hiddenSize: 32 },
  hasControlNet: false,
  hasSegmentation: true,
  schedulers: ['ddim'],
  segmentationClasses: ['background', 'man', 'cat'],
};

/** Renders nothing; records the tasks (the scene a render of the trained model would get). */
class FakeRunner implements RenderRunner {
  tasks: RenderTask[] = [];
  async info() {
    return MODEL;
  }
  async render(task: RenderTask): Promise<RenderOutput> {
    this.tasks.push(task);
    throw new Error('not rendering in this test');
  }
  async close() {}
}

/** Reference pictures `from`.. of identity-set subject `index`, as PNG base64 uploads. */
async function pictures(index: number, count = 3, from = 0) {
  return Promise.all(
    identityReferenceImages(index)
      .slice(from, from + count)
      .map(async (scene, i) => ({
        data: Buffer.from(await encodePng(scene.image)).toString('base64'),
        mediaType: 'image/png',
        name: `${index}-${i}.png`,
      })),
  );
}

let root: string;
/** A random model whose tokenizer reserves two identifier tokens. */
let modelDir: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'msp-training-'));
  modelDir = await createRandomModel(join(root, 'base'));
  await writeFile(
    join(modelDir, 'tokenizer', 'rare_tokens.json'),
    JSON.stringify({ identifiers: ['sks', 'zwx'] }),
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let dir: string;
let service: StudioService;
let events: StudioEvent[];
beforeEach(async () => {
  dir = await mkdtemp(join(root, 'data-'));
  service = await StudioService.open({
    dataDir: dir,
    mode: 'browser',
    fileUrl: (h) => `/files/${h}`,
    runner: new FakeRunner(),
    createRunner: () => new FakeRunner(),
    trainingRunner: new InlineTrainingRunner(),
    env: { MSP_MODEL_DIR: modelDir },
  });
  events = [];
  service.onEvent((e) => events.push(e));
});
afterEach(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

async function ok<T>(method: ApiMethod, payload?: unknown): Promise<T> {
  const answer = await service.dispatch(method, payload);
  if (!answer.ok) throw new Error(`${method} failed: ${answer.error.message}`);
  return answer.value as T;
}

async function error(method: ApiMethod, payload?: unknown): Promise<ApiErrorInfo> {
  const answer = await service.dispatch(method, payload);
  if (answer.ok) throw new Error(`${method} should have failed`);
  return answer.error;
}

/** A subject with pictures of identity subject `index`. */
async function subject(name: string, token: string, classNoun: string, index: number, count = 3) {
  return ok<{ id: string; referenceImages: { hash: string }[] }>('subjects.create', {
    name,
    token,
    classNoun,
    referenceImages: await pictures(index, count),
  });
}

/** Small settings: the random model trains them in seconds. */
const QUICK = { steps: 4, batch: 2, classImages: 1, segmentationSteps: 1, previewEvery: 2 };

describe('training payloads', () => {
  it('refuses malformed payloads with the field at fault, before anything is queued', async () => {
    expect((await error('training.start', {})).issues?.[0]).toMatchObject({
      path: 'castId',
      message: 'is missing',
    });
    expect((await error('training.start', { castId: 7 })).issues?.[0].path).toBe('castId');
    const cast = await ok<{ id: string }>('casts.create', { name: 'Pair' });
    const steps = await error('training.start', { castId: cast.id, settings: { steps: 0 } });
    expect(steps.issues?.[0]).toMatchObject({ path: 'settings.steps', message: 'must be at least 1, got 0' });
    expect(
      (await error('training.start', { castId: cast.id, settings: { steps: 2.5 } })).issues?.[0].path,
    ).toBe('settings.steps');
    expect(
      (await error('training.start', { castId: cast.id, settings: { learningRate: 1 } })).issues?.[0].message,
    ).toBe('unknown field "learningRate"');
    expect((await error('training.cancel', { castId: cast.id, extra: 1 })).code).toBe('invalid_input');
    expect((await error('training.get', { castId: 'nobody' })).code).toBe('not_found');
    const odd = await error('training.start', { castId: cast.id, settings: { batch: 3, classImages: 2 } });
    expect(odd.issues?.[0]).toMatchObject({ path: 'settings.batch' });
    expect((await error('training.cancel', { castId: cast.id })).code).toBe('conflict');
    expect((await error('training.resume', { castId: cast.id })).code).toBe('conflict');
    expect(await ok('jobs.list')).toEqual([]);
  });
});

describe('training checks', () => {
  it('rejects a bad cast before any training, with the specific message', async () => {
    const cast = await ok<{ id: string }>('casts.create', { name: 'Pair' });
    const empty = await ok<TrainingCheck>('training.check', { castId: cast.id });
    expect(empty).toMatchObject({ ok: false, baseModelName: 'base' });
    expect(empty.problems[0]).toMatch(/has nobody in it yet/);

    // fewer than 3 pictures
    const captain = await subject('Captain', 'sks', 'man', 0);
    const mog = await subject('Mog', 'zwx', 'cat', 4, 2);
    await ok('casts.update', { id: cast.id, subjectIds: [captain.id, mog.id] });
    const few = await error('training.start', { castId: cast.id, settings: QUICK });
    expect(few.code).toBe('invalid_input');
    expect(few.message).toBe("Subject 'Mog' has 2 reference images; a subject needs at least 3");

    // a picture that cannot be read (the stored bytes went bad)
    await ok('subjects.addReferenceImages', { subjectId: mog.id, images: await pictures(4, 3, 2) });
    const [bad] = (await ok<{ referenceImages: { hash: string }[] }>('subjects.get', { id: mog.id }))
      .referenceImages;
    await writeFile(service.store.pathOf(bad.hash), 'not a picture any more');
    const unreadable = await ok<TrainingCheck>('training.check', { castId: cast.id });
    expect(unreadable.problems).toEqual([
      'Mog: reference picture 1 cannot be read (a corrupt or unsupported file); remove it',
    ]);
    await ok('subjects.removeReferenceImage', { subjectId: mog.id, hash: bad.hash });
    expect(await ok<TrainingCheck>('training.check', { castId: cast.id })).toMatchObject({
      ok: true,
      problems: [],
    });

    // more subjects than the model has identifier tokens, and a token it does not reserve
    const pip = await subject('Pip', 'qlv', 'dog', 5);
    await ok('casts.update', { id: cast.id, subjectIds: [captain.id, mog.id, pip.id] });
    expect((await error('training.start', { castId: cast.id })).message).toBe(
      '3 subjects, but the model reserves only 2 identifier tokens; split the cast',
    );
    await ok('casts.update', { id: cast.id, subjectIds: [captain.id, pip.id] });
    expect((await error('training.start', { castId: cast.id })).message).toMatch(
      /^'qlv' \(subject 'Pip'\) is not one of the model's identifier tokens: sks, zwx$/,
    );

    // two subjects with one identifier (the library refuses it; an older library may hold it)
    service.db.subjects.update(pip.id, { token: 'sks' });
    expect((await ok<TrainingCheck>('training.check', { castId: cast.id })).problems).toContain(
      "Subjects 'Captain' and 'Pip' both use the identifier 'sks'; each subject needs its own",
    );
    expect(await ok('jobs.list')).toEqual([]);
  });
});

describe('training a cast', () => {
  it('cancels at a step with a checkpoint, resumes from it, and registers the model of the cast', async () => {
    const captain = await subject('Captain', 'sks', 'man', 0);
    const mog = await subject('Mog', 'zwx', 'cat', 4);
    const cast = await ok<{ id: string }>('casts.create', { name: 'Pair', subjectIds: [captain.id, mog.id] });
    const baseUnet = await readFile(join(modelDir, 'unet', 'model.onnx'));

    // 1. start, cancel when the UNet reaches step 2
    const cancelAt = service.onEvent((e) => {
      if (e.type === 'training.progress' && e.progress.phase === 'unet' && e.progress.step === 2)
        void service.dispatch('training.cancel', { castId: cast.id });
    });
    const started = await ok<CastTraining>('training.start', { castId: cast.id, settings: QUICK });
    expect(started).toMatchObject({
      state: 'queued',
      baseModelName: 'base',
      settings: { ...QUICK, segmentationSteps: 1 },
    });
    expect((await error('training.start', { castId: cast.id, settings: QUICK })).code).toBe('conflict');
    await service.queue.whenIdle();
    cancelAt();
    const cancelled = await ok<CastTraining>('training.get', { castId: cast.id });
    expect(cancelled).toMatchObject({ state: 'cancelled', resumable: true, checkpointStep: 2 });
    expect(cancelled.losses.filter((l) => l.phase === 'unet').map((l) => l.step)).toEqual([1, 2]);
    expect(cancelled.previews.map((p) => p.step)).toEqual([2]);
    expect(cancelled.previews[0].images.map((i) => [i.subjectId, i.prompt])).toEqual([
      [captain.id, 'a sks man'],
      [mog.id, 'a zwx cat'],
    ]);
    // what the training saw: a cut-out per reference picture, and augmented samples
    const cutOuts = cancelled.samples.filter((s) => s.kind === 'cut-out');
    expect(cutOuts).toHaveLength(6);
    expect(new Set(cutOuts.map((c) => c.subjectId))).toEqual(new Set([captain.id, mog.id]));
    expect(cutOuts[0].method).toBe('segmentation'); // the base model's segmentation model cut it out
    expect(cancelled.samples.filter((s) => s.kind === 'sample').length).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'training.preview')).toBe(true);

    // 2. resume: the UNet continues after the checkpoint
    const resumedSteps: number[] = [];
    service.onEvent((e) => {
      if (e.type === 'training.progress' && e.progress.phase === 'unet') resumedSteps.push(e.progress.step);
    });
    const resumed = await ok<CastTraining>('training.resume', { castId: cast.id });
    expect(resumed).toMatchObject({ id: started.id, state: 'queued' });
    expect(resumed.jobId).not.toBe(started.jobId);
    await service.queue.whenIdle();
    expect(resumedSteps).toEqual([3, 4]);
    const done = await ok<CastTraining>('training.get', { castId: cast.id });
    expect(done).toMatchObject({ state: 'finished', resumable: false });
    expect(done.losses.filter((l) => l.phase === 'unet').map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(done.losses.filter((l) => l.phase === 'segmentation').map((l) => l.step)).toEqual([1]);
    expect(done.modelId).toBeDefined();

    // 3. the variant folder is a model of the library, tied to the cast
    const models = await ok<ModelEntry[]>('models.list');
    const trained = models.find((m) => m.id === done.modelId);
    expect(trained).toMatchObject({
      name: 'Pair (trained)',
      kind: 'folder',
      details: { hasSegmentation: true },
      cast: {
        castId: cast.id,
        castName: 'Pair',
        steps: 4,
        subjects: [
          { subjectId: captain.id, name: 'Captain', identifier: 'sks', classNoun: 'man' },
          { subjectId: mog.id, name: 'Mog', identifier: 'zwx', classNoun: 'cat' },
        ],
      },
    });
    const classes = JSON.parse(await readFile(join(trained!.path!, 'segmentation', 'classes.json'), 'utf8'));
    expect(classes).toEqual({ classes: ['background', 'sks', 'zwx'] });
    expect((await ok<{ state: string }[]>('jobs.list')).map((j) => j.state)).toEqual([
      'finished',
      'cancelled',
    ]);
    expect(await readFile(join(modelDir, 'unet', 'model.onnx'))).toEqual(baseUnet); // the base is untouched

    // 4. rendering with it: regions of the cast's subjects use the identifiers it was trained with
    await ok('subjects.update', { id: mog.id, token: 'qjd' }); // edited after training
    await ok('models.setActive', { id: done.modelId });
    const story = await ok<{ id: string }>('stories.create', { title: 'S', castId: cast.id });
    const map = await ok<{ hash: string }>('files.upload', {
      data: Buffer.from(
        await encodePng({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) }),
      ).toString('base64'),
      mediaType: 'image/png',
    });
    const panel = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: {
        prompt: 'a park',
        segmentMap: map,
        regions: [
          { color: '#ff0000', prompt: 'waving', subjectId: captain.id },
          { color: '#00ff00', prompt: 'sitting', subjectId: mog.id },
        ],
        sal: { weight: 1 },
      },
    });
    const resolved = await ok<{ ok: boolean; request?: { segments: unknown[] }; issues?: unknown[] }>(
      'panels.resolveRequest',
      { id: panel.id },
    );
    // the fake render model knows ['background', 'man', 'cat']: SAL cannot check 'sks' with it
    expect(resolved.ok).toBe(false);
    expect(resolved.issues?.[0]).toMatchObject({
      path: 'regions[0].subjectId',
      message: expect.stringMatching(/SAL checks this region for 'sks'/),
    });
    await ok('panels.update', { id: panel.id, request: { sal: { weight: 0 } } });
    const json = await ok<{ ok: true; request: { segments: unknown[] } }>('panels.resolveRequest', {
      id: panel.id,
    });
    expect(json.request.segments).toEqual([
      { color: '#ff0000', prompt: 'sks man waving', subject: 'sks' },
      { color: '#00ff00', prompt: 'zwx cat sitting', subject: 'zwx' },
    ]);
  }, 300_000);

  it('resumes a training the studio was stopped in the middle of, from its work folder', async () => {
    /** A trainer that saves a checkpoint at step 2 and then never returns (the process dies under it). */
    class DyingTrainer implements TrainingRunner {
      task: TrainingTask | undefined;
      async train(task: TrainingTask, callbacks: TrainingCallbacks = {}): Promise<TrainingOutput> {
        this.task = task;
        await mkdir(join(task.workDir, 'unet'), { recursive: true });
        await writeFile(join(task.workDir, 'unet', 'latest.json'), JSON.stringify({ step: 2 }));
        callbacks.onProgress?.({ phase: 'unet', step: 2, totalSteps: 4, loss: 0.5 });
        return new Promise<TrainingOutput>(() => undefined);
      }
      async close() {}
    }
    /** A trainer that "finishes" by writing the variant folder. */
    class FinishingTrainer implements TrainingRunner {
      task: TrainingTask | undefined;
      async train(task: TrainingTask): Promise<TrainingOutput> {
        this.task = task;
        await cp(modelDir, task.outDir, { recursive: true });
        return { stoppedBy: 'done', unetSteps: 4, lastLoss: 0.1, seconds: 1, manifest: {} as never };
      }
      async close() {}
    }
    const open = (trainingRunner: TrainingRunner) =>
      StudioService.open({
        dataDir: dir,
        mode: 'browser',
        fileUrl: (h) => `/files/${h}`,
        runner: new FakeRunner(),
        trainingRunner,
        env: { MSP_MODEL_DIR: modelDir },
      });

    await service.close();
    const dying = new DyingTrainer();
    const first = await open(dying);
    const captain = await first.dispatch('subjects.create', {
      name: 'Captain',
      token: 'sks',
      classNoun: 'man',
      referenceImages: await pictures(0),
    });
    const subjectId = (captain as { value: { id: string } }).value.id;
    const cast = (await first.dispatch('casts.create', { name: 'Solo', subjectIds: [subjectId] })) as {
      value: { id: string };
    };
    await first.dispatch('training.start', { castId: cast.value.id, settings: QUICK });
    await expect.poll(() => first.db.trainings.latest(cast.value.id)?.progress?.step).toBe(2);
    first.db.close(); // the process dies: the job stays 'running' in the database

    const finishing = new FinishingTrainer();
    service = await open(finishing);
    const interrupted = await ok<CastTraining>('training.get', { castId: cast.value.id });
    expect(interrupted).toMatchObject({
      state: 'failed',
      error: INTERRUPTED_MESSAGE,
      resumable: true,
      checkpointStep: 2,
      progress: { phase: 'unet', step: 2 },
    });
    expect(interrupted.losses).toEqual([{ phase: 'unet', step: 2, loss: 0.5 }]);
    await ok('training.resume', { castId: cast.value.id });
    await service.queue.whenIdle();
    expect(finishing.task).toMatchObject({
      resume: true,
      workDir: dying.task?.workDir,
      outDir: dying.task?.outDir,
    });
    expect(await ok<CastTraining>('training.get', { castId: cast.value.id })).toMatchObject({
      state: 'finished',
      modelId: expect.any(String),
    });
  });
});
