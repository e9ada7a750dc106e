import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiErrorInfo, ApiMethod, ApiResponse, ModelInfo, Panel, StudioEvent } from '../api/contract.js';
import { encodePng } from '../../native-models/image/png.js';
import type { RenderOutput, RenderTask } from './render-engine.js';
import type { RenderCallOptions, RenderRunner } from './render-runner.js';
import { sniffMediaType, StudioService } from './studio-service.js';

const MODEL: ModelInfo = {
  name: 'fake',
  source: 'random',
  note: 'a fake model for tests',
  executionProvider: 'cpu',
  sizes: { defaultImageSize: 64, vaeScaleFactor: 8, latentChannels: 4, sequenceLength: 16, hiddenSize: 32 },
  hasControlNet: false,
  hasSegmentation: false,
  schedulers: ['ddim'],
  rareTokens: ['qjd', 'sks'],
};

/** Renders a grey square instantly; records the tasks it got. */
class FakeRunner implements RenderRunner {
  tasks: RenderTask[] = [];
  async info() {
    return MODEL;
  }
  async render(task: RenderTask, options: RenderCallOptions = {}): Promise<RenderOutput> {
    this.tasks.push(task);
    const { width = 64, height = 64 } = task.scene.request;
    options.onProgress?.({ step: 1, totalSteps: task.scene.request.steps, stage: 'global' });
    const png = await encodePng({ width, height, data: new Uint8Array(width * height * 3).fill(128) });
    return {
      png,
      request: { ...task.scene.request, seed: task.scene.request.seed ?? 1, width, height },
      warnings: [],
      width,
      height,
      modelName: 'fake',
    };
  }
  async close() {}
}

