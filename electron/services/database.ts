/**
 * The studio's SQLite database (better-sqlite3): WAL journal, foreign keys, numbered migrations
 * (`migrations/NNN_name.sql`, applied in order and recorded in `schema_migrations`), and one small
 * repository per table group. Repositories speak in rows (files named by hash); the studio service
 * turns rows into API records.
 *
 * @example
 * const db = openDatabase(join(dataDir, 'studio.db'));
 * const story = db.stories.create({ title: 'The Lighthouse', castId: null });
 * db.close();
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { slotCount } from '../../common/pages/layout.js';
import type { PageSettings, PageTemplateId } from '../../common/pages/layout.js';
import type { Lettering } from '../../common/pages/lettering.js';
import type {
  JobKind,
  JobProgress,
  JobState,
  ModelDetails,
  PanelRequest,
  TrainingLossPoint,
  TrainingProgress,
  TrainingSample,
  TrainingSettings,
} from '../api/contract.js';

// ---------------------------------------------------------------------------------------------
// Migrations

/** One numbered schema migration. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATION_FILE = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/**
 * The migrations folder: beside this module when running from source, else the source folder in
 * the repository or the packaged app (the build does not copy .sql files into dist/).
 */
export function defaultMigrationsDir(): string {
  const candidates = [
    fileURLToPath(new URL('./migrations/', import.meta.url)),
    // dist/electron/services/ -> electron/services/migrations/
    fileURLToPath(new URL('../../../electron/services/migrations/', import.meta.url)),
  ];
  const found = candidates.find((dir) => existsSync(join(dir, '001_initial.sql')));
  if (found === undefined) {
    throw new Error(`cannot find the database migrations (looked in ${candidates.join(' and ')})`);
  }
  return found;
}

/**
 * Reads `NNN_name.sql` files, sorted by number. Numbers must start at 1 and have no gaps or repeats.
 *
 * @throws Error naming the file at fault.
 */
export function loadMigrations(dir: string = defaultMigrationsDir()): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.sql')) continue;
    const match = MIGRATION_FILE.exec(file);
    if (!match) throw new Error(`${join(dir, file)}: migration files are named like 002_add_pages.sql`);
    migrations.push({
      version: Number(match[1]),
      name: match[2],
      sql: readFileSync(join(dir, file), 'utf8'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `${dir}: migration ${String(i + 1).padStart(3, '0')} is missing or repeated (found ${m.version}_${m.name}.sql)`,
      );
    }
  });
  return migrations;
}

/**
 * Applies the migrations the database has not seen yet, each in its own transaction, and returns
 * the versions applied (empty when up to date).
 *
 * @throws Error when the database was written by a newer MSP Studio (a version above the last known).
 */
export function migrate(db: Database.Database, migrations: readonly Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
  const newest = Math.max(0, ...applied);
  const known = Math.max(0, ...migrations.map((m) => m.version));
  if (newest > known) {
    throw new Error(
      `the database has schema version ${newest}, newer than this MSP Studio knows (${known}); update MSP Studio`,
    );
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const done: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, new Date().toISOString());
    })();
    done.push(m.version);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// Rows

/** Metadata of a stored file. */
export interface FileRow {
  hash: string;
  mediaType: string;
  size: number;
  width: number | null;
  height: number | null;
  transient: boolean;
  createdAt: string;
}

export interface SubjectRow {
  id: string;
  name: string;
  token: string;
  classNoun: string;
  /** Reference image hashes in order. */
  images: string[];
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

export interface CastRow {
  id: string;
  name: string;
  subjectIds: string[];
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

export interface StoryRow {
  id: string;
  title: string;
  castId: string | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

/** A file as a stored panel request names it. */
export interface StoredFile {
  hash: string;
}

/** A PanelRequest as stored: files by hash only (URLs and sizes are filled in when read). */
export type StoredPanelRequest = Omit<PanelRequest, 'segmentMap' | 'scaffolding'> & {
  segmentMap: StoredFile | null;
  scaffolding: { image: StoredFile } | { color: string } | null;
};

export interface PanelRow {
  id: string;
  storyId: string;
  position: number;
  title: string;
  request: StoredPanelRequest;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

export interface RenderRow {
  id: string;
  panelId: string;
  jobId: string;
  seed: number;
  imageHash: string;
  /** The GenerationRequest JSON as rendered. */
  request: unknown;
  panelRequest: StoredPanelRequest;
  modelName: string;
  durationMs: number;
  warnings: string[];
  createdAt: string;
  deletedAt: string | null;
}

export interface JobRow {
  id: string;
  kind: JobKind;
  state: JobState;
  panelId: string;
  input: unknown;
  progress: JobProgress;
  error: string | null;
  /** What a finished job produced: a render, or a trained model (a model folder id). */
  result: { renderId?: string; modelId?: string } | null;
  /** Hash of the latest preview image. */
  preview: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A comic page: its layout, the panels in its slots and its lettering. */
export interface PageRow {
  id: string;
  storyId: string;
  position: number;
  template: PageTemplateId;
  settings: PageSettings;
  /** One entry per slot of the template (reading order): the panel id, or null when empty. */
  slots: (string | null)[];
  /** In stacking order (later ones on top). */
  lettering: Lettering[];
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

/** What a page shows (everything an edit of the page may change). */
export type PageContent = Pick<PageRow, 'template' | 'settings' | 'slots' | 'lettering'>;

/** A model folder the user imported, or one a cast training wrote. */
export interface ModelFolderRow {
  id: string;
  path: string;
  name: string;
  /** What validation found when it was imported. */
  info: ModelDetails;
  /** The cast a training taught this model (null for imported folders). */
  castId: string | null;
  createdAt: string;
}

/** A subject as a training took it: its identifier, class noun and reference images at the start. */
export interface TrainingSubjectRow {
  subjectId: string;
  name: string;
  identifier: string;
  classNoun: string;
  /** Reference image hashes. */
  images: string[];
}

/** A cut-out or augmented sample as stored: the picture by hash. */
export type TrainingSampleRow = Omit<TrainingSample, 'image'> & { hash: string };

/** A stored preview: one picture per subject at a step. */
export interface TrainingPreviewRow {
  step: number;
  images: { subjectId: string | null; identifier: string; prompt: string; hash: string }[];
}

/** A cast training (its jobs live in the jobs table; `jobId` is the latest). */
export interface TrainingRow {
  id: string;
  castId: string;
  jobId: string;
  settings: TrainingSettings;
  subjects: TrainingSubjectRow[];
  baseModelDir: string;
  baseModelName: string;
  workDir: string;
  outDir: string;
  progress: TrainingProgress | null;
  samples: TrainingSampleRow[];
  modelId: string | null;
  createdAt: string;
  updatedAt: string;
}

const now = () => new Date().toISOString();

// ---------------------------------------------------------------------------------------------
// Repositories

/** The `files` table: metadata of content-addressed files. */
export class FilesRepository {
  constructor(private readonly db: Database.Database) {}

