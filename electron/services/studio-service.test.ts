import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  ApiErrorInfo,
  ApiMethod,
  ApiResponse,
  ModelEntry,
  ModelInfo,
  Page,
  PageExportResult,
  Panel,
  Render,
  RenderFileLocation,
  StudioEvent,
} from '../api/contract.js';
import { encodePng } from '../../native-models/image/png.js';
import { readPdf, readZip } from '../../test/helpers/archives.js';
import { cleanupTempDirs, sharedRandomModel } from '../../test/helpers/random-model.js';
import type { EngineOptions, RenderOutput, RenderTask } from './render-engine.js';
import type { RenderCallOptions, RenderRunner } from './render-runner.js';
import { safeFileName, sniffMediaType, StudioService } from './studio-service.js';
import type { StudioHost } from './studio-service.js';

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
    const link = await error('panels.create', {
      storyId: story.id,
      request: { regions: [{ color: '#ff0000', prompt: 'a', person: 0 }] },
    });
    expect(link.issues?.[0]).toMatchObject({
      path: 'request.regions[0].person',
      message: 'links skeleton 1 but the panel has no skeletons',
    });
    const standing = {
      keypoints: Array.from({ length: 18 }, (_, i) => ({ x: 10, y: 3 * i, confidence: 1 })),
    };
    const linked = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: {
        regions: [{ color: '#ff0000', prompt: 'a', person: 0 }],
        pose: { width: 64, height: 64, people: [standing] },
      },
    });
    expect(linked.request.regions[0].person).toBe(0);
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
    // the segment's subject is the identifier: the class a cast's segmentation model knows (SAL)
    expect(runner.tasks[0].scene.request.segments).toEqual([
      { color: '#ff0000', prompt: 'sks woman waving', subject: 'sks' },
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

describe('StudioService pages', () => {
  /** A story with two panels, the first rendered. */
  async function storyWithPanels() {
    const story = await ok<{ id: string }>('stories.create', { title: 'The Lighthouse' });
    const rendered = await ok<Panel>('panels.create', {
      storyId: story.id,
      request: { prompt: 'a pier', steps: 2 },
    });
    const bare = await ok<Panel>('panels.create', { storyId: story.id });
    await ok('renders.renderPanel', { panelId: rendered.id });
    await service.queue.whenIdle();
    return { story, rendered, bare };
  }

  it('create with defaults, then like the last page; update slots, template, settings and lettering', async () => {
    const { story, rendered } = await storyWithPanels();
    const first = await ok<Page>('pages.create', { storyId: story.id });
    expect(first).toMatchObject({
      template: 'grid-2x2',
      size: 'a4',
      dpi: 300,
      gutterMm: 4,
      marginMm: 12,
      slots: [null, null, null, null],
      lettering: [],
    });
    const placed = await ok<Page>('pages.update', {
      id: first.id,
      template: 'grid-3x2',
      size: 'comic',
      gutterMm: 3,
      slots: [rendered.id, null, null, null, null, rendered.id],
      lettering: [
        {
          id: 'b',
          kind: 'speech',
          x: 0.1,
          y: 0.1,
          width: 0.3,
          height: 0.1,
          tail: { x: 0.2, y: 0.4 },
          text: 'Hi',
          fontSizePt: 11,
        },
      ],
    });
    expect(placed.slots).toEqual([rendered.id, null, null, null, null, rendered.id]);
    // a new page copies the last page's layout, with empty slots
    const second = await ok<Page>('pages.create', { storyId: story.id });
    expect(second).toMatchObject({ template: 'grid-3x2', size: 'comic', gutterMm: 3, lettering: [] });
    expect(second.slots).toEqual(new Array(6).fill(null));
    // changing only the template keeps the panels of the slots that remain
    const fewer = await ok<Page>('pages.update', { id: first.id, template: 'two-tiers' });
    expect(fewer.slots).toEqual([rendered.id, null]);
    expect(fewer.lettering).toHaveLength(1);
    expect((await ok<Page[]>('pages.list', { storyId: story.id })).map((p) => p.id)).toEqual([
      first.id,
      second.id,
    ]);
    expect(events).toContainEqual({ type: 'data.changed', entity: 'page', id: first.id, change: 'updated' });
  });

  it('refuses bad pages with the field at fault', async () => {
    const { story, rendered } = await storyWithPanels();
    const other = await ok<{ id: string }>('stories.create', { title: 'Other' });
    const stranger = await ok<Panel>('panels.create', { storyId: other.id });
    const page = await ok<Page>('pages.create', { storyId: story.id });

    const wrongCount = await error('pages.update', { id: page.id, slots: [rendered.id] });
    expect(wrongCount.issues?.[0]).toEqual({
      path: 'slots',
      message: 'must list 4 entries (one per slot of the grid-2x2 template), got 1',
    });
    expect(
      (await error('pages.update', { id: page.id, slots: [stranger.id, null, null, null] })).message,
    ).toBe(`pages.update: slots[0]: panel ${stranger.id} is not a panel of this story`);
    const noRoom = await error('pages.update', {
      id: page.id,
      template: 'grid-3x2',
      size: 'comic',
      marginMm: 60,
      gutterMm: 30,
    });
    expect(noRoom.code).toBe('invalid_input');
    expect(noRoom.message).toMatch(/leave panels of 9\.1 mm .* make the margin or gutter smaller/);
    expect((await error('pages.update', { id: page.id, template: 'mosaic' })).issues?.[0].path).toBe(
      'template',
    );
    expect((await error('pages.update', { id: page.id, dpi: 10 })).issues?.[0]).toMatchObject({
      path: 'dpi',
    });

    const balloon = {
      id: 'b',
      kind: 'speech',
      x: 0.8,
      y: 0.1,
      width: 0.3,
      height: 0.1,
      tail: null,
      text: '',
      fontSizePt: 11,
    };
    const edge = await error('pages.update', { id: page.id, lettering: [balloon] });
    expect(edge.issues?.[0]).toEqual({
      path: 'lettering[0].width',
      message: 'reaches past the right edge of the page',
    });
    const tailed = await error('pages.update', {
      id: page.id,
      lettering: [{ ...balloon, x: 0.1, kind: 'caption', tail: { x: 0.5, y: 0.5 } }],
    });
    expect(tailed.issues?.[0]).toEqual({
      path: 'lettering[0].tail',
      message: 'captions have no tail; use null',
    });
    const twice = await error('pages.update', {
      id: page.id,
      lettering: [
        { ...balloon, x: 0.1 },
        { ...balloon, x: 0.2 },
      ],
    });
    expect(twice.issues?.[0]).toEqual({ path: 'lettering[1].id', message: 'b is used twice on this page' });
    // nothing was stored
    expect(await ok<Page>('pages.get', { id: page.id })).toEqual(page);
  });

  it('delete with restore in place, and reorder', async () => {
    const { story } = await storyWithPanels();
    const [a, b, c] = [
      await ok<Page>('pages.create', { storyId: story.id }),
      await ok<Page>('pages.create', { storyId: story.id }),
      await ok<Page>('pages.create', { storyId: story.id }),
    ];
    await ok('pages.delete', { id: b.id });
    expect((await ok<Page[]>('pages.list', { storyId: story.id })).map((p) => p.id)).toEqual([a.id, c.id]);
    expect((await error('pages.get', { id: b.id })).code).toBe('not_found');
    await ok('pages.restore', { id: b.id });
    const order = await ok<Page[]>('pages.reorder', { storyId: story.id, pageIds: [c.id, b.id, a.id] });
    expect(order.map((p) => p.id)).toEqual([c.id, b.id, a.id]);
    expect((await error('pages.reorder', { storyId: story.id, pageIds: [c.id] })).issues?.[0].path).toBe(
      'pageIds',
    );
    const inserted = await ok<Page>('pages.create', { storyId: story.id, afterPageId: c.id });
    expect((await ok<Page[]>('pages.list', { storyId: story.id })).map((p) => p.id)).toEqual([
      c.id,
      inserted.id,
      b.id,
      a.id,
    ]);
  });

  it('exports PNG at page size x dpi, PDF and CBZ with one page per page, as downloads', async () => {
    const { story, rendered } = await storyWithPanels();
    const one = await ok<Page>('pages.create', {
      storyId: story.id,
      content: { template: 'grid-2x2', dpi: 100, slots: [rendered.id, null, null, null] },
    });
    await ok<Page>('pages.create', {
      storyId: story.id,
      content: { template: 'single', size: 'letter', dpi: 72, slots: [rendered.id] },
    });
    const png = await ok<PageExportResult>('pages.export', { format: 'png', pageId: one.id });
    expect(png).toMatchObject({
      status: 'ready',
      format: 'png',
      fileName: 'The Lighthouse - page 1.png',
      pageCount: 1,
    });
    if (png.status !== 'ready') throw new Error('expected a download');
    expect(png.file).toMatchObject({ mediaType: 'image/png', url: `/files/${png.file.hash}` });
    const meta = await sharp(await service.store.read(png.file.hash)).metadata();
    expect([meta.width, meta.height]).toEqual([827, 1169]);
    // exports are transient: the next start removes them
    expect(service.db.files.get(png.file.hash)?.transient).toBe(true);

    const pdf = await ok<PageExportResult>('pages.export', { format: 'pdf', storyId: story.id });
    if (pdf.status !== 'ready') throw new Error('expected a download');
    expect(pdf).toMatchObject({
      fileName: 'The Lighthouse.pdf',
      pageCount: 2,
      file: { mediaType: 'application/pdf' },
    });
    const read = readPdf(await service.store.read(pdf.file.hash));
    expect(read.pageCount).toBe(2);
    expect(read.pages[1].mediaBox).toEqual([0, 0, 612, 792]);

    const cbz = await ok<PageExportResult>('pages.export', { format: 'cbz', storyId: story.id });
    if (cbz.status !== 'ready') throw new Error('expected a download');
    expect(readZip(await service.store.read(cbz.file.hash)).map((e) => e.name)).toEqual([
      '001.png',
      '002.png',
      'ComicInfo.xml',
    ]);
  });

  it('refuses to export an empty page, a panel without a render or a deleted panel, naming the slot', async () => {
    const { story, rendered, bare } = await storyWithPanels();
    expect((await error('pages.export', { format: 'pdf', storyId: story.id })).message).toBe(
      'pages.export: "The Lighthouse" has no pages yet; add a page first',
    );
    const page = await ok<Page>('pages.create', { storyId: story.id, content: { dpi: 72 } });
    expect((await error('pages.export', { format: 'png', pageId: page.id })).message).toBe(
      'pages.export: page 1 is empty; drag panels into its slots or delete the page',
    );
    await ok('pages.update', { id: page.id, slots: [rendered.id, null, bare.id, null] });
    expect((await error('pages.export', { format: 'cbz', storyId: story.id })).message).toBe(
      'pages.export: page 1, slot 3: "Panel 2" has no render yet; render it or clear the slot',
    );
    await ok('pages.update', { id: page.id, slots: [rendered.id, null, null, null] });
    await ok('panels.delete', { id: rendered.id });
    expect((await error('pages.export', { format: 'png', pageId: page.id })).message).toBe(
      'pages.export: page 1, slot 1 shows a panel that was deleted; clear the slot or undo the deletion',
    );
    // the page still lists the panel, so undoing the deletion puts it back on the page
    expect((await ok<Page>('pages.get', { id: page.id })).slots[0]).toBe(rendered.id);
    expect((await error('pages.export', { format: 'gif', storyId: story.id })).code).toBe('invalid_input');
  });

  it('writes the export atomically where the host dialog says (Electron), or not at all when cancelled; reveals through the host', async () => {
    await service.close();
    let answer: string | null = join(dir, 'out', 'book.pdf');
    const asked: string[] = [];
    const shown: string[] = [];
    const host: StudioHost = {
      chooseSavePath: async (input) => {
        asked.push(input.defaultName);
        return answer;
      },
      chooseFolder: async () => null,
      showItemInFolder: (path) => shown.push(path),
    };
    service = await StudioService.open({
      dataDir: dir,
      mode: 'electron',
      fileUrl: (h) => `/files/${h}`,
      runner,
      host,
    });
    await mkdir(join(dir, 'out'));
    const { story, rendered } = await storyWithPanels();
    await ok('pages.create', {
      storyId: story.id,
      content: { dpi: 72, slots: [rendered.id, null, null, null] },
    });
    const saved = await ok<PageExportResult>('pages.export', { format: 'pdf', storyId: story.id });
    expect(asked).toEqual(['The Lighthouse.pdf']);
    expect(saved).toMatchObject({ status: 'saved', savedTo: join(dir, 'out', 'book.pdf'), pageCount: 1 });
    expect(readPdf(new Uint8Array(await readFile(join(dir, 'out', 'book.pdf')))).pageCount).toBe(1);
    answer = null;
    expect(await ok('pages.export', { format: 'cbz', storyId: story.id })).toEqual({
      status: 'cancelled',
      format: 'cbz',
    });
    // "Open file location" goes through the host too
    const render = (await ok<Render[]>('renders.list', { panelId: rendered.id }))[0];
    const located = await ok<RenderFileLocation>('renders.reveal', { id: render.id });
    expect(located.shown).toBe(true);
    expect(shown).toEqual([located.path]);
  });

  it('reveals a render as a named copy in the data folder: same bytes reuse it, other bytes get a number', async () => {
    const { story, rendered } = await storyWithPanels();
    const first = (await ok<Render[]>('renders.list', { panelId: rendered.id }))[0];
    const located = await ok<RenderFileLocation>('renders.reveal', { id: first.id });
    const named = join(dir, 'renders', 'The Lighthouse', `Panel 1 - seed ${first.seed}.png`);
    expect(located).toEqual({ path: named, shown: false });
    const storedPath = join(dir, 'files', first.image.hash.slice(0, 2), first.image.hash.slice(2));
    expect(new Uint8Array(await readFile(named))).toEqual(new Uint8Array(await readFile(storedPath)));
    expect(await ok('renders.reveal', { id: first.id })).toEqual(located);

    // the same seed at another size: other bytes under the same name
    await ok('panels.update', { id: rendered.id, request: { width: 32, height: 32 } });
    await ok('renders.renderPanel', { panelId: rendered.id, seed: first.seed });
    await service.queue.whenIdle();
    const second = (await ok<Render[]>('renders.list', { panelId: rendered.id }))[0];
    expect(second.image.hash).not.toBe(first.image.hash);
    expect((await ok<RenderFileLocation>('renders.reveal', { id: second.id })).path).toBe(
      join(dir, 'renders', 'The Lighthouse', `Panel 1 - seed ${first.seed} (2).png`),
    );
    expect(await ok('renders.reveal', { id: first.id })).toEqual(located);
    await ok('stories.update', { id: story.id, title: 'Night/Day' });
    expect((await ok<RenderFileLocation>('renders.reveal', { id: first.id })).path).toBe(
      join(dir, 'renders', 'Night Day', `Panel 1 - seed ${first.seed}.png`),
    );

    await ok('renders.delete', { id: second.id });
    expect(await error('renders.reveal', { id: second.id })).toMatchObject({ code: 'not_found' });
    await rm(storedPath);
    expect((await error('renders.reveal', { id: first.id })).message).toBe(
      'renders.reveal: the image of this render of "Panel 1" is missing from the library; render it again',
    );
  });

  it('names export files safely', () => {
    expect(safeFileName('A/B: "C"?')).toBe('A B C');
    expect(safeFileName('..')).toBe('comic');
    expect(safeFileName('  The Lighthouse  ')).toBe('The Lighthouse');
  });
});

describe('StudioService models', () => {
  /** A renderer per model folder that reports the folder's name; records what it was asked to load. */
  class NamedRunner extends FakeRunner {
    constructor(readonly engine: EngineOptions) {
      super();
    }
    override async info(): Promise<ModelInfo> {
      if (this.engine.modelDir?.includes('broken')) throw new Error('unet/model.onnx is missing');
      return { ...MODEL, name: basename(this.engine.modelDir ?? this.engine.randomModelDir) };
    }
  }
  let made: NamedRunner[];
  let closed: NamedRunner[];
  afterAll(cleanupTempDirs);

  async function openWithModels(): Promise<void> {
    await service.close();
    made = [];
    closed = [];
    service = await StudioService.open({
      dataDir: dir,
      mode: 'browser',
      fileUrl: (h) => `/files/${h}`,
      env: {},
      createRunner: (engine) => {
        const r = new NamedRunner(engine);
        r.close = async () => void closed.push(r);
        made.push(r);
        return r;
      },
    });
  }

  it('imports a valid folder, refuses a bad one with the file at fault, and switches the active model', async () => {
    await openWithModels();
    const good = await sharedRandomModel();
    const [builtIn] = await ok<ModelEntry[]>('models.list');
    expect(builtIn).toMatchObject({ id: 'default', kind: 'default', active: true });

    const empty = join(dir, 'not-a-model');
    await mkdir(empty);
    await writeFile(join(empty, 'readme.txt'), 'hello');
    const bad = await error('models.import', { path: empty });
    expect(bad.code).toBe('invalid_input');
    expect(bad.message).toBe(
      'The folder is not a model MSP Studio can use: scheduler/scheduler_config.json: is missing',
    );
    expect((await error('models.import', { path: 'relative/folder' })).issues?.[0].message).toMatch(
      /full path/,
    );

    const entry = await ok<ModelEntry>('models.import', { path: good });
    expect(entry).toMatchObject({
      kind: 'folder',
      source: 'folder',
      name: basename(good),
      path: good,
      active: false,
      details: { hasControlNet: true, hasVaeEncoder: true, sizes: { vaeScaleFactor: 8 } },
    });
    expect((await error('models.import', { path: good })).code).toBe('conflict');

    const info = await ok<ModelInfo>('models.setActive', { id: entry.id });
    expect(info).toMatchObject({ name: basename(good), entryId: entry.id });
    expect(made.at(-1)?.engine).toMatchObject({ modelDir: good, modelSource: 'folder' });
    expect(closed).toEqual([made[0]]);
    expect((await ok<ModelInfo>('models.getInfo')).entryId).toBe(entry.id);
    expect((await ok<ModelEntry[]>('models.list')).map((e) => [e.id, e.active])).toEqual([
      ['default', false],
      [entry.id, true],
    ]);

    // the choice survives a restart
    await openWithModels();
    expect(made[0].engine.modelDir).toBe(good);
    // removing the active folder goes back to the default, and leaves the files alone
    await ok('models.remove', { id: entry.id });
    expect((await ok<ModelEntry[]>('models.list')).map((e) => [e.id, e.active])).toEqual([['default', true]]);
    expect((await readFile(join(good, 'model_index.json'), 'utf8')).length).toBeGreaterThan(0);
    expect((await error('models.remove', { id: 'default' })).message).toMatch(
      /default model cannot be removed/,
    );
  }, 60_000);

  it('keeps the old model when the new one does not load, and refuses to switch during a render', async () => {
    await openWithModels();
    const good = await sharedRandomModel();
    // a folder that validates, but whose model fails to load in the renderer
    const broken = join(dir, 'broken');
    await cp(good, broken, { recursive: true });
    const entry = await ok<ModelEntry>('models.import', { path: broken });
    const failed = await error('models.setActive', { id: entry.id });
    expect(failed.message).toBe('broken cannot be used: unet/model.onnx is missing');
    expect((await ok<ModelInfo>('models.getInfo')).entryId).toBe('default');

    const story = await ok<{ id: string }>('stories.create', { title: 'S' });
    const panel = await ok<Panel>('panels.create', { storyId: story.id, request: { prompt: 'x', steps: 1 } });
    service.db.jobs.insert({
      id: 'running-job',
      kind: 'render',
      state: 'running',
      panelId: panel.id,
      input: {},
      progress: { step: 0, totalSteps: 1, stage: 'global' },
      error: null,
      result: null,
      preview: null,
      createdAt: new Date().toISOString(),
      startedAt: new Date().toISOString(),
      finishedAt: null,
    });
    const copy = await ok<ModelEntry>('models.import', { path: good });
    expect((await error('models.setActive', { id: copy.id })).code).toBe('conflict');
    expect((await error('models.pickFolder')).message).toMatch(/needs the desktop app; type the folder path/);
  }, 60_000);
});
