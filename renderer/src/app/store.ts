/**
 * The studio's state and the actions that change it. Documents are edited only through the pure
 * functions of `../editor`; this module records them in undo histories, keeps the backend in step
 * (saves, server order of panels) and folds backend events (job progress, finished renders) in.
 * Views read the state with `useStudio` and call the actions; they hold no document state of their own.
 */
import type {
  ApiIssue,
  AppInfo,
  Cast,
  CastTraining,
  FileRef,
  Id,
  Job,
  LetteringKind,
  ModelEntry,
  ModelInfo,
  PageExportFormat,
  PageTemplateId,
  Panel,
  Render,
  RenderFileLocation,
  Story,
  StudioClient,
  StudioEvent,
  Subject,
  TrainingCheck,
  TrainingSettings,
} from '../../../electron/api/contract';
import { LayoutError, pageLayout } from '../../../common/pages/layout';
import { TRAINING_DEFAULTS } from '../../../common/training/settings';
import type { PageSettings } from '../../../common/pages/layout';
import { errorIssues, errorMessage } from '../api/client';
import { downloadUrl } from '../api/download';
import { fileUpload, loadRaster, rasterUpload } from '../canvas/images';
import { nextRegionColor } from '../editor/color';
import {
  addRegion,
  findRegion,
  moveRegion,
  moveSkeleton,
  regionOfPerson,
  regionOfSubject,
  setScaffolding,
  updateSettings,
} from '../editor/document';
import type { PanelDocument } from '../editor/document';
import {
  canRedo,
  canUndo,
  commit,
  createHistory,
  mapHistory,
  redo,
  replacePresent,
  undo,
} from '../editor/history';
import type { History } from '../editor/history';
import { documentFromRequest, requestPatch, reuseSettings, saveDelta } from '../editor/request';
import { stepBrushSize } from '../editor/shortcuts';
import { insertPanel, movePanel, reconcileOrder, removePanel, sameOrder } from '../editor/storyboard';
import type { StoryboardState } from '../editor/storyboard';
import type { Moved, ToolId } from '../editor/tools';
import { validatePanel } from '../editor/validate';
import type { EditorIssue } from '../editor/validate';
import {
  addLettering,
  bookFromPages,
  insertPage,
  movePage,
  pageDoc,
  reconcileBook,
  removeLettering,
  removePage,
  setPageSettings,
  setTemplate,
} from '../pages/book';
import type { BookState, PageSettingsPatch } from '../pages/book';
import { withLoss, withPreview } from '../training/curve';

export type Place = 'storyboard' | 'panel' | 'library' | 'training' | 'pages';

export const PLACES: readonly { id: Place; label: string }[] = [
  { id: 'storyboard', label: 'Storyboard' },
  { id: 'panel', label: 'Panel' },
  { id: 'library', label: 'Library' },
  { id: 'training', label: 'Training' },
  { id: 'pages', label: 'Pages' },
];

/** A panel open in the editor. */
export interface EditorSession {
  readonly history: History<PanelDocument>;
  /** What the backend has; saves send the difference. */
  readonly saved: PanelDocument;
  readonly saving: boolean;
  readonly saveError: string | null;
}

/** The render side of a panel: its current job, live preview, and why the last attempt failed. */
export interface RenderState {
  readonly job: Job | null;
  readonly preview: FileRef | null;
  readonly error: string | null;
  /** Problems the backend found in the request, by field path (`regions[1].prompt`). */
  readonly issues: readonly ApiIssue[];
}

export interface ToolSettings {
  readonly tool: ToolId;
  readonly brushSize: number;
  /** Opacity of the segment map over the render, 0..1. */
  readonly overlay: number;
  readonly activeRegionId: string | null;
  readonly selectedPerson: number | null;
  /** One line for the status bar ("Pick a region to paint with"). */
  readonly hint: string | null;
  /** After moving a linked region or skeleton: the offer to move its partner by the same amount. */
  readonly offer: LinkedMoveOffer | null;
}

/** Moving a region or skeleton offers to move the one linked to it (see {@link Studio.offerLinkedMove}). */
export type LinkedMoveOffer =
  | { readonly kind: 'move-skeleton'; readonly person: number; readonly dx: number; readonly dy: number }
  | { readonly kind: 'move-region'; readonly regionId: string; readonly dx: number; readonly dy: number };

export interface StudioState {
  readonly place: Place;
  readonly connection: { kind: 'loading' } | { kind: 'ready' } | { kind: 'failed'; message: string };
  readonly appInfo: AppInfo | null;
  readonly model: ModelInfo | null;
  readonly modelError: string | null;
  readonly stories: readonly Story[];
  readonly storyId: Id | null;
  readonly storyError: string | null;
  readonly subjects: readonly Subject[];
  readonly casts: readonly Cast[];
  /** Panels of the open story by id (the server's records: title, renders). */
  readonly panels: Readonly<Record<Id, Panel>>;
  /** The open story's panel order, with undo. */
  readonly board: History<StoryboardState>;
  readonly boardError: string | null;
  readonly panelId: Id | null;
  readonly editors: Readonly<Record<Id, EditorSession>>;
  readonly panelLoadError: string | null;
  readonly renders: Readonly<Record<Id, RenderState>>;
  /** The history thumbnail shown on the canvas per panel (null: the latest render). */
  readonly shownRender: Readonly<Record<Id, Id | null>>;
  readonly tools: ToolSettings;
  /** Library messages by card: a subject id, `new-subject`, `casts` or a cast id. */
  readonly libraryMessages: Readonly<Record<string, { kind: 'error' | 'info'; text: string }>>;
  /** The last undoable library deletion ("Deleted Pip — Undo"). */
  readonly deletedSubject: Subject | null;
  /** The open story's pages, with undo. */
  readonly book: History<BookState>;
  readonly bookError: string | null;
  /** The page shown in the Pages place. */
  readonly pageId: Id | null;
  /** The selected caption or balloon on that page. */
  readonly letteringId: string | null;
  /** Why a layout setting was refused ("the margin ... leaves no room"). */
  readonly layoutError: string | null;
  readonly pageExport: PageExportState;
  /** The default model and imported model folders. */
  readonly models: readonly ModelEntry[];
  readonly modelMessage: { kind: 'error' | 'info'; text: string } | null;
  /** A model is being imported or switched. */
  readonly modelBusy: boolean;
  /** The Training place: the latest training of each cast, by cast id, and what is shown. */
  readonly training: TrainingPlaceState;
}

/** The Training place. */
export interface TrainingPlaceState {
  /** The latest training of each cast that has one (loss curves and pictures included), by cast id. */
  readonly byCast: Readonly<Record<Id, CastTraining>>;
  /** The cast shown. */
  readonly castId: Id | null;
  /** What stops the shown cast from training (null while it is being checked). */
  readonly check: (TrainingCheck & { castId: Id }) | null;
  /** The settings of the next start, as edited. */
  readonly settings: TrainingSettings;
  /** A start, cancel or resume is on its way. */
  readonly busy: boolean;
  /** Why the last action failed (one sentence). */
  readonly error: string | null;
}

/** The Pages place's export: what runs, and what the last export did (where the file went). */
export interface PageExportState {
  readonly running: PageExportFormat | null;
  readonly message:
    | { kind: 'error'; text: string }
    | { kind: 'info'; text: string; download?: { url: string; fileName: string } }
    | null;
}

const EMPTY_RENDER: RenderState = { job: null, preview: null, error: null, issues: [] };
const SAVE_DELAY_MS = 400;
const BOOK_SYNC_DELAY_MS = 300;
const LAST_STORY_KEY = 'msp-studio:last-story';

type Listener = () => void;

/** Zoom and fit requests from shortcuts, for the canvas view to carry out. */
export type ViewCommand = 'zoom-in' | 'zoom-out' | 'zoom-100' | 'zoom-fit';