  /** Records a file; a file already known keeps its row (but a permanent use clears `transient`). */
  upsert(file: Omit<FileRow, 'createdAt'>): FileRow {
    this.db
      .prepare(
        `INSERT INTO files (hash, media_type, size, width, height, transient, created_at)
         VALUES (@hash, @mediaType, @size, @width, @height, @transient, @createdAt)
         ON CONFLICT (hash) DO UPDATE SET transient = min(transient, excluded.transient)`,
      )
      .run({ ...file, transient: file.transient ? 1 : 0, createdAt: now() });
    return this.get(file.hash) as FileRow;
  }

  get(hash: string): FileRow | undefined {
    const row = this.db.prepare('SELECT * FROM files WHERE hash = ?').get(hash) as DbFile | undefined;
    return row && fileRow(row);
  }

  /** Transient files (render previews) that no record references. */
  listTransient(): string[] {
    return (
      this.db
        .prepare(
          `SELECT hash FROM files WHERE transient = 1
             AND hash NOT IN (SELECT image_hash FROM renders)
             AND hash NOT IN (SELECT hash FROM subject_images)`,
        )
        .all() as { hash: string }[]
    ).map((r) => r.hash);
  }

  delete(hash: string): void {
    this.db.prepare('DELETE FROM files WHERE hash = ?').run(hash);
  }
}

/** Subjects and their reference images. */
export class SubjectsRepository {
  constructor(private readonly db: Database.Database) {}

  list(): SubjectRow[] {
    const rows = this.db
      .prepare('SELECT * FROM subjects WHERE deleted_at IS NULL ORDER BY created_at, rowid')
      .all() as DbSubject[];
    return rows.map((r) => this.withImages(r));
  }

  /** A subject, deleted ones included (check `deletedAt`). */
  get(id: string): SubjectRow | undefined {
    const row = this.db.prepare('SELECT * FROM subjects WHERE id = ?').get(id) as DbSubject | undefined;
    return row && this.withImages(row);
  }

  create(input: { name: string; token: string; classNoun: string; images?: string[] }): SubjectRow {
    const id = randomUUID();
    const at = now();
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO subjects (id, name, token, class_noun, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(id, input.name, input.token, input.classNoun, at, at);
      this.writeImages(id, input.images ?? []);
    })();
    return this.get(id) as SubjectRow;
  }

  update(
    id: string,
    patch: Partial<Pick<SubjectRow, 'name' | 'token' | 'classNoun' | 'images'>>,
  ): SubjectRow | undefined {
    const current = this.get(id);
    if (!current || current.deletedAt !== null) return undefined;
    this.db.transaction(() => {
      this.db
        .prepare('UPDATE subjects SET name = ?, token = ?, class_noun = ?, updated_at = ? WHERE id = ?')
        .run(
          patch.name ?? current.name,
          patch.token ?? current.token,
          patch.classNoun ?? current.classNoun,
          now(),
          id,
        );
      if (patch.images) this.writeImages(id, patch.images);
    })();
    return this.get(id);
  }

  /** True when a live subject other than `exceptId` uses `token` (case-insensitive). */
  tokenInUse(token: string, exceptId?: string): boolean {
    return (
      this.db
        .prepare(
          'SELECT 1 FROM subjects WHERE deleted_at IS NULL AND lower(token) = lower(?) AND id IS NOT ?',
        )
        .get(token, exceptId ?? null) !== undefined
    );
  }

  softDelete(id: string): boolean {
    return (
      this.db.prepare('UPDATE subjects SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL').run(now(), id)
        .changes > 0
    );
  }

