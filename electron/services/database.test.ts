import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, openDatabase } from './database.js';
import type { StudioDatabase } from './database.js';
import { defaultPanelRequest } from './panel-request.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msp-db-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every shipped schema version: 1, 2, ... */
const VERSIONS = loadMigrations().map((m) => m.version);

describe('migrations', () => {
  it('are numbered from 1 without gaps, and include pages and model folders', () => {
    expect(VERSIONS).toEqual(VERSIONS.map((_, i) => i + 1));
    expect(loadMigrations().map((m) => m.name)).toEqual(
      expect.arrayContaining(['initial', 'pages', 'model_folders']),
    );
  });

  it('apply on a fresh database in WAL mode with foreign keys, and are idempotent', () => {
    const path = join(dir, 'studio.db');
    const db = openDatabase(path);
    expect(db.schemaVersions()).toEqual(VERSIONS);
    expect(db.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.db.pragma('foreign_keys', { simple: true })).toBe(1);
    const tables = (
      db.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    )
      .map((r) => r.name)
      .sort();
    expect(tables).toEqual(
      expect.arrayContaining([
        'files',
        'subjects',
        'casts',
        'stories',
        'panels',
        'renders',
        'jobs',
        'pages',
        'page_slots',
        'page_lettering',
        'model_folders',
        'settings',
        'schema_migrations',
      ]),
    );
    expect(migrate(db.db, loadMigrations())).toEqual([]);
    db.close();
    const again = openDatabase(path);
    expect(again.schemaVersions()).toEqual(VERSIONS);
    again.close();
  });

  it('migrate from the previous schema: a new numbered file applies on top and keeps the data', async () => {
    const path = join(dir, 'studio.db');
    const v1 = openDatabase(path);
    const story = v1.stories.create({ title: 'Kept', castId: null });
    v1.close();

    const migrations = join(dir, 'migrations');
    await mkdir(migrations);
    for (const m of loadMigrations()) {
      await writeFile(join(migrations, `${String(m.version).padStart(3, '0')}_${m.name}.sql`), m.sql);
    }
    const next = VERSIONS.length + 1;
    await writeFile(
      join(migrations, `${String(next).padStart(3, '0')}_story_notes.sql`),
      'ALTER TABLE stories ADD COLUMN notes TEXT;',
    );
    const v2 = openDatabase(path, { migrations: loadMigrations(migrations) });
    expect(v2.schemaVersions()).toEqual([...VERSIONS, next]);
    expect(v2.stories.get(story.id)?.title).toBe('Kept');
    expect(v2.db.prepare('SELECT notes FROM stories WHERE id = ?').get(story.id)).toEqual({ notes: null });
    v2.close();
  });

  it('refuse a database written by a newer MSP Studio, and gaps in the numbering', async () => {
    const db = new Database(':memory:');
    migrate(db, loadMigrations());
    db.prepare("INSERT INTO schema_migrations VALUES (7, 'future', 'x')").run();
    expect(() => migrate(db, loadMigrations())).toThrow(/newer than this MSP Studio knows/);
    db.close();
    const migrations = join(dir, 'gap');
    await mkdir(migrations);
    await writeFile(join(migrations, '001_a.sql'), 'SELECT 1;');
    await writeFile(join(migrations, '003_c.sql'), 'SELECT 1;');
    expect(() => loadMigrations(migrations)).toThrow(/migration 002 is missing/);
  });

  it('roll back a failing migration as a whole', () => {
    const db = new Database(':memory:');
    const bad = [
      ...loadMigrations(),
      {
        version: VERSIONS.length + 1,
        name: 'bad',
        sql: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);',
      },
    ];
    expect(() => migrate(db, bad)).toThrow();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(db.prepare('SELECT max(version) AS v FROM schema_migrations').get()).toEqual({
      v: VERSIONS.length,
    });
    db.close();
  });
});

