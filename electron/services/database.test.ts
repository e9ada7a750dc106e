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

describe('migrations', () => {
  it('apply on a fresh database in WAL mode with foreign keys, and are idempotent', () => {
    const path = join(dir, 'studio.db');
    const db = openDatabase(path);
    expect(db.schemaVersions()).toEqual([1]);
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
        'schema_migrations',
      ]),
    );
    expect(migrate(db.db, loadMigrations())).toEqual([]);
    db.close();
    const again = openDatabase(path);
    expect(again.schemaVersions()).toEqual([1]);
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
    await writeFile(join(migrations, '002_story_notes.sql'), 'ALTER TABLE stories ADD COLUMN notes TEXT;');
    const v2 = openDatabase(path, { migrations: loadMigrations(migrations) });
    expect(v2.schemaVersions()).toEqual([1, 2]);
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
      { version: 2, name: 'bad', sql: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);' },
    ];
    expect(() => migrate(db, bad)).toThrow();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(db.prepare('SELECT max(version) AS v FROM schema_migrations').get()).toEqual({ v: 1 });
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
});