let dir: string;
let service: StudioService;
let runner: FakeRunner;
let events: StudioEvent[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msp-service-'));
  runner = new FakeRunner();
  service = await StudioService.open({
    dataDir: dir,
    mode: 'browser',
    fileUrl: (h) => `/files/${h}`,
    runner,
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

async function error(method: unknown, payload?: unknown): Promise<ApiErrorInfo> {
  const answer: ApiResponse<unknown> = await service.dispatch(method, payload);
  if (answer.ok) throw new Error(`${String(method)} should have failed`);
  return answer.error;
}

const png = async (rgb: [number, number, number] = [255, 0, 0], size = 16) => {
  const data = new Uint8Array(size * size * 3).map((_, i) => rgb[i % 3]);
  return Buffer.from(await encodePng({ width: size, height: size, data })).toString('base64');
};

describe('StudioService validation', () => {
  it('refuses methods that are not on the allow-list', async () => {
    for (const method of ['constructor', '__proto__.x', 'stories.toString', 'db.close', 42, undefined]) {
      expect((await error(method)).code).toBe('unknown_method');
    }
  });

  it('names the field of an invalid payload', async () => {
    const e = await error('stories.create', { title: '' });
    expect(e).toMatchObject({ code: 'invalid_input', issues: [{ path: 'title', message: 'is empty' }] });
    expect(e.message).toBe('stories.create: title: is empty');
    expect((await error('stories.create', { title: 'ok', colour: 'x' })).issues?.[0]).toMatchObject({
      message: 'unknown field "colour"',
    });
    expect((await error('stories.create', 'The Lighthouse')).issues?.[0].message).toMatch(/must be object/);
    expect((await error('stories.list', { unexpected: true })).code).toBe('invalid_input');
  });

  it('validates nested panel requests field by field', async () => {
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const e = await error('panels.create', {
      storyId: story.id,
      request: { steps: 0, scheduler: 'plms', regions: [{ color: 'red', prompt: 'x' }], sal: { every: 0 } },
    });
    expect(e.issues?.map((i) => i.path).sort()).toEqual(
      ['request.regions[0].color', 'request.sal.every', 'request.scheduler', 'request.steps'].sort(),
    );
    expect(e.issues?.find((i) => i.path === 'request.regions[0].color')?.message).toBe(
      '"red" is not a #rrggbb color',
    );
    const dup = await error('panels.create', {
      storyId: story.id,
      request: {
        regions: [
          { color: '#F00', prompt: 'a' },
          { color: '#ff0000', prompt: 'b' },
        ],
      },
    });
    expect(dup.issues?.[0]).toMatchObject({
      path: 'request.regions[1].color',
      message: '#ff0000 is already used by regions[0]',
    });
    const pose = await error('panels.setPose', {
      panelId: 'x',
      pose: { width: 64, height: 64, people: [{ keypoints: [{ x: 1, y: 2, confidence: 1 }] }] },
    });
    expect(pose.issues?.[0]).toMatchObject({ path: 'pose.people[0].keypoints' });
  });

  it('never turns client text into a path: files are named by hash only', async () => {
    const traversal = await error('files.get', { hash: '../../../../etc/passwd' });
    expect(traversal).toMatchObject({ code: 'invalid_input', issues: [{ path: 'hash' }] });
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const panel = await ok<Panel>('panels.create', { storyId: story.id });
    const asPath = await error('panels.update', {
      id: panel.id,
      request: { segmentMap: { hash: '/etc/passwd' } },
    });
    expect(asPath.issues?.[0].path).toBe('request.segmentMap.hash');
    const unknown = await error('panels.update', {
      id: panel.id,
      request: { segmentMap: { hash: 'a'.repeat(64) } },
    });
    expect(unknown.issues?.[0]).toMatchObject({
      path: 'request.segmentMap',
      message: expect.stringMatching(/not in the library/),
    });
    expect((await error('files.get', { hash: 'b'.repeat(64) })).code).toBe('not_found');
  });

  it('checks uploads: base64, declared type against the bytes, readable images', async () => {
    const text = Buffer.from('not an image').toString('base64');
    expect((await error('files.upload', { data: text, mediaType: 'image/png' })).message).toMatch(
      /is not a image\/png file/,
    );
    expect(
      (await error('files.upload', { data: 'data:image/png;base64,AAAA', mediaType: 'image/png' }))
        .issues?.[0].path,
    ).toBe('data');
    expect((await error('files.upload', { data: text, mediaType: 'text/html' })).message).toMatch(
      /not accepted/,
    );
    const corrupt = Buffer.from(Buffer.from(await png(), 'base64').subarray(0, 40)).toString('base64');
    expect(
      (await error('files.upload', { data: corrupt, mediaType: 'image/png', name: 'cut.png' })).message,
    ).toMatch(/cut.png is not a readable image/);
    const ref = await ok<{ hash: string; width: number; url: string }>('files.upload', {
      data: await png(),
      mediaType: 'image/png',
    });
    expect(ref).toMatchObject({ width: 16, url: `/files/${ref.hash}` });
    expect(sniffMediaType(new TextEncoder().encode(' {"people": []}'))).toBe('application/json');
  });
});

describe('StudioService library', () => {
  it('suggests distinct tokens and refuses a token in use', async () => {
    const first = await ok<{ token: string }>('subjects.suggestToken');
    expect(first.token).toBe('qjd'); // the model's own list comes first
    const mara = await ok<{ id: string; token: string }>('subjects.create', {
      name: 'Mara',
      classNoun: 'woman',
    });
    expect(mara.token).toBe(first.token);
    const next = await ok<{ token: string }>('subjects.suggestToken');
    expect(next.token).not.toBe(mara.token);
    const clash = await error('subjects.create', {
      name: 'Pip',
      classNoun: 'cat',
      token: mara.token.toUpperCase(),
    });
    expect(clash).toMatchObject({ code: 'conflict', issues: [{ path: 'token' }] });
    expect(
      (await error('subjects.create', { name: 'Pip', classNoun: 'cat', token: 'two words' })).issues?.[0]
        .path,
    ).toBe('token');
  });

  it('adds reference images: duplicates noticed by hash, bad files refused with the reason', async () => {
    const subject = await ok<{ id: string }>('subjects.create', { name: 'Pip', classNoun: 'cat' });
    const red = await png([255, 0, 0]);
    const result = await ok<{
      added: unknown[];
      duplicates: unknown[];
      rejected: { index: number; reason: string }[];
      subject: { referenceImages: unknown[] };
    }>('subjects.addReferenceImages', {
      subjectId: subject.id,
      images: [
        { data: red, mediaType: 'image/png', name: 'pip.png' },
        { data: red, mediaType: 'image/png', name: 'pip-again.png' },
        { data: Buffer.from('GIF89a').toString('base64'), mediaType: 'image/gif', name: 'anim.gif' },
        { data: Buffer.from('hello').toString('base64'), mediaType: 'image/jpeg', name: 'notes.jpg' },
      ],
    });
    expect(result.added).toHaveLength(1);
    expect(result.duplicates).toHaveLength(1);
    expect(result.rejected.map((r) => r.index)).toEqual([2, 3]);
    expect(result.rejected[1].reason).toMatch(/notes.jpg is not a image\/jpeg file/);
    expect(result.subject.referenceImages).toHaveLength(1);
  });

  it('casts and stories refer only to live records', async () => {
    const e = await error('casts.create', { name: 'C', subjectIds: ['nobody'] });
    expect(e.issues?.[0]).toMatchObject({ path: 'subjectIds[0]' });
    expect((await error('stories.create', { title: 'S', castId: 'nope' })).code).toBe('not_found');
  });
});

describe('StudioService panels', () => {
  it('create, duplicate, delete with undo, reorder', async () => {
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const a = await ok<Panel>('panels.create', { storyId: story.id, request: { prompt: 'a pier' } });
    const b = await ok<Panel>('panels.create', { storyId: story.id });
    expect(b.title).toBe('Panel 2');
    const copy = await ok<Panel>('panels.duplicate', { id: a.id });
    expect(copy.request.prompt).toBe('a pier');
    const order = async () => (await ok<{ panelIds: string[] }>('stories.get', { id: story.id })).panelIds;
    expect(await order()).toEqual([a.id, copy.id, b.id]);
    await ok('panels.delete', { id: copy.id });
    expect(await order()).toEqual([a.id, b.id]);
    await ok('panels.restore', { id: copy.id });
    expect(await order()).toEqual([a.id, copy.id, b.id]);
    await ok('panels.reorder', { storyId: story.id, panelIds: [b.id, a.id, copy.id] });
    expect(await order()).toEqual([b.id, a.id, copy.id]);
    expect((await error('panels.reorder', { storyId: story.id, panelIds: [b.id] })).issues?.[0].path).toBe(
      'panelIds',
    );
    expect(
      events.some((e) => e.type === 'data.changed' && e.entity === 'panel' && e.change === 'deleted'),
    ).toBe(true);
  });

  it('merges request patches and keeps the rest', async () => {
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const panel = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: { prompt: 'a', steps: 20 },
    });
    const updated = await ok<Panel>('panels.update', { id: panel.id, request: { sal: { weight: 0.5 } } });
    expect(updated.request).toMatchObject({
      prompt: 'a',
      steps: 20,
      sal: { weight: 0.5, start: 0, end: 0.5, every: 1 },
    });
  });

  it('refuses to render with the reason next to the field', async () => {
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const panel = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: { prompt: '', regions: [{ color: '#ff0000', prompt: '' }], width: 60 },
    });
    const e = await error('renders.renderPanel', { panelId: panel.id });
    expect(e.code).toBe('invalid_input');
    expect(e.issues?.map((i) => i.path).sort()).toEqual(
      ['prompt', 'regions[0].prompt', 'segmentMap', 'width'].sort(),
    );
    const resolved = await ok<{ ok: boolean }>('panels.resolveRequest', { id: panel.id });
    expect(resolved.ok).toBe(false);
    const pose = { width: 64, height: 64, people: [{ keypoints: Array.from({ length: 18 }, () => null) }] };
    await ok('panels.update', { id: panel.id, request: { prompt: 'p', regions: [], width: null, pose } });
    const noControlNet = await error('renders.renderPanel', { panelId: panel.id });
    expect(noControlNet.issues?.[0]).toMatchObject({
      path: 'pose',
      message: expect.stringMatching(/no ControlNet/),
    });
  });

  it('renders through the queue: subject tokens in region prompts, render history, seed shown', async () => {
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const mara = await ok<{ id: string; token: string }>('subjects.create', {
      name: 'Mara',
      classNoun: 'woman',
      token: 'sks',
    });
    const map = await ok<{ hash: string }>('files.upload', {
      data: await png([255, 0, 0], 64),
      mediaType: 'image/png',
    });
    const panel = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: {
        prompt: 'a pier at dusk',
        segmentMap: map,
        regions: [{ color: '#ff0000', prompt: 'waving', subjectId: mara.id }],
        steps: 3,
      },
    });
    const job = await ok<{ id: string }>('renders.renderPanel', { panelId: panel.id, seed: 42 });
    await service.queue.whenIdle();
    expect(runner.tasks[0].scene.request.segments).toEqual([
      { color: '#ff0000', prompt: 'sks woman waving', subject: mara.id },
    ]);
    expect(runner.tasks[0].scene.files.segmentMap).toBe(service.store.pathOf(map.hash));
    const after = await ok<Panel>('panels.get', { id: panel.id });
    expect(after.renders).toHaveLength(1);
    expect(after.renders[0]).toMatchObject({
      jobId: job.id,
      seed: 42,
      request: { seed: 42, width: 64, height: 64 },
    });
    const finished = events.find((e) => e.type === 'job.finished');
    expect(finished).toMatchObject({
      job: { id: job.id, state: 'finished' },
      render: { id: after.renders[0].id },
    });
    const jobs = await ok<{ id: string; state: string }[]>('jobs.list', { panelId: panel.id });
    expect(jobs).toMatchObject([{ id: job.id, state: 'finished' }]);
    // An unlocked seed is drawn per render and shown on the panel.
    await ok('renders.renderPanel', { panelId: panel.id });
    await service.queue.whenIdle();
    const seeds = (await ok<Panel>('panels.get', { id: panel.id })).renders.map((r) => r.seed);
    expect(seeds).toHaveLength(2);
    expect((await ok<Panel>('panels.get', { id: panel.id })).request.seed).toBe(seeds[0]);
  });

  it('renders a panel with nothing painted from its prompt (a blank segment map)', async () => {
    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const panel = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: { prompt: 'a lighthouse', steps: 2 },
    });
    await ok('renders.renderPanel', { panelId: panel.id });
    await service.queue.whenIdle();
    expect(runner.tasks[0].scene.request.segments).toEqual([]);
    expect((await ok<Panel>('panels.get', { id: panel.id })).renders).toHaveLength(1);
  });
});