  restore(id: string): boolean {
    return (
      this.db
        .prepare(
          'UPDATE subjects SET deleted_at = NULL, updated_at = ? WHERE id = ? AND deleted_at IS NOT NULL',
        )
        .run(now(), id).changes > 0
    );
  }

  private writeImages(id: string, hashes: readonly string[]): void {
    this.db.prepare('DELETE FROM subject_images WHERE subject_id = ?').run(id);
    const insert = this.db.prepare(
      'INSERT INTO subject_images (subject_id, hash, position) VALUES (?, ?, ?)',
    );
    hashes.forEach((hash, i) => insert.run(id, hash, i));
  }

  private withImages(row: DbSubject): SubjectRow {
    const images = (
      this.db
        .prepare('SELECT hash FROM subject_images WHERE subject_id = ? ORDER BY position')
        .all(row.id) as { hash: string }[]
    ).map((r) => r.hash);
    return {
      id: row.id,
      name: row.name,
      token: row.token,
      classNoun: row.class_noun,
      images,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      deletedAt: row.deleted_at,
    };
  }
}

/** Casts and their members (deleted subjects are left out of `subjectIds`). */
export class CastsRepository {
  constructor(private readonly db: Database.Database) {}

  list(): CastRow[] {
    const rows = this.db
      .prepare('SELECT * FROM casts WHERE deleted_at IS NULL ORDER BY created_at, rowid')
      .all() as DbCast[];
    return rows.map((r) => this.withMembers(r));
  }

  get(id: string): CastRow | undefined {
    const row = this.db.prepare('SELECT * FROM casts WHERE id = ?').get(id) as DbCast | undefined;
    return row && this.withMembers(row);
  }

  create(input: { name: string; subjectIds: string[] }): CastRow {
    const id = randomUUID();
    const at = now();
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO casts (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)')
        .run(id, input.name, at, at);
      this.writeMembers(id, input.subjectIds);
    })();
    return this.get(id) as CastRow;
  }

  update(id: string, patch: { name?: string; subjectIds?: string[] }): CastRow | undefined {
    const current = this.get(id);
    if (!current || current.deletedAt !== null) return undefined;
    this.db.transaction(() => {
      this.db
        .prepare('UPDATE casts SET name = ?, updated_at = ? WHERE id = ?')
        .run(patch.name ?? current.name, now(), id);
      if (patch.subjectIds) this.writeMembers(id, patch.subjectIds);
    })();
    return this.get(id);
  }

  softDelete(id: string): boolean {
    return (
      this.db.prepare('UPDATE casts SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL').run(now(), id)
        .changes > 0
    );
  }

  private writeMembers(id: string, subjectIds: readonly string[]): void {
    this.db.prepare('DELETE FROM cast_members WHERE cast_id = ?').run(id);
    const insert = this.db.prepare(
      'INSERT INTO cast_members (cast_id, subject_id, position) VALUES (?, ?, ?)',
    );
    subjectIds.forEach((subjectId, i) => insert.run(id, subjectId, i));
  }

  private withMembers(row: DbCast): CastRow {
    const subjectIds = (
      this.db
        .prepare(
          `SELECT m.subject_id FROM cast_members m JOIN subjects s ON s.id = m.subject_id
           WHERE m.cast_id = ? AND s.deleted_at IS NULL ORDER BY m.position`,
        )
        .all(row.id) as { subject_id: string }[]
    ).map((r) => r.subject_id);
    return {
      id: row.id,
      name: row.name,
      subjectIds,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      deletedAt: row.deleted_at,
    };
  }
}

/** Stories (their panel order lives in the panels table). */
export class StoriesRepository {
  constructor(private readonly db: Database.Database) {}

  list(): StoryRow[] {
    return (
      this.db
        .prepare('SELECT * FROM stories WHERE deleted_at IS NULL ORDER BY created_at, rowid')
        .all() as DbStory[]
    ).map(storyRow);
  }

  get(id: string): StoryRow | undefined {
    const row = this.db.prepare('SELECT * FROM stories WHERE id = ?').get(id) as DbStory | undefined;
    return row && storyRow(row);
  }

