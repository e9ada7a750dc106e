/**
 * The storyboard's editable state: the reading order of the story's panels. Adding, duplicating,
 * deleting and reordering panels are pure edits of this order, so they share the undo history; the
 * app reconciles the server with the order after each step ({@link reconcileOrder}).
 */

export interface StoryboardState {
  /** Panel ids in reading order. */
  readonly order: readonly string[];
}

/** True when two states hold the same panels in the same order. */
export function sameOrder(a: StoryboardState, b: StoryboardState): boolean {
  return a.order.length === b.order.length && a.order.every((id, i) => b.order[i] === id);
}

/** Moves the panel at `from` so it ends up at index `to` (indices in the current order). */
export function movePanel(state: StoryboardState, from: number, to: number): StoryboardState {
  const n = state.order.length;
  if (from < 0 || from >= n) throw new RangeError(`no panel at position ${from}`);
  const target = Math.max(0, Math.min(n - 1, to));
  if (target === from) return state;
  const order = [...state.order];
  const [id] = order.splice(from, 1);
  order.splice(target, 0, id);
  return { order };
}

/**
 * Where a dragged card lands when dropped on the card at `over`: before it when the pointer is in the
 * card's first half, after it otherwise. Returns the final index for {@link movePanel}.
 */
export function dropIndex(from: number, over: number, after: boolean): number {
  const insertAt = after ? over + 1 : over;
  return insertAt > from ? insertAt - 1 : insertAt;
}

/** Inserts a panel after `afterId` (or at the end). */
export function insertPanel(state: StoryboardState, id: string, afterId?: string): StoryboardState {
  if (state.order.includes(id)) return state;
  const at = afterId === undefined ? -1 : state.order.indexOf(afterId);
  const order = [...state.order];
  order.splice(at < 0 ? order.length : at + 1, 0, id);
  return { order };
}

export function removePanel(state: StoryboardState, id: string): StoryboardState {
  return state.order.includes(id) ? { order: state.order.filter((p) => p !== id) } : state;
}

/** The server calls that bring its panel order (`server`) to `desired`. */
export interface OrderReconciliation {
  /** Panels to soft-delete. */
  remove: string[];
  /** Soft-deleted panels to bring back (undo of a delete, redo of an add). */
  restore: string[];
  /** The full order to set afterwards, or null when it already matches. */
  reorder: string[] | null;
}

/**
 * Plans the server calls after an undo/redo or an edit of the order.
 *
 * @example
 * ```ts
 * reconcileOrder(['a', 'b', 'c'], ['a', 'c']); // { remove: ['b'], restore: [], reorder: null }
 * ```
 */
export function reconcileOrder(server: readonly string[], desired: readonly string[]): OrderReconciliation {
  const remove = server.filter((id) => !desired.includes(id));
  const restore = desired.filter((id) => !server.includes(id));
  // restore puts panels back at their old positions; the order may still need fixing after that
  const afterRemove = server.filter((id) => desired.includes(id));
  const sameOrder =
    restore.length === 0 &&
    afterRemove.length === desired.length &&
    afterRemove.every((id, i) => id === desired[i]);
  return { remove, restore, reorder: sameOrder ? null : [...desired] };
}
