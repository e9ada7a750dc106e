/**
 * The Pages place's editable state: a story's pages in reading order and what each page shows. Every
 * edit is a pure function `edit(state, ...) -> nextState` (copying only what it changes), so edits
 * share one undo history; the app brings the server in step after each step ({@link reconcileBook}).
 *
 * Coordinates of lettering are page fractions (see common/pages/lettering.ts).
 */
import type {
  Id,
  Lettering,
  LetteringKind,
  Page,
  PageContent,
  PageTemplateId,
} from '../../../electron/api/contract';
import { slotCount } from '../../../common/pages/layout';
import { DEFAULT_FONT_SIZE_PT, LETTERING_LIMITS } from '../../../common/pages/lettering';

export type PageDoc = PageContent;

export interface BookState {
  /** Page ids in reading order. */
  readonly order: readonly Id[];
  /** Every page the book knows, deleted ones included (so undo can bring them back). */
  readonly pages: Readonly<Record<Id, PageDoc>>;
}

/** The page settings an edit may change together. */
export type PageSettingsPatch = Partial<Pick<PageDoc, 'size' | 'dpi' | 'gutterMm' | 'marginMm'>>;

/** What a server page shows. */
export function pageDoc(page: Page): PageDoc {
  return {
    template: page.template,
    size: page.size,
    dpi: page.dpi,
    gutterMm: page.gutterMm,
    marginMm: page.marginMm,
    slots: [...page.slots],
    lettering: page.lettering.map((l) => ({ ...l, tail: l.tail && { ...l.tail } })),
  };
}

export function bookFromPages(pages: readonly Page[]): BookState {
  return { order: pages.map((p) => p.id), pages: Object.fromEntries(pages.map((p) => [p.id, pageDoc(p)])) };
}

/** True when two pages show the same thing. */
export function samePage(a: PageDoc, b: PageDoc): boolean {
  return (
    a.template === b.template &&
    a.size === b.size &&
    a.dpi === b.dpi &&
    a.gutterMm === b.gutterMm &&
    a.marginMm === b.marginMm &&
    a.slots.length === b.slots.length &&
    a.slots.every((s, i) => s === b.slots[i]) &&
    a.lettering.length === b.lettering.length &&
    a.lettering.every((l, i) => sameLettering(l, b.lettering[i]))
  );
}

function sameLettering(a: Lettering, b: Lettering): boolean {
  return (
    a.id === b.id &&
    a.kind === b.kind &&
    a.x === b.x &&
    a.y === b.y &&
    a.width === b.width &&
    a.height === b.height &&
    a.text === b.text &&
    a.fontSizePt === b.fontSizePt &&
    (a.tail === null ? b.tail === null : b.tail !== null && a.tail.x === b.tail.x && a.tail.y === b.tail.y)
  );
}

// ---------------------------------------------------------------------------------------------
// Pages

/** Adds a page (already created on the server) after `afterId`, or at the end. */
export function insertPage(state: BookState, id: Id, doc: PageDoc, afterId?: Id): BookState {
  if (state.order.includes(id)) return state;
  const at = afterId === undefined ? -1 : state.order.indexOf(afterId);
  const order = [...state.order];
  order.splice(at < 0 ? order.length : at + 1, 0, id);
  return { order, pages: { ...state.pages, [id]: doc } };
}

/** Takes a page out of the reading order (its content stays, for undo). */
export function removePage(state: BookState, id: Id): BookState {
  return state.order.includes(id) ? { ...state, order: state.order.filter((p) => p !== id) } : state;
}

/** Moves the page at `from` so it ends up at index `to`. */
export function movePage(state: BookState, from: number, to: number): BookState {
  const n = state.order.length;
  if (from < 0 || from >= n) throw new RangeError(`no page at position ${from}`);
  const target = Math.max(0, Math.min(n - 1, to));
  if (target === from) return state;
  const order = [...state.order];
  const [id] = order.splice(from, 1);
  order.splice(target, 0, id);
  return { ...state, order };
}

