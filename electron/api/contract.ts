/**
 * The MSP Studio API contract: the one typed surface between the UI (renderer) and the backend
 * (services in the Electron main process, or the local Node server in browser mode).
 *
 * TYPES ONLY. This module is imported by the browser renderer, so it must not import Node,
 * Electron or native-models values (types from the platform-free common/ folder are fine). It changes
 * additively only: new methods, new optional fields.
 *
 * Transport (both modes carry the same envelope):
 * - every method takes at most one JSON payload and answers an {@link ApiResponse};
 * - Electron: `window.msp.invoke(method, payload)` (the preload's allow-listed bridge,
 *   {@link MspBridge}) and `window.msp.onEvent(listener)`;
 * - browser mode: `POST /api/<method>` with the JSON payload as body (same origin; the session
 *   cookie set by `/?token=...` authenticates, or `Authorization: Bearer <token>`), events as JSON
 *   text messages on the WebSocket `/api/events`; files at `/files/<hash>`.
 * - `electron/api/client.ts` turns either transport into a typed {@link StudioApi} that throws
 *   `ApiError` for `{ ok: false }` answers.
 *
 * @example
 * const api = createStudioClient(window.msp ?? createBrowserTransport());
 * const story = await api.stories.create({ title: 'The Lighthouse' });
 * const panel = await api.panels.create({ storyId: story.id });
 * const job = await api.renders.renderPanel({ panelId: panel.id });
 * api.events.subscribe((e) => { if (e.type === 'job.progress') showPreview(e.preview?.url); });
 */

import type { PageSizeId, PageTemplateId } from '../../common/pages/layout.js';
import type { Lettering, LetteringKind } from '../../common/pages/lettering.js';

export type { Lettering, LetteringKind, PageSizeId, PageTemplateId };

// ---------------------------------------------------------------------------------------------
// Basic values

/** An opaque record id (a UUID). */
export type Id = string;

/** An ISO 8601 UTC timestamp, e.g. `2025-01-31T12:00:00.000Z`. */
export type Timestamp = string;

/**
 * A file in the content-addressed store. The renderer only ever names files by `hash`; paths never
 * cross the API. `url` loads the bytes from the page's own origin: `/files/<hash>` in both modes
 * (so canvases that draw stored images are not tainted and can be exported).
 */
export interface FileRef {
  /** Lowercase hex SHA-256 of the bytes. */
  hash: string;
  url: string;
  /** e.g. `image/png`. */
  mediaType: string;
  /** Size in bytes. */
  size: number;
  /** Pixel size, for images. */
  width?: number;
  height?: number;
}

/** How a payload names a stored file: its hash (a whole {@link FileRef} is accepted too). */
export interface FileHandle {
  hash: string;
}

/** File bytes sent with a payload: base64 (no `data:` prefix) and the media type. */
export interface FileUpload {
  /** Base64 of the bytes (standard alphabet; padding optional). */
  data: string;
  /** `image/png`, `image/jpeg` or `image/webp` for images. */
  mediaType: string;
  /** Original file name, for messages only. */
  name?: string;
}

/** A stored file or new bytes. */
export type FileInput = FileHandle | FileUpload;

// ---------------------------------------------------------------------------------------------
// Library: subjects and casts

