/**
 * Undo/redo over immutable snapshots. Documents share every unchanged part between snapshots (edits
 * are pure and copy only what they change), so a snapshot costs what its edit changed.
 *
 * Typing in a text field commits on every keystroke; consecutive commits with the same `mergeKey`
 * within `mergeWindowMs` fold into one entry so Ctrl+Z undoes a word or a phrase, not a letter.
 *
 * @example
 * ```ts
 * let h = createHistory(doc);
 * h = commit(h, setPrompt(h.present, 'a pier at dusk'), { label: 'Edit prompt', mergeKey: 'prompt' });
 * h = undo(h); // h.present === doc
 * ```
 */

export interface HistoryEntry<T> {
  readonly state: T;
  /** What the edit that left this state did ("Brush stroke"). */
  readonly label: string;
}

export interface History<T> {
  /** Older states, oldest first; each with the label of the edit that came after it. */
  readonly past: readonly HistoryEntry<T>[];
  readonly present: T;
  /** Undone states, the next redo last. */
  readonly future: readonly HistoryEntry<T>[];
  /** Merge key and time of the last commit, for folding typing into one entry. */
  readonly lastMerge?: { readonly key: string; readonly at: number };
}

export interface CommitOptions {
  /** Shown in the Edit menu / tooltip: "Undo Brush stroke". */
  label: string;
  /** Commits with the same key within the merge window become one undo step. */
  mergeKey?: string;
  /** Time of the commit (ms); defaults to `Date.now()`. Tests pass it explicitly. */
  now?: number;
}

/** Undo steps kept; the oldest are dropped beyond this. */
export const HISTORY_LIMIT = 200;
export const MERGE_WINDOW_MS = 1500;

export function createHistory<T>(present: T): History<T> {
  return { past: [], present, future: [] };
}

/** Records `next` as the new present. Committing the present itself is a no-op. */
export function commit<T>(history: History<T>, next: T, options: CommitOptions): History<T> {
  if (next === history.present) return history;
  const now = options.now ?? Date.now();
  const last = history.lastMerge;
  const merging =
    options.mergeKey !== undefined &&
    last !== undefined &&
    last.key === options.mergeKey &&
    now - last.at <= MERGE_WINDOW_MS &&
    history.past.length > 0 &&
    history.future.length === 0;
  const lastMerge = options.mergeKey === undefined ? undefined : { key: options.mergeKey, at: now };
  if (merging) return { past: history.past, present: next, future: [], lastMerge };
  const past = [...history.past, { state: history.present, label: options.label }];
  if (past.length > HISTORY_LIMIT) past.splice(0, past.length - HISTORY_LIMIT);
  return { past, present: next, future: [], lastMerge };
}

/** Replaces the present without an undo step (live previews during a drag, loading saved data). */
export function replacePresent<T>(history: History<T>, present: T): History<T> {
  return { ...history, present, lastMerge: undefined };
}

/**
 * Applies `f` to every state, past, present and future, without an undo step: for facts that hold in
 * every state (a panel another window added must not be deleted by undoing to a state without it).
 * With `same`, steps that `f` left with nothing to do (their before and after states became the
 * same) are dropped, so no undo does nothing.
 */
export function mapHistory<T>(
  history: History<T>,
  f: (state: T) => T,
  same?: (a: T, b: T) => boolean,
): History<T> {
  const entry = (e: HistoryEntry<T>): HistoryEntry<T> => ({ ...e, state: f(e.state) });
  const past = history.past.map(entry);
  const present = f(history.present);
  const future = history.future.map(entry);
  if (!same) return { ...history, past, present, future };
  // past[i] leads to past[i + 1] (the last to the present); future[j] is reached from future[j + 1]
  // (the last from the present)
  return {
    ...history,
    past: past.filter((e, i) => !same(e.state, i + 1 < past.length ? past[i + 1].state : present)),
    present,
    future: future.filter((e, j) => !same(e.state, j + 1 < future.length ? future[j + 1].state : present)),
  };
}

export function canUndo(history: History<unknown>): boolean {
  return history.past.length > 0;
}

export function canRedo(history: History<unknown>): boolean {
  return history.future.length > 0;
}

export function undo<T>(history: History<T>): History<T> {
  const previous = history.past[history.past.length - 1];
  if (!previous) return history;
  return {
    past: history.past.slice(0, -1),
    present: previous.state,
    future: [...history.future, { state: history.present, label: previous.label }],
  };
}

export function redo<T>(history: History<T>): History<T> {
  const next = history.future[history.future.length - 1];
  if (!next) return history;
  return {
    past: [...history.past, { state: history.present, label: next.label }],
    present: next.state,
    future: history.future.slice(0, -1),
  };
}

/** Label of the edit Ctrl+Z would undo, if any. */
export function undoLabel(history: History<unknown>): string | undefined {
  return history.past[history.past.length - 1]?.label;
}

/** Label of the edit Ctrl+Shift+Z would redo, if any. */
export function redoLabel(history: History<unknown>): string | undefined {
  return history.future[history.future.length - 1]?.label;
}
