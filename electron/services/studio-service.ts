/**
 * The studio service: implements the {@link StudioApi} over the database, the file store, the job
 * queue, the render runner and the training runner (cast trainings are jobs of the same queue, so a
 * render waits while a cast trains and the other way round). Both transports (Electron IPC and the
 * browser-mode server) call {@link StudioService.dispatch}, which checks the method against the
 * allow-list, validates the payload with zod (errors name the field) and answers the
 * {@link ApiResponse} envelope.
 *
 * Files cross the API by SHA-256 hash only; the service alone turns hashes into paths.
 *
 * @example
 * const service = await StudioService.open({ dataDir, mode: 'browser', fileUrl: (h) => `/files/${h}` });
 * const answer = await service.dispatch('stories.create', { title: 'The Lighthouse' });
 * service.onEvent((event) => socket.send(JSON.stringify(event)));
 * await service.close();
 */
import { RARE_IDENTIFIERS } from '../../native-models/tokenizer/rare-tokens.js';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { DEFAULT_PAGE_SETTINGS, LayoutError, pageLayout, slotCount } from '../../common/pages/layout.js';
import { TRAINING_DEFAULTS } from '../../common/training/settings.js';
import type { PageTemplateId } from '../../common/pages/layout.js';
import type {
  AddReferenceImagesResult,
  ApiMethod,
  ApiResponse,
  AppInfo,
  Cast,
  CastTraining,
  EntityKind,
  FileRef,
  GenerationRequestJson,
  Job,
  ModelDetails,
  ModelEntry,
  ModelInfo,
  Page,
  PageExportFormat,
  PageExportResult,
  Panel,
  PanelRequest,
  Render,
  RenderFileLocation,
  ResolvedRequestResult,
  Story,
  StudioApi,
  StudioEvent,
  StudioEventListener,
  Subject,
  TrainedCast,
  TrainingCheck,
  TrainingProgress,
  TrainingSample,
  TrainingSettings,
} from '../api/contract.js';
import { isApiMethod } from '../api/channels.js';
import { decodeImage } from '../../native-models/image/image.js';
import { encodePng } from '../../native-models/image/png.js';
import { writeFileAtomic } from '../../native-models/io/atomic-write.js';
import { defaultModelDir } from '../../native-models/models/default-model.js';
import { loadModelFolder, ModelFolderError } from '../../native-models/models/model-folder.js';
import { parseGenerationRequest } from '../../native-models/msp/request.js';
import { CastError, checkCastForModel, readRareTokens } from '../../native-models/personalize/cast-file.js';
import type { CastSubject } from '../../native-models/personalize/augment.js';
import { toOpenPoseJson } from '../../native-models/pose/openpose.js';
import { openDatabase } from './database.js';
import type {
  CastRow,
  JobRow,
  ModelFolderRow,
  PageContent,
  PageRow,
  PanelRow,
  RenderRow,
  StoredPanelRequest,
  StoryRow,
  StudioDatabase,
  SubjectRow,
  TrainingRow,
  TrainingSampleRow,
  TrainingSubjectRow,
} from './database.js';
import { FileStore, sha256Hex } from './file-store.js';
import { JobQueue } from './job-queue.js';
import type { JobContext, JobQueueEvent } from './job-queue.js';
import {
  defaultPanelRequest,
  editingIssues,
  hasPeople,
  mergePanelRequest,
  resolvePanelRequest,
} from './panel-request.js';
import type { ResolveContext } from './panel-request.js';
import { ExportError, exportCbz, exportPdf, exportPng } from './page-export.js';
import type { ComposablePage } from './page-export.js';
import type { EngineOptions } from './render-engine.js';
import { WorkerRenderRunner } from './render-runner.js';
import type { RenderRunner } from './render-runner.js';
import * as S from './schemas.js';
import { MAX_FILE_BYTES, parsePayload, ServiceError, toErrorInfo } from './schemas.js';
import type { TrainingTask } from './training-engine.js';
import { WorkerTrainingRunner } from './training-runner.js';
import type { TrainingRunner } from './training-runner.js';

export interface StudioServiceOptions {
  /** Where the database, files and models live. */
  dataDir: string;
  mode: AppInfo['mode'];
  /** The URL a page loads a stored file from. */
  fileUrl: (hash: string) => string;
  /** The renderer to start with (tests). Default: {@link createRunner} for the active model. */
  runner?: RenderRunner;
  /** Makes the renderer for a model (default: a worker, render-runner.ts). */
  createRunner?: (engine: EngineOptions) => RenderRunner;
  /** Trains casts (default: a worker per training, training-runner.ts). */
  trainingRunner?: TrainingRunner;
  /** What the host application offers beyond the API (Electron's dialogs); absent in browser mode. */
  host?: StudioHost;
  version?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Services of the host application, reached by callback so the service stays plain Node: the
 * Electron main process implements them with its dialogs. Paths only ever come from here (or from a
 * model folder the user typed), never from the page.
 */
export interface StudioHost {
  /** Asks where to save a file; an absolute path, or null when the user cancels. */
  chooseSavePath(input: {
    title: string;
    defaultName: string;
    filters: { name: string; extensions: string[] }[];
  }): Promise<string | null>;
  /** Asks for a folder; an absolute path, or null when the user cancels. */
  chooseFolder(input: { title: string }): Promise<string | null>;
  /** Opens the system file manager on a file, selecting it. */
  showItemInFolder(path: string): void;
}

/** The model entry id of the built-in choice (embedded model, MSP_MODEL_DIR or the random test model). */
export const DEFAULT_MODEL_ID = 'default';
const ACTIVE_MODEL_KEY = 'active_model';
/** How many differently-rendered files one "<panel> - seed <seed>" name may number before reveal refuses. */
const MAX_NAMED_COPIES = 100;

const EXPORT_TYPES: Record<PageExportFormat, { mediaType: string; extension: string; label: string }> = {
  png: { mediaType: 'image/png', extension: 'png', label: 'PNG image' },
  pdf: { mediaType: 'application/pdf', extension: 'pdf', label: 'PDF document' },
  cbz: { mediaType: 'application/vnd.comicbook+zip', extension: 'cbz', label: 'Comic book archive' },
};

/** What a training job stores as its input: the training (settings, subjects, folders) and how to run. */
interface TrainingJobInput {
  trainingId: string;
  castId: string;
  /** Continue from the checkpoints of an earlier run. */
  resume: boolean;
}

/** An identifier the engine trains: one lower-case word of letters and digits (one tokenizer token). */
const TRAINABLE_IDENTIFIER = /^[a-z][a-z0-9]{1,15}$/;

/** What a render job stores as its input (so it can run after a restart too). */
interface RenderJobInput {
  request: GenerationRequestJson;
  panelRequest: StoredPanelRequest;
  files: { segmentMap: string; pose?: string; scaffoldImage?: string };
}

/** Media types the library accepts, by their magic bytes. */
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;

/** The media type the bytes actually are (images and JSON), or undefined. */
export function sniffMediaType(bytes: Uint8Array): string | undefined {
  const starts = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (
    starts(0x52, 0x49, 0x46, 0x46) &&
    bytes[8] === 0x57 &&
    bytes[9] === 0x45 &&
    bytes[10] === 0x42 &&
    bytes[11] === 0x50
  )
    return 'image/webp';
  const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first === 0x7b || first === 0x5b) return 'application/json';
  return undefined;
}

/** Identifier tokens to suggest when the model lists none; the model's own `rareTokens` come first. */
const FALLBACK_RARE_TOKENS = RARE_IDENTIFIERS;

export class StudioService {
  private readonly listeners = new Set<StudioEventListener>();
  private modelInfo: ModelInfo | undefined;
  private blankMaps = new Map<string, string>();
  /** Validation results of model folders by path (reading ONNX headers is not free). */
  private readonly modelDetails = new Map<string, Promise<ModelDetails | null>>();
  /** Model switches run one at a time. */
  private modelChain: Promise<unknown> = Promise.resolve();
  readonly api: StudioApi;

  private constructor(
    readonly db: StudioDatabase,
    readonly store: FileStore,
    readonly queue: JobQueue,
    private runner: RenderRunner,
    /** The {@link ModelEntry} id renders use. */
    private activeModel: string,
    private readonly options: StudioServiceOptions,
    private readonly trainer: TrainingRunner,
  ) {
    this.api = this.buildApi();
  }