export class Studio {
  private current: StudioState;
  private readonly listeners = new Set<Listener>();
  private readonly viewListeners = new Set<(command: ViewCommand) => void>();
  private readonly saveTimers = new Map<Id, ReturnType<typeof setTimeout>>();
  private readonly saveChains = new Map<Id, Promise<void>>();
  /** The panel order the server has for the open story. */
  private serverOrder: Id[] = [];
  private boardChain: Promise<void> = Promise.resolve();
  /** Panels this window is creating (add, duplicate): their story events are not "added elsewhere". */
  private creatingPanels = 0;
  /** Panels this window deleted (its undo can restore them): their absence is not "deleted elsewhere". */
  private readonly deletedHere = new Set<Id>();
  private unsubscribe: (() => void) | null = null;
  /** Resolves once the model info is known (null when it could not be loaded). */
  private modelReady: Promise<ModelInfo | null> = Promise.resolve(null);
  /** The pages as the server has them (content of deleted pages kept, for undo). */
  private serverBook: BookState = { order: [], pages: {} };
  private bookChain: Promise<void> = Promise.resolve();
  private bookTimer: ReturnType<typeof setTimeout> | null = null;
  /** The book before a drag started (the drag becomes one undo step when it ends). */
  private gestureBase: BookState | null = null;
  /** A check of the shown cast, soon (library edits come in bursts). */
  private trainingCheckTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly api: StudioClient) {
    this.current = {
      place: 'storyboard',
      connection: { kind: 'loading' },
      appInfo: null,
      model: null,
      modelError: null,
      stories: [],
      storyId: null,
      storyError: null,
      subjects: [],
      casts: [],
      panels: {},
      board: createHistory<StoryboardState>({ order: [] }),
      boardError: null,
      panelId: null,
      editors: {},
      panelLoadError: null,
      renders: {},
      shownRender: {},
      tools: {
        tool: 'brush',
        brushSize: 8,
        overlay: 0.6,
        activeRegionId: null,
        selectedPerson: null,
        hint: null,
        offer: null,
      },
      libraryMessages: {},
      deletedSubject: null,
      book: createHistory<BookState>({ order: [], pages: {} }),
      bookError: null,
      pageId: null,
      letteringId: null,
      layoutError: null,
      pageExport: { running: null, message: null },
      models: [],
      modelMessage: null,
      modelBusy: false,
      training: {
        byCast: {},
        castId: null,
        check: null,
        settings: { ...TRAINING_DEFAULTS },
        busy: false,
        error: null,
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Store plumbing

  get state(): StudioState {
    return this.current;
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): StudioState => this.current;

  private set(patch: Partial<StudioState>): void {
    if (!this.applyingRefresh) {
      if ('subjects' in patch) this.libraryEdits.subjects++;
      if ('casts' in patch) this.libraryEdits.casts++;
    }
    this.current = { ...this.current, ...patch };
    for (const listener of [...this.listeners]) listener();
  }

  onViewCommand(listener: (command: ViewCommand) => void): () => void {
    this.viewListeners.add(listener);
    return () => this.viewListeners.delete(listener);
  }

  viewCommand(command: ViewCommand): void {
    for (const listener of [...this.viewListeners]) listener(command);
  }

  // -------------------------------------------------------------------------------------------
  // Start-up and events

  async start(): Promise<void> {
    this.unsubscribe = this.api.events.subscribe((event) => this.onEvent(event));
    try {
      const [appInfo, stories, subjects, casts] = await Promise.all([
        this.api.app.getInfo(),
        this.api.stories.list(),
        this.api.subjects.list(),
        this.api.casts.list(),
      ]);
      this.set({ appInfo, stories, subjects, casts, connection: { kind: 'ready' } });
    } catch (error) {
      this.set({ connection: { kind: 'failed', message: errorMessage(error) } });
      return;
    }
    this.modelReady = this.api.models.getInfo().then(
      (model) => {
        this.set({ model });
        return model;
      },
      (error: unknown) => {
        this.set({ modelError: errorMessage(error) });
        return null;
      },
    );
    void this.modelReady.then(() => this.loadModels());
    void this.loadTrainings();
    const remembered = localStorage.getItem(LAST_STORY_KEY);
    const story = this.current.stories.find((s) => s.id === remembered) ?? this.current.stories[0];
    if (story) await this.selectStory(story.id);
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.trainingCheckTimer) clearTimeout(this.trainingCheckTimer);
    for (const timer of this.saveTimers.values()) clearTimeout(timer);
    if (this.bookTimer) clearTimeout(this.bookTimer);
  }

  private onEvent(event: StudioEvent): void {
    switch (event.type) {
      case 'job.updated':
        if (event.job.kind !== 'render') break; // trainings report as training.updated
        this.updateRender(event.job.panelId, (r) =>
          r.job && r.job.id !== event.job.id && event.job.createdAt < r.job.createdAt
            ? r
            : {
                ...r,
                job: event.job,
                preview: event.job.state === 'running' ? r.preview : null,
                error: event.job.state === 'failed' ? (event.job.error ?? 'The render failed') : r.error,
              },
        );
        break;
      case 'job.progress':
        this.updateRender(event.panelId, (r) =>
          r.job && r.job.id === event.jobId
            ? {
                ...r,
                job: { ...r.job, state: 'running', progress: event.progress },
                preview: event.preview ?? r.preview,
              }
            : r,
        );
        break;
      case 'job.finished': {
        const panel = this.current.panels[event.render.panelId];
        if (panel && !panel.renders.some((r) => r.id === event.render.id)) {
          this.set({
            panels: {
              ...this.current.panels,
              [panel.id]: { ...panel, renders: [event.render, ...panel.renders] },
            },
            shownRender: { ...this.current.shownRender, [panel.id]: null },
          });
        }
        this.updateRender(event.render.panelId, (r) => ({
          ...r,
          job: event.job,
          preview: null,
          error: null,
        }));
        break;
      }
      case 'data.changed':
        if (event.entity === 'subject') void this.refreshSubjects();
        if (event.entity === 'cast') void this.refreshCasts();
        // panels another window or a script added to (or deleted from) the open story show on the board
        if (event.entity === 'story' && event.id === this.current.storyId) {
          const storyId = event.id;
          this.boardChain = this.boardChain.then(() =>
            this.followServerPanels(storyId).then(
              () => undefined,
              () => undefined, // a missed refresh only delays the new card until the next one
            ),
          );
        }
        if (event.entity === 'model') void this.loadModels();
        // the shown cast's check may have changed (pictures added, members ticked, another model)
        if (['subject', 'cast', 'model'].includes(event.entity) && this.current.place === 'training')
          this.scheduleTrainingCheck();
        break;
      case 'training.updated':
        this.setTrainingOf(event.training.castId, () => event.training);
        if (event.training.state === 'finished') void this.loadModels();
        break;
      case 'training.progress':
        this.setTrainingOf(event.castId, (t) =>
          t && t.id === event.trainingId
            ? {
                ...t,
                state: 'running',
                progress: event.progress,
                losses: event.loss ? withLoss(t.losses, event.loss) : t.losses,
              }
            : t,
        );
        break;
      case 'training.preview':
        this.setTrainingOf(event.castId, (t) =>
          t && t.id === event.trainingId ? { ...t, previews: withPreview(t.previews, event.preview) } : t,
        );
        break;
    }
  }

  private updateRender(panelId: Id, update: (r: RenderState) => RenderState): void {
    const before = this.current.renders[panelId] ?? EMPTY_RENDER;
    const after = update(before);
    if (after !== before) this.set({ renders: { ...this.current.renders, [panelId]: after } });
  }

  // -------------------------------------------------------------------------------------------
  // Places

  go(place: Place): void {
    if (place === 'panel' && !this.current.panelId) {
      const first = this.current.board.present.order[0];
      if (first) {
        void this.openPanel(first);
        return;
      }
    }
    this.set({ place });
    if (place === 'training') this.enterTraining();
  }

  // -------------------------------------------------------------------------------------------
  // Stories

  get story(): Story | undefined {
    return this.current.stories.find((s) => s.id === this.current.storyId);
  }

  async createStory(title: string): Promise<void> {
    const name = title.trim();
    if (name === '') {
      this.set({ storyError: 'Give the story a title' });
      return;
    }
    try {
      const story = await this.api.stories.create({ title: name });
      this.set({ stories: [...this.current.stories, story], storyError: null });
      await this.selectStory(story.id);
      this.set({ place: 'storyboard' });
    } catch (error) {
      this.set({ storyError: errorMessage(error) });
    }
  }

  async selectStory(id: Id): Promise<void> {
    this.flushAllSaves();
    void this.flushBook();
    try {
      const [story, panels, pages] = await Promise.all([
        this.api.stories.get({ id }),
        this.api.panels.list({ storyId: id }),
        this.api.pages.list({ storyId: id }),
      ]);
      localStorage.setItem(LAST_STORY_KEY, id);
      this.serverOrder = [...story.panelIds];
      this.serverBook = bookFromPages(pages);
      this.set({
        stories: this.current.stories.map((s) => (s.id === id ? story : s)),
        storyId: id,
        storyError: null,
        panels: Object.fromEntries(panels.map((p) => [p.id, p])),
        board: createHistory({ order: story.panelIds }),
        boardError: null,
        panelId: null,
        editors: {},
        renders: {},
        shownRender: {},
        tools: { ...this.current.tools, activeRegionId: null, selectedPerson: null, offer: null },
        book: createHistory(this.serverBook),
        bookError: null,
        pageId: pages[0]?.id ?? null,
        letteringId: null,
        layoutError: null,
        pageExport: { running: null, message: null },
      });
      if (this.current.place === 'panel') this.set({ place: 'storyboard' });
    } catch (error) {
      this.set({ storyError: errorMessage(error) });
    }
  }

  async renameStory(title: string): Promise<void> {
    const story = this.story;
    if (!story || title.trim() === '' || title === story.title) return;
    await this.updateStory({ id: story.id, title: title.trim() });
  }

  async setStoryCast(castId: Id | null): Promise<void> {
    const story = this.story;
    if (!story) return;
    await this.updateStory({ id: story.id, castId });
  }

  private async updateStory(input: { id: Id; title?: string; castId?: Id | null }): Promise<void> {
    try {
      const story = await this.api.stories.update(input);
      this.set({
        stories: this.current.stories.map((s) => (s.id === story.id ? story : s)),
        storyError: null,
      });
    } catch (error) {
      this.set({ storyError: errorMessage(error) });
    }
  }

  /** The subjects of the open story's cast, in cast order. */
  get castSubjects(): Subject[] {
    const cast = this.current.casts.find((c) => c.id === this.story?.castId);
    if (!cast) return [];
    return cast.subjectIds.flatMap((id) => this.current.subjects.filter((s) => s.id === id));
  }

  // -------------------------------------------------------------------------------------------
  // Storyboard (panel order with undo; the server follows)

  async addPanel(afterId?: Id): Promise<void> {
    const storyId = this.current.storyId;
    if (!storyId) return;
    try {
      // no size: the panel takes the model's when it is first opened
      this.creatingPanels++;
      const panel = await this.api.panels
        .create({ storyId, afterPanelId: afterId })
        .finally(() => this.creatingPanels--);
      this.serverOrder = insertPanel({ order: this.serverOrder }, panel.id, afterId).order as Id[];
      this.set({ panels: { ...this.current.panels, [panel.id]: panel } });
      this.commitBoard(insertPanel(this.current.board.present, panel.id, afterId), 'Add panel');
    } catch (error) {
      this.set({ boardError: errorMessage(error) });
    }
  }

  async duplicatePanel(id: Id): Promise<void> {
    try {
      await this.flushSave(id);
      this.creatingPanels++;
      const copy = await this.api.panels.duplicate({ id }).finally(() => this.creatingPanels--);
      this.serverOrder = insertPanel({ order: this.serverOrder }, copy.id, id).order as Id[];
      this.set({ panels: { ...this.current.panels, [copy.id]: copy } });
      this.commitBoard(insertPanel(this.current.board.present, copy.id, id), 'Duplicate panel');
    } catch (error) {
      this.set({ boardError: errorMessage(error) });
    }
  }

  deletePanel(id: Id): void {
    if (this.current.panelId === id) this.set({ panelId: null, place: 'storyboard' });
    this.commitBoard(removePanel(this.current.board.present, id), 'Delete panel');
  }

  movePanel(from: number, to: number): void {
    this.commitBoard(movePanel(this.current.board.present, from, to), 'Reorder panels');
  }

  undoBoard(): void {
    if (!canUndo(this.current.board)) return;
    this.set({ board: undo(this.current.board) });
    this.syncBoard();
  }

  redoBoard(): void {
    if (!canRedo(this.current.board)) return;
    this.set({ board: redo(this.current.board) });
    this.syncBoard();
  }

  private commitBoard(next: StoryboardState, label: string): void {
    const board = commit(this.current.board, next, { label });
    if (board === this.current.board) return;
    this.set({ board, boardError: null });
    this.syncBoard();
  }

  /** Brings the server's order to the board's, one step at a time (calls never overlap). */
  private syncBoard(): void {
    const storyId = this.current.storyId;
    if (!storyId) return;
    this.boardChain = this.boardChain.then(async () => {
      const desired = this.current.board.present.order;
      const plan = reconcileOrder(this.serverOrder, desired);
      try {
        for (const id of plan.remove) {
          await this.flushSave(id);
          this.deletedHere.add(id);
          await this.api.panels.delete({ id }).catch((error: unknown) => {
            this.deletedHere.delete(id);
            throw error;
          });
          this.serverOrder = this.serverOrder.filter((p) => p !== id);
        }
        for (const id of plan.restore) {
          const panel = await this.api.panels.restore({ id });
          this.deletedHere.delete(id);
          this.set({ panels: { ...this.current.panels, [id]: panel } });
        }
        // a restored panel is back where it was: read the order rather than guess it
        if (plan.restore.length > 0) await this.followServerPanels(storyId);
        let reorder = reconcileOrder(this.serverOrder, this.current.board.present.order).reorder;
        if (reorder) {
          let story: Story;
          try {
            story = await this.api.panels.reorder({ storyId, panelIds: reorder });
          } catch (error) {
            // refused when another window added or deleted a panel meanwhile: follow it, try once more
            if (!(await this.followServerPanels(storyId))) throw error;
            reorder = this.current.board.present.order as Id[];
            story = await this.api.panels.reorder({ storyId, panelIds: reorder });
          }
          this.serverOrder = [...story.panelIds];
          this.set({ stories: this.current.stories.map((s) => (s.id === story.id ? story : s)) });
        }
        this.set({ boardError: null });
      } catch (error) {
        this.set({ boardError: errorMessage(error) });
      }
    });
  }

  /**
   * Reads the story's panel order from the server and follows what changed elsewhere (another
   * window, a script): added panels join every board state at the end, so no undo deletes them;
   * deleted ones leave every state, so no undo here brings them back. Panels this window deleted
   * stay in its history (its undo restores them). Runs on the board chain; skipped while this
   * window is creating a panel (its own addition lands with an undo step). Returns whether the
   * board changed.
   */
  private async followServerPanels(storyId: Id): Promise<boolean> {
    if (this.creatingPanels > 0 || this.current.storyId !== storyId) return false;
    const story = await this.api.stories.get({ id: storyId });
    const board = this.current.board;
    const known = new Set([...board.past, ...board.future].flatMap((e) => e.state.order));
    for (const id of board.present.order) known.add(id);
    const onServer = new Set(story.panelIds);
    // the server's order for the panels this window knows (restored ones back at their places)
    this.serverOrder = story.panelIds.filter((id) => known.has(id));
    const added = story.panelIds.filter((id) => !known.has(id));
    const gone = [...known].filter((id) => !onServer.has(id) && !this.deletedHere.has(id));
    if ((added.length === 0 && gone.length === 0) || this.current.storyId !== storyId) return false;
    const panels = await Promise.all(added.map((id) => this.api.panels.get({ id })));
    this.serverOrder = [...this.serverOrder, ...added];
    const openGone = this.current.panelId !== null && gone.includes(this.current.panelId);
    this.set({
      ...(openGone
        ? {
            panelId: null,
            place: this.current.place === 'panel' ? 'storyboard' : this.current.place,
            boardError: 'The panel you had open was deleted in another window or by a script.',
          }
        : {}),
      panels: { ...this.current.panels, ...Object.fromEntries(panels.map((p) => [p.id, p])) },
      board: mapHistory(
        this.current.board,
        (state) =>
          gone.reduce(
            (s, id) => removePanel(s, id),
            added.reduce((s, id) => insertPanel(s, id), state),
          ),
        sameOrder,
      ),
    });
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Panel editor

  /** The size of a panel that does not have one yet: the model's default (512 when it does not say). */
  private async defaultSize(): Promise<{ width: number; height: number }> {
    const model = this.current.model ?? (await this.modelReady);
    const side = model?.sizes.defaultImageSize ?? 512;
    return { width: side, height: side };
  }

  async openPanel(id: Id): Promise<void> {
    this.set({ panelId: id, place: 'panel', panelLoadError: null });
    if (this.current.editors[id]) return;
    try {
      const panel = await this.api.panels.get({ id });
      const map = panel.request.segmentMap ? await loadRaster(panel.request.segmentMap.url) : null;
      const doc = documentFromRequest(panel.request, await this.defaultSize(), map);
      const session: EditorSession = {
        history: createHistory(doc),
        saved: doc,
        saving: false,
        saveError: null,
      };
      this.set({
        panels: { ...this.current.panels, [id]: panel },
        editors: { ...this.current.editors, [id]: session },
        tools: {
          ...this.current.tools,
          activeRegionId: doc.regions[0]?.id ?? null,
          selectedPerson: null,
          offer: null,
        },
      });
      // a panel created without a size gets the model's; save it so renders use the same
      if (panel.request.width === null || panel.request.height === null) this.scheduleSave(id);
      if (!this.current.renders[id]) void this.loadLatestJob(id);
    } catch (error) {
      this.set({ panelLoadError: errorMessage(error) });
    }
  }

  private async loadLatestJob(panelId: Id): Promise<void> {
    try {
      const [job] = await this.api.jobs.list({ panelId, limit: 1 });
      if (job && (job.state === 'running' || job.state === 'queued')) {
        this.updateRender(panelId, (r) => ({ ...r, job }));
      }
    } catch {
      // the job list only restores a progress bar after a reload; the editor works without it
    }
  }

  get session(): EditorSession | undefined {
    const id = this.current.panelId;
    return id ? this.current.editors[id] : undefined;
  }

  get doc(): PanelDocument | undefined {
    return this.session?.history.present;
  }

  /**
   * Applies a pure edit to the open panel as one undo step (`mergeKey` folds typing into one step).
   * An edit that throws (e.g. a color another region uses) leaves the document as it was and returns
   * the error message.
   */
  edit(update: (doc: PanelDocument) => PanelDocument, label: string, mergeKey?: string): string | null {
    const id = this.current.panelId;
    const session = id ? this.current.editors[id] : undefined;
    if (!id || !session) return null;
    let next: PanelDocument;
    try {
      next = update(session.history.present);
    } catch (error) {
      return errorMessage(error);
    }
    const history = commit(session.history, next, { label, mergeKey });
    if (history === session.history) return null;
    this.setSession(id, { ...session, history });
    if (this.current.tools.offer) this.setTools({ offer: null });
    this.clearRenderIssues(id);
    this.scheduleSave(id);
    return null;
  }

  undoPanel(): void {
    const id = this.current.panelId;
    const session = id ? this.current.editors[id] : undefined;
    if (!id || !session || !canUndo(session.history)) return;
    this.setSession(id, { ...session, history: undo(session.history) });
    this.afterHistoryMove(id);
  }

  redoPanel(): void {
    const id = this.current.panelId;
    const session = id ? this.current.editors[id] : undefined;
    if (!id || !session || !canRedo(session.history)) return;
    this.setSession(id, { ...session, history: redo(session.history) });
    this.afterHistoryMove(id);
  }

  /** Undo/redo in whichever place has the focus. */
  undo(): void {
    if (this.current.place === 'panel') this.undoPanel();
    else if (this.current.place === 'storyboard') this.undoBoard();
    else if (this.current.place === 'pages') this.undoBook();
  }

  redo(): void {
    if (this.current.place === 'panel') this.redoPanel();
    else if (this.current.place === 'storyboard') this.redoBoard();
    else if (this.current.place === 'pages') this.redoBook();
  }

  private afterHistoryMove(id: Id): void {
    if (this.current.tools.offer) this.setTools({ offer: null });
    const doc = this.current.editors[id]?.history.present;
    if (doc) {
      const { activeRegionId, selectedPerson } = this.current.tools;
      const regionGone = activeRegionId !== null && !doc.regions.some((r) => r.id === activeRegionId);
      const personGone = selectedPerson !== null && selectedPerson >= doc.pose.people.length;
      if (regionGone || personGone) {
        this.setTools({
          activeRegionId: regionGone ? (doc.regions[0]?.id ?? null) : activeRegionId,
          selectedPerson: personGone ? null : selectedPerson,
        });
      }
    }
    this.clearRenderIssues(id);
    this.scheduleSave(id);
  }

  private setSession(id: Id, session: EditorSession): void {
    this.set({ editors: { ...this.current.editors, [id]: session } });
  }

  private clearRenderIssues(id: Id): void {
    const r = this.current.renders[id];
    if (r && (r.issues.length > 0 || (r.error && r.job?.state !== 'failed'))) {
      this.updateRender(id, (x) => ({ ...x, issues: [], error: null }));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Saving

  private scheduleSave(id: Id): void {
    const timer = this.saveTimers.get(id);
    if (timer) clearTimeout(timer);
    this.saveTimers.set(
      id,
      setTimeout(() => void this.flushSave(id), SAVE_DELAY_MS),
    );
  }

  private flushAllSaves(): void {
    for (const id of this.saveTimers.keys()) void this.flushSave(id);
  }

  /** Sends what changed since the last save; resolves when the backend has it. */
  flushSave(id: Id): Promise<void> {
    const timer = this.saveTimers.get(id);
    if (timer) clearTimeout(timer);
    this.saveTimers.delete(id);
    const chain = (this.saveChains.get(id) ?? Promise.resolve()).then(() => this.save(id));
    this.saveChains.set(id, chain);
    return chain;
  }

  private async save(id: Id): Promise<void> {
    const session = this.current.editors[id];
    if (!session) return;
    const doc = session.history.present;
    const delta = saveDelta(session.saved, doc);
    if (!delta.request && !delta.segmentMap) return;
    this.setSession(id, { ...session, saving: true });
    try {
      let panel: Panel | undefined;
      if (delta.request) panel = await this.api.panels.update({ id, request: requestPatch(doc) });
      if (delta.segmentMap) {
        panel = await this.api.panels.setSegmentMap({
          panelId: id,
          image: await rasterUpload(doc.segmentMap),
        });
      }
      const latest = this.current.editors[id];
      if (latest) this.setSession(id, { ...latest, saved: doc, saving: false, saveError: null });
      if (panel) {
        const saved = panel;
        const known = this.current.panels[id];
        // keep renders that arrived by event while the save was in flight
        const renders = known && known.renders.length > saved.renders.length ? known.renders : saved.renders;
        this.set({ panels: { ...this.current.panels, [id]: { ...saved, renders } } });
      }
    } catch (error) {
      const latest = this.current.editors[id];
      if (latest)
        this.setSession(id, { ...latest, saving: false, saveError: `Not saved: ${errorMessage(error)}` });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Tools and picking

  setTools(patch: Partial<ToolSettings>): void {
    this.set({ tools: { ...this.current.tools, ...patch } });
  }

  setTool(tool: ToolId): void {
    this.setTools({ tool, hint: null });
  }

  stepBrush(direction: 1 | -1): void {
    this.setTools({ brushSize: stepBrushSize(this.current.tools.brushSize, direction) });
  }

  /** Picking a cast member picks its region (created, with a fresh color, the first time). */
  pickSubject(subjectId: Id): void {
    const doc = this.doc;
    if (!doc) return;
    const existing = regionOfSubject(doc, subjectId);
    if (existing) {
      this.setTools({ activeRegionId: existing.id, hint: null });
      return;
    }
    const id = newId('region');
    const name = this.current.subjects.find((s) => s.id === subjectId)?.name ?? 'subject';
    this.edit((d) => addRegion(d, { id, subjectId }), `Add region for ${name}`);
    this.setTools({ activeRegionId: id, hint: null });
    if (this.current.tools.tool === 'pose') this.setTool('brush');
  }

  /**
   * After a committed move of a region or a whole skeleton: when it is linked, offer to move the
   * partner by the same amount (nothing moves until {@link acceptLinkedMove}; the next edit drops it).
   */
  offerLinkedMove(moved: Moved): void {
    const doc = this.doc;
    if (!doc) return;
    const { dx, dy } = moved;
    if (moved.kind === 'region') {
      const person = findRegion(doc, moved.regionId)?.person ?? null;
      if (person !== null) this.setTools({ offer: { kind: 'move-skeleton', person, dx, dy } });
    } else {
      const region = regionOfPerson(doc, moved.person);
      if (region) this.setTools({ offer: { kind: 'move-region', regionId: region.id, dx, dy } });
    }
  }

  /** Moves the linked partner as offered, as its own undo step. */
  acceptLinkedMove(): void {
    const offer = this.current.tools.offer;
    if (!offer) return;
    if (offer.kind === 'move-skeleton') {
      this.edit((d) => moveSkeleton(d, offer.person, offer.dx, offer.dy), 'Move linked skeleton');
    } else {
      this.edit((d) => moveRegion(d, offer.regionId, offer.dx, offer.dy), 'Move linked region');
    }
    this.setTools({ offer: null });
  }

  /** A free region for paint no region claims (a map written elsewhere), made the active one. */
  claimColor(color: string): void {
    const id = newId('region');
    const error = this.edit((d) => addRegion(d, { id, color }), 'Add region for unclaimed paint');
    if (!error) this.setTools({ activeRegionId: id, hint: null });
  }

  addFreeRegion(): void {
    const doc = this.doc;
    if (!doc) return;
    const id = newId('region');
    this.edit(
      (d) => addRegion(d, { id, color: nextRegionColor(d.regions.map((r) => r.color)) }),
      'Add region',
    );
    this.setTools({ activeRegionId: id, hint: null });
  }

  // -------------------------------------------------------------------------------------------
  // Rendering

  /** Problems found in the open panel before it goes to the backend. */
  issues(doc: PanelDocument): EditorIssue[] {
    const model = this.current.model;
    const f = model?.sizes.vaeScaleFactor ?? 8;
    const names = new Map(this.castSubjects.map((s) => [s.id, s.name] as const));
    return validatePanel(doc, {
      minRegionPixels: f * f,
      vaeScaleFactor: f,
      hasControlNet: model?.hasControlNet ?? true,
      subjectNames: names,
    });
  }

  async render(): Promise<void> {
    const id = this.current.panelId;
    const doc = this.doc;
    if (!id || !doc || this.current.place !== 'panel') return;
    const running = this.current.renders[id]?.job;
    if (running && (running.state === 'queued' || running.state === 'running')) return;
    const blocking = this.issues(doc).filter((i) => i.severity === 'error');
    if (blocking.length > 0) {
      const more = blocking.length > 1 ? ` (and ${blocking.length - 1} more, marked in red)` : '';
      this.updateRender(id, (r) => ({ ...r, error: `${blocking[0].message}${more}`, issues: [] }));
      return;
    }
    this.updateRender(id, (r) => ({ ...r, error: null, issues: [], preview: null }));
    try {
      await this.flushSave(id);
      const saveError = this.current.editors[id]?.saveError;
      if (saveError) throw new Error(saveError);
      const seed = doc.settings.seedLocked && doc.settings.seed !== null ? doc.settings.seed : undefined;
      const job = await this.api.renders.renderPanel({ panelId: id, seed });
      this.updateRender(id, (r) => (r.job && r.job.id === job.id ? r : { ...r, job }));
    } catch (error) {
      this.updateRender(id, (r) => ({ ...r, error: errorMessage(error), issues: errorIssues(error) }));
    }
  }

  async cancelRender(): Promise<void> {
    const id = this.current.panelId;
    const job = id ? this.current.renders[id]?.job : undefined;
    if (!id || !job) return;
    try {
      const cancelled = await this.api.jobs.cancel({ id: job.id });
      this.updateRender(id, (r) => ({ ...r, job: cancelled, preview: null }));
    } catch (error) {
      this.updateRender(id, (r) => ({ ...r, error: errorMessage(error) }));
    }
  }

  showRender(panelId: Id, renderId: Id | null): void {
    this.set({ shownRender: { ...this.current.shownRender, [panelId]: renderId } });
  }

  useAsScaffold(render: Render): void {
    this.edit((d) => setScaffolding(d, { image: render.image }), 'Use render as scaffolding image');
  }

  reuseSettings(render: Render): void {
    this.edit((d) => reuseSettings(d, render.panelRequest, render.seed), 'Reuse settings');
  }

  /** "Open file location": the render's named copy, shown in the file manager (Electron) or named. */
  revealRender(render: Render): Promise<RenderFileLocation> {
    return this.api.renders.reveal({ id: render.id });
  }

  /** Locks the seed; an unlocked seed is filled with the last render's so locking keeps that picture. */
  setSeedLocked(locked: boolean): void {
    const id = this.current.panelId;
    const last = id ? this.current.panels[id]?.renders[0]?.seed : undefined;
    this.edit(
      (d) =>
        updateSettings(d, {
          seedLocked: locked,
          seed: locked && d.settings.seed === null ? (last ?? randomSeed()) : d.settings.seed,
        }),
      locked ? 'Lock seed' : 'Unlock seed',
    );
  }

  randomizeSeed(): void {
    this.edit((d) => updateSettings(d, { seed: randomSeed(), seedLocked: true }), 'New seed');
  }

  // -------------------------------------------------------------------------------------------
  // Pages (the book with undo; the server follows)

  /** The page shown in the Pages place. */
  get page(): (BookState['pages'][string] & { id: Id }) | undefined {
    const id = this.current.pageId;
    const doc =
      id && this.current.book.present.order.includes(id) ? this.current.book.present.pages[id] : undefined;
    return doc && id ? { ...doc, id } : undefined;
  }

  selectPage(id: Id): void {
    if (id !== this.current.pageId) this.set({ pageId: id, letteringId: null, layoutError: null });
  }

  selectLettering(id: string | null): void {
    if (id !== this.current.letteringId) this.set({ letteringId: id });
  }

  /** Adds a page after the shown one (like the last page: template, size, gutters; empty slots). */
  async addPage(template?: PageTemplateId): Promise<void> {
    const storyId = this.current.storyId;
    if (!storyId) return;
    const afterId = this.current.pageId ?? undefined;
    try {
      await this.flushBook();
      const page = await this.api.pages.create({
        storyId,
        ...(afterId ? { afterPageId: afterId } : {}),
        ...(template ? { content: { template } } : {}),
      });
      this.serverBook = insertPage(this.serverBook, page.id, pageDoc(page), afterId);
      this.commitBook(insertPage(this.current.book.present, page.id, pageDoc(page), afterId), 'Add page');
      this.set({ pageId: page.id, letteringId: null, layoutError: null });
    } catch (error) {
      this.set({ bookError: errorMessage(error) });
    }
  }

  deletePage(id: Id): void {
    const order = this.current.book.present.order;
    const index = order.indexOf(id);
    if (index < 0) return;
    this.commitBook(removePage(this.current.book.present, id), 'Delete page');
    if (this.current.pageId === id) {
      const next = order[index + 1] ?? order[index - 1] ?? null;
      this.set({ pageId: next, letteringId: null });
    }
  }

  movePage(from: number, to: number): void {
    this.commitBook(movePage(this.current.book.present, from, to), 'Reorder pages');
  }

  /**
   * Applies a pure edit of the book as one undo step (`mergeKey` folds typing into one step). An
   * edit that throws leaves the book as it was and returns the error message.
   */
  editBook(update: (book: BookState) => BookState, label: string, mergeKey?: string): string | null {
    let next: BookState;
    try {
      next = update(this.current.book.present);
    } catch (error) {
      return errorMessage(error);
    }
    this.commitBook(next, label, mergeKey);
    return null;
  }

  /** Template of the shown page (its panels stay in the slots that remain). */
  setPageTemplate(template: PageTemplateId): void {
    const page = this.page;
    if (!page) return;
    const problem = layoutProblem(template, { ...page });
    if (problem) {
      this.set({ layoutError: problem });
      return;
    }
    this.set({ layoutError: null });
    this.editBook((b) => setTemplate(b, page.id, template), 'Change template');
  }

  /** Size, resolution, gutter or margin of the shown page; refused (with the reason) when no room is left for panels. */
  setPageSettings(patch: PageSettingsPatch, mergeKey?: string): void {
    const page = this.page;
    if (!page) return;
    const problem = layoutProblem(page.template, { ...page, ...patch });
    if (problem) {
      this.set({ layoutError: problem });
      return;
    }
    this.set({ layoutError: null });
    this.editBook((b) => setPageSettings(b, page.id, patch), 'Change page settings', mergeKey);
  }

  addLettering(kind: LetteringKind): void {
    const page = this.page;
    if (!page) return;
    const id = newId(kind);
    const problem = this.editBook(
      (b) => addLettering(b, page.id, kind, id),
      kind === 'caption' ? 'Add caption' : 'Add balloon',
    );
    if (problem) this.set({ bookError: problem });
    else this.set({ letteringId: id });
  }

  removeSelectedLettering(): void {
    const page = this.page;
    const id = this.current.letteringId;
    if (!page || !id) return;
    this.editBook((b) => removeLettering(b, page.id, id), 'Delete lettering');
    this.set({ letteringId: null });
  }

  /** Starts a drag (moving a balloon, its tail, its size): previews do not make undo steps. */
  beginBookGesture(): void {
    this.gestureBase = this.current.book.present;
  }

  /** A drag's live state (no undo step, no save yet). */
  previewBook(update: (book: BookState) => BookState): void {
    if (!this.gestureBase) return;
    let next: BookState;
    try {
      next = update(this.gestureBase);
    } catch {
      return;
    }
    this.set({ book: replacePresent(this.current.book, next) });
  }

  /** Ends a drag as one undo step from where it started. */
  endBookGesture(label: string): void {
    const base = this.gestureBase;
    this.gestureBase = null;
    if (!base) return;
    const final = this.current.book.present;
    if (final === base) return;
    const history = commit({ ...this.current.book, present: base }, final, { label });
    this.set({ book: history, bookError: null });
    this.scheduleBookSync();
  }

  undoBook(): void {
    if (!canUndo(this.current.book)) return;
    this.set({ book: undo(this.current.book) });
    this.afterBookMove();
  }

  redoBook(): void {
    if (!canRedo(this.current.book)) return;
    this.set({ book: redo(this.current.book) });
    this.afterBookMove();
  }

  private afterBookMove(): void {
    const { order } = this.current.book.present;
    const pageId = this.current.pageId;
    if (pageId === null || !order.includes(pageId)) this.set({ pageId: order[0] ?? null, letteringId: null });
    const page = this.page;
    if (page && this.current.letteringId && !page.lettering.some((l) => l.id === this.current.letteringId)) {
      this.set({ letteringId: null });
    }
    this.scheduleBookSync();
  }

  private commitBook(next: BookState, label: string, mergeKey?: string): void {
    const book = commit(this.current.book, next, { label, mergeKey });
    if (book === this.current.book) return;
    this.set({ book, bookError: null });
    this.scheduleBookSync();
  }

  private scheduleBookSync(): void {
    if (this.bookTimer) clearTimeout(this.bookTimer);
    this.bookTimer = setTimeout(() => void this.flushBook(), BOOK_SYNC_DELAY_MS);
  }

  /** Brings the server's pages to the book's (calls never overlap); resolves when done. */
  flushBook(): Promise<void> {
    if (this.bookTimer) clearTimeout(this.bookTimer);
    this.bookTimer = null;
    const storyId = this.current.storyId;
    if (!storyId) return this.bookChain;
    this.bookChain = this.bookChain.then(async () => {
      if (this.current.storyId !== storyId) return;
      const desired = this.current.book.present;
      const plan = reconcileBook(this.serverBook, desired);
      try {
        for (const id of plan.remove) {
          await this.api.pages.delete({ id });
          this.serverBook = removePage(this.serverBook, id);
        }
        for (const id of plan.restore) {
          const page = await this.api.pages.restore({ id });
          this.serverBook = insertPage(removePage(this.serverBook, id), id, pageDoc(page));
        }
        for (const id of plan.update) {
          const doc = desired.pages[id];
          const page = await this.api.pages.update({ id, ...doc });
          this.serverBook = { ...this.serverBook, pages: { ...this.serverBook.pages, [id]: pageDoc(page) } };
        }
        if (plan.reorder) {
          const pages = await this.api.pages.reorder({ storyId, pageIds: plan.reorder });
          this.serverBook = { ...this.serverBook, order: pages.map((p) => p.id) };
        }
        if (this.current.bookError) this.set({ bookError: null });
      } catch (error) {
        this.set({ bookError: `Not saved: ${errorMessage(error)}` });
      }
    });
    return this.bookChain;
  }

  /** Exports the shown page (PNG) or the story (PDF, CBZ); the message says where the file went. */
  async exportPages(format: PageExportFormat): Promise<void> {
    const storyId = this.current.storyId;
    const pageId = this.current.pageId;
    if (!storyId || this.current.pageExport.running) return;
    this.set({ pageExport: { running: format, message: null } });
    try {
      await this.flushBook();
      if (this.current.bookError) throw new Error(this.current.bookError);
      let result;
      if (format === 'png') {
        if (!pageId) throw new Error('Pick a page to export');
        result = await this.api.pages.export({ format, pageId });
      } else {
        result = await this.api.pages.export({ format, storyId });
      }
      let message: PageExportState['message'];
      if (result.status === 'cancelled') {
        message = { kind: 'info', text: 'Export cancelled; nothing was written.' };
      } else {
        const what = `${result.pageCount} ${result.pageCount === 1 ? 'page' : 'pages'}, ${formatBytes(result.file.size)}`;
        if (result.status === 'saved') {
          message = { kind: 'info', text: `Saved ${result.savedTo} (${what})` };
        } else {
          const url = `${result.file.url}?download=${encodeURIComponent(result.fileName)}`;
          downloadUrl(url, result.fileName);
          message = {
            kind: 'info',
            text: `Downloaded ${result.fileName} (${what}) to your browser's downloads folder`,
            download: { url, fileName: result.fileName },
          };
        }
      }
      this.set({ pageExport: { running: null, message } });
    } catch (error) {
      this.set({ pageExport: { running: null, message: { kind: 'error', text: errorMessage(error) } } });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Models

  async loadModels(): Promise<void> {
    try {
      this.set({ models: await this.api.models.list() });
    } catch (error) {
      this.set({ modelMessage: { kind: 'error', text: errorMessage(error) } });
    }
  }

  /** Validates and adds a model folder; the reason it is refused is shown as it is. */
  async importModel(path: string): Promise<boolean> {
    const folder = path.trim();
    if (folder === '') {
      this.set({ modelMessage: { kind: 'error', text: 'Type the full path of a model folder' } });
      return false;
    }
    this.set({ modelBusy: true, modelMessage: null });
    try {
      const entry = await this.api.models.import({ path: folder });
      await this.loadModels();
      this.set({
        modelBusy: false,
        modelMessage: { kind: 'info', text: `Imported ${entry.name}. Pick “Use” to render with it.` },
      });
      return true;
    } catch (error) {
      this.set({ modelBusy: false, modelMessage: { kind: 'error', text: errorMessage(error) } });
      return false;
    }
  }

  /** The desktop app's folder picker (null when closed). */
  async pickModelFolder(): Promise<string | null> {
    try {
      return (await this.api.models.pickFolder()).path;
    } catch (error) {
      this.set({ modelMessage: { kind: 'error', text: errorMessage(error) } });
      return null;
    }
  }

  /** Renders use this model from now on (it loads first; the badge says so meanwhile). */
  async useModel(id: Id): Promise<void> {
    const before = this.current.model;
    this.set({ modelBusy: true, modelMessage: null, model: null, modelError: null });
    try {
      const model = await this.api.models.setActive({ id });
      this.modelReady = Promise.resolve(model);
      this.set({
        model,
        modelBusy: false,
        modelMessage: { kind: 'info', text: `Renders now use ${model.name}.` },
      });
    } catch (error) {
      this.set({
        model: before,
        modelBusy: false,
        modelMessage: { kind: 'error', text: errorMessage(error) },
      });
    }
    await this.loadModels();
  }

  /** Forgets an imported folder (its files stay); the default model takes over if it was in use. */
  async removeModel(id: Id): Promise<void> {
    const wasActive = this.current.models.find((m) => m.id === id)?.active ?? false;
    this.set({ modelBusy: true, modelMessage: null });
    try {
      await this.api.models.remove({ id });
      if (wasActive) this.set({ model: await this.api.models.getInfo() });
      this.set({ modelBusy: false });
    } catch (error) {
      this.set({ modelBusy: false, modelMessage: { kind: 'error', text: errorMessage(error) } });
    }
    await this.loadModels();
  }

  // -------------------------------------------------------------------------------------------
  // Training (teaching a cast to the model)

  private setTraining(patch: Partial<TrainingPlaceState>): void {
    this.set({ training: { ...this.current.training, ...patch } });
  }

  private setTrainingOf(castId: Id, update: (t: CastTraining | undefined) => CastTraining | undefined): void {
    const before = this.current.training.byCast[castId];
    const after = update(before);
    if (after === before || !after) return;
    this.setTraining({ byCast: { ...this.current.training.byCast, [castId]: after } });
  }

  /** The latest training of every cast (the loss curves of running trainings come back after a reload). */
  async loadTrainings(): Promise<void> {
    try {
      const list = await this.api.training.list();
      this.setTraining({ byCast: Object.fromEntries(list.map((t) => [t.castId, t])) });
    } catch {
      // the Training place shows its own errors when it is opened
    }
  }

  /** Opening the Training place: the story's cast (or the first), its training and its check. */
  private enterTraining(): void {
    const { casts, training } = this.current;
    const shown = casts.find((c) => c.id === training.castId);
    const castId = shown?.id ?? this.story?.castId ?? casts[0]?.id ?? null;
    this.chooseTrainingCast(castId);
    void this.loadTrainings();
  }

  /** Opens the Training place on a cast (the Library's "Train" button). */
  openTraining(castId: Id): void {
    this.set({ place: 'training' });
    this.chooseTrainingCast(castId);
    void this.loadTrainings();
  }

  chooseTrainingCast(castId: Id | null): void {
    const previous = castId ? this.current.training.byCast[castId] : undefined;
    this.setTraining({
      castId,
      check: null,
      error: null,
      // a cast trained before offers its last settings again
      settings: previous ? { ...previous.settings } : this.current.training.settings,
    });
    if (castId) void this.checkTraining(castId);
  }

  private scheduleTrainingCheck(): void {
    if (this.trainingCheckTimer) clearTimeout(this.trainingCheckTimer);
    this.trainingCheckTimer = setTimeout(() => {
      this.trainingCheckTimer = null;
      const castId = this.current.training.castId;
      if (castId) void this.checkTraining(castId);
    }, 250);
  }

  /** Asks the backend what would stop the cast from training (before anything starts). */
  async checkTraining(castId: Id): Promise<void> {
    try {
      const check = await this.api.training.check({ castId });
      if (this.current.training.castId === castId) this.setTraining({ check: { ...check, castId } });
    } catch (error) {
      if (this.current.training.castId === castId)
        this.setTraining({
          check: { castId, ok: false, problems: [errorMessage(error)], baseModelName: '' },
        });
    }
  }

  setTrainingSettings(patch: Partial<TrainingSettings>): void {
    this.setTraining({ settings: { ...this.current.training.settings, ...patch } });
  }

  async startTraining(): Promise<void> {
    const { castId, settings, busy } = this.current.training;
    if (!castId || busy) return;
    this.setTraining({ busy: true, error: null });
    try {
      const training = await this.api.training.start({ castId, settings });
      this.setTrainingOf(castId, () => training);
      this.setTraining({ busy: false });
    } catch (error) {
      this.setTraining({ busy: false, error: errorMessage(error) });
      void this.checkTraining(castId);
    }
  }

  async cancelTraining(): Promise<void> {
    const castId = this.current.training.castId;
    if (!castId) return;
    this.setTraining({ busy: true, error: null });
    try {
      const training = await this.api.training.cancel({ castId });
      this.setTrainingOf(castId, () => training);
      this.setTraining({ busy: false });
    } catch (error) {
      this.setTraining({ busy: false, error: errorMessage(error) });
    }
  }

  async resumeTraining(): Promise<void> {
    const castId = this.current.training.castId;
    if (!castId || this.current.training.busy) return;
    this.setTraining({ busy: true, error: null });
    try {
      const training = await this.api.training.resume({ castId });
      this.setTrainingOf(castId, () => training);
      this.setTraining({ busy: false });
    } catch (error) {
      this.setTraining({ busy: false, error: errorMessage(error) });
    }
  }

  /** The models trained on a cast (newest first): what the panel editor offers for the story's cast. */
  trainedModels(castId: Id | null | undefined): ModelEntry[] {
    if (!castId) return [];
    return this.current.models.filter((m) => m.cast?.castId === castId);
  }

  // -------------------------------------------------------------------------------------------
  // Library

  /**
   * Counts changes of the subject and cast lists, so a refresh (after a `data.changed` event) whose
   * answer was sent before a change made here since (a box ticked at once) does not undo it; that
   * change's own event brings the next refresh.
   */
  private readonly libraryEdits = { subjects: 0, casts: 0 };
  /** True while a refresh's answer is applied (it is not a change made here). */
  private applyingRefresh = false;

  private applyRefresh(patch: Pick<Partial<StudioState>, 'subjects' | 'casts'>): void {
    this.applyingRefresh = true;
    try {
      this.set(patch);
    } finally {
      this.applyingRefresh = false;
    }
  }

  private async refreshSubjects(): Promise<void> {
    const before = this.libraryEdits.subjects;
    try {
      const subjects = await this.api.subjects.list();
      if (this.libraryEdits.subjects === before) this.applyRefresh({ subjects });
    } catch {
      // a missed refresh only delays a list update from another window
    }
  }

  private async refreshCasts(): Promise<void> {
    const before = this.libraryEdits.casts;
    try {
      const casts = await this.api.casts.list();
      if (this.libraryEdits.casts === before) this.applyRefresh({ casts });
    } catch {
      // as above
    }
  }

  private libraryMessage(key: string, message: { kind: 'error' | 'info'; text: string } | null): void {
    const { [key]: _old, ...rest } = this.current.libraryMessages;
    this.set({ libraryMessages: message ? { ...rest, [key]: message } : rest });
  }

  async suggestToken(): Promise<string> {
    try {
      return (await this.api.subjects.suggestToken()).token;
    } catch {
      return '';
    }
  }

  async createSubject(input: { name: string; classNoun: string; token: string }): Promise<boolean> {
    if (input.name.trim() === '' || input.classNoun.trim() === '') {
      this.libraryMessage('new-subject', { kind: 'error', text: 'A subject needs a name and a class noun' });
      return false;
    }
    try {
      const subject = await this.api.subjects.create({
        name: input.name.trim(),
        classNoun: input.classNoun.trim(),
        token: input.token.trim() === '' ? undefined : input.token.trim(),
      });
      this.set({ subjects: [...this.current.subjects.filter((s) => s.id !== subject.id), subject] });
      this.libraryMessage('new-subject', null);
      return true;
    } catch (error) {
      this.libraryMessage('new-subject', { kind: 'error', text: errorMessage(error) });
      return false;
    }
  }

  async updateSubject(input: { id: Id; name?: string; classNoun?: string; token?: string }): Promise<void> {
    try {
      const subject = await this.api.subjects.update(input);
      this.replaceSubject(subject);
      this.libraryMessage(input.id, null);
    } catch (error) {
      this.libraryMessage(input.id, { kind: 'error', text: errorMessage(error) });
    }
  }

  async deleteSubject(id: Id): Promise<void> {
    const subject = this.current.subjects.find((s) => s.id === id);
    try {
      await this.api.subjects.delete({ id });
      this.set({
        subjects: this.current.subjects.filter((s) => s.id !== id),
        deletedSubject: subject ?? null,
      });
      void this.refreshCasts();
    } catch (error) {
      this.libraryMessage(id, { kind: 'error', text: errorMessage(error) });
    }
  }

  async restoreSubject(): Promise<void> {
    const deleted = this.current.deletedSubject;
    if (!deleted) return;
    try {
      const subject = await this.api.subjects.restore({ id: deleted.id });
      this.set({ subjects: [...this.current.subjects, subject], deletedSubject: null });
      void this.refreshCasts();
    } catch (error) {
      this.libraryMessage('new-subject', { kind: 'error', text: errorMessage(error) });
    }
  }

  dismissDeletedSubject(): void {
    this.set({ deletedSubject: null });
  }

  /**
   * Adds dropped files as reference images. Files that are not images are refused here, with the
   * reason, before any upload; the backend checks the rest (decodable, size, duplicates).
   */
  async addReferenceImages(subjectId: Id, files: readonly File[]): Promise<void> {
    const refused: string[] = [];
    const images: File[] = [];
    for (const file of files) {
      if (!/^image\/(png|jpeg|webp)$/.test(file.type)) {
        refused.push(
          `${file.name} is not a PNG, JPEG or WebP image${file.type ? ` (it is ${file.type})` : ''}`,
        );
      } else images.push(file);
    }
    const notes: string[] = [...refused];
    if (images.length > 0) {
      try {
        const result = await this.api.subjects.addReferenceImages({
          subjectId,
          images: await Promise.all(images.map(fileUpload)),
        });
        this.replaceSubject(result.subject);
        for (const r of result.rejected) notes.push(refusal(r.name ?? `File ${r.index + 1}`, r.reason));
        if (result.duplicates.length > 0) {
          const n = result.duplicates.length;
          notes.push(`${n} ${n === 1 ? 'image was' : 'images were'} already there`);
        }
      } catch (error) {
        notes.push(errorMessage(error));
      }
    }
    const onlyDuplicates = notes.length === 1 && notes[0].endsWith('already there');
    this.libraryMessage(
      subjectId,
      notes.length === 0 ? null : { kind: onlyDuplicates ? 'info' : 'error', text: notes.join('. ') },
    );
  }

  async removeReferenceImage(subjectId: Id, hash: string): Promise<void> {
    try {
      this.replaceSubject(await this.api.subjects.removeReferenceImage({ subjectId, hash }));
    } catch (error) {
      this.libraryMessage(subjectId, { kind: 'error', text: errorMessage(error) });
    }
  }

  private replaceSubject(subject: Subject): void {
    this.set({ subjects: this.current.subjects.map((s) => (s.id === subject.id ? subject : s)) });
  }

  async createCast(name: string, subjectIds: Id[] = []): Promise<Cast | undefined> {
    if (name.trim() === '') {
      this.libraryMessage('casts', { kind: 'error', text: 'Give the cast a name' });
      return undefined;
    }
    try {
      const cast = await this.api.casts.create({ name: name.trim(), subjectIds });
      this.set({ casts: [...this.current.casts, cast] });
      this.libraryMessage('casts', null);
      return cast;
    } catch (error) {
      this.libraryMessage('casts', { kind: 'error', text: errorMessage(error) });
      return undefined;
    }
  }

  async updateCast(input: { id: Id; name?: string; subjectIds?: Id[] }): Promise<void> {
    try {
      const cast = await this.api.casts.update(input);
      this.set({ casts: this.current.casts.map((c) => (c.id === cast.id ? cast : c)) });
      this.libraryMessage(input.id, null);
    } catch (error) {
      this.libraryMessage(input.id, { kind: 'error', text: errorMessage(error) });
    }
  }

  async deleteCast(id: Id): Promise<void> {
    try {
      await this.api.casts.delete({ id });
      this.set({ casts: this.current.casts.filter((c) => c.id !== id) });
      const stories = await this.api.stories.list();
      this.set({ stories });
    } catch (error) {
      this.libraryMessage(id, { kind: 'error', text: errorMessage(error) });
    }
  }

  /** Makes the open story use a cast, creating "<story> cast" on first use. Returns its id. */
  async ensureStoryCast(): Promise<Id | undefined> {
    const story = this.story;
    if (!story) return undefined;
    if (story.castId && this.current.casts.some((c) => c.id === story.castId)) return story.castId;
    const cast = await this.createCast(`${story.title} cast`);
    if (!cast) return undefined;
    await this.setStoryCast(cast.id);
    return cast.id;
  }

  async toggleCastMember(castId: Id, subjectId: Id): Promise<void> {
    const cast = this.current.casts.find((c) => c.id === castId);
    if (!cast) return;
    const subjectIds = cast.subjectIds.includes(subjectId)
      ? cast.subjectIds.filter((id) => id !== subjectId)
      : [...cast.subjectIds, subjectId];
    // show the change at once; a refusal puts the old list back with the reason
    this.set({ casts: this.current.casts.map((c) => (c.id === castId ? { ...c, subjectIds } : c)) });
    await this.updateCast({ id: castId, subjectIds });
    if (this.current.libraryMessages[castId]?.kind === 'error') {
      this.set({ casts: this.current.casts.map((c) => (c.id === castId ? cast : c)) });
    }
  }
}

/** A refused file's reason with its name said once ("cut.png is not a readable image ..."). */
function refusal(name: string, reason: string): string {
  if (reason.startsWith(name)) return reason;
  return reason.startsWith('is ') ? `${name} ${reason}` : `${name}: ${reason}`;
}

/** A fresh id for editor-local records (regions). */
export function newId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** A seed in the range every backend accepts (32 bits keeps it readable and copyable). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Why a page layout cannot be built (shown next to the layout controls), or null. */
function layoutProblem(template: PageTemplateId, page: PageSettings): string | null {
  try {
    pageLayout(template, page);
    return null;
  } catch (error) {
    if (error instanceof LayoutError) return error.message.charAt(0).toUpperCase() + error.message.slice(1);
    throw error;
  }
}

/** "1.2 MB", "830 kB". */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} kB`;
}
