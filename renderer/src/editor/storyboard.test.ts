import { describe, expect, it } from 'vitest';
import { commit, createHistory, redo, undo } from './history';
import { dropIndex, insertPanel, movePanel, reconcileOrder, removePanel } from './storyboard';

describe('panel order', () => {
  it('moves, inserts and removes panels', () => {
    const s = { order: ['a', 'b', 'c', 'd'] };
    expect(movePanel(s, 0, 2).order).toEqual(['b', 'c', 'a', 'd']);
    expect(movePanel(s, 3, 0).order).toEqual(['d', 'a', 'b', 'c']);
    expect(movePanel(s, 1, 1)).toBe(s);
    expect(insertPanel(s, 'x', 'b').order).toEqual(['a', 'b', 'x', 'c', 'd']);
    expect(insertPanel(s, 'x').order).toEqual(['a', 'b', 'c', 'd', 'x']);
    expect(removePanel(s, 'c').order).toEqual(['a', 'b', 'd']);
  });

  it('drop positions: before or after the card under the pointer', () => {
    // dragging the first of four onto the third card's right half lands it third... after it
    expect(dropIndex(0, 2, true)).toBe(2);
    expect(dropIndex(0, 2, false)).toBe(1);
    expect(dropIndex(3, 0, false)).toBe(0);
    expect(dropIndex(3, 0, true)).toBe(1);
  });

  it('order edits are undoable', () => {
    let h = createHistory({ order: ['a', 'b', 'c'] } as { order: readonly string[] });
    h = commit(h, movePanel(h.present, 2, 0), { label: 'Reorder panels' });
    h = commit(h, removePanel(h.present, 'a'), { label: 'Delete panel' });
    expect(h.present.order).toEqual(['c', 'b']);
    h = undo(h);
    expect(h.present.order).toEqual(['c', 'a', 'b']);
    h = undo(h);
    expect(h.present.order).toEqual(['a', 'b', 'c']);
    h = redo(redo(h));
    expect(h.present.order).toEqual(['c', 'b']);
  });
});

describe('reconcileOrder', () => {
  it('deletes panels that are gone and restores panels that came back', () => {
    expect(reconcileOrder(['a', 'b', 'c'], ['a', 'c'])).toEqual({
      remove: ['b'],
      restore: [],
      reorder: null,
    });
    expect(reconcileOrder(['a', 'c'], ['a', 'b', 'c'])).toEqual({
      remove: [],
      restore: ['b'],
      reorder: ['a', 'b', 'c'],
    });
  });

  it('reorders when only the order differs, and does nothing when equal', () => {
    expect(reconcileOrder(['a', 'b'], ['b', 'a'])).toEqual({ remove: [], restore: [], reorder: ['b', 'a'] });
    expect(reconcileOrder(['a', 'b'], ['a', 'b'])).toEqual({ remove: [], restore: [], reorder: null });
  });
});
