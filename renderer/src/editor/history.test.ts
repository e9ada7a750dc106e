import { describe, expect, it } from 'vitest';
import {
  canRedo,
  canUndo,
  commit,
  createHistory,
  HISTORY_LIMIT,
  mapHistory,
  redo,
  replacePresent,
  undo,
  undoLabel,
} from './history';

describe('history', () => {
  it('undoes and redoes commits in order', () => {
    let h = createHistory('a');
    h = commit(h, 'b', { label: 'B', now: 0 });
    h = commit(h, 'c', { label: 'C', now: 10_000 });
    expect(undoLabel(h)).toBe('C');
    h = undo(h);
    expect(h.present).toBe('b');
    h = undo(h);
    expect(h.present).toBe('a');
    expect(canUndo(h)).toBe(false);
    h = redo(h);
    expect(h.present).toBe('b');
    h = redo(h);
    expect(h.present).toBe('c');
    expect(canRedo(h)).toBe(false);
  });

  it('a new commit clears the redo stack', () => {
    let h = commit(createHistory(1), 2, { label: 'two' });
    h = undo(h);
    h = commit(h, 3, { label: 'three' });
    expect(canRedo(h)).toBe(false);
    expect(undo(h).present).toBe(1);
  });

  it('committing the present is a no-op', () => {
    const h = createHistory({ x: 1 });
    expect(commit(h, h.present, { label: 'nothing' })).toBe(h);
  });

  it('merges typing with the same key inside the window into one step', () => {
    let h = createHistory('');
    h = commit(h, 'a', { label: 'Prompt', mergeKey: 'prompt', now: 0 });
    h = commit(h, 'a p', { label: 'Prompt', mergeKey: 'prompt', now: 300 });
    h = commit(h, 'a pier', { label: 'Prompt', mergeKey: 'prompt', now: 600 });
    expect(h.past).toHaveLength(1);
    expect(undo(h).present).toBe('');
    // after a pause, a new step starts
    h = commit(h, 'a pier at dusk', { label: 'Prompt', mergeKey: 'prompt', now: 5_000 });
    expect(undo(h).present).toBe('a pier');
    // another field never merges into the prompt's step
    h = commit(h, 'x', { label: 'Negative', mergeKey: 'negative', now: 5_100 });
    expect(undo(h).present).toBe('a pier at dusk');
  });

  it('replacePresent records no step and ends merging', () => {
    let h = commit(createHistory('a'), 'b', { label: 'B', mergeKey: 'k', now: 0 });
    h = replacePresent(h, 'b2');
    h = commit(h, 'c', { label: 'C', mergeKey: 'k', now: 1 });
    expect(h.past.map((e) => e.state)).toEqual(['a', 'b2']);
  });

  it('mapHistory changes every state, keeps the labels and records no step', () => {
    let h = commit(createHistory('a'), 'b', { label: 'B', now: 0 });
    h = commit(h, 'c', { label: 'C', now: 10_000 });
    h = undo(h);
    const m = mapHistory(h, (s) => s + '+');
    expect([m.past.map((e) => e.state), m.present, m.future.map((e) => e.state)]).toEqual([
      ['a+'],
      'b+',
      ['c+'],
    ]);
    expect(undoLabel(m)).toBe('B');
    expect(redo(m).present).toBe('c+');
  });

  it('mapHistory with `same` drops the steps the mapping left with nothing to do, past and future', () => {
    // states are sets of letters; the mapping removes 'x' everywhere
    let h = createHistory('ab');
    for (const [next, label] of [
      ['abx', 'Add x'],
      ['bx', 'Remove a'],
      ['bxy', 'Add y'],
      ['bx', 'Remove y'],
      ['b', 'Remove x'],
    ] as const) {
      h = commit(h, next, { label, now: h.past.length * 10_000 });
    }
    h = undo(undo(h)); // present 'bxy'; future: 'b' (redo 2), 'bx' (redo 1)
    const m = mapHistory(
      h,
      (s) => s.replace('x', ''),
      (a, b) => a === b,
    );
    expect(m.past.map((e) => [e.state, e.label])).toEqual([
      ['ab', 'Remove a'],
      ['b', 'Add y'],
    ]);
    expect(m.present).toBe('by');
    expect(m.future.map((e) => [e.state, e.label])).toEqual([['b', 'Remove y']]);
    expect(undo(m).present).toBe('b');
    expect(undo(undo(m)).present).toBe('ab');
    expect(redo(m).present).toBe('b');
    expect(canRedo(redo(m))).toBe(false);
  });

  it('keeps at most HISTORY_LIMIT steps', () => {
    let h = createHistory(0);
    for (let i = 1; i <= HISTORY_LIMIT + 10; i++) h = commit(h, i, { label: String(i) });
    expect(h.past).toHaveLength(HISTORY_LIMIT);
    expect(h.past[0].state).toBe(10);
  });
});