function editPage(state: BookState, id: Id, edit: (doc: PageDoc) => PageDoc): BookState {
  const doc = state.pages[id];
  if (!doc) throw new RangeError(`no page ${id}`);
  const next = edit(doc);
  return next === doc ? state : { ...state, pages: { ...state.pages, [id]: next } };
}

/** A new template; the panels of the slots it still has stay where they are. */
export function setTemplate(state: BookState, id: Id, template: PageTemplateId): BookState {
  return editPage(state, id, (doc) =>
    doc.template === template
      ? doc
      : {
          ...doc,
          template,
          slots: Array.from({ length: slotCount(template) }, (_, i) => doc.slots[i] ?? null),
        },
  );
}

export function setPageSettings(state: BookState, id: Id, patch: PageSettingsPatch): BookState {
  return editPage(state, id, (doc) => {
    const changed = (Object.keys(patch) as (keyof PageSettingsPatch)[]).some(
      (k) => patch[k] !== undefined && patch[k] !== doc[k],
    );
    return changed ? { ...doc, ...patch } : doc;
  });
}

/** Shows a panel in a slot (replacing what was there). */
export function placePanel(state: BookState, id: Id, slot: number, panelId: Id): BookState {
  return editPage(state, id, (doc) => {
    if (slot < 0 || slot >= doc.slots.length) throw new RangeError(`the page has no slot ${slot + 1}`);
    if (doc.slots[slot] === panelId) return doc;
    const slots = [...doc.slots];
    slots[slot] = panelId;
    return { ...doc, slots };
  });
}

export function clearSlot(state: BookState, id: Id, slot: number): BookState {
  return editPage(state, id, (doc) => {
    if (doc.slots[slot] == null) return doc;
    const slots = [...doc.slots];
    slots[slot] = null;
    return { ...doc, slots };
  });
}

// ---------------------------------------------------------------------------------------------
// Lettering

/** Default boxes (page fractions): a caption is a wide strip, a balloon an oval. */
const NEW_BOX: Record<LetteringKind, { width: number; height: number }> = {
  caption: { width: 0.4, height: 0.06 },
  speech: { width: 0.32, height: 0.1 },
};

/**
 * Adds a caption (top left, as narration sits) or a speech balloon (upper middle, its tail pointing
 * down), shifted down a little for every lettering already on the page so new ones never hide old ones.
 */
export function addLettering(state: BookState, pageId: Id, kind: LetteringKind, id: string): BookState {
  return editPage(state, pageId, (doc) => {
    if (doc.lettering.length >= LETTERING_LIMITS.perPage) {
      throw new RangeError(`a page holds at most ${LETTERING_LIMITS.perPage} captions and balloons`);
    }
    const box = NEW_BOX[kind];
    const step = (doc.lettering.length % 8) * 0.04;
    const x = kind === 'caption' ? 0.08 : 0.34;
    const y = Math.min(1 - box.height, (kind === 'caption' ? 0.06 : 0.12) + step);
    const lettering: Lettering = {
      id,
      kind,
      x,
      y,
      ...box,
      tail: kind === 'speech' ? { x: x + box.width * 0.35, y: Math.min(1, y + box.height + 0.06) } : null,
      text: kind === 'caption' ? 'Meanwhile…' : 'Hello!',
      fontSizePt: DEFAULT_FONT_SIZE_PT,
    };
    return { ...doc, lettering: [...doc.lettering, lettering] };
  });
}

function editLettering(
  state: BookState,
  pageId: Id,
  id: string,
  edit: (l: Lettering) => Lettering,
): BookState {
  return editPage(state, pageId, (doc) => {
    const index = doc.lettering.findIndex((l) => l.id === id);
    if (index < 0) throw new RangeError(`no caption or balloon ${id} on this page`);
    const next = edit(doc.lettering[index]);
    if (next === doc.lettering[index]) return doc;
    const lettering = [...doc.lettering];
    lettering[index] = next;
    return { ...doc, lettering };
  });
}