/** A subject (character or object) the model is taught from reference images. */
export interface Subject {
  id: Id;
  name: string;
  /** The rare identifier token, e.g. `sks`; unique among subjects. */
  token: string;
  /** The class noun, e.g. `cat`, `man in a comic style`. */
  classNoun: string;
  /** Reference images in the order they were added (images only, duplicates refused). */
  referenceImages: FileRef[];
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** A group of subjects that appear together in a story (and train together). */
export interface Cast {
  id: Id;
  name: string;
  /** Member subjects, in display order. */
  subjectIds: Id[];
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

// ---------------------------------------------------------------------------------------------
// Projects: stories, panels, renders

/** A story: a cast and panels in reading order. */
export interface Story {
  id: Id;
  title: string;
  castId: Id | null;
  /** Panels in reading order (deleted panels excluded). */
  panelIds: Id[];
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** The scheduler names of native-models/schedulers. */
export type SchedulerName = 'ddim' | 'euler' | 'euler_a' | 'dpmpp_2m' | 'dpmpp_2m_karras';

/** The scheduler names as the UI lists them (mirrors native-models SCHEDULER_NAMES). */
export type SchedulerNames = readonly SchedulerName[];

/** A painted region of the segment map: its color, local prompt and (optionally) the subject it shows. */
export interface Region {
  /** Lowercase `#rrggbb` (any `#rgb`/`#rrggbb` is accepted and normalized); distinct per panel. */
  color: string;
  /**
   * Local prompt. When the region is bound to a subject, the render prompt is
   * `<token> <classNoun> <prompt>` unless the prompt already contains the token.
   */
  prompt: string;
  /** The cast member this region shows, or null/absent for a "free" region. */
  subjectId?: Id | null;
  /** A label for the region list (optional). */
  name?: string;
  /**
   * The skeleton linked to this region in the editor (an index into `pose.people`), or null/absent.
   * Editing state: moving one offers to move the other; rendering does not read it.
   */
  person?: number | null;
}

/** An OpenPose keypoint in canvas pixels; null when hidden (occluded). */
export type PoseKeypoint = Readonly<{ x: number; y: number; confidence: number }> | null;

/** One skeleton: always 18 COCO keypoints in OpenPose order. */
export interface PosePerson {
  readonly keypoints: readonly PoseKeypoint[];
}

/** A pose document (structurally native-models/pose/openpose.ts `PoseDocument`). */
export interface PoseDocumentJson {
  readonly width: number;
  readonly height: number;
  readonly people: readonly PosePerson[];
}

/** SAL (segmentation guidance loss) settings. */
export interface SalSettings {
  /** 0 turns SAL off. */
  weight: number;
  /** Fractions of the steps, start < end, both in [0, 1]. */
  start: number;
  end: number;
  /** Every n-th step of the range (n >= 1). */
  every: number;
}

/**
 * A panel's request as the editor keeps it: the fields of the MSP GenerationRequest plus the
 * editor's own state (the painted segment map as a file, regions bound to subjects, the pose as a
 * document). It may be incomplete while editing (empty prompts are allowed); it is checked in full
 * when a render starts ({@link StudioApi.renders} `renderPanel` rejects with issues that name
 * these fields, e.g. `regions[1].prompt`).
 */
export interface PanelRequest {
  version: 1;
  prompt: string;
  negativePrompt: string;
  /** Prompt for unpainted pixels; null means "same as `prompt`". */
  backgroundPrompt: string | null;
  /** The color of unpainted area in the segment map (`#000000`); transparent pixels count too. */
  backgroundColor: string;
  /** The painted segment map PNG (any size; resized to the panel with nearest neighbour). */
  segmentMap: FileRef | null;
  regions: Region[];
  /** Skeletons (COCO-18); needs a model with a ControlNet. */
  pose: PoseDocumentJson | null;
  /** What segments develop against in the scaffolding stage. */
  scaffolding: { image: FileRef } | { color: string } | null;
  steps: number;
  scheduler: SchedulerName;
  guidanceScale: number;
  /** A step count (whole number >= 0) or a fraction of `steps` in (0, 1). */
  scaffoldingSteps: number;
  globalDiffuserSteps: number;
  /** In [0, 1]. */
  globalDiffuserWeight: number;
  controlnetScale: number;
  sal: SalSettings;
  /** The seed of the next render when `seedLocked`; otherwise the last seed used (for display). */
  seed: number | null;
  /** When false (the default) every render draws a new seed. */
  seedLocked: boolean;
  /** Render size in pixels; null means the model's default. Multiples of the model's VAE factor. */
  width: number | null;
  height: number | null;
}

/**
 * What a payload may send for a panel request: any subset of the fields (merged over the stored
 * request), with files named by hash.
 */
export type PanelRequestPatch = Partial<Omit<PanelRequest, 'segmentMap' | 'scaffolding' | 'sal'>> & {
  segmentMap?: FileHandle | null;
  scaffolding?: { image: FileHandle } | { color: string } | null;
  sal?: Partial<SalSettings>;
};

/**
 * The MSP GenerationRequest JSON (native-models/msp/request.ts) as it was rendered: defaults, seed
 * and size filled in. File fields name stored files as `<hash>.png` / `<hash>.json`.
 */
export interface GenerationRequestJson {
  version: 1;
  prompt: string;
  negativePrompt: string;
  backgroundPrompt: string;
  segmentMap: string;
  backgroundColor: string;
  segments: { color: string; prompt: string; subject?: string }[];
  pose?: string;
  scaffolding?: { image: string } | { color: string };
  steps: number;
  scheduler: SchedulerName;
  guidanceScale: number;
  scaffoldingSteps: number;
  globalDiffuserSteps: number;
  globalDiffuserWeight: number;
  controlnetScale: number;
  sal: SalSettings;
  seed: number;
  width: number;
  height: number;
}

/** A panel of a story: its request (editor state) and its render history. */
export interface Panel {
  id: Id;
  storyId: Id;
  title: string;
  request: PanelRequest;
  /** Render history, newest first (`renders[0]` is the latest). */
  renders: Render[];
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** One finished render of a panel: the image and everything needed to reproduce it. */
export interface Render {
  id: Id;
  panelId: Id;
  jobId: Id;
  seed: number;
  /** The PNG (it carries `parameters` and `msp:request` text chunks). */
  image: FileRef;
  /** The exact request rendered (seeded, sizes filled in). */
  request: GenerationRequestJson;
  /** The editor state at render time, for "reuse settings". */
  panelRequest: PanelRequest;
  /** The model folder's name. */
  modelName: string;
  /** Wall time of the job's run, in milliseconds. */
  durationMs: number;
  /** Non-fatal notes from the pipeline (e.g. antialiased edges resolved). */
  warnings: string[];
  createdAt: Timestamp;
}

/**
 * Where a render's named copy is: `path` is absolute on the machine that runs the studio (the
 * browser-mode server is local). `shown`: the system file manager was opened on it (Electron).
 */
export interface RenderFileLocation {
  path: string;
  shown: boolean;
}

// ---------------------------------------------------------------------------------------------
// Pages

/**
 * A comic page of a story: a layout template whose slots show panels (each its latest render, scaled
 * to cover the slot, centred), and lettering on top. Geometry: common/pages/layout.ts.
 */
export interface Page {
  id: Id;
  storyId: Id;
  template: PageTemplateId;
  size: PageSizeId;
  /** Print resolution of exports, dots per inch (default 300). */
  dpi: number;
  /** White space between panels, millimetres. */
  gutterMm: number;
  /** White space between the panels and the page edge, millimetres. */
  marginMm: number;
  /** One entry per slot of the template, in reading order: the panel shown, or null (empty). */
  slots: (Id | null)[];
  /** Captions and speech balloons, in stacking order (later ones on top). */
  lettering: Lettering[];
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** What an edit of a page may change. */
export type PageContent = Pick<
  Page,
  'template' | 'size' | 'dpi' | 'gutterMm' | 'marginMm' | 'slots' | 'lettering'
>;

export interface PageCreateInput {
  storyId: Id;
  /** Default: the story's last page's template and settings, with empty slots (or a 2x2 A4 page at 300 dpi). */
  content?: Partial<PageContent>;
  /** Insert after this page; default: at the end. */
  afterPageId?: Id;
}

/**
 * A page edit: the fields given replace the stored ones. `slots` must have one entry per slot of the
 * resulting template; changing the template alone keeps the slots that still exist.
 */
export type PageUpdateInput = { id: Id } & Partial<PageContent>;

export type PageExportFormat = 'png' | 'pdf' | 'cbz';

/** PNG exports one page; PDF and CBZ export all of a story's pages in reading order. */
export type PageExportInput = { format: 'png'; pageId: Id } | { format: 'pdf' | 'cbz'; storyId: Id };

/**
 * An export. `ready` (browser mode): download `file.url` as `fileName`. `saved` (Electron): written to
 * the path the user chose in the save dialog. `cancelled`: the user closed that dialog; nothing written.
 */
export type PageExportResult =
  | { status: 'ready'; format: PageExportFormat; fileName: string; pageCount: number; file: FileRef }
  | {
      status: 'saved';
      format: PageExportFormat;
      fileName: string;
      pageCount: number;
      file: FileRef;
      savedTo: string;
    }
  | { status: 'cancelled'; format: PageExportFormat };

// ---------------------------------------------------------------------------------------------
// Jobs

/** `render`: a panel render; `training`: a cast training ({@link CastTraining}). */
export type JobKind = 'render' | 'training';

/** queued -> running -> finished | failed | cancelled (queued -> cancelled too). */
export type JobState = 'queued' | 'running' | 'finished' | 'failed' | 'cancelled';

/**
 * Where a running job is: model loading, the three MSP stages, then saving (renders); `training` for
 * a cast training (its {@link TrainingProgress} says which phase).
 */
export type JobStage =
  'queued' | 'loading' | 'global' | 'scaffolding' | 'harmonization' | 'saving' | 'training' | 'done';

export interface JobProgress {
  /** Denoising steps done (0..totalSteps). */
  step: number;
  totalSteps: number;
  stage: JobStage;
  /** Milliseconds since the job started running (absent while queued). */
  elapsedMs?: number;
}

export interface Job {
  id: Id;
  kind: JobKind;
  state: JobState;
  /** The panel a render job renders (empty for training jobs). */
  panelId: Id;
  /** The cast a training job trains. */
  castId?: Id;
  progress: JobProgress;
  /** Why the job failed (one sentence, names the field or file at fault). */
  error?: string;
  /** The render a finished job produced. */
  renderId?: Id;
  /** The latest preview image (while running). */
  preview?: FileRef;
  createdAt: Timestamp;
  startedAt?: Timestamp;
  finishedAt?: Timestamp;
}

// ---------------------------------------------------------------------------------------------
// Training (teaching a cast to the model)

/**
 * How a cast is trained. The defaults suit a real model; the shipped tiny model learns a cast in a
 * few hundred steps as well.
 */
export interface TrainingSettings {
  /** Steps of fine-tuning (default 400). */
  steps: number;
  /**
   * Pictures per class noun the base model draws first ("a cat"), so the class keeps its general
   * meaning (prior preservation); 0 turns it off (default 8).
   */
  classImages: number;
  /** Steps of the cast's segmentation model (what SAL checks regions with); 0 skips it (default 300). */
  segmentationSteps: number;
  /** A sample picture of every subject each this many steps; 0 = none (default 50). */
  previewEvery: number;
  /** Pictures per step, half the subjects and half class pictures (even, default 8). */
  batch: number;
}

/** The phases of a training, in order. */
export type TrainingPhase = 'prepare' | 'class-images' | 'encode' | 'unet' | 'segmentation' | 'export';

export interface TrainingProgress {
  phase: TrainingPhase;
  /** Steps of the current phase. */
  step: number;
  totalSteps: number;
  loss?: number;
  /** Learning rate of the step. */
  lr?: number;
  /** Milliseconds since the phase began (in this run). */
  phaseElapsedMs?: number;
}

/** One point of the loss curve. */
export interface TrainingLossPoint {
  phase: 'unet' | 'segmentation';
  step: number;
  loss: number;
}

/** Sample pictures of every subject drawn with the weights of a step. */
export interface TrainingPreview {
  step: number;
  images: { subjectId: Id | null; identifier: string; prompt: string; image: FileRef }[];
}

/**
 * What the training trains on, to show the user: each reference image's cut-out (the subject kept,
 * the rest faded; `method` says how it was found) and a handful of augmented samples.
 */
export interface TrainingSample {
  kind: 'cut-out' | 'sample';
  /** The subject of a cut-out. */
  subjectId?: Id | null;
  /** `mask` (given), `segmentation` (the model's segmentation), `flood-fill` (from the border colour). */
  method?: 'mask' | 'segmentation' | 'flood-fill';
  /** A sample's caption, e.g. "a sks cat and a zwx man in a park". */
  caption?: string;
  image: FileRef;
}

/**
 * A cast's training: its settings, the subjects as trained, live progress with the loss curve and
 * sample pictures, and, once finished, the model it produced. A cancelled or interrupted training
 * resumes from its last checkpoint (`resumable`).
 */
export interface CastTraining {
  id: Id;
  castId: Id;
  castName: string;
  /** The state of its latest job (start or resume). */
  state: JobState;
  jobId: Id;
  settings: TrainingSettings;
  /** The model the training starts from. */
  baseModelName: string;
  subjects: TrainedSubject[];
  /** The latest progress (null before the first). */
  progress: TrainingProgress | null;
  /** The loss curve so far, in step order per phase. */
  losses: TrainingLossPoint[];
  /** Sample pictures, oldest first. */
  previews: TrainingPreview[];
  /** Cut-outs and augmented samples (empty until the training has prepared its data). */
  samples: TrainingSample[];
  /** A cancelled or interrupted training can continue from a checkpoint. */
  resumable: boolean;
  /** The step of that checkpoint (0: it starts over). */
  checkpointStep: number;
  /** Why it failed, in one sentence. */
  error?: string;
  /** The trained model ({@link ModelEntry} id), once finished. */
  modelId?: Id;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** What stops a cast from training now (checked before any training starts). */
export interface TrainingCheck {
  ok: boolean;
  /** One sentence each, naming the subject or picture at fault. */
  problems: string[];
  /** The model the training would start from (the active one, or the base of the cast's trained model). */
  baseModelName: string;
}

// ---------------------------------------------------------------------------------------------
// Models and app

/** The model renders use, and where it runs. */
export interface ModelInfo {
  /** The model folder's name, e.g. `tiny-sd` or `tiny-random`. */
  name: string;
  /**
   * `embedded`: the shipped tiny model; `env`: MSP_MODEL_DIR; `random`: a random-weight test model
   * (its pictures are structured noise) because no trained model is installed; `folder`: a model
   * folder the user imported ({@link StudioApi.models} `import`).
   */
  source: 'embedded' | 'env' | 'random' | 'folder';
  /** The {@link ModelEntry} id of this model (`default` or an imported folder's id). */
  entryId?: Id;
  /** A sentence for the UI, e.g. why a random model is in use. */
  note: string;
  /** The execution provider the UNet runs on (`cpu`, `cuda`, `dml`, `coreml`). */
  executionProvider: string;
  /** Why a GPU provider was not used, when one was tried. */
  providerFallbackReason?: string;
  sizes: {
    /** Default render size in pixels (square), or null when the model does not say. */
    defaultImageSize: number | null;
    /** Width and height must be multiples of this. */
    vaeScaleFactor: number;
    latentChannels: number;
    sequenceLength: number;
    hiddenSize: number;
  };
  hasControlNet: boolean;
  /** A segmentation model for SAL is present. */
  hasSegmentation: boolean;
  schedulers: SchedulerNames;
  /** Identifier tokens the model reserves for subjects (`tokenizer/rare_tokens.json`), if it lists any. */
  rareTokens?: string[];
  /**
   * What the segmentation model tells apart (`segmentation/classes.json`), e.g. `['background', 'sks',
   * 'zwx']` for a trained cast: SAL checks a region's subject by its identifier among these.
   */
  segmentationClasses?: string[];
}

/** What validating a model folder found (the model contract, native-models/models/model-folder.ts). */
export interface ModelDetails {
  sizes: ModelInfo['sizes'];
  hasControlNet: boolean;
  /** A VAE encoder is present (image-to-image, scaffold images). */
  hasVaeEncoder: boolean;
  hasSegmentation: boolean;
}

/** A model the studio can render with: the default one, or a folder the user imported. */
export interface ModelEntry {
  /** `default` for the built-in choice (embedded model, MSP_MODEL_DIR or the random test model). */
  id: Id;
  name: string;
  kind: 'default' | 'folder';
  /** Where the model comes from (as in {@link ModelInfo}). */
  source: ModelInfo['source'];
  /** The folder on disk, when there is one yet. */
  path: string | null;
  /** Renders use this model. */
  active: boolean;
  /** What validation found; null when the folder cannot be read now. */
  details: ModelDetails | null;
  /** Why this model cannot be used now, in one sentence (e.g. the folder was moved). */
  problem?: string;
  importedAt?: Timestamp;
  /** A model trained on a cast in the studio ({@link StudioApi.training}): the cast and its subjects. */
  cast?: TrainedCast;
}

/** The cast a trained model knows, with each subject as it was trained. */
export interface TrainedCast {
  castId: Id;
  castName: string;
  subjects: TrainedSubject[];
  /** UNet steps trained. */
  steps: number;
  trainedAt: Timestamp;
}

/** A subject as a training saw it: the identifier and class noun its prompts use ("a sks cat"). */
export interface TrainedSubject {
  /** The library subject (null if it no longer exists). */
  subjectId: Id | null;
  name: string;
  identifier: string;
  classNoun: string;
}

export interface AppInfo {
  version: string;
  mode: 'electron' | 'browser';
  platform: string;
}

// ---------------------------------------------------------------------------------------------
// Events

/** What changed, for views that mirror lists (another window, another tab). */
export type EntityKind = 'subject' | 'cast' | 'story' | 'panel' | 'render' | 'page' | 'model' | 'training';

export type StudioEvent =
  /** Any job state change (queued, running, finished, failed, cancelled). */
  | { type: 'job.updated'; job: Job }
  /** Progress of a running job; `preview` every few steps (a fast latent preview PNG). */
  | { type: 'job.progress'; jobId: Id; panelId: Id; progress: JobProgress; preview?: FileRef }
  /** A render job finished (sent right after its `job.updated`). */
  | { type: 'job.finished'; job: Job; render: Render }
  /** A training changed: started, prepared its samples, ended (finished with its model, failed, cancelled). */
  | { type: 'training.updated'; training: CastTraining }
  /** Progress of a running training; `loss` is the new point of the loss curve. */
  | {
      type: 'training.progress';
      trainingId: Id;
      castId: Id;
      progress: TrainingProgress;
      loss?: TrainingLossPoint;
    }
  /** New sample pictures of a running training. */
  | { type: 'training.preview'; trainingId: Id; castId: Id; preview: TrainingPreview }
  /** A record was created, updated, deleted or restored. */
  | { type: 'data.changed'; entity: EntityKind; id: Id; change: 'created' | 'updated' | 'deleted' }
  /** Electron only: a menu command for the page (the page owns undo/redo and rendering). */
  | { type: 'app.command'; command: AppCommand };

/** Commands the Electron menu sends to the page. */
export type AppCommand =
  'undo' | 'redo' | 'render' | 'showStoryboard' | 'showPanel' | 'showLibrary' | 'showPages';

export type StudioEventListener = (event: StudioEvent) => void;

// ---------------------------------------------------------------------------------------------
// Errors and the envelope

export type ApiErrorCode =
  /** The payload failed validation; `issues` name the fields. */
  | 'invalid_input'
  | 'not_found'
  /** The request conflicts with the current state (e.g. a token already in use). */
  | 'conflict'
  | 'unknown_method'
  /** Browser mode: missing or wrong token. */
  | 'unauthorized'
  /** Electron: a sender that is not the app's own page. */
  | 'forbidden'
  | 'internal';

/** One problem in a payload: the field path (`request.regions[1].color`) and what is wrong. */
export interface ApiIssue {
  path: string;
  message: string;
}

export interface ApiErrorInfo {
  code: ApiErrorCode;
  /** One sentence that names the field or record at fault. */
  message: string;
  issues?: ApiIssue[];
}

/** What every method answers over the transport. */
export type ApiResponse<T> = { ok: true; value: T } | { ok: false; error: ApiErrorInfo };

// ---------------------------------------------------------------------------------------------
// Method payloads and results

export interface SubjectCreateInput {
  name: string;
  /** Default: a suggestion ({@link StudioApi.subjects} `suggestToken`). */
  token?: string;
  classNoun: string;
  referenceImages?: FileInput[];
}

export interface SubjectUpdateInput {
  id: Id;
  name?: string;
  token?: string;
  classNoun?: string;
  /** Replaces the list (order kept); every entry must be a stored image. */
  referenceImages?: FileHandle[];
}

export interface AddReferenceImagesResult {
  subject: Subject;
  added: FileRef[];
  /** Images the subject already had (by hash). */
  duplicates: FileRef[];
  /** Files refused, with the reason (not an image, too large, unreadable). */
  rejected: { index: number; name?: string; reason: string }[];
}

export interface PanelCreateInput {
  storyId: Id;
  title?: string;
  request?: PanelRequestPatch;
  /** Insert after this panel; default: at the end. */
  afterPanelId?: Id;
}

export interface PanelUpdateInput {
  id: Id;
  title?: string;
  /** Merged over the stored request (shallow; `sal` merged per field). */
  request?: PanelRequestPatch;
}

/** The resolved request a render of the panel would use now, or why it cannot render. */
export type ResolvedRequestResult =
  | { ok: true; request: Omit<GenerationRequestJson, 'seed'> & { seed?: number } }
  | { ok: false; issues: ApiIssue[] };

// ---------------------------------------------------------------------------------------------
// The API

/**
 * Every method returns a Promise, takes at most one payload object, and is reachable as the
 * channel `<namespace>.<method>` (see `API_CHANNELS` in channels.ts).
 */
export interface StudioApi {
  app: {
    getInfo(): Promise<AppInfo>;
  };
  files: {
    /** Stores bytes (content-addressed, deduplicated); at most 50 MB. */
    upload(input: FileUpload): Promise<FileRef>;
    /** The stored file's metadata. */
    get(input: { hash: string }): Promise<FileRef>;
  };
  subjects: {
    list(): Promise<Subject[]>;
    get(input: { id: Id }): Promise<Subject>;
    create(input: SubjectCreateInput): Promise<Subject>;
    update(input: SubjectUpdateInput): Promise<Subject>;
    /** Soft delete; `restore` undoes it. Removes the subject from casts' lists until restored. */
    delete(input: { id: Id }): Promise<void>;
    restore(input: { id: Id }): Promise<Subject>;
    /** Adds images (checked: decodable PNG/JPEG/WebP, at most 50 MB; duplicates noticed by hash). */
    addReferenceImages(input: { subjectId: Id; images: FileInput[] }): Promise<AddReferenceImagesResult>;
    removeReferenceImage(input: { subjectId: Id; hash: string }): Promise<Subject>;
    /** A rare identifier token no subject uses yet. */
    suggestToken(): Promise<{ token: string }>;
  };
  casts: {
    list(): Promise<Cast[]>;
    create(input: { name: string; subjectIds?: Id[] }): Promise<Cast>;
    update(input: { id: Id; name?: string; subjectIds?: Id[] }): Promise<Cast>;
    delete(input: { id: Id }): Promise<void>;
  };
  stories: {
    list(): Promise<Story[]>;
    get(input: { id: Id }): Promise<Story>;
    create(input: { title: string; castId?: Id | null }): Promise<Story>;
    update(input: { id: Id; title?: string; castId?: Id | null }): Promise<Story>;
    /** Soft delete (with its panels); `restore` undoes it. */
    delete(input: { id: Id }): Promise<void>;
    restore(input: { id: Id }): Promise<Story>;
  };
  panels: {
    /** The story's panels in reading order. */
    list(input: { storyId: Id }): Promise<Panel[]>;
    get(input: { id: Id }): Promise<Panel>;
    create(input: PanelCreateInput): Promise<Panel>;
    update(input: PanelUpdateInput): Promise<Panel>;
    /** A copy (request and title, no renders) inserted after the original. */
    duplicate(input: { id: Id }): Promise<Panel>;
    /** Soft delete; `restore` puts it back at its old position. */
    delete(input: { id: Id }): Promise<void>;
    restore(input: { id: Id }): Promise<Panel>;
    /** New reading order: `panelIds` must list exactly the story's panels. */
    reorder(input: { storyId: Id; panelIds: Id[] }): Promise<Story>;
    /** Stores a painted segment map (PNG) and sets it on the panel. */
    setSegmentMap(input: { panelId: Id; image: FileInput }): Promise<Panel>;
    /** Sets (or clears) the pose document. */
    setPose(input: { panelId: Id; pose: PoseDocumentJson | null }): Promise<Panel>;
    /** The GenerationRequest a render would use now, or the issues that block it. */
    resolveRequest(input: { id: Id }): Promise<ResolvedRequestResult>;
  };
  renders: {
    /** Queues a render of the panel; rejects (invalid_input, issues naming panel fields) when it cannot render. */
    renderPanel(input: { panelId: Id; seed?: number }): Promise<Job>;
    /** A panel's render history, newest first. */
    list(input: { panelId: Id }): Promise<Render[]>;
    get(input: { id: Id }): Promise<Render>;
    delete(input: { id: Id }): Promise<void>;
    /**
     * "Open file location": copies the render under a readable name into the data folder's
     * `renders/<story>/` (content-addressed storage has none) and, in Electron, shows it in the
     * system file manager.
     */
    reveal(input: { id: Id }): Promise<RenderFileLocation>;
  };
  jobs: {
    /** Jobs, newest first (at most `limit`, default 100). */
    list(input?: { state?: JobState; panelId?: Id; limit?: number }): Promise<Job[]>;
    get(input: { id: Id }): Promise<Job>;
    /** Cancels a queued or running job (a running render stops at its next step). */
    cancel(input: { id: Id }): Promise<Job>;
  };
  pages: {
    /** The story's pages in reading order. */
    list(input: { storyId: Id }): Promise<Page[]>;
    get(input: { id: Id }): Promise<Page>;
    create(input: PageCreateInput): Promise<Page>;
    /** Rejects (invalid_input, issues naming the fields) a layout without room for panels or unknown panels. */
    update(input: PageUpdateInput): Promise<Page>;
    /** Soft delete; `restore` puts it back at its old position. */
    delete(input: { id: Id }): Promise<void>;
    restore(input: { id: Id }): Promise<Page>;
    /** New reading order: `pageIds` must list exactly the story's pages. */
    reorder(input: { storyId: Id; pageIds: Id[] }): Promise<Page[]>;
    /**
     * Composes pages at print resolution (page size x dpi) and writes PNG, PDF or CBZ. Rejects with a
     * sentence naming the page and slot at fault (an empty page, a panel without a render).
     */
    export(input: PageExportInput): Promise<PageExportResult>;
  };
  training: {
    /** The latest training of every cast that has one, with loss curves and sample pictures. */
    list(): Promise<CastTraining[]>;
    /** The latest training of a cast, or null. */
    get(input: { castId: Id }): Promise<CastTraining | null>;
    /**
     * Checks a cast against the active model before training: at least 3 readable pictures per
     * subject, distinct identifier tokens, no more subjects than the model has identifier tokens.
     */
    check(input: { castId: Id }): Promise<TrainingCheck>;
    /**
     * Queues a training of the cast on the active model (a cast trained again starts over from the
     * base of its trained model); missing settings take their defaults.
     * Rejects (invalid_input, one sentence per problem) a cast that {@link check} refuses, and
     * (conflict) while another training is queued or running.
     */
    start(input: { castId: Id; settings?: Partial<TrainingSettings> }): Promise<CastTraining>;
    /** Stops the cast's training at its next step, keeping a checkpoint to resume from. */
    cancel(input: { castId: Id }): Promise<CastTraining>;
    /** Continues a cancelled or interrupted training from its checkpoint, with the same settings. */
    resume(input: { castId: Id }): Promise<CastTraining>;
  };
  models: {
    /** The active model's info (loads it when needed). */
    getInfo(): Promise<ModelInfo>;
    /** The default model and the imported folders. */
    list(): Promise<ModelEntry[]>;
    /** Validates a model folder (an absolute path) and adds it to the list; the files stay where they are. */
    import(input: { path: string }): Promise<ModelEntry>;
    /** Forgets an imported folder (never deletes its files); the default model takes over if it was active. */
    remove(input: { id: Id }): Promise<void>;
    /** Renders use this model from now on; resolves once it has loaded. Refused while a render runs. */
    setActive(input: { id: Id }): Promise<ModelInfo>;
    /** Electron: the main process's folder picker (null when closed). Browser mode: refused; type the path. */
    pickFolder(): Promise<{ path: string | null }>;
  };
}

// ---------------------------------------------------------------------------------------------
// Channel typing

/** `<namespace>.<method>` for every method of {@link StudioApi}. */
export type ApiMethod = {
  [N in keyof StudioApi]: `${N}.${Extract<keyof StudioApi[N], string>}`;
}[keyof StudioApi];

type MethodOf<M extends ApiMethod> = M extends `${infer N}.${infer F}`
  ? N extends keyof StudioApi
    ? F extends keyof StudioApi[N]
      ? StudioApi[N][F]
      : never
    : never
  : never;

/** The payload type of a method (`undefined` for methods without one). */
export type ApiInput<M extends ApiMethod> =
  MethodOf<M> extends () => Promise<unknown>
    ? undefined
    : MethodOf<M> extends (input: infer I) => Promise<unknown>
      ? I
      : never;

/** The resolved result type of a method. */
export type ApiOutput<M extends ApiMethod> =
  MethodOf<M> extends (...args: never[]) => Promise<infer O> ? O : never;

/**
 * The transport both modes provide: Electron's preload exposes it as `window.msp`; browser mode
 * builds it from fetch + WebSocket (`createBrowserTransport` in client.ts).
 */
export interface MspBridge {
  invoke(method: ApiMethod, payload?: unknown): Promise<ApiResponse<unknown>>;
  /** Returns a function that unsubscribes. */
  onEvent(listener: StudioEventListener): () => void;
}

/** The typed client: the API plus event subscription. */
export type StudioClient = StudioApi & {
  events: { subscribe(listener: StudioEventListener): () => void };
};