  /**
   * Opens the data folder: database (migrated), file store (stale temp files and old previews
   * removed), job queue (interrupted jobs failed, queued ones resumed) and the render runner,
   * which starts loading the model in the background.
   */
  static async open(options: StudioServiceOptions): Promise<StudioService> {
    const { dataDir } = options;
    await mkdir(join(dataDir, 'files'), { recursive: true });
    await rm(join(dataDir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(dataDir, 'tmp'), { recursive: true });
    const db = openDatabase(join(dataDir, 'studio.db'));
    const store = new FileStore(join(dataDir, 'files'));
    await store.removeStaleTempFiles();
    for (const hash of db.files.listTransient()) {
      await store.remove(hash);
      db.files.delete(hash);
    }
    // The active model: an imported folder that is still there, else the default.
    const chosen = db.settings.get(ACTIVE_MODEL_KEY);
    const folder = chosen !== undefined ? db.modelFolders.get(chosen) : undefined;
    const activeModel = folder && existsSync(folder.path) ? folder.id : DEFAULT_MODEL_ID;
    const runner =
      options.runner ??
      (options.createRunner ?? defaultCreateRunner)(
        engineOptions(options, folder && activeModel === folder.id ? folder : undefined),
      );
    // The queue calls the service, which is built next (jobs run only after recover() below).
    const queue: JobQueue = new JobQueue(db.jobs, (job, context) =>
      job.kind === 'training' ? service.runTrainingJob(job, context) : service.runRenderJob(job, context),
    );
    const trainer = options.trainingRunner ?? new WorkerTrainingRunner();
    const service = new StudioService(db, store, queue, runner, activeModel, options, trainer);
    queue.on((event) => service.onQueueEvent(event));
    runner.info().then(
      (info) => (service.modelInfo = info),
      () => undefined, // reported when a render or models.getInfo asks
    );
    queue.recover();
    return service;
  }

  /** Subscribes to studio events; returns the unsubscribe function. */
  onEvent(listener: StudioEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls an API method by channel name with an untrusted payload and answers the envelope.
   * Never throws.
   */
  async dispatch(method: unknown, payload: unknown): Promise<ApiResponse<unknown>> {
    if (!isApiMethod(method)) {
      return {
        ok: false,
        error: {
          code: 'unknown_method',
          message: `unknown API method ${JSON.stringify(String(method)).slice(0, 80)}`,
        },
      };
    }
    const [namespace, name] = method.split('.') as [keyof StudioApi, string];
    const fn = (this.api[namespace] as unknown as Record<string, (p: unknown) => Promise<unknown>>)[name];
    try {
      const value = await fn(payload);
      return { ok: true, value: value ?? null };
    } catch (err) {
      return { ok: false, error: toErrorInfo(err) };
    }
  }

  /**
   * Stops the queue (a running render is cancelled; a running training stops at its next step with a
   * checkpoint, to be resumed), the workers and the database.
   */
  async close(): Promise<void> {
    await this.queue.close();
    await this.trainer.close();
    await this.runner.close();
    this.db.close();
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------------
  // The API

  private buildApi(): StudioApi {
    const db = this.db;
    const m = <M extends ApiMethod>(method: M) => method;
    return {
      app: {
        getInfo: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('app.getInfo'));
          return {
            version: this.options.version ?? '0.0.0',
            mode: this.options.mode,
            platform: process.platform,
          };
        },
      },
      files: {
        upload: async (payload) => {
          const input = parsePayload(S.fileUpload, payload, m('files.upload'));
          return this.storeUpload(input, 'files.upload');
        },
        get: async (payload) => {
          const { hash } = parsePayload(S.fileGet, payload, m('files.get'));
          return this.fileRef(this.requireFile(hash, 'hash'));
        },
      },
      subjects: {
        list: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('subjects.list'));
          return db.subjects.list().map((r) => this.toSubject(r));
        },
        get: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('subjects.get'));
          return this.toSubject(this.liveSubject(id));
        },
        create: async (payload) => {
          const input = parsePayload(S.subjectCreate, payload, m('subjects.create'));
          const token = input.token ?? (await this.suggestToken());
          if (db.subjects.tokenInUse(token)) throw this.tokenConflict(token);
          const images: string[] = [];
          for (const [index, image] of (input.referenceImages ?? []).entries()) {
            const checked = await this.checkedImage(image, `referenceImages[${index}]`);
            if ('reason' in checked) {
              throw ServiceError.invalid(
                [{ path: `referenceImages[${index}]`, message: checked.reason }],
                'subjects.create',
              );
            }
            if (!images.includes(checked.hash)) images.push(checked.hash);
          }
          const row = db.subjects.create({ name: input.name, token, classNoun: input.classNoun, images });
          this.changed('subject', row.id, 'created');
          return this.toSubject(row);
        },
        update: async (payload) => {
          const input = parsePayload(S.subjectUpdate, payload, m('subjects.update'));
          this.liveSubject(input.id);
          if (input.token !== undefined && db.subjects.tokenInUse(input.token, input.id)) {
            throw this.tokenConflict(input.token);
          }
          const images = input.referenceImages?.map((f, i) => {
            const file = this.requireFile(f.hash, `referenceImages[${i}]`);
            if (!(IMAGE_TYPES as readonly string[]).includes(file.mediaType)) {
              throw ServiceError.invalid(
                [{ path: `referenceImages[${i}]`, message: 'is not an image' }],
                'subjects.update',
              );
            }
            return f.hash;
          });
          const row = db.subjects.update(input.id, {
            ...(input.name !== undefined ? { name: input.name } : {}),
            ...(input.token !== undefined ? { token: input.token } : {}),
            ...(input.classNoun !== undefined ? { classNoun: input.classNoun } : {}),
            ...(images ? { images: [...new Set(images)] } : {}),
          });
          this.changed('subject', input.id, 'updated');
          return this.toSubject(row as SubjectRow);
        },
        delete: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('subjects.delete'));
          if (!db.subjects.softDelete(id)) throw ServiceError.notFound(`subject ${id}`);
          this.changed('subject', id, 'deleted');
        },
        restore: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('subjects.restore'));
          const row = db.subjects.get(id);
          if (!row) throw ServiceError.notFound(`subject ${id}`);
          if (row.deletedAt !== null) {
            if (db.subjects.tokenInUse(row.token, id)) throw this.tokenConflict(row.token);
            db.subjects.restore(id);
            this.changed('subject', id, 'created');
          }
          return this.toSubject(db.subjects.get(id) as SubjectRow);
        },
        addReferenceImages: async (payload) => {
          const input = parsePayload(S.addReferenceImages, payload, m('subjects.addReferenceImages'));
          const subject = this.liveSubject(input.subjectId);
          const result: Omit<AddReferenceImagesResult, 'subject'> = {
            added: [],
            duplicates: [],
            rejected: [],
          };
          const images = [...subject.images];
          for (const [index, image] of input.images.entries()) {
            const checked = await this.checkedImage(image, `images[${index}]`);
            const name = 'name' in image ? image.name : undefined;
            if ('reason' in checked) {
              result.rejected.push({
                index,
                ...(name !== undefined ? { name } : {}),
                reason: checked.reason,
              });
            } else if (images.includes(checked.hash)) {
              result.duplicates.push(this.fileRef(checked));
            } else {
              images.push(checked.hash);
              result.added.push(this.fileRef(checked));
            }
          }
          const row = result.added.length > 0 ? db.subjects.update(subject.id, { images }) : subject;
          if (result.added.length > 0) this.changed('subject', subject.id, 'updated');
          return { subject: this.toSubject(row as SubjectRow), ...result };
        },
        removeReferenceImage: async (payload) => {
          const input = parsePayload(S.removeReferenceImage, payload, m('subjects.removeReferenceImage'));
          const subject = this.liveSubject(input.subjectId);
          if (!subject.images.includes(input.hash)) {
            throw ServiceError.notFound(`reference image ${input.hash} of subject ${subject.name}`);
          }
          const row = db.subjects.update(subject.id, {
            images: subject.images.filter((h) => h !== input.hash),
          });
          this.changed('subject', subject.id, 'updated');
          return this.toSubject(row as SubjectRow);
        },
        suggestToken: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('subjects.suggestToken'));
          return { token: await this.suggestToken() };
        },
      },
      casts: {
        list: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('casts.list'));
          return db.casts.list().map(toCast);
        },
        create: async (payload) => {
          const input = parsePayload(S.castCreate, payload, m('casts.create'));
          const subjectIds = this.checkSubjectIds(input.subjectIds ?? [], 'casts.create');
          const row = db.casts.create({ name: input.name, subjectIds });
          this.changed('cast', row.id, 'created');
          return toCast(row);
        },
        update: async (payload) => {
          const input = parsePayload(S.castUpdate, payload, m('casts.update'));
          this.liveCast(input.id);
          const subjectIds = input.subjectIds && this.checkSubjectIds(input.subjectIds, 'casts.update');
          const row = db.casts.update(input.id, {
            ...(input.name !== undefined ? { name: input.name } : {}),
            ...(subjectIds ? { subjectIds } : {}),
          });
          this.changed('cast', input.id, 'updated');
          return toCast(row as CastRow);
        },
        delete: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('casts.delete'));
          if (!db.casts.softDelete(id)) throw ServiceError.notFound(`cast ${id}`);
          this.changed('cast', id, 'deleted');
        },
      },
      stories: {
        list: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('stories.list'));
          return db.stories.list().map((r) => this.toStory(r));
        },
        get: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('stories.get'));
          return this.toStory(this.liveStory(id));
        },
        create: async (payload) => {
          const input = parsePayload(S.storyCreate, payload, m('stories.create'));
          if (input.castId) this.liveCast(input.castId, 'castId');
          const row = db.stories.create({ title: input.title, castId: input.castId ?? null });
          this.changed('story', row.id, 'created');
          return this.toStory(row);
        },
        update: async (payload) => {
          const input = parsePayload(S.storyUpdate, payload, m('stories.update'));
          this.liveStory(input.id);
          if (input.castId) this.liveCast(input.castId, 'castId');
          const row = db.stories.update(input.id, {
            ...(input.title !== undefined ? { title: input.title } : {}),
            ...(input.castId !== undefined ? { castId: input.castId } : {}),
          });
          this.changed('story', input.id, 'updated');
          return this.toStory(row as StoryRow);
        },
        delete: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('stories.delete'));
          if (!db.stories.softDelete(id)) throw ServiceError.notFound(`story ${id}`);
          this.changed('story', id, 'deleted');
        },
        restore: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('stories.restore'));
          const row = db.stories.get(id);
          if (!row) throw ServiceError.notFound(`story ${id}`);
          if (db.stories.restore(id)) this.changed('story', id, 'created');
          return this.toStory(db.stories.get(id) as StoryRow);
        },
      },
      panels: {
        list: async (payload) => {
          const { storyId } = parsePayload(S.panelList, payload, m('panels.list'));
          this.liveStory(storyId, 'storyId');
          return db.panels.list(storyId).map((r) => this.toPanel(r));
        },
        get: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('panels.get'));
          return this.toPanel(this.livePanel(id));
        },
        create: async (payload) => {
          const input = parsePayload(S.panelCreate, payload, m('panels.create'));
          this.liveStory(input.storyId, 'storyId');
          const ids = db.panels.ids(input.storyId);
          let index = ids.length;
          if (input.afterPanelId !== undefined) {
            index = ids.indexOf(input.afterPanelId) + 1;
            if (index === 0) {
              throw ServiceError.invalid(
                [{ path: 'afterPanelId', message: 'is not a panel of this story' }],
                'panels.create',
              );
            }
          }
          const request = this.checkedRequest(defaultPanelRequest(), input.request, 'panels.create');
          const row = db.panels.create({
            storyId: input.storyId,
            title: input.title ?? `Panel ${ids.length + 1}`,
            request,
            index,
          });
          this.changed('panel', row.id, 'created');
          this.changed('story', input.storyId, 'updated');
          return this.toPanel(row);
        },
        update: async (payload) => {
          const input = parsePayload(S.panelUpdate, payload, m('panels.update'));
          const panel = this.livePanel(input.id);
          const request = input.request && this.checkedRequest(panel.request, input.request, 'panels.update');
          const row = db.panels.update(input.id, {
            ...(input.title !== undefined ? { title: input.title } : {}),
            ...(request ? { request } : {}),
          });
          this.changed('panel', input.id, 'updated');
          return this.toPanel(row as PanelRow);
        },
        duplicate: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('panels.duplicate'));
          const panel = this.livePanel(id);
          const index = db.panels.ids(panel.storyId).indexOf(id) + 1;
          const row = db.panels.create({
            storyId: panel.storyId,
            title: `${panel.title} (copy)`.slice(0, 200),
            request: panel.request,
            index,
          });
          this.changed('panel', row.id, 'created');
          this.changed('story', panel.storyId, 'updated');
          return this.toPanel(row);
        },
        delete: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('panels.delete'));
          const panel = db.panels.get(id);
          if (!panel || !db.panels.softDelete(id)) throw ServiceError.notFound(`panel ${id}`);
          this.changed('panel', id, 'deleted');
          this.changed('story', panel.storyId, 'updated');
        },
        restore: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('panels.restore'));
          const panel = db.panels.get(id);
          if (!panel) throw ServiceError.notFound(`panel ${id}`);
          this.liveStory(panel.storyId, 'storyId');
          if (db.panels.restore(id)) {
            this.changed('panel', id, 'created');
            this.changed('story', panel.storyId, 'updated');
          }
          return this.toPanel(db.panels.get(id) as PanelRow);
        },
        reorder: async (payload) => {
          const input = parsePayload(S.panelReorder, payload, m('panels.reorder'));
          this.liveStory(input.storyId, 'storyId');
          try {
            db.panels.reorder(input.storyId, input.panelIds);
          } catch (err) {
            throw ServiceError.invalid(
              [{ path: 'panelIds', message: (err as Error).message }],
              'panels.reorder',
            );
          }
          db.stories.touch(input.storyId);
          this.changed('story', input.storyId, 'updated');
          return this.toStory(db.stories.get(input.storyId) as StoryRow);
        },
        setSegmentMap: async (payload) => {
          const input = parsePayload(S.setSegmentMap, payload, m('panels.setSegmentMap'));
          const panel = this.livePanel(input.panelId);
          const checked = await this.checkedImage(input.image, 'image');
          if ('reason' in checked)
            throw ServiceError.invalid([{ path: 'image', message: checked.reason }], 'panels.setSegmentMap');
          if (checked.mediaType !== 'image/png') {
            throw ServiceError.invalid(
              [{ path: 'image', message: `must be a PNG (lossy ${checked.mediaType} smears region colors)` }],
              'panels.setSegmentMap',
            );
          }
          const row = db.panels.update(panel.id, {
            request: { ...panel.request, segmentMap: { hash: checked.hash } },
          });
          this.changed('panel', panel.id, 'updated');
          return this.toPanel(row as PanelRow);
        },
        setPose: async (payload) => {
          const input = parsePayload(S.setPose, payload, m('panels.setPose'));
          const panel = this.livePanel(input.panelId);
          const row = db.panels.update(panel.id, { request: { ...panel.request, pose: input.pose } });
          this.changed('panel', panel.id, 'updated');
          return this.toPanel(row as PanelRow);
        },
        resolveRequest: async (payload): Promise<ResolvedRequestResult> => {
          const { id } = parsePayload(S.idInput, payload, m('panels.resolveRequest'));
          const panel = this.livePanel(id);
          const resolved = resolvePanelRequest(panel.request, await this.resolveContext(panel.request));
          return resolved.ok
            ? { ok: true, request: resolved.value.json }
            : { ok: false, issues: resolved.issues };
        },
      },
      renders: {
        renderPanel: async (payload) => {
          const input = parsePayload(S.renderPanel, payload, m('renders.renderPanel'));
          return this.renderPanel(input.panelId, input.seed);
        },
        list: async (payload) => {
          const { panelId } = parsePayload(S.renderList, payload, m('renders.list'));
          this.livePanel(panelId, 'panelId');
          return db.renders.list(panelId).map((r) => this.toRender(r));
        },
        get: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('renders.get'));
          const row = db.renders.get(id);
          if (!row || row.deletedAt !== null) throw ServiceError.notFound(`render ${id}`);
          return this.toRender(row);
        },
        delete: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('renders.delete'));
          const row = db.renders.get(id);
          if (!row || !db.renders.softDelete(id)) throw ServiceError.notFound(`render ${id}`);
          this.changed('render', id, 'deleted');
          this.changed('panel', row.panelId, 'updated');
        },
        reveal: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('renders.reveal'));
          return this.revealRender(id);
        },
      },
      jobs: {
        list: async (payload) => {
          const input = parsePayload(S.jobList, payload, m('jobs.list')) ?? {};
          return db.jobs.list(input).map((r) => this.toJob(r));
        },
        get: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('jobs.get'));
          const row = db.jobs.get(id);
          if (!row) throw ServiceError.notFound(`job ${id}`);
          return this.toJob(row);
        },
        cancel: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('jobs.cancel'));
          if (!db.jobs.get(id)) throw ServiceError.notFound(`job ${id}`);
          return this.toJob(this.queue.cancel(id));
        },
      },
      pages: {
        list: async (payload) => {
          const { storyId } = parsePayload(S.pageList, payload, m('pages.list'));
          this.liveStory(storyId, 'storyId');
          return db.pages.list(storyId).map(toPage);
        },
        get: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('pages.get'));
          return toPage(this.livePage(id));
        },
        create: async (payload) => {
          const input = parsePayload(S.pageCreate, payload, m('pages.create'));
          this.liveStory(input.storyId, 'storyId');
          const ids = db.pages.ids(input.storyId);
          let index = ids.length;
          if (input.afterPageId !== undefined) {
            index = ids.indexOf(input.afterPageId) + 1;
            if (index === 0) {
              throw ServiceError.invalid(
                [{ path: 'afterPageId', message: 'is not a page of this story' }],
                'pages.create',
              );
            }
          }
          // a new page looks like the last one (template, size, gutters), with empty slots
          const last = ids.length > 0 ? db.pages.get(ids[ids.length - 1]) : undefined;
          const base: PageContent = {
            template: last?.template ?? 'grid-2x2',
            settings: last?.settings ?? { ...DEFAULT_PAGE_SETTINGS },
            slots: new Array<null>(slotCount(last?.template ?? 'grid-2x2')).fill(null),
            lettering: [],
          };
          const content = this.checkedPage(input.storyId, base, input.content, 'pages.create');
          const row = db.pages.create({ storyId: input.storyId, content, index });
          this.changed('page', row.id, 'created');
          return toPage(row);
        },
        update: async (payload) => {
          const { id, ...patch } = parsePayload(S.pageUpdate, payload, m('pages.update'));
          const page = this.livePage(id);
          const content = this.checkedPage(page.storyId, page, patch, 'pages.update');
          const row = db.pages.update(id, content) as PageRow;
          this.changed('page', id, 'updated');
          return toPage(row);
        },
        delete: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('pages.delete'));
          if (!db.pages.softDelete(id)) throw ServiceError.notFound(`page ${id}`);
          this.changed('page', id, 'deleted');
        },
        restore: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('pages.restore'));
          const page = db.pages.get(id);
          if (!page) throw ServiceError.notFound(`page ${id}`);
          this.liveStory(page.storyId, 'storyId');
          if (db.pages.restore(id)) this.changed('page', id, 'created');
          return toPage(db.pages.get(id) as PageRow);
        },
        reorder: async (payload) => {
          const input = parsePayload(S.pageReorder, payload, m('pages.reorder'));
          this.liveStory(input.storyId, 'storyId');
          try {
            db.pages.reorder(input.storyId, input.pageIds);
          } catch (err) {
            throw ServiceError.invalid(
              [{ path: 'pageIds', message: (err as Error).message }],
              'pages.reorder',
            );
          }
          for (const id of input.pageIds) this.changed('page', id, 'updated');
          return db.pages.list(input.storyId).map(toPage);
        },
        export: async (payload) => {
          const input = parsePayload(S.pageExport, payload, m('pages.export'));
          return this.exportPages(input);
        },
      },
      training: {
        list: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('training.list'));
          return db.trainings
            .listLatest()
            .filter((t) => db.casts.get(t.castId)?.deletedAt === null)
            .map((t) => this.toTraining(t));
        },
        get: async (payload) => {
          const { castId } = parsePayload(S.castIdInput, payload, m('training.get'));
          this.liveCast(castId, 'castId');
          const row = db.trainings.latest(castId);
          return row ? this.toTraining(row) : null;
        },
        check: async (payload): Promise<TrainingCheck> => {
          const { castId } = parsePayload(S.castIdInput, payload, m('training.check'));
          const checked = await this.checkCast(this.liveCast(castId, 'castId'));
          return {
            ok: checked.problems.length === 0,
            problems: checked.problems,
            baseModelName: checked.baseModelName,
          };
        },
        start: async (payload) => {
          const input = parsePayload(S.trainingStart, payload, m('training.start'));
          return this.startTraining(input.castId, input.settings ?? {});
        },
        cancel: async (payload) => {
          const { castId } = parsePayload(S.castIdInput, payload, m('training.cancel'));
          this.liveCast(castId, 'castId');
          const row = db.trainings.latest(castId);
          const job = row && db.jobs.get(row.jobId);
          if (!row || !job || (job.state !== 'queued' && job.state !== 'running')) {
            throw new ServiceError('conflict', 'castId: this cast is not training now');
          }
          this.queue.cancel(job.id);
          return this.toTraining(db.trainings.get(row.id) as TrainingRow);
        },
        resume: async (payload) => {
          const { castId } = parsePayload(S.castIdInput, payload, m('training.resume'));
          return this.resumeTraining(castId);
        },
      },
      models: {
        getInfo: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('models.getInfo'));
          return this.model();
        },
        list: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('models.list'));
          return this.modelEntries();
        },
        import: async (payload) => {
          const input = parsePayload(S.modelImport, payload, m('models.import'));
          return this.importModel(input.path);
        },
        remove: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('models.remove'));
          if (id === DEFAULT_MODEL_ID) {
            throw ServiceError.invalid(
              [{ path: 'id', message: 'the default model cannot be removed' }],
              'models.remove',
            );
          }
          if (!db.modelFolders.get(id)) throw ServiceError.notFound(`model ${id}`);
          if (this.activeModel === id) await this.setActiveModel(DEFAULT_MODEL_ID);
          db.modelFolders.delete(id);
          this.changed('model', id, 'deleted');
        },
        setActive: async (payload) => {
          const { id } = parsePayload(S.idInput, payload, m('models.setActive'));
          return this.setActiveModel(id);
        },
        pickFolder: async (payload?: unknown) => {
          parsePayload(S.none, payload, m('models.pickFolder'));
          const host = this.options.host;
          if (!host) {
            throw new ServiceError(
              'invalid_input',
              'choosing a folder needs the desktop app; type the folder path instead',
            );
          }
          return { path: await host.chooseFolder({ title: 'Import a model folder' }) };
        },
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Pages

  /**
   * A page's content with a patch merged over it, checked as a whole: the layout leaves room for
   * panels, one slot entry per template slot, and slots name panels of the page's story (deleted ones
   * are kept, so that undoing the panel's deletion brings it back on the page).
   */
  private checkedPage(
    storyId: string,
    base: PageContent,
    patch: S.PageContentPatchInput | undefined,
    method: string,
  ): PageContent {
    const template: PageTemplateId = patch?.template ?? base.template;
    const settings = {
      size: patch?.size ?? base.settings.size,
      dpi: patch?.dpi ?? base.settings.dpi,
      gutterMm: patch?.gutterMm ?? base.settings.gutterMm,
      marginMm: patch?.marginMm ?? base.settings.marginMm,
    };
    const count = slotCount(template);
    const issues: { path: string; message: string }[] = [];
    let slots: (string | null)[];
    if (patch?.slots) {
      slots = [...patch.slots];
      if (slots.length !== count) {
        issues.push({
          path: 'slots',
          message: `must list ${count} entries (one per slot of the ${template} template), got ${slots.length}`,
        });
      }
    } else {
      // a new template keeps the panels of the slots it still has
      slots = Array.from({ length: count }, (_, i) => base.slots[i] ?? null);
    }
    slots.forEach((panelId, i) => {
      if (panelId === null) return;
      const panel = this.db.panels.get(panelId);
      if (!panel || panel.storyId !== storyId) {
        issues.push({ path: `slots[${i}]`, message: `panel ${panelId} is not a panel of this story` });
      }
    });
    try {
      pageLayout(template, settings);
    } catch (err) {
      if (!(err instanceof LayoutError)) throw err;
      issues.push({ path: patch?.gutterMm !== undefined ? 'gutterMm' : 'marginMm', message: err.message });
    }
    if (issues.length > 0) throw ServiceError.invalid(issues, method);
    return { template, settings, slots, lettering: patch?.lettering ?? base.lettering };
  }

  /**
   * Exports pages: 1. gathers each slot's latest render (refusing empty pages and panels without a
   * render, naming them), 2. asks the host where to save (Electron), 3. composes and encodes,
   * 4. stores the file (a download in browser mode) and writes it where the user chose.
   */
  private async exportPages(
    input: { format: 'png'; pageId: string } | { format: 'pdf' | 'cbz'; storyId: string },
  ): Promise<PageExportResult> {
    const method = 'pages.export';
    // 1. The pages and their images.
    let story: StoryRow;
    let pages: { row: PageRow; number: number }[];
    if (input.format === 'png') {
      const row = this.livePage(input.pageId, 'pageId');
      story = this.liveStory(row.storyId, 'storyId');
      pages = [{ row, number: this.db.pages.ids(row.storyId).indexOf(row.id) + 1 }];
    } else {
      story = this.liveStory(input.storyId, 'storyId');
      pages = this.db.pages.list(story.id).map((row, i) => ({ row, number: i + 1 }));
      if (pages.length === 0) {
        throw new ServiceError(
          'invalid_input',
          `${method}: "${story.title}" has no pages yet; add a page first`,
        );
      }
    }
    const composable: ComposablePage[] = [];
    for (const { row, number } of pages) composable.push(await this.composable(row, number, method));

    // 2. Where to (Electron asks; browser mode downloads).
    const type = EXPORT_TYPES[input.format];
    const stem = safeFileName(
      input.format === 'png' ? `${story.title} - page ${pages[0].number}` : story.title,
    );
    const fileName = `${stem}.${type.extension}`;
    let savePath: string | null = null;
    if (this.options.host) {
      savePath = await this.options.host.chooseSavePath({
        title: `Export ${type.label}`,
        defaultName: fileName,
        filters: [{ name: type.label, extensions: [type.extension] }],
      });
      if (savePath === null) return { status: 'cancelled', format: input.format };
    }

    // 3. Compose and encode.
    let bytes: Uint8Array;
    try {
      bytes =
        input.format === 'png'
          ? await exportPng(composable[0])
          : input.format === 'pdf'
            ? await exportPdf(composable, story.title)
            : await exportCbz(composable, story.title);
    } catch (err) {
      if (err instanceof ExportError) throw new ServiceError('invalid_input', `${method}: ${err.message}`);
      throw err;
    }

    // 4. Store (served at /files/<hash> for the download; removed at the next start), write the copy.
    const stored = await this.storeBytes(bytes, type.mediaType, true);
    const file = this.fileRef(stored);
    const result = { format: input.format, fileName, pageCount: composable.length, file };
    if (savePath === null) return { status: 'ready', ...result };
    const target = resolve(savePath);
    if (!existsSync(dirname(target)))
      throw new ServiceError('invalid_input', `${method}: the folder ${dirname(target)} does not exist`);
    await writeFileAtomic(target, bytes);
    return { status: 'saved', ...result, savedTo: target };
  }

  /**
   * "Open file location": 1. finds the render's story and panel, 2. copies its PNG to
   * `renders/<story>/<panel> - seed <seed>.png` in the data folder (a name that already holds other
   * bytes gets " (2)", " (3)", ...; a copy of the same bytes is reused), 3. has the host show it.
   */
  private async revealRender(id: string): Promise<RenderFileLocation> {
    const method = 'renders.reveal';
    // 1. Whose render.
    const row = this.db.renders.get(id);
    const panel = row && this.db.panels.get(row.panelId);
    const story = panel && this.db.stories.get(panel.storyId);
    if (!row || row.deletedAt !== null || !panel || !story) throw ServiceError.notFound(`render ${id}`);
    if (!this.store.has(row.imageHash)) {
      throw new ServiceError(
        'not_found',
        `${method}: the image of this render of "${panel.title}" is missing from the library; render it again`,
      );
    }

    // 2. The named copy.
    const folder = join(this.options.dataDir, 'renders', safeFileName(story.title));
    await mkdir(folder, { recursive: true });
    const stem = safeFileName(`${panel.title} - seed ${row.seed}`);
    let path: string | null = null;
    for (let n = 1; n <= MAX_NAMED_COPIES && path === null; n++) {
      const candidate = join(folder, n === 1 ? `${stem}.png` : `${stem} (${n}).png`);
      if (!existsSync(candidate)) {
        await writeFileAtomic(candidate, await this.store.read(row.imageHash));
        path = candidate;
      } else if (sha256Hex(await readFile(candidate)) === row.imageHash) {
        path = candidate;
      }
    }
    if (path === null) {
      throw new ServiceError(
        'conflict',
        `${method}: ${folder} already holds ${MAX_NAMED_COPIES} other files named "${stem}"; move some away`,
      );
    }

    // 3. Show it (Electron); browser mode reports the path.
    this.options.host?.showItemInFolder(path);
    return { path, shown: this.options.host !== undefined };
  }

  /** One page ready to compose, or an error naming what stops it (page and slot numbers are 1-based). */
  private async composable(row: PageRow, number: number, method: string): Promise<ComposablePage> {
    const label = `page ${number}`;
    const refuse = (message: string) => new ServiceError('invalid_input', `${method}: ${message}`);
    if (row.slots.every((s) => s === null) && row.lettering.length === 0) {
      throw refuse(`${label} is empty; drag panels into its slots or delete the page`);
    }
    const slots: (Uint8Array | null)[] = [];
    for (const [i, panelId] of row.slots.entries()) {
      if (panelId === null) {
        slots.push(null);
        continue;
      }
      const where = `${label}, slot ${i + 1}`;
      const panel = this.db.panels.get(panelId);
      if (!panel || panel.deletedAt !== null) {
        throw refuse(`${where} shows a panel that was deleted; clear the slot or undo the deletion`);
      }
      const render = this.db.renders.list(panelId)[0];
      if (!render) throw refuse(`${where}: "${panel.title}" has no render yet; render it or clear the slot`);
      if (!this.store.has(render.imageHash)) {
        throw refuse(`${where}: the render of "${panel.title}" is missing from the library; render it again`);
      }
      slots.push(await this.store.read(render.imageHash));
    }
    return { label, template: row.template, settings: row.settings, slots, lettering: row.lettering };
  }

  // -------------------------------------------------------------------------------------------
  // Models

  /** The default model's folder and where it comes from. */
  private defaultModel(): { dir: string; source: ModelInfo['source'] } {
    const env = this.options.env ?? process.env;
    const dir = defaultModelDir(env);
    if (dir !== undefined) return { dir, source: env.MSP_MODEL_DIR ? 'env' : 'embedded' };
    return { dir: randomModelDir(this.options.dataDir), source: 'random' };
  }

  private async modelEntries(): Promise<ModelEntry[]> {
    const fallback = this.defaultModel();
    const defaultEntry: ModelEntry = {
      id: DEFAULT_MODEL_ID,
      name: basename(fallback.dir),
      kind: 'default',
      source: fallback.source,
      path: existsSync(fallback.dir) ? fallback.dir : null,
      active: this.activeModel === DEFAULT_MODEL_ID,
      details: existsSync(fallback.dir) ? await this.folderDetails(fallback.dir) : null,
    };
    const folders = this.db.modelFolders.list().map((f): ModelEntry => ({
      id: f.id,
      name: f.name,
      kind: 'folder',
      source: 'folder',
      path: f.path,
      active: this.activeModel === f.id,
      details: f.info,
      ...(existsSync(f.path)
        ? {}
        : { problem: 'The folder is missing (moved or deleted?); import it again from where it is now.' }),
      importedAt: f.createdAt,
      ...(f.castId !== null ? withCast(this.trainedCastOf(f.id)?.cast) : {}),
    }));
    return [defaultEntry, ...folders];
  }

  /** What validating a model folder finds (cached by path; null when it cannot be read). */
  private folderDetails(dir: string): Promise<ModelDetails | null> {
    let known = this.modelDetails.get(dir);
    if (!known) {
      known = validateModelFolder(dir).then(
        (d) => d,
        () => null,
      );
      this.modelDetails.set(dir, known);
    }
    return known;
  }

  private async importModel(path: string): Promise<ModelEntry> {
    const method = 'models.import';
    if (!isAbsolute(path)) {
      throw ServiceError.invalid(
        [{ path: 'path', message: 'give the full path of the model folder, e.g. /home/me/models/tiny-sd' }],
        method,
      );
    }
    const dir = resolve(path);
    const known = this.db.modelFolders.byPath(dir);
    if (known) {
      throw new ServiceError('conflict', `${dir} is already in the list as "${known.name}"`, [
        { path: 'path', message: 'is already imported' },
      ]);
    }
    let details: ModelDetails;
    try {
      details = await validateModelFolder(dir);
    } catch (err) {
      const problem = err instanceof ModelFolderError ? err.message : (err as Error).message;
      throw new ServiceError('invalid_input', `The folder is not a model MSP Studio can use: ${problem}`, [
        { path: 'path', message: problem },
      ]);
    }
    this.modelDetails.set(dir, Promise.resolve(details));
    const row = this.db.modelFolders.create({ path: dir, name: basename(dir), info: details });
    this.changed('model', row.id, 'created');
    return (await this.modelEntries()).find((e) => e.id === row.id) as ModelEntry;
  }

  /**
   * Makes renders use another model: loads it in a new renderer first (the old one keeps working if
   * that fails), then swaps. Refused while a render is queued or running.
   */
  private setActiveModel(id: string): Promise<ModelInfo> {
    const run = this.modelChain.then(async () => {
      if (id === this.activeModel) return this.model();
      let folder: ModelFolderRow | undefined;
      if (id !== DEFAULT_MODEL_ID) {
        folder = this.db.modelFolders.get(id);
        if (!folder) throw new ServiceError('not_found', `id: model ${id} does not exist`);
        if (!existsSync(folder.path)) {
          throw new ServiceError(
            'invalid_input',
            `the folder ${folder.path} is missing; import it again from where it is now`,
          );
        }
      }
      const busy = [...this.db.jobs.inState('running'), ...this.db.jobs.inState('queued')];
      if (busy.length > 0) {
        throw new ServiceError(
          'conflict',
          busy.some((j) => j.kind === 'training')
            ? 'a cast is training; wait for it to finish or cancel it, then switch models'
            : 'a render is in progress; wait for it to finish or cancel it, then switch models',
        );
      }
      const runner = (this.options.createRunner ?? defaultCreateRunner)(engineOptions(this.options, folder));
      let info: ModelInfo;
      try {
        info = await runner.info();
      } catch (err) {
        await runner.close().catch(() => undefined);
        throw new ServiceError(
          'invalid_input',
          `${folder?.name ?? 'the default model'} cannot be used: ${(err as Error).message}`,
        );
      }
      const old = this.runner;
      this.runner = runner;
      this.activeModel = id;
      this.modelInfo = info;
      if (id === DEFAULT_MODEL_ID) this.db.settings.delete(ACTIVE_MODEL_KEY);
      else this.db.settings.set(ACTIVE_MODEL_KEY, id);
      await old.close().catch(() => undefined);
      this.changed('model', id, 'updated');
      return { ...info, entryId: id };
    });
    this.modelChain = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------------------------
  // Training

  /** The folder and name of the model renders use now (the base of a new training). */
  private async activeModelFolder(): Promise<{ dir: string; name: string }> {
    if (this.activeModel !== DEFAULT_MODEL_ID) {
      const folder = this.db.modelFolders.get(this.activeModel);
      if (folder) return { dir: folder.path, name: folder.name };
    }
    const { dir } = this.defaultModel();
    // the random test model is created when it first loads
    if (!existsSync(dir)) await this.model();
    return { dir, name: basename(dir) };
  }

  /**
   * Checks a cast before any training: members, readable pictures (every unreadable one is named),
   * identifier tokens the model can learn, then the engine's checks (at least 3 pictures per subject,
   * distinct identifiers, no more subjects than the model reserves tokens).
   */
  private async checkCast(cast: CastRow): Promise<{
    problems: string[];
    baseModelDir: string;
    baseModelName: string;
    subjects: TrainingSubjectRow[];
  }> {
    // the model renders use; a cast trained again starts over from the base of its trained model
    let base = await this.activeModelFolder();
    const retrained = this.trainedCastOf(this.activeModel);
    if (retrained?.training.castId === cast.id && existsSync(retrained.training.baseModelDir))
      base = { dir: retrained.training.baseModelDir, name: retrained.training.baseModelName };
    const problems: string[] = [];
    const members = cast.subjectIds.flatMap((id) => {
      const s = this.db.subjects.get(id);
      return s && s.deletedAt === null ? [s] : [];
    });
    if (members.length === 0)
      problems.push(`The cast "${cast.name}" has nobody in it yet; tick its subjects in the Library.`);
    const decoded: CastSubject[] = [];
    for (const s of members) {
      const images = [];
      for (const [i, hash] of s.images.entries()) {
        const where = `${s.name}: reference picture ${i + 1}`;
        if (!this.store.has(hash)) {
          problems.push(`${where} is missing from the library; remove it and add it again`);
          continue;
        }
        try {
          images.push(await decodeImage(await this.store.read(hash), where));
        } catch {
          problems.push(`${where} cannot be read (a corrupt or unsupported file); remove it`);
        }
      }
      if (!TRAINABLE_IDENTIFIER.test(s.token))
        problems.push(
          `${s.name}: the identifier token "${s.token}" must be one lower-case word of 2-16 letters or digits, like "sks"`,
        );
      decoded.push({ name: s.name, identifier: s.token, classNoun: s.classNoun, images });
    }
    const rareTokens = await readRareTokens(join(base.dir, 'tokenizer'));
    const engineCheck = (subjects: CastSubject[], tokens: string[]) => {
      try {
        checkCastForModel({ name: cast.name, subjects }, tokens);
      } catch (err) {
        if (!(err instanceof CastError)) throw err;
        const message = err.message.replace(/^cast '[^']*': /, '');
        const sentence = message.charAt(0).toUpperCase() + message.slice(1);
        if (!problems.includes(sentence)) problems.push(sentence);
      }
    };
    for (const subject of decoded) engineCheck([subject], []); // too few pictures, for every subject
    if (decoded.length > 0) engineCheck(decoded, rareTokens);
    return {
      problems,
      baseModelDir: base.dir,
      baseModelName: base.name,
      subjects: members.map((s) => ({
        subjectId: s.id,
        name: s.name,
        identifier: s.token,
        classNoun: s.classNoun,
        images: [...s.images],
      })),
    };
  }

  /** The training that is queued or running now, if any. */
  private activeTraining(): TrainingRow | undefined {
    const job = [...this.db.jobs.inState('running'), ...this.db.jobs.inState('queued')].find(
      (j) => j.kind === 'training',
    );
    return job && this.db.trainings.byJob(job.id);
  }

  private refuseWhileTraining(method: string): void {
    const active = this.activeTraining();
    if (!active) return;
    const name = this.db.casts.get(active.castId)?.name ?? 'another cast';
    throw new ServiceError(
      'conflict',
      `${method}: "${name}" is training now; wait for it to finish or cancel it first`,
    );
  }

  private async startTraining(castId: string, patch: Partial<TrainingSettings>): Promise<CastTraining> {
    const method = 'training.start';
    const cast = this.liveCast(castId, 'castId');
    this.refuseWhileTraining(method);
    const settings: TrainingSettings = { ...TRAINING_DEFAULTS, ...definedFields(patch) };
    if (settings.classImages > 0 && (settings.batch < 2 || settings.batch % 2 !== 0)) {
      throw ServiceError.invalid(
        [
          {
            path: 'settings.batch',
            message:
              'must be an even number of at least 2 with class pictures on (half of every step are class pictures)',
          },
        ],
        method,
      );
    }
    const checked = await this.checkCast(cast);
    if (checked.problems.length > 0) {
      throw new ServiceError(
        'invalid_input',
        checked.problems.join(' '),
        checked.problems.map((message) => ({ path: 'castId', message })),
      );
    }
    const workDir = join(this.options.dataDir, 'training', cast.id);
    await rm(workDir, { recursive: true, force: true }); // a new start does not resume old checkpoints
    const row = this.db.trainings.create({
      castId: cast.id,
      jobId: '',
      settings,
      subjects: checked.subjects,
      baseModelDir: checked.baseModelDir,
      baseModelName: checked.baseModelName,
      workDir,
      // a cast trained again replaces its model (same folder, same entry in the model list)
      outDir:
        this.db.modelFolders.list().find((f) => f.castId === cast.id)?.path ??
        join(this.options.dataDir, 'models', castFolderName(cast)),
    });
    return this.enqueueTraining(row, false);
  }

  private async resumeTraining(castId: string): Promise<CastTraining> {
    const method = 'training.resume';
    this.liveCast(castId, 'castId');
    const row = this.db.trainings.latest(castId);
    const job = row && this.db.jobs.get(row.jobId);
    if (!row || !job || (job.state !== 'cancelled' && job.state !== 'failed')) {
      throw new ServiceError(
        'conflict',
        `${method}: there is no cancelled or interrupted training of this cast to resume; start one`,
      );
    }
    this.refuseWhileTraining(method);
    const missing = row.subjects.flatMap((s) => s.images.filter((h) => !this.store.has(h)).map(() => s.name));
    if (missing.length > 0) {
      throw new ServiceError(
        'invalid_input',
        `${method}: reference pictures of ${[...new Set(missing)].join(', ')} are missing from the library; start the training again`,
      );
    }
    return this.enqueueTraining(row, true);
  }

  private enqueueTraining(row: TrainingRow, resume: boolean): CastTraining {
    const input: TrainingJobInput = { trainingId: row.id, castId: row.castId, resume };
    // the job runs on a later tick: the training names it before then
    const job = this.queue.enqueue({ kind: 'training', panelId: '', input, totalSteps: row.settings.steps });
    const training = this.toTraining(this.db.trainings.update(row.id, { jobId: job.id }) as TrainingRow);
    this.emit({ type: 'training.updated', training });
    return training;
  }

  /** The job queue's runner for training jobs (the training itself runs in its worker). */
  private async runTrainingJob(job: JobRow, context: JobContext): Promise<JobRow['result']> {
    const input = job.input as TrainingJobInput;
    const row = this.db.trainings.get(input.trainingId);
    if (!row) throw new Error(`training ${input.trainingId} does not exist`);
    const cast = this.db.casts.get(row.castId);

    // 1. The task: the pictures by their paths in the store, folders under the data folder.
    const task: TrainingTask = {
      baseModelDir: row.baseModelDir,
      outDir: row.outDir,
      workDir: row.workDir,
      resume: input.resume,
      cast: {
        name: cast?.name ?? 'cast',
        subjects: row.subjects.map((s) => ({
          name: s.name,
          identifier: s.identifier,
          classNoun: s.classNoun,
          images: s.images.map((h, i) => this.existingPath(h, `${s.name}, reference picture ${i + 1}`)),
        })),
      },
      settings: row.settings,
    };
    await mkdir(row.workDir, { recursive: true });
    await mkdir(dirname(row.outDir), { recursive: true });

    // 2. Train in the worker: progress and the loss curve to the database, pictures to the store.
    context.reportProgress({ step: 0, totalSteps: row.settings.steps, stage: 'training' });
    let phase: TrainingProgress['phase'] | undefined;
    let phaseStarted = Date.now();
    let chain = Promise.resolve();
    const later = (work: () => Promise<void>) => {
      chain = chain.then(work).catch(() => undefined); // a lost thumbnail must not fail the training
    };
    const output = await this.trainer.train(task, {
      signal: context.signal,
      onProgress: (p) => {
        if (p.phase !== phase) {
          phase = p.phase;
          phaseStarted = Date.now();
        }
        const progress: TrainingProgress = {
          phase: p.phase,
          step: p.step,
          totalSteps: p.totalSteps,
          ...(p.loss !== undefined ? { loss: p.loss } : {}),
          ...(p.lr !== undefined ? { lr: p.lr } : {}),
          phaseElapsedMs: Date.now() - phaseStarted,
        };
        const loss =
          (p.phase === 'unet' || p.phase === 'segmentation') &&
          p.loss !== undefined &&
          Number.isFinite(p.loss)
            ? { phase: p.phase, step: p.step, loss: p.loss }
            : undefined;
        this.db.trainings.update(row.id, { progress });
        if (loss) this.db.trainings.addLoss(row.id, loss);
        context.reportProgress({ step: p.step, totalSteps: p.totalSteps, stage: 'training' });
        this.emit({
          type: 'training.progress',
          trainingId: row.id,
          castId: row.castId,
          progress,
          ...(loss ? { loss } : {}),
        });
      },
      onPrepared: (prepared) =>
        later(async () => {
          const samples: TrainingSampleRow[] = [];
          for (const c of prepared.cutOuts) {
            const file = await this.storePicture(c.png);
            samples.push({
              kind: 'cut-out',
              subjectId: row.subjects[c.subject]?.subjectId ?? null,
              method: c.method,
              hash: file.hash,
            });
          }
          for (const x of prepared.samples) {
            const file = await this.storePicture(x.png);
            samples.push({ kind: 'sample', caption: x.caption, hash: file.hash });
          }
          const updated = this.db.trainings.update(row.id, { samples }) as TrainingRow;
          this.emit({ type: 'training.updated', training: this.toTraining(updated) });
        }),
      onPreview: (preview) =>
        later(async () => {
          const images = [];
          for (const [i, image] of preview.images.entries()) {
            const file = await this.storePicture(image.png);
            const subject = row.subjects.find((s) => s.identifier === image.identifier) ?? row.subjects[i];
            images.push({
              subjectId: subject?.subjectId ?? null,
              identifier: image.identifier,
              prompt: image.prompt,
              hash: file.hash,
            });
          }
          this.db.trainings.addPreview(row.id, { step: preview.step, images });
          this.emit({
            type: 'training.preview',
            trainingId: row.id,
            castId: row.castId,
            preview: {
              step: preview.step,
              images: images.map(({ hash, ...rest }) => ({ ...rest, image: this.fileRefOf(hash) })),
            },
          });
        }),
    });
    await chain;
    if (output.stoppedBy === 'cancelled') {
      // the queue marks the job cancelled (its signal was aborted); the checkpoint stays for a resume
      throw new DOMException('the training was cancelled', 'AbortError');
    }

    // 3. The variant folder becomes a model of the library, tied to the cast.
    const modelId = await this.registerTrainedModel(row, cast?.name ?? 'cast');
    return { modelId };
  }

  /** Stores a picture of a training (kept with the training, so not transient). */
  private async storePicture(png: Uint8Array) {
    const { width, height } = pngSize(png);
    return this.storeBytes(png, 'image/png', false, width, height);
  }

  private async registerTrainedModel(row: TrainingRow, castName: string): Promise<string> {
    const details = await validateModelFolder(row.outDir);
    this.modelDetails.set(row.outDir, Promise.resolve(details));
    const name = `${castName} (trained)`;
    const known = this.db.modelFolders.byPath(row.outDir);
    const folder = known
      ? (this.db.modelFolders.update(known.id, { name, info: details }) as ModelFolderRow)
      : this.db.modelFolders.create({ path: row.outDir, name, info: details, castId: row.castId });
    this.db.trainings.update(row.id, { modelId: folder.id });
    this.changed('model', folder.id, known ? 'updated' : 'created');
    // the folder was rewritten under a renderer that had loaded it: load it again
    if (known && this.activeModel === folder.id) await this.reloadActiveModel();
    return folder.id;
  }

  /** Loads the active model again in a new renderer (its folder changed on disk). */
  private reloadActiveModel(): Promise<void> {
    const run = this.modelChain.then(async () => {
      const folder = this.db.modelFolders.get(this.activeModel);
      if (!folder) return;
      const runner = (this.options.createRunner ?? defaultCreateRunner)(engineOptions(this.options, folder));
      const info = await runner.info().catch(async (err: unknown) => {
        await runner.close().catch(() => undefined);
        throw err;
      });
      const old = this.runner;
      this.runner = runner;
      this.modelInfo = info;
      await old.close().catch(() => undefined);
      this.changed('model', folder.id, 'updated');
    });
    this.modelChain = run.catch(() => undefined);
    return run.catch(() => undefined);
  }

  /** The cast a model was trained on (the newest training that produced it), or undefined. */
  private trainedCastOf(modelId: string): { training: TrainingRow; cast: TrainedCast } | undefined {
    const folder = this.db.modelFolders.get(modelId);
    if (!folder || folder.castId === null) return undefined;
    const training = this.db.trainings.forModel(modelId);
    if (!training) return undefined;
    return {
      training,
      cast: {
        castId: training.castId,
        castName: this.db.casts.get(training.castId)?.name ?? folder.name,
        subjects: training.subjects.map((s) => ({
          subjectId: this.db.subjects.get(s.subjectId)?.deletedAt === null ? s.subjectId : null,
          name: s.name,
          identifier: s.identifier,
          classNoun: s.classNoun,
        })),
        steps: training.settings.steps,
        trainedAt: training.updatedAt,
      },
    };
  }

  private toTraining(r: TrainingRow): CastTraining {
    const job = this.db.jobs.get(r.jobId);
    const state = job?.state ?? 'queued';
    const resumable = state === 'cancelled' || state === 'failed';
    return {
      id: r.id,
      castId: r.castId,
      castName: this.db.casts.get(r.castId)?.name ?? 'cast',
      state,
      jobId: r.jobId,
      settings: { ...r.settings },
      baseModelName: r.baseModelName,
      subjects: r.subjects.map((s) => ({
        subjectId: this.db.subjects.get(s.subjectId)?.deletedAt === null ? s.subjectId : null,
        name: s.name,
        identifier: s.identifier,
        classNoun: s.classNoun,
      })),
      progress: r.progress,
      losses: this.db.trainings.losses(r.id),
      previews: this.db.trainings.previews(r.id).map((p) => ({
        step: p.step,
        images: p.images.map(({ hash, ...rest }) => ({ ...rest, image: this.fileRefOf(hash) })),
      })),
      samples: r.samples.map(({ hash, ...rest }): TrainingSample => ({
        ...rest,
        image: this.fileRefOf(hash),
      })),
      resumable,
      checkpointStep: resumable ? checkpointStep(r.workDir) : 0,
      ...(job?.error ? { error: job.error } : {}),
      ...(r.modelId !== null && state === 'finished' ? { modelId: r.modelId } : {}),
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Rendering

  private async model(): Promise<ModelInfo> {
    try {
      this.modelInfo = { ...(await this.runner.info()), entryId: this.activeModel };
      return this.modelInfo;
    } catch (err) {
      throw new ServiceError('internal', (err as Error).message);
    }
  }

  private async resolveContext(request: StoredPanelRequest): Promise<ResolveContext> {
    const model = await this.model();
    const poseHash = hasPeople(request.pose) ? await this.storePose(request.pose) : undefined;
    const blankSegmentMapHash =
      request.segmentMap === null && request.regions.length === 0
        ? await this.blankSegmentMap(request.backgroundColor)
        : undefined;
    // A model trained on a cast knows its subjects by the identifiers and class nouns they were
    // trained with (even if the library's token was edited since).
    const trained = this.trainedCastOf(this.activeModel)?.training.subjects ?? [];
    return {
      subject: (id) => {
        const s = this.db.subjects.get(id);
        if (!s || s.deletedAt !== null) return undefined;
        const t = trained.find((x) => x.subjectId === id);
        return t
          ? { token: t.identifier, classNoun: t.classNoun }
          : { token: s.token, classNoun: s.classNoun };
      },
      hasFile: (hash) => this.db.files.get(hash) !== undefined && this.store.has(hash),
      model,
      ...(poseHash !== undefined ? { poseHash } : {}),
      ...(blankSegmentMapHash !== undefined ? { blankSegmentMapHash } : {}),
    };
  }

  private async renderPanel(panelId: string, seedOverride: number | undefined): Promise<Job> {
    const panel = this.livePanel(panelId, 'panelId');
    const resolved = resolvePanelRequest(panel.request, await this.resolveContext(panel.request));
    if (!resolved.ok) throw ServiceError.invalid(resolved.issues, 'the panel cannot render');
    const stored = panel.request;
    const seed =
      seedOverride ?? (stored.seedLocked && stored.seed !== null ? stored.seed : randomInt(0, 2 ** 32));
    const request = { ...resolved.value.json, seed } as GenerationRequestJson;
    const input: RenderJobInput = { request, panelRequest: stored, files: resolved.value.files };
    const job = this.queue.enqueue({ kind: 'render', panelId, input, totalSteps: request.steps });
    if (!stored.seedLocked && stored.seed !== seed) {
      this.db.panels.update(panelId, { request: { ...stored, seed } });
      this.changed('panel', panelId, 'updated');
    }
    return this.toJob(job);
  }

  /** The job queue's runner for render jobs (runs on the main thread; the render itself in the worker). */
  private async runRenderJob(job: JobRow, context: JobContext): Promise<JobRow['result']> {
    const input = job.input as RenderJobInput;
    const started = Date.now();
    const tmp = join(this.options.dataDir, 'tmp', job.id);
    await mkdir(tmp, { recursive: true });
    try {
      // 1. The scene: the request with files resolved to the store (the pose copied as .json).
      const files: { segmentMap: string; pose?: string; scaffoldImage?: string } = {
        segmentMap: this.existingPath(input.files.segmentMap, 'segmentMap'),
      };
      if (input.files.pose) {
        files.pose = join(tmp, 'pose.json');
        await copyFile(this.existingPath(input.files.pose, 'pose'), files.pose);
      }
      if (input.files.scaffoldImage)
        files.scaffoldImage = this.existingPath(input.files.scaffoldImage, 'scaffolding.image');
      const scene = { request: parseGenerationRequest(input.request), baseDir: tmp, files };

      // 2. Render in the worker; previews go to the store as transient files.
      const total = input.request.steps;
      context.reportProgress({ step: 0, totalSteps: total, stage: 'loading' });
      let chain = Promise.resolve();
      const output = await this.runner.render(
        { scene, previewEvery: Math.max(1, Math.floor(total / 10)) },
        {
          signal: context.signal,
          onProgress: (p) => {
            chain = chain.then(async () => {
              const preview = p.previewPng
                ? await this.storeBytes(p.previewPng, 'image/png', true)
                : undefined;
              context.reportProgress(
                { step: p.step, totalSteps: p.totalSteps, stage: p.stage },
                preview?.hash,
              );
            });
          },
        },
      );
      await chain.catch(() => undefined);

      // 3. Save the PNG and the render record.
      context.reportProgress({ step: total, totalSteps: total, stage: 'saving' });
      const image = await this.storeBytes(output.png, 'image/png', false, output.width, output.height);
      const render = this.db.renders.create({
        panelId: job.panelId,
        jobId: job.id,
        seed: output.request.seed,
        imageHash: image.hash,
        request: { ...input.request, seed: output.request.seed, width: output.width, height: output.height },
        panelRequest: input.panelRequest,
        modelName: output.modelName,
        durationMs: Date.now() - started,
        warnings: output.warnings,
      });
      return { renderId: render.id };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private existingPath(hash: string, field: string): string {
    if (!this.store.has(hash)) throw new Error(`${field}: the file ${hash} is missing from the library`);
    return this.store.pathOf(hash);
  }

  private onQueueEvent(event: JobQueueEvent): void {
    if (event.job.kind === 'training') {
      // progress goes out as training.progress (runTrainingJob); state changes as both events
      if (event.type === 'progress') return;
      this.emit({ type: 'job.updated', job: this.toJob(event.job) });
      const training = this.db.trainings.byJob(event.job.id);
      if (training) this.emit({ type: 'training.updated', training: this.toTraining(training) });
      return;
    }
    if (event.type === 'progress') {
      const preview = event.previewHash ? this.db.files.get(event.previewHash) : undefined;
      this.emit({
        type: 'job.progress',
        jobId: event.job.id,
        panelId: event.job.panelId,
        progress: event.job.progress,
        ...(preview ? { preview: this.fileRef(preview) } : {}),
      });
      return;
    }
    const job = this.toJob(event.job);
    this.emit({ type: 'job.updated', job });
    const renderId = event.job.result?.renderId;
    if (event.job.state === 'finished' && renderId) {
      const render = this.db.renders.get(renderId);
      if (render) {
        this.emit({ type: 'job.finished', job, render: this.toRender(render) });
        this.changed('render', render.id, 'created');
        this.changed('panel', render.panelId, 'updated');
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Files

  /** Stores bytes and records their metadata. */
  private async storeBytes(
    bytes: Uint8Array,
    mediaType: string,
    transient: boolean,
    width?: number,
    height?: number,
  ) {
    const { hash, size } = await this.store.put(bytes);
    return this.db.files.upsert({
      hash,
      mediaType,
      size,
      width: width ?? null,
      height: height ?? null,
      transient,
    });
  }

  /** Validates and stores an upload: size, base64, and bytes that really are the declared type. */
  private async storeUpload(
    input: { data: string; mediaType: string; name?: string },
    method: string,
  ): Promise<FileRef> {
    const checked = await this.checkUpload(input);
    if ('reason' in checked) throw ServiceError.invalid([{ path: 'data', message: checked.reason }], method);
    return this.fileRef(checked);
  }

  private async checkUpload(input: { data: string; mediaType: string; name?: string }) {
    const bytes = new Uint8Array(Buffer.from(input.data, 'base64'));
    const label = input.name ?? 'the file';
    if (bytes.byteLength === 0) return { reason: `${label} is empty` };
    if (bytes.byteLength > MAX_FILE_BYTES) return { reason: `${label} is larger than 50 MB` };
    const actual = sniffMediaType(bytes);
    const declared = input.mediaType.toLowerCase().split(';')[0].trim();
    const allowed = [...IMAGE_TYPES, 'application/json'];
    if (!allowed.includes(declared)) {
      return {
        reason: `${label}: ${declared} files are not accepted; use PNG, JPEG or WebP images (or JSON)`,
      };
    }
    if (actual !== declared) {
      return { reason: `${label} is not a ${declared} file${actual ? ` (its bytes are ${actual})` : ''}` };
    }
    if (declared === 'application/json') {
      try {
        JSON.parse(Buffer.from(bytes).toString('utf8'));
      } catch {
        return { reason: `${label} is not valid JSON` };
      }
      return this.storeBytes(bytes, declared, false);
    }
    let width: number;
    let height: number;
    try {
      ({ width, height } = await decodeImage(bytes, label));
    } catch {
      return { reason: `${label} is not a readable image (unsupported or corrupt file)` };
    }
    return this.storeBytes(bytes, declared, false, width, height);
  }

  /** An image for the library: uploaded bytes (checked) or a stored image by hash. */
  private async checkedImage(
    image: { hash: string } | { data: string; mediaType: string; name?: string },
    _path: string,
  ) {
    if ('data' in image) {
      const checked = await this.checkUpload(image);
      if ('reason' in checked) return checked;
      if (!(IMAGE_TYPES as readonly string[]).includes(checked.mediaType))
        return { reason: 'is not an image' };
      return checked;
    }
    const file = this.db.files.get(image.hash);
    if (!file || !this.store.has(image.hash))
      return { reason: `the file ${image.hash} is not in the library` };
    if (!(IMAGE_TYPES as readonly string[]).includes(file.mediaType))
      return { reason: `is ${file.mediaType}, not an image` };
    if (file.transient) return this.db.files.upsert({ ...file, transient: false });
    return file;
  }

  private requireFile(hash: string, path: string) {
    const file = this.db.files.get(hash);
    if (!file || !this.store.has(hash)) {
      throw new ServiceError('not_found', `${path}: the file ${hash} is not in the library`);
    }
    return file;
  }

  private fileRef(file: {
    hash: string;
    mediaType: string;
    size: number;
    width: number | null;
    height: number | null;
  }): FileRef {
    return {
      hash: file.hash,
      url: this.options.fileUrl(file.hash),
      mediaType: file.mediaType,
      size: file.size,
      ...(file.width !== null ? { width: file.width } : {}),
      ...(file.height !== null ? { height: file.height } : {}),
    };
  }

  private fileRefOf(hash: string): FileRef {
    const file = this.db.files.get(hash);
    return file
      ? this.fileRef(file)
      : { hash, url: this.options.fileUrl(hash), mediaType: 'application/octet-stream', size: 0 };
  }

  /** The pose document stored as OpenPose JSON (content-addressed); returns its hash. */
  private async storePose(pose: NonNullable<StoredPanelRequest['pose']>): Promise<string> {
    const json = JSON.stringify(toOpenPoseJson(pose));
    return (await this.storeBytes(new TextEncoder().encode(json), 'application/json', false)).hash;
  }

  /** An 8x8 segment map of the background color (a panel with nothing painted renders its prompt). */
  private async blankSegmentMap(color: string): Promise<string> {
    const known = this.blankMaps.get(color);
    if (known && this.store.has(known)) return known;
    const rgb = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
    const data = new Uint8Array(8 * 8 * 3).map((_, i) => rgb[i % 3]);
    const file = await this.storeBytes(
      await encodePng({ width: 8, height: 8, data }),
      'image/png',
      false,
      8,
      8,
    );
    this.blankMaps.set(color, file.hash);
    return file.hash;
  }

  // -------------------------------------------------------------------------------------------
  // Lookups and checks

  private liveSubject(id: string, path = 'id'): SubjectRow {
    const row = this.db.subjects.get(id);
    if (!row || row.deletedAt !== null)
      throw new ServiceError('not_found', `${path}: subject ${id} does not exist`);
    return row;
  }

  private liveCast(id: string, path = 'id'): CastRow {
    const row = this.db.casts.get(id);
    if (!row || row.deletedAt !== null)
      throw new ServiceError('not_found', `${path}: cast ${id} does not exist`);
    return row;
  }

  private liveStory(id: string, path = 'id'): StoryRow {
    const row = this.db.stories.get(id);
    if (!row || row.deletedAt !== null)
      throw new ServiceError('not_found', `${path}: story ${id} does not exist`);
    return row;
  }

  private livePanel(id: string, path = 'id'): PanelRow {
    const row = this.db.panels.get(id);
    const story = row && this.db.stories.get(row.storyId);
    if (!row || row.deletedAt !== null || !story || story.deletedAt !== null) {
      throw new ServiceError('not_found', `${path}: panel ${id} does not exist`);
    }
    return row;
  }

  private livePage(id: string, path = 'id'): PageRow {
    const row = this.db.pages.get(id);
    const story = row && this.db.stories.get(row.storyId);
    if (!row || row.deletedAt !== null || !story || story.deletedAt !== null) {
      throw new ServiceError('not_found', `${path}: page ${id} does not exist`);
    }
    return row;
  }

  private checkSubjectIds(ids: readonly string[], method: string): string[] {
    const issues = ids.flatMap((id, i) => {
      const s = this.db.subjects.get(id);
      if (!s || s.deletedAt !== null)
        return [{ path: `subjectIds[${i}]`, message: `subject ${id} does not exist` }];
      if (ids.indexOf(id) !== i)
        return [{ path: `subjectIds[${i}]`, message: `subject ${id} is listed twice` }];
      return [];
    });
    if (issues.length > 0) throw ServiceError.invalid(issues, method);
    return [...ids];
  }

  /** The request merged with a patch; file references must exist and the whole must be consistent. */
  private checkedRequest(
    base: StoredPanelRequest,
    patch: S.PanelRequestPatchInput | undefined,
    method: string,
  ): StoredPanelRequest {
    const merged = patch ? mergePanelRequest(base, patch) : base;
    const issues = editingIssues(merged);
    const checkFile = (hash: string | undefined, path: string, png = false) => {
      if (hash === undefined) return;
      const file = this.db.files.get(hash);
      if (!file || !this.store.has(hash))
        issues.push({ path, message: `the file ${hash} is not in the library` });
      else if (!(IMAGE_TYPES as readonly string[]).includes(file.mediaType))
        issues.push({ path, message: 'is not an image' });
      else if (png && file.mediaType !== 'image/png') issues.push({ path, message: 'must be a PNG' });
    };
    if (patch?.segmentMap) checkFile(merged.segmentMap?.hash, 'request.segmentMap', true);
    if (patch?.scaffolding && merged.scaffolding && 'image' in merged.scaffolding) {
      checkFile(merged.scaffolding.image.hash, 'request.scaffolding.image');
    }
    patch?.regions?.forEach((r, i) => {
      if (r.subjectId && !this.db.subjects.get(r.subjectId)) {
        issues.push({
          path: `request.regions[${i}].subjectId`,
          message: `subject ${r.subjectId} does not exist`,
        });
      }
    });
    if (issues.length > 0) throw ServiceError.invalid(issues, method);
    return merged;
  }

  /** The first rare token no live subject uses: the model's list, then the fallback list, then numbered. */
  private async suggestToken(): Promise<string> {
    const model = await this.runner.info().catch(() => undefined);
    const candidates = [...new Set([...(model?.rareTokens ?? []), ...FALLBACK_RARE_TOKENS])];
    for (const token of candidates) if (!this.db.subjects.tokenInUse(token)) return token;
    for (let n = 2; ; n++) {
      for (const token of candidates) if (!this.db.subjects.tokenInUse(`${token}${n}`)) return `${token}${n}`;
    }
  }

  private tokenConflict(token: string): ServiceError {
    return new ServiceError(
      'conflict',
      `token: "${token}" is already the identifier of another subject; pick another`,
      [{ path: 'token', message: 'is used by another subject' }],
    );
  }

  // -------------------------------------------------------------------------------------------
  // Records

  private toSubject(r: SubjectRow): Subject {
    return {
      id: r.id,
      name: r.name,
      token: r.token,
      classNoun: r.classNoun,
      referenceImages: r.images.map((h) => this.fileRefOf(h)),
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }

  private toStory(r: StoryRow): Story {
    return {
      id: r.id,
      title: r.title,
      castId: r.castId !== null && this.db.casts.get(r.castId)?.deletedAt === null ? r.castId : null,
      panelIds: this.db.panels.ids(r.id),
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }

  private toPanelRequest(stored: StoredPanelRequest): PanelRequest {
    return {
      ...stored,
      segmentMap: stored.segmentMap ? this.fileRefOf(stored.segmentMap.hash) : null,
      scaffolding:
        stored.scaffolding && 'image' in stored.scaffolding
          ? { image: this.fileRefOf(stored.scaffolding.image.hash) }
          : stored.scaffolding,
    };
  }

  private toPanel(r: PanelRow): Panel {
    return {
      id: r.id,
      storyId: r.storyId,
      title: r.title,
      request: this.toPanelRequest(r.request),
      renders: this.db.renders.list(r.id).map((x) => this.toRender(x)),
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }

  private toRender(r: RenderRow): Render {
    return {
      id: r.id,
      panelId: r.panelId,
      jobId: r.jobId,
      seed: r.seed,
      image: this.fileRefOf(r.imageHash),
      request: r.request as GenerationRequestJson,
      panelRequest: this.toPanelRequest(r.panelRequest),
      modelName: r.modelName,
      durationMs: r.durationMs,
      warnings: r.warnings,
      createdAt: r.createdAt,
    };
  }

  private toJob(r: JobRow): Job {
    return {
      id: r.id,
      kind: r.kind,
      state: r.state,
      panelId: r.panelId,
      ...(r.kind === 'training' ? { castId: (r.input as TrainingJobInput).castId } : {}),
      progress: r.progress,
      ...(r.error !== null ? { error: r.error } : {}),
      ...(r.result?.renderId ? { renderId: r.result.renderId } : {}),
      ...(r.preview !== null && r.state === 'running' && this.db.files.get(r.preview)
        ? { preview: this.fileRefOf(r.preview) }
        : {}),
      createdAt: r.createdAt,
      ...(r.startedAt !== null ? { startedAt: r.startedAt } : {}),
      ...(r.finishedAt !== null ? { finishedAt: r.finishedAt } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private changed(entity: EntityKind, id: string, change: 'created' | 'updated' | 'deleted'): void {
    this.emit({ type: 'data.changed', entity, id, change });
  }

  private emit(event: StudioEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // One listener's failure must not stop the others.
      }
    }
  }
}

function withCast(cast: TrainedCast | undefined): { cast?: TrainedCast } {
  return cast ? { cast } : {};
}

function toCast(r: CastRow): Cast {
  return { id: r.id, name: r.name, subjectIds: r.subjectIds, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

function toPage(r: PageRow): Page {
  return {
    id: r.id,
    storyId: r.storyId,
    template: r.template,
    size: r.settings.size,
    dpi: r.settings.dpi,
    gutterMm: r.settings.gutterMm,
    marginMm: r.settings.marginMm,
    slots: [...r.slots],
    lettering: r.lettering.map((l) => ({ ...l, tail: l.tail && { ...l.tail } })),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

function defaultCreateRunner(engine: EngineOptions): RenderRunner {
  return new WorkerRenderRunner(engine);
}

function randomModelDir(dataDir: string): string {
  return join(dataDir, 'models', 'tiny-random');
}

/** How the engine loads a model: an imported folder, or the default (embedded, MSP_MODEL_DIR or random). */
function engineOptions(options: StudioServiceOptions, folder: ModelFolderRow | undefined): EngineOptions {
  const randomDir = randomModelDir(options.dataDir);
  if (folder) return { modelDir: folder.path, modelSource: 'folder', randomModelDir: randomDir };
  const env = options.env ?? process.env;
  const modelDir = defaultModelDir(env);
  return {
    ...(modelDir !== undefined ? { modelDir, modelSource: env.MSP_MODEL_DIR ? 'env' : 'embedded' } : {}),
    randomModelDir: randomDir,
  };
}

/**
 * Validates a model folder by the model contract and summarizes it.
 *
 * @throws ModelFolderError naming the file at fault.
 */
async function validateModelFolder(dir: string): Promise<ModelDetails> {
  const folder = await loadModelFolder(dir);
  const s = folder.sizes;
  return {
    sizes: {
      defaultImageSize: s.defaultImageSize ?? null,
      vaeScaleFactor: s.vaeScaleFactor,
      latentChannels: s.latentChannels,
      sequenceLength: s.sequenceLength,
      hiddenSize: s.hiddenSize,
    },
    hasControlNet: folder.components.controlnet !== undefined,
    hasVaeEncoder: folder.components.vae_encoder !== undefined,
    hasSegmentation: existsSync(join(folder.dir, 'segmentation', 'model.onnx')),
  };
}

/** A file name from a title: no path separators or characters file systems refuse, at most 100 characters. */
export function safeFileName(title: string): string {
  const cleaned = title
    // eslint-disable-next-line no-control-regex -- control characters are what is being removed
    .replace(/[\u0000-\u001f<>:"/\\|?*]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '')
    .slice(0, 100)
    .trim();
  return cleaned === '' ? 'comic' : cleaned;
}

/** The folder name of a cast's trained model: its name as a file name, and the start of its id. */
function castFolderName(cast: CastRow): string {
  const slug = cast.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${slug || 'cast'}-${cast.id.slice(0, 8)}`;
}

/** The fields of a patch that are set. */
function definedFields<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The UNet step of the newest checkpoint in a training's work folder (0 when there is none). */
function checkpointStep(workDir: string): number {
  try {
    const latest = JSON.parse(readFileSync(join(workDir, 'unet', 'latest.json'), 'utf8')) as {
      step?: unknown;
    };
    return typeof latest.step === 'number' ? latest.step : 0;
  } catch {
    return 0;
  }
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}