  create(input: { title: string; castId: string | null }): StoryRow {
    const id = randomUUID();
    const at = now();
    this.db
      .prepare('INSERT INTO stories (id, title, cast_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, input.title, input.castId, at, at);
    return this.get(id) as StoryRow;
  }

  update(id: string, patch: { title?: string; castId?: string | null }): StoryRow | undefined {
    const current = this.get(id);
    if (!current || current.deletedAt !== null) return undefined;
    this.db
      .prepare('UPDATE stories SET title = ?, cast_id = ?, updated_at = ? WHERE id = ?')
      .run(
        patch.title ?? current.title,
        patch.castId === undefined ? current.castId : patch.castId,
        now(),
        id,
      );
    return this.get(id);
  }

  /** Marks the story changed (its panel order changed). */
  touch(id: string): void {
    this.db.prepare('UPDATE stories SET updated_at = ? WHERE id = ?').run(now(), id);
  }

  softDelete(id: string): boolean {
    return (
      this.db.prepare('UPDATE stories SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL').run(now(), id)
        .changes > 0
    );
  }

  restore(id: string): boolean {
    return (
      this.db
        .prepare(
          'UPDATE stories SET deleted_at = NULL, updated_at = ? WHERE id = ? AND deleted_at IS NOT NULL',
        )
        .run(now(), id).changes > 0
    );
  }
}

/**
 * Rows a story keeps in reading order (panels, pages). Live rows of a story have positions 0..n-1; a
 * deleted row keeps the position it had, so that restoring puts it back there.
 */
abstract class ReadingOrderRepository<
  Row extends { storyId: string; position: number; deletedAt: string | null },
> {
  constructor(
    protected readonly db: Database.Database,
    private readonly table: 'panels' | 'pages',
    private readonly noun: 'panel' | 'page',
  ) {}

  /** A row, deleted ones included (check `deletedAt`). */
  abstract get(id: string): Row | undefined;

  /** The story's live rows' ids in reading order. */
  ids(storyId: string): string[] {
    return (
      this.db
        .prepare(
          `SELECT id FROM ${this.table} WHERE story_id = ? AND deleted_at IS NULL ORDER BY position, rowid`,
        )
        .all(storyId) as { id: string }[]
    ).map((r) => r.id);
  }

  /** Soft-deletes a row and closes the gap in the order. */
  softDelete(id: string): boolean {
    return this.db.transaction(() => {
      const row = this.get(id);
      if (!row || row.deletedAt !== null) return false;
      this.db.prepare(`UPDATE ${this.table} SET deleted_at = ? WHERE id = ?`).run(now(), id);
      this.shift(row.storyId, row.position + 1, -1);
      return true;
    })();
  }

  /** Restores a deleted row at the position it had (or the end, if the story got shorter). */
  restore(id: string): boolean {
    return this.db.transaction(() => {
      const row = this.get(id);
      if (!row || row.deletedAt === null) return false;
      const index = Math.min(row.position, this.ids(row.storyId).length);
      this.shift(row.storyId, index, 1);
      this.db
        .prepare(`UPDATE ${this.table} SET deleted_at = NULL, position = ?, updated_at = ? WHERE id = ?`)
        .run(index, now(), id);
      return true;
    })();
  }

  /**
   * Sets the reading order. `ids` must be exactly the story's live rows.
   *
   * @throws Error naming the unknown, missing or repeated row ("panel 1f… is listed twice").
   */
  reorder(storyId: string, ids: readonly string[]): void {
    const noun = this.noun;
    this.db.transaction(() => {
      const current = new Set(this.ids(storyId));
      const seen = new Set<string>();
      for (const id of ids) {
        if (!current.has(id)) throw new Error(`${noun} ${id} is not a ${noun} of this story`);
        if (seen.has(id)) throw new Error(`${noun} ${id} is listed twice`);
        seen.add(id);
      }
      for (const id of current)
        if (!seen.has(id)) throw new Error(`${noun} ${id} is missing from the new order`);
      const set = this.db.prepare(`UPDATE ${this.table} SET position = ? WHERE id = ?`);
      ids.forEach((id, i) => set.run(i, id));
    })();
  }

  /** Makes room at `index` (default: the end; clamped to the story) and returns it. In a transaction. */
  protected openSlot(storyId: string, index: number | undefined): number {
    const count = this.ids(storyId).length;
    const at = Math.max(0, Math.min(index ?? count, count));
    this.shift(storyId, at, 1);
    return at;
  }

  /** Adds `delta` to the positions of live rows at or after `from`. */
  private shift(storyId: string, from: number, delta: number): void {
    this.db
      .prepare(
        `UPDATE ${this.table} SET position = position + ? WHERE story_id = ? AND deleted_at IS NULL AND position >= ?`,
      )
      .run(delta, storyId, from);
  }
}

/** Panels in reading order (see {@link ReadingOrderRepository}). */
export class PanelsRepository extends ReadingOrderRepository<PanelRow> {
  constructor(db: Database.Database) {
    super(db, 'panels', 'panel');
  }

  /** The story's live panels in reading order. */
  list(storyId: string): PanelRow[] {
    return (
      this.db
        .prepare('SELECT * FROM panels WHERE story_id = ? AND deleted_at IS NULL ORDER BY position, rowid')
        .all(storyId) as DbPanel[]
    ).map(panelRow);
  }

  get(id: string): PanelRow | undefined {
    const row = this.db.prepare('SELECT * FROM panels WHERE id = ?').get(id) as DbPanel | undefined;
    return row && panelRow(row);
  }