export function setLetteringText(state: BookState, pageId: Id, id: string, text: string): BookState {
  const clipped = text.slice(0, LETTERING_LIMITS.textLength);
  return editLettering(state, pageId, id, (l) => (l.text === clipped ? l : { ...l, text: clipped }));
}

export function setLetteringFontSize(
  state: BookState,
  pageId: Id,
  id: string,
  fontSizePt: number,
): BookState {
  const { min, max } = LETTERING_LIMITS.fontSizePt;
  const size = Math.max(min, Math.min(max, fontSizePt));
  return editLettering(state, pageId, id, (l) => (l.fontSizePt === size ? l : { ...l, fontSizePt: size }));
}

/**
 * Moves a caption or balloon to put its top left corner at (x, y), kept inside the page. A balloon's
 * tail tip stays where it points, so dragging the balloon does not drag the speaker along.
 */
export function moveLettering(state: BookState, pageId: Id, id: string, x: number, y: number): BookState {
  return editLettering(state, pageId, id, (l) => {
    const nx = clamp(x, 0, 1 - l.width);
    const ny = clamp(y, 0, 1 - l.height);
    return nx === l.x && ny === l.y ? l : { ...l, x: nx, y: ny };
  });
}

/** Resizes from the top left corner; the box keeps at least the minimum size and stays on the page. */
export function resizeLettering(
  state: BookState,
  pageId: Id,
  id: string,
  width: number,
  height: number,
): BookState {
  return editLettering(state, pageId, id, (l) => {
    const w = clamp(width, LETTERING_LIMITS.minSize, 1 - l.x);
    const h = clamp(height, LETTERING_LIMITS.minSize, 1 - l.y);
    return w === l.width && h === l.height ? l : { ...l, width: w, height: h };
  });
}

/** Points a balloon's tail at (x, y), kept on the page. Captions have no tail. */
export function moveTail(state: BookState, pageId: Id, id: string, x: number, y: number): BookState {
  return editLettering(state, pageId, id, (l) => {
    if (l.kind !== 'speech') throw new RangeError('captions have no tail');
    const tail = { x: clamp(x, 0, 1), y: clamp(y, 0, 1) };
    return l.tail && l.tail.x === tail.x && l.tail.y === tail.y ? l : { ...l, tail };
  });
}

export function removeLettering(state: BookState, pageId: Id, id: string): BookState {
  return editPage(state, pageId, (doc) =>
    doc.lettering.some((l) => l.id === id)
      ? { ...doc, lettering: doc.lettering.filter((l) => l.id !== id) }
      : doc,
  );
}

function clamp(value: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, value));
}

// ---------------------------------------------------------------------------------------------
// Server sync

/** The server calls that bring its pages (`server`) to `desired`. */
export interface BookReconciliation {
  /** Pages to soft-delete. */
  remove: Id[];
  /** Soft-deleted pages to bring back (undo of a delete, redo of an add). */
  restore: Id[];
  /** Pages whose content differs (after restoring), to update as a whole. */
  update: Id[];
  /** The full order to set afterwards, or null when it already matches. */
  reorder: Id[] | null;
}

/**
 * Plans the server calls after an edit, undo or redo.
 *
 * @example
 * ```ts
 * reconcileBook(server, desired); // { remove: [], restore: [], update: ['p2'], reorder: null }
 * ```
 */
export function reconcileBook(server: BookState, desired: BookState): BookReconciliation {
  const remove = server.order.filter((id) => !desired.order.includes(id));
  const restore = desired.order.filter((id) => !server.order.includes(id));
  const update = desired.order.filter((id) => {
    const want = desired.pages[id];
    const have = server.pages[id];
    return want !== undefined && (have === undefined || !samePage(have, want));
  });
  const afterRemove = server.order.filter((id) => desired.order.includes(id));
  const sameOrder =
    restore.length === 0 &&
    afterRemove.length === desired.order.length &&
    afterRemove.every((id, i) => id === desired.order[i]);
  return { remove, restore, update, reorder: sameOrder ? null : [...desired.order] };
}