describe('repositories', () => {
  let db: StudioDatabase;
  beforeEach(() => {
    db = openDatabase(':memory:');
  });
  afterEach(() => db.close());

  const file = (hash: string) =>
    db.files.upsert({ hash, mediaType: 'image/png', size: 3, width: 1, height: 1, transient: false });

  it('subjects: create, read, update images and token, soft delete and restore', () => {
    file('a'.repeat(64));
    file('b'.repeat(64));
    const s = db.subjects.create({
      name: 'Mara',
      token: 'sks',
      classNoun: 'woman',
      images: ['a'.repeat(64)],
    });
    expect(db.subjects.get(s.id)).toMatchObject({ name: 'Mara', token: 'sks', images: ['a'.repeat(64)] });
    expect(db.subjects.tokenInUse('SKS')).toBe(true);
    expect(db.subjects.tokenInUse('sks', s.id)).toBe(false);
    db.subjects.update(s.id, { images: ['b'.repeat(64), 'a'.repeat(64)], classNoun: 'girl' });
    expect(db.subjects.get(s.id)).toMatchObject({
      classNoun: 'girl',
      images: ['b'.repeat(64), 'a'.repeat(64)],
    });
    expect(db.subjects.softDelete(s.id)).toBe(true);
    expect(db.subjects.list()).toEqual([]);
    expect(db.subjects.tokenInUse('sks')).toBe(false);
    expect(db.subjects.restore(s.id)).toBe(true);
    expect(db.subjects.list().map((x) => x.id)).toEqual([s.id]);
  });

  it('subject images must be known files (foreign keys are on)', () => {
    expect(() =>
      db.subjects.create({ name: 'X', token: 'x1', classNoun: 'cat', images: ['c'.repeat(64)] }),
    ).toThrow(/FOREIGN KEY/);
    expect(db.subjects.list()).toEqual([]);
  });

  it('casts keep member order and hide deleted subjects', () => {
    const a = db.subjects.create({ name: 'A', token: 'aa', classNoun: 'cat' });
    const b = db.subjects.create({ name: 'B', token: 'bb', classNoun: 'dog' });
    const cast = db.casts.create({ name: 'Friends', subjectIds: [b.id, a.id] });
    expect(cast.subjectIds).toEqual([b.id, a.id]);
    db.subjects.softDelete(b.id);
    expect(db.casts.get(cast.id)?.subjectIds).toEqual([a.id]);
    expect(db.casts.update(cast.id, { name: 'Pals' })?.name).toBe('Pals');
    expect(db.casts.softDelete(cast.id)).toBe(true);
    expect(db.casts.list()).toEqual([]);
  });

  it('stories and panels: insert at a position, reorder, delete and restore in place', () => {
    const story = db.stories.create({ title: 'Story', castId: null });
    const request = defaultPanelRequest();
    const p1 = db.panels.create({ storyId: story.id, title: '1', request });
    const p2 = db.panels.create({ storyId: story.id, title: '2', request });
    const p3 = db.panels.create({ storyId: story.id, title: '3', request });
    const p0 = db.panels.create({ storyId: story.id, title: '0', request, index: 0 });
    expect(db.panels.ids(story.id)).toEqual([p0.id, p1.id, p2.id, p3.id]);

    db.panels.reorder(story.id, [p3.id, p2.id, p1.id, p0.id]);
    expect(db.panels.ids(story.id)).toEqual([p3.id, p2.id, p1.id, p0.id]);
    expect(() => db.panels.reorder(story.id, [p3.id, p2.id, p1.id])).toThrow(/missing from the new order/);
    expect(() => db.panels.reorder(story.id, [p3.id, p3.id, p1.id, p0.id])).toThrow(/listed twice/);
    expect(() => db.panels.reorder(story.id, [p3.id, p2.id, p1.id, 'x'])).toThrow(
      /not a panel of this story/,
    );
    expect(db.panels.ids(story.id)).toEqual([p3.id, p2.id, p1.id, p0.id]);

    expect(db.panels.softDelete(p2.id)).toBe(true);
    expect(db.panels.ids(story.id)).toEqual([p3.id, p1.id, p0.id]);
    expect(db.panels.list(story.id).map((p) => p.position)).toEqual([0, 1, 2]);
    expect(db.panels.restore(p2.id)).toBe(true);
    expect(db.panels.ids(story.id)).toEqual([p3.id, p2.id, p1.id, p0.id]);

    const updated = db.panels.update(p1.id, { title: 'One', request: { ...request, prompt: 'a pier' } });
    expect(updated).toMatchObject({ title: 'One', request: { prompt: 'a pier' } });
    expect(db.stories.update(story.id, { title: 'Renamed' })?.title).toBe('Renamed');
    expect(db.stories.softDelete(story.id)).toBe(true);
    expect(db.stories.list()).toEqual([]);
    expect(db.stories.restore(story.id)).toBe(true);
  });

  it('renders: newest first, soft delete', () => {
    file('d'.repeat(64));
    const story = db.stories.create({ title: 'S', castId: null });
    const panel = db.panels.create({ storyId: story.id, title: 'P', request: defaultPanelRequest() });
    const base = {
      panelId: panel.id,
      jobId: 'j',
      imageHash: 'd'.repeat(64),
      request: { version: 1 },
      panelRequest: defaultPanelRequest(),
      modelName: 'tiny',
      durationMs: 12.4,
      warnings: ['w'],
    };
    const r1 = db.renders.create({ ...base, seed: 1 });
    const r2 = db.renders.create({ ...base, seed: 2 });
    expect(db.renders.list(panel.id).map((r) => r.id)).toEqual([r2.id, r1.id]);
    expect(db.renders.get(r1.id)).toMatchObject({ seed: 1, durationMs: 12, warnings: ['w'] });
    db.renders.softDelete(r2.id);
    expect(db.renders.list(panel.id).map((r) => r.id)).toEqual([r1.id]);
  });

  it('files: transient previews are listed until something refers to them', () => {
    db.files.upsert({
      hash: 'e'.repeat(64),
      mediaType: 'image/png',
      size: 1,
      width: null,
      height: null,
      transient: true,
    });
    expect(db.files.listTransient()).toEqual(['e'.repeat(64)]);
    // A permanent use of the same bytes makes the file permanent.
    db.files.upsert({
      hash: 'e'.repeat(64),
      mediaType: 'image/png',
      size: 1,
      width: null,
      height: null,
      transient: false,
    });
    expect(db.files.listTransient()).toEqual([]);
  });
  it('pages: slots and lettering round-trip, order with delete and restore in place', () => {
    const story = db.stories.create({ title: 'S', castId: null });
    const panel = db.panels.create({ storyId: story.id, title: 'P', request: defaultPanelRequest() });
    const settings = { size: 'comic' as const, dpi: 300, gutterMm: 3.5, marginMm: 10 };
    const balloon = {
      id: 'b1',
      kind: 'speech' as const,
      x: 0.1,
      y: 0.2,
      width: 0.3,
      height: 0.1,
      tail: { x: 0.25, y: 0.5 },
      text: 'Hello',
      fontSizePt: 11,
    };
    const caption = { ...balloon, id: 'c1', kind: 'caption' as const, tail: null, text: 'Later' };
    const a = db.pages.create({
      storyId: story.id,
      content: {
        template: 'grid-2x2',
        settings,
        slots: [null, panel.id, null, null],
        lettering: [caption, balloon],
      },
    });
    expect(a.slots).toEqual([null, panel.id, null, null]);
    expect(a.settings).toEqual(settings);
    expect(a.lettering).toEqual([caption, balloon]);
    const b = db.pages.create({
      storyId: story.id,
      content: { template: 'single', settings, slots: [null], lettering: [] },
    });
    const c = db.pages.create({
      storyId: story.id,
      content: { template: 'single', settings, slots: [null], lettering: [] },
      index: 0,
    });
    expect(db.pages.ids(story.id)).toEqual([c.id, a.id, b.id]);

    const updated = db.pages.update(a.id, {
      template: 'splash-2',
      settings: { ...settings, dpi: 150 },
      slots: [panel.id, null, null],
      lettering: [balloon],
    });
    expect(updated?.slots).toEqual([panel.id, null, null]);
    expect(updated?.settings.dpi).toBe(150);
    expect(updated?.lettering.map((l) => l.id)).toEqual(['b1']);

    expect(db.pages.softDelete(a.id)).toBe(true);
    expect(db.pages.ids(story.id)).toEqual([c.id, b.id]);
    expect(db.pages.update(a.id, updated!)).toBeUndefined();
    expect(db.pages.restore(a.id)).toBe(true);
    expect(db.pages.ids(story.id)).toEqual([c.id, a.id, b.id]);
    db.pages.reorder(story.id, [b.id, a.id, c.id]);
    expect(db.pages.list(story.id).map((p) => p.id)).toEqual([b.id, a.id, c.id]);
    expect(() => db.pages.reorder(story.id, [b.id, a.id])).toThrow(/is missing from the new order/);
    // a slot must name a real panel (foreign keys)
    expect(() =>
      db.pages.update(b.id, { template: 'single', settings, slots: ['no-such-panel'], lettering: [] }),
    ).toThrow(/FOREIGN KEY/);
  });

  it('model folders and settings', () => {
    const info = {
      sizes: {
        defaultImageSize: 64,
        vaeScaleFactor: 8,
        latentChannels: 4,
        sequenceLength: 16,
        hiddenSize: 32,
      },
      hasControlNet: true,
      hasVaeEncoder: true,
      hasSegmentation: false,
    };
    const f = db.modelFolders.create({ path: '/models/tiny', name: 'tiny', info });
    expect(db.modelFolders.byPath('/models/tiny')).toEqual(f);
    expect(db.modelFolders.list().map((r) => r.info)).toEqual([info]);
    expect(() => db.modelFolders.create({ path: '/models/tiny', name: 'again', info })).toThrow(/UNIQUE/);
    expect(db.modelFolders.delete(f.id)).toBe(true);
    expect(db.modelFolders.list()).toEqual([]);
    expect(db.settings.get('active_model')).toBeUndefined();
    db.settings.set('active_model', 'x');
    db.settings.set('active_model', 'y');
    expect(db.settings.get('active_model')).toBe('y');
    db.settings.delete('active_model');
    expect(db.settings.get('active_model')).toBeUndefined();
  });

  it('cast trainings: the newest per cast, a loss curve that a resumed step rewrites, previews by step', () => {
    const info = {
      sizes: {
        defaultImageSize: 64,
        vaeScaleFactor: 8,
        latentChannels: 4,
        sequenceLength: 16,
        hiddenSize: 32,
      },
      hasControlNet: false,
      hasVaeEncoder: true,
      hasSegmentation: true,
    };
    const cast = db.casts.create({ name: 'Pair', subjectIds: [] });
    const other = db.casts.create({ name: 'Other', subjectIds: [] });
    const input = {
      jobId: 'job-1',
      settings: { steps: 4, classImages: 1, segmentationSteps: 1, previewEvery: 2, batch: 2 },
      subjects: [],
      baseModelDir: '/models/tiny-sd',
      baseModelName: 'tiny-sd',
      workDir: '/data/training/x',
      outDir: '/data/models/pair',
    };
    const first = db.trainings.create({ ...input, castId: cast.id });
    const second = db.trainings.create({ ...input, castId: cast.id, jobId: 'job-2' });
    const third = db.trainings.create({ ...input, castId: other.id, jobId: 'job-3' });
    expect(db.trainings.latest(cast.id)?.id).toBe(second.id);
    expect(db.trainings.listLatest().map((t) => t.id)).toEqual([second.id, third.id]);
    expect(db.trainings.byJob('job-1')?.id).toBe(first.id);

    for (const step of [1, 2, 3]) db.trainings.addLoss(second.id, { phase: 'unet', step, loss: 1 / step });
    db.trainings.addLoss(second.id, { phase: 'segmentation', step: 1, loss: 2 });
    // resumed from the checkpoint at step 1: steps 2 and 3 are trained again
    db.trainings.addLoss(second.id, { phase: 'unet', step: 2, loss: 0.25 });
    expect(db.trainings.losses(second.id)).toEqual([
      { phase: 'unet', step: 1, loss: 1 },
      { phase: 'unet', step: 2, loss: 0.25 },
      { phase: 'segmentation', step: 1, loss: 2 },
    ]);

    const hash = (c: string) => c.repeat(64);
    for (const c of ['a', 'b'])
      db.files.upsert({
        hash: hash(c),
        mediaType: 'image/png',
        size: 1,
        width: 1,
        height: 1,
        transient: false,
      });
    const image = (identifier: string, c: string) => ({
      subjectId: null,
      identifier,
      prompt: `a ${identifier}`,
      hash: hash(c),
    });
    db.trainings.addPreview(second.id, { step: 4, images: [image('sks', 'a'), image('zwx', 'b')] });
    db.trainings.addPreview(second.id, { step: 2, images: [image('sks', 'b')] });
    expect(db.trainings.previews(second.id).map((p) => [p.step, p.images.map((i) => i.identifier)])).toEqual([
      [2, ['sks']],
      [4, ['sks', 'zwx']],
    ]);

    const model = db.modelFolders.create({
      path: '/data/models/pair',
      name: 'Pair (trained)',
      info,
      castId: cast.id,
    });
    expect(model.castId).toBe(cast.id);
    db.trainings.update(second.id, {
      modelId: model.id,
      progress: { phase: 'export', step: 1, totalSteps: 1 },
    });
    expect(db.trainings.forModel(model.id)).toMatchObject({ id: second.id, progress: { phase: 'export' } });
    // forgetting the model keeps the training
    db.modelFolders.delete(model.id);
    expect(db.trainings.get(second.id)?.modelId).toBeNull();
  });
});