  /** Inserts a panel at `index` (default: the end), shifting later panels. */
  create(input: { storyId: string; title: string; request: StoredPanelRequest; index?: number }): PanelRow {
    const id = randomUUID();
    const at = now();
    this.db.transaction(() => {
      const index = this.openSlot(input.storyId, input.index);
      this.db
        .prepare(
          `INSERT INTO panels (id, story_id, position, title, request, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(id, input.storyId, index, input.title, JSON.stringify(input.request), at, at);
    })();
    return this.get(id) as PanelRow;
  }

  update(id: string, patch: { title?: string; request?: StoredPanelRequest }): PanelRow | undefined {
    const current = this.get(id);
    if (!current || current.deletedAt !== null) return undefined;
    this.db
      .prepare('UPDATE panels SET title = ?, request = ?, updated_at = ? WHERE id = ?')
      .run(patch.title ?? current.title, JSON.stringify(patch.request ?? current.request), now(), id);
    return this.get(id);
  }
}

/**
 * Pages in reading order, like panels: live pages of a story have positions 0..n-1; a deleted page
 * keeps the position it had. Slots and lettering are replaced as a whole on every update.
 */
export class PagesRepository extends ReadingOrderRepository<PageRow> {
  constructor(db: Database.Database) {
    super(db, 'pages', 'page');
  }

  /** The story's live pages in reading order. */
  list(storyId: string): PageRow[] {
    return (
      this.db
        .prepare('SELECT * FROM pages WHERE story_id = ? AND deleted_at IS NULL ORDER BY position, rowid')
        .all(storyId) as DbPage[]
    ).map((r) => this.withContent(r));
  }

  /** A page, deleted ones included (check `deletedAt`). */
  get(id: string): PageRow | undefined {
    const row = this.db.prepare('SELECT * FROM pages WHERE id = ?').get(id) as DbPage | undefined;
    return row && this.withContent(row);
  }

  /** Inserts a page at `index` (default: the end), shifting later pages. */
  create(input: { storyId: string; content: PageContent; index?: number }): PageRow {
    const id = randomUUID();
    const at = now();
    this.db.transaction(() => {
      const index = this.openSlot(input.storyId, input.index);
      const s = input.content.settings;
      this.db
        .prepare(
          `INSERT INTO pages (id, story_id, position, template, page_size, dpi, gutter_mm, margin_mm,
             created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(id, input.storyId, index, input.content.template, s.size, s.dpi, s.gutterMm, s.marginMm, at, at);
      this.writeContent(id, input.content);
    })();
    return this.get(id) as PageRow;
  }

  /** Replaces the page's content (a live page only). */
  update(id: string, content: PageContent): PageRow | undefined {
    const current = this.get(id);
    if (!current || current.deletedAt !== null) return undefined;
    this.db.transaction(() => {
      const s = content.settings;
      this.db
        .prepare(
          `UPDATE pages SET template = ?, page_size = ?, dpi = ?, gutter_mm = ?, margin_mm = ?, updated_at = ?
           WHERE id = ?`,
        )
        .run(content.template, s.size, s.dpi, s.gutterMm, s.marginMm, now(), id);
      this.writeContent(id, content);
    })();
    return this.get(id);
  }

  private writeContent(id: string, content: PageContent): void {
    this.db.prepare('DELETE FROM page_slots WHERE page_id = ?').run(id);
    const slot = this.db.prepare('INSERT INTO page_slots (page_id, slot, panel_id) VALUES (?, ?, ?)');
    content.slots.forEach((panelId, i) => {
      if (panelId !== null) slot.run(id, i, panelId);
    });
    this.db.prepare('DELETE FROM page_lettering WHERE page_id = ?').run(id);
    const lettering = this.db.prepare(
      `INSERT INTO page_lettering (page_id, id, position, kind, x, y, width, height, tail_x, tail_y, text,
         font_size_pt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    content.lettering.forEach((l, i) =>
      lettering.run(
        id,
        l.id,
        i,
        l.kind,
        l.x,
        l.y,
        l.width,
        l.height,
        l.tail?.x ?? null,
        l.tail?.y ?? null,
        l.text,
        l.fontSizePt,
      ),
    );
  }

  private withContent(r: DbPage): PageRow {
    const template = r.template as PageTemplateId;
    const slots: (string | null)[] = new Array<string | null>(slotCount(template)).fill(null);
    for (const s of this.db
      .prepare('SELECT slot, panel_id FROM page_slots WHERE page_id = ? ORDER BY slot')
      .all(r.id) as { slot: number; panel_id: string }[]) {
      if (s.slot < slots.length) slots[s.slot] = s.panel_id;
    }
    const lettering = (
      this.db
        .prepare('SELECT * FROM page_lettering WHERE page_id = ? ORDER BY position')
        .all(r.id) as DbLettering[]
    ).map((l): Lettering => ({
      id: l.id,
      kind: l.kind as Lettering['kind'],
      x: l.x,
      y: l.y,
      width: l.width,
      height: l.height,
      tail: l.tail_x === null || l.tail_y === null ? null : { x: l.tail_x, y: l.tail_y },
      text: l.text,
      fontSizePt: l.font_size_pt,
    }));
    return {
      id: r.id,
      storyId: r.story_id,
      position: r.position,
      template,
      settings: {
        size: r.page_size as PageSettings['size'],
        dpi: r.dpi,
        gutterMm: r.gutter_mm,
        marginMm: r.margin_mm,
      },
      slots,
      lettering,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      deletedAt: r.deleted_at,
    };
  }
}

/** Imported model folders (rows only; the folders themselves are never touched). */
export class ModelFoldersRepository {
  constructor(private readonly db: Database.Database) {}

  list(): ModelFolderRow[] {
    return (
      this.db.prepare('SELECT * FROM model_folders ORDER BY created_at, rowid').all() as DbModelFolder[]
    ).map(modelFolderRow);
  }

  get(id: string): ModelFolderRow | undefined {
    const row = this.db.prepare('SELECT * FROM model_folders WHERE id = ?').get(id) as
      DbModelFolder | undefined;
    return row && modelFolderRow(row);
  }

  byPath(path: string): ModelFolderRow | undefined {
    const row = this.db.prepare('SELECT * FROM model_folders WHERE path = ?').get(path) as
      DbModelFolder | undefined;
    return row && modelFolderRow(row);
  }

  create(input: { path: string; name: string; info: ModelDetails; castId?: string | null }): ModelFolderRow {
    const id = randomUUID();
    this.db
      .prepare(
        'INSERT INTO model_folders (id, path, name, info, cast_id, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(id, input.path, input.name, JSON.stringify(input.info), input.castId ?? null, now());
    return this.get(id) as ModelFolderRow;
  }

  /** Refreshes a folder's name and validation result (a cast trained again into the same folder). */
  update(id: string, patch: { name: string; info: ModelDetails }): ModelFolderRow | undefined {
    this.db
      .prepare('UPDATE model_folders SET name = ?, info = ? WHERE id = ?')
      .run(patch.name, JSON.stringify(patch.info), id);
    return this.get(id);
  }

  /** Forgets an imported folder (its files stay). */
  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM model_folders WHERE id = ?').run(id).changes > 0;
  }
}

/** Cast trainings with their loss curves and sample pictures. */
export class TrainingsRepository {
  constructor(private readonly db: Database.Database) {}

  create(
    input: Omit<TrainingRow, 'id' | 'progress' | 'samples' | 'modelId' | 'createdAt' | 'updatedAt'>,
  ): TrainingRow {
    const id = randomUUID();
    const at = now();
    this.db
      .prepare(
        `INSERT INTO cast_trainings (id, cast_id, job_id, settings, subjects, base_model_dir, base_model_name,
           work_dir, out_dir, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        input.castId,
        input.jobId,
        JSON.stringify(input.settings),
        JSON.stringify(input.subjects),
        input.baseModelDir,
        input.baseModelName,
        input.workDir,
        input.outDir,
        at,
        at,
      );
    return this.get(id) as TrainingRow;
  }

  get(id: string): TrainingRow | undefined {
    const row = this.db.prepare('SELECT * FROM cast_trainings WHERE id = ?').get(id) as
      DbTraining | undefined;
    return row && trainingRow(row);
  }

  /** The cast's newest training. */
  latest(castId: string): TrainingRow | undefined {
    const row = this.db
      .prepare('SELECT * FROM cast_trainings WHERE cast_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1')
      .get(castId) as DbTraining | undefined;
    return row && trainingRow(row);
  }

  byJob(jobId: string): TrainingRow | undefined {
    const row = this.db.prepare('SELECT * FROM cast_trainings WHERE job_id = ?').get(jobId) as
      DbTraining | undefined;
    return row && trainingRow(row);
  }

  /** The newest training that produced a model. */
  forModel(modelId: string): TrainingRow | undefined {
    const row = this.db
      .prepare('SELECT * FROM cast_trainings WHERE model_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1')
      .get(modelId) as DbTraining | undefined;
    return row && trainingRow(row);
  }

  /** The newest training of every cast that has one, oldest cast first. */
  listLatest(): TrainingRow[] {
    return (
      this.db
        .prepare(
          `SELECT t.* FROM cast_trainings t
           WHERE t.rowid = (SELECT u.rowid FROM cast_trainings u WHERE u.cast_id = t.cast_id
                            ORDER BY u.created_at DESC, u.rowid DESC LIMIT 1)
           ORDER BY t.created_at, t.rowid`,
        )
        .all() as DbTraining[]
    ).map(trainingRow);
  }

  update(
    id: string,
    patch: Partial<Pick<TrainingRow, 'jobId' | 'progress' | 'samples' | 'modelId'>>,
  ): TrainingRow | undefined {
    const current = this.get(id);
    if (!current) return undefined;
    const next = { ...current, ...patch };
    this.db
      .prepare(
        `UPDATE cast_trainings SET job_id = ?, progress = ?, samples = ?, model_id = ?, updated_at = ?
         WHERE id = ?`,
      )
      .run(
        next.jobId,
        next.progress === null ? null : JSON.stringify(next.progress),
        JSON.stringify(next.samples),
        next.modelId,
        now(),
        id,
      );
    return this.get(id);
  }

  /**
   * Records a point of the loss curve. A step recorded again (a resumed run repeats the steps after
   * its checkpoint) replaces the old point and drops the old points after it.
   */
  addLoss(id: string, point: TrainingLossPoint): void {
    this.db.transaction(() => {
      this.db
        .prepare('DELETE FROM training_losses WHERE training_id = ? AND phase = ? AND step >= ?')
        .run(id, point.phase, point.step);
      this.db
        .prepare('INSERT INTO training_losses (training_id, phase, step, loss) VALUES (?, ?, ?, ?)')
        .run(id, point.phase, point.step, point.loss);
    })();
  }

  losses(id: string): TrainingLossPoint[] {
    return (
      this.db
        .prepare(
          `SELECT phase, step, loss FROM training_losses WHERE training_id = ?
           ORDER BY CASE phase WHEN 'unet' THEN 0 ELSE 1 END, step`,
        )
        .all(id) as TrainingLossPoint[]
    ).map((p) => ({ phase: p.phase, step: p.step, loss: p.loss }));
  }

  /** Stores a preview (replacing one of the same step). */
  addPreview(id: string, preview: TrainingPreviewRow): void {
    this.db.transaction(() => {
      this.db
        .prepare('DELETE FROM training_previews WHERE training_id = ? AND step = ?')
        .run(id, preview.step);
      const insert = this.db.prepare(
        `INSERT INTO training_previews (training_id, step, position, subject_id, identifier, prompt, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      preview.images.forEach((image, i) =>
        insert.run(id, preview.step, i, image.subjectId, image.identifier, image.prompt, image.hash),
      );
    })();
  }

  previews(id: string): TrainingPreviewRow[] {
    const rows = this.db
      .prepare(
        `SELECT step, subject_id, identifier, prompt, hash FROM training_previews WHERE training_id = ?
         ORDER BY step, position`,
      )
      .all(id) as {
      step: number;
      subject_id: string | null;
      identifier: string;
      prompt: string;
      hash: string;
    }[];
    const out: TrainingPreviewRow[] = [];
    for (const r of rows) {
      let last = out[out.length - 1];
      if (!last || last.step !== r.step) {
        last = { step: r.step, images: [] };
        out.push(last);
      }
      last.images.push({ subjectId: r.subject_id, identifier: r.identifier, prompt: r.prompt, hash: r.hash });
    }
    return out;
  }
}

/** App settings as text values by key. */
export class SettingsRepository {
  constructor(private readonly db: Database.Database) {}

  get(key: string): string | undefined {
    return (
      this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined
    )?.value;
  }

  set(key: string, value: string): void {
    this.db
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      )
      .run(key, value);
  }

  delete(key: string): void {
    this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
  }
}

/** The render history of panels. */
export class RendersRepository {
  constructor(private readonly db: Database.Database) {}

  /** A panel's live renders, newest first. */
  list(panelId: string): RenderRow[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM renders WHERE panel_id = ? AND deleted_at IS NULL ORDER BY created_at DESC, rowid DESC',
        )
        .all(panelId) as DbRender[]
    ).map(renderRow);
  }

  get(id: string): RenderRow | undefined {
    const row = this.db.prepare('SELECT * FROM renders WHERE id = ?').get(id) as DbRender | undefined;
    return row && renderRow(row);
  }

  create(input: Omit<RenderRow, 'id' | 'createdAt' | 'deletedAt'>): RenderRow {
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO renders (id, panel_id, job_id, seed, image_hash, request, panel_request, model_name,
           duration_ms, warnings, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        input.panelId,
        input.jobId,
        input.seed,
        input.imageHash,
        JSON.stringify(input.request),
        JSON.stringify(input.panelRequest),
        input.modelName,
        Math.round(input.durationMs),
        JSON.stringify(input.warnings),
        now(),
      );
    return this.get(id) as RenderRow;
  }

  softDelete(id: string): boolean {
    return (
      this.db.prepare('UPDATE renders SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL').run(now(), id)
        .changes > 0
    );
  }
}

/** Persisted jobs (the job queue's store). */
export class JobsRepository {
  constructor(private readonly db: Database.Database) {}

  insert(job: JobRow): void {
    this.db
      .prepare(
        `INSERT INTO jobs (id, kind, state, panel_id, input, progress, error, result, preview, created_at,
           started_at, finished_at)
         VALUES (@id, @kind, @state, @panelId, @input, @progress, @error, @result, @preview, @createdAt,
           @startedAt, @finishedAt)`,
      )
      .run(toDbJob(job));
  }

  update(job: JobRow): void {
    this.db
      .prepare(
        `UPDATE jobs SET state = @state, progress = @progress, error = @error, result = @result,
           preview = @preview, started_at = @startedAt, finished_at = @finishedAt WHERE id = @id`,
      )
      .run(toDbJob(job));
  }

  get(id: string): JobRow | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as DbJob | undefined;
    return row && jobRow(row);
  }

  /** Jobs newest first, optionally filtered. */
  list(filter: { state?: JobState; panelId?: string; limit?: number } = {}): JobRow[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM jobs WHERE (@state IS NULL OR state = @state) AND (@panelId IS NULL OR panel_id = @panelId)
           ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
        )
        .all({
          state: filter.state ?? null,
          panelId: filter.panelId ?? null,
          limit: filter.limit ?? 100,
        }) as DbJob[]
    ).map(jobRow);
  }

  /** Jobs in a state, oldest first (the queue's order). */
  inState(state: JobState): JobRow[] {
    return (
      this.db.prepare('SELECT * FROM jobs WHERE state = ? ORDER BY created_at, rowid').all(state) as DbJob[]
    ).map(jobRow);
  }
}

// ---------------------------------------------------------------------------------------------
// The database

/** The open database with its repositories. */
export class StudioDatabase {
  readonly files: FilesRepository;
  readonly subjects: SubjectsRepository;
  readonly casts: CastsRepository;
  readonly stories: StoriesRepository;
  readonly panels: PanelsRepository;
  readonly renders: RendersRepository;
  readonly jobs: JobsRepository;
  readonly pages: PagesRepository;
  readonly modelFolders: ModelFoldersRepository;
  readonly settings: SettingsRepository;
  readonly trainings: TrainingsRepository;

  constructor(readonly db: Database.Database) {
    this.files = new FilesRepository(db);
    this.subjects = new SubjectsRepository(db);
    this.casts = new CastsRepository(db);
    this.stories = new StoriesRepository(db);
    this.panels = new PanelsRepository(db);
    this.renders = new RendersRepository(db);
    this.jobs = new JobsRepository(db);
    this.pages = new PagesRepository(db);
    this.modelFolders = new ModelFoldersRepository(db);
    this.settings = new SettingsRepository(db);
    this.trainings = new TrainingsRepository(db);
  }

  /** Runs `fn` in one transaction (nested calls join it). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** The applied schema versions, ascending. */
  schemaVersions(): number[] {
    return (
      this.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]
    ).map((r) => r.version);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Opens (creating if needed) the database at `path` (`:memory:` for tests), in WAL mode with
 * foreign keys on, and applies pending migrations.
 */
export function openDatabase(
  path: string,
  options: { migrations?: readonly Migration[] } = {},
): StudioDatabase {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, options.migrations ?? loadMigrations());
  } catch (err) {
    db.close();
    throw err;
  }
  return new StudioDatabase(db);
}

// ---------------------------------------------------------------------------------------------
// Row mapping

interface DbFile {
  hash: string;
  media_type: string;
  size: number;
  width: number | null;
  height: number | null;
  transient: number;
  created_at: string;
}

interface DbSubject {
  id: string;
  name: string;
  token: string;
  class_noun: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

interface DbCast {
  id: string;
  name: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

interface DbStory {
  id: string;
  title: string;
  cast_id: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

interface DbPanel {
  id: string;
  story_id: string;
  position: number;
  title: string;
  request: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

interface DbRender {
  id: string;
  panel_id: string;
  job_id: string;
  seed: number;
  image_hash: string;
  request: string;
  panel_request: string;
  model_name: string;
  duration_ms: number;
  warnings: string;
  created_at: string;
  deleted_at: string | null;
}

interface DbPage {
  id: string;
  story_id: string;
  position: number;
  template: string;
  page_size: string;
  dpi: number;
  gutter_mm: number;
  margin_mm: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

interface DbLettering {
  page_id: string;
  id: string;
  position: number;
  kind: string;
  x: number;
  y: number;
  width: number;
  height: number;
  tail_x: number | null;
  tail_y: number | null;
  text: string;
  font_size_pt: number;
}

interface DbModelFolder {
  id: string;
  path: string;
  name: string;
  info: string;
  cast_id: string | null;
  created_at: string;
}

interface DbTraining {
  id: string;
  cast_id: string;
  job_id: string;
  settings: string;
  subjects: string;
  base_model_dir: string;
  base_model_name: string;
  work_dir: string;
  out_dir: string;
  progress: string | null;
  samples: string;
  model_id: string | null;
  created_at: string;
  updated_at: string;
}

interface DbJob {
  id: string;
  kind: string;
  state: string;
  panel_id: string | null;
  input: string;
  progress: string;
  error: string | null;
  result: string | null;
  preview: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

function fileRow(r: DbFile): FileRow {
  return {
    hash: r.hash,
    mediaType: r.media_type,
    size: r.size,
    width: r.width,
    height: r.height,
    transient: r.transient === 1,
    createdAt: r.created_at,
  };
}

function storyRow(r: DbStory): StoryRow {
  return {
    id: r.id,
    title: r.title,
    castId: r.cast_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
  };
}

function panelRow(r: DbPanel): PanelRow {
  return {
    id: r.id,
    storyId: r.story_id,
    position: r.position,
    title: r.title,
    request: JSON.parse(r.request) as StoredPanelRequest,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
  };
}

function renderRow(r: DbRender): RenderRow {
  return {
    id: r.id,
    panelId: r.panel_id,
    jobId: r.job_id,
    seed: r.seed,
    imageHash: r.image_hash,
    request: JSON.parse(r.request) as unknown,
    panelRequest: JSON.parse(r.panel_request) as StoredPanelRequest,
    modelName: r.model_name,
    durationMs: r.duration_ms,
    warnings: JSON.parse(r.warnings) as string[],
    createdAt: r.created_at,
    deletedAt: r.deleted_at,
  };
}

function modelFolderRow(r: DbModelFolder): ModelFolderRow {
  return {
    id: r.id,
    path: r.path,
    name: r.name,
    info: JSON.parse(r.info) as ModelDetails,
    castId: r.cast_id,
    createdAt: r.created_at,
  };
}

function trainingRow(r: DbTraining): TrainingRow {
  return {
    id: r.id,
    castId: r.cast_id,
    jobId: r.job_id,
    settings: JSON.parse(r.settings) as TrainingSettings,
    subjects: JSON.parse(r.subjects) as TrainingSubjectRow[],
    baseModelDir: r.base_model_dir,
    baseModelName: r.base_model_name,
    workDir: r.work_dir,
    outDir: r.out_dir,
    progress: r.progress === null ? null : (JSON.parse(r.progress) as TrainingProgress),
    samples: JSON.parse(r.samples) as TrainingSampleRow[],
    modelId: r.model_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function jobRow(r: DbJob): JobRow {
  return {
    id: r.id,
    kind: r.kind as JobKind,
    state: r.state as JobState,
    panelId: r.panel_id ?? '',
    input: JSON.parse(r.input) as unknown,
    progress: JSON.parse(r.progress) as JobProgress,
    error: r.error,
    result: r.result === null ? null : (JSON.parse(r.result) as JobRow['result']),
    preview: r.preview,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

function toDbJob(job: JobRow): Record<string, unknown> {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    panelId: job.panelId === '' ? null : job.panelId,
    input: JSON.stringify(job.input ?? null),
    progress: JSON.stringify(job.progress),
    error: job.error,
    result: job.result === null ? null : JSON.stringify(job.result),
    preview: job.preview,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}
