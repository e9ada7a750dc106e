import { describe, expect, it } from 'vitest';
import type { Page } from '../../../electron/api/contract';
import {
  addLettering,
  bookFromPages,
  clearSlot,
  insertPage,
  moveLettering,
  movePage,
  moveTail,
  placePanel,
  reconcileBook,
  removeLettering,
  removePage,
  resizeLettering,
  setLetteringFontSize,
  setLetteringText,
  setPageSettings,
  setTemplate,
} from './book';
import type { BookState, PageDoc } from './book';

const doc = (over: Partial<PageDoc> = {}): PageDoc => ({
  template: 'grid-2x2',
  size: 'a4',
  dpi: 300,
  gutterMm: 4,
  marginMm: 12,
  slots: [null, null, null, null],
  lettering: [],
  ...over,
});

const book = (): BookState => ({
  order: ['p1', 'p2'],
  pages: { p1: doc(), p2: doc({ template: 'single', slots: [null] }) },
});

describe('pages', () => {
  it('insert, remove (content kept for undo) and move', () => {
    let b = insertPage(book(), 'p3', doc(), 'p1');
    expect(b.order).toEqual(['p1', 'p3', 'p2']);
    expect(insertPage(b, 'p3', doc())).toBe(b);
    b = removePage(b, 'p1');
    expect(b.order).toEqual(['p3', 'p2']);
    expect(b.pages.p1).toBeDefined();
    expect(movePage(b, 0, 5).order).toEqual(['p2', 'p3']);
    expect(() => movePage(b, 7, 0)).toThrow(RangeError);
  });

  it('changing the template keeps the panels of the remaining slots', () => {
    let b = placePanel(book(), 'p1', 1, 'panel-a');
    b = placePanel(b, 'p1', 3, 'panel-b');
    const tiers = setTemplate(b, 'p1', 'two-tiers');
    expect(tiers.pages.p1.slots).toEqual([null, 'panel-a']);
    expect(setTemplate(tiers, 'p1', 'grid-3x2').pages.p1.slots).toEqual([
      null,
      'panel-a',
      null,
      null,
      null,
      null,
    ]);
    expect(setTemplate(b, 'p1', 'grid-2x2')).toBe(b);
    expect(tiers.pages.p2).toBe(b.pages.p2); // other pages are shared, not copied
  });

  it('place and clear slots; out-of-range slots are refused', () => {
    const b = placePanel(book(), 'p1', 0, 'panel-a');
    expect(b.pages.p1.slots).toEqual(['panel-a', null, null, null]);
    expect(placePanel(b, 'p1', 0, 'panel-a')).toBe(b);
    expect(clearSlot(b, 'p1', 0).pages.p1.slots).toEqual([null, null, null, null]);
    expect(clearSlot(book(), 'p1', 2)).toEqual(book());
    expect(() => placePanel(b, 'p1', 4, 'x')).toThrow(/no slot 5/);
  });

  it('settings change only when a value differs', () => {
    const b = book();
    expect(setPageSettings(b, 'p1', { dpi: 300 })).toBe(b);
    expect(setPageSettings(b, 'p1', { gutterMm: 2, size: 'comic' }).pages.p1).toMatchObject({
      gutterMm: 2,
      size: 'comic',
    });
  });
});

describe('lettering', () => {
  it('adds a balloon with its tail below it and a caption without one; new ones do not cover old ones', () => {
    let b = addLettering(book(), 'p1', 'speech', 'b1');
    b = addLettering(b, 'p1', 'caption', 'c1');
    b = addLettering(b, 'p1', 'speech', 'b2');
    const [b1, c1, b2] = b.pages.p1.lettering;
    expect(b1.tail!.y).toBeGreaterThan(b1.y + b1.height);
    expect(c1.tail).toBeNull();
    expect(b2.y).toBeGreaterThan(b1.y);
    for (const l of b.pages.p1.lettering) {
      expect(l.x + l.width).toBeLessThanOrEqual(1);
      expect(l.y + l.height).toBeLessThanOrEqual(1);
    }
  });

  it('moves inside the page, keeps the tail tip where it points, resizes and edits text', () => {
    let b = addLettering(book(), 'p1', 'speech', 'b1');
    const before = b.pages.p1.lettering[0];
    b = moveLettering(b, 'p1', 'b1', 0.9, -0.2);
    const moved = b.pages.p1.lettering[0];
    expect(moved.x).toBeCloseTo(1 - before.width, 9);
    expect(moved.y).toBe(0);
    expect(moved.tail).toEqual(before.tail);
    b = resizeLettering(b, 'p1', 'b1', 0.5, 0.001);
    expect(b.pages.p1.lettering[0].width).toBeCloseTo(before.width, 9); // already at the right edge
    expect(b.pages.p1.lettering[0].height).toBe(0.03);
    b = moveTail(b, 'p1', 'b1', 1.5, 0.5);
    expect(b.pages.p1.lettering[0].tail).toEqual({ x: 1, y: 0.5 });
    b = setLetteringText(b, 'p1', 'b1', 'Where is the lamp?');
    b = setLetteringFontSize(b, 'p1', 'b1', 100);
    expect(b.pages.p1.lettering[0]).toMatchObject({ text: 'Where is the lamp?', fontSizePt: 48 });
    expect(removeLettering(b, 'p1', 'b1').pages.p1.lettering).toEqual([]);
    const withCaption = addLettering(b, 'p1', 'caption', 'c1');
    expect(() => moveTail(withCaption, 'p1', 'c1', 0, 0)).toThrow(/captions have no tail/);
    expect(() => setLetteringText(b, 'p1', 'nope', 'x')).toThrow(/no caption or balloon nope/);
  });
});

describe('reconcileBook', () => {
  const page = (id: string, over: Partial<Page> = {}): Page => ({
    id,
    storyId: 's',
    ...doc(),
    createdAt: '',
    updatedAt: '',
    ...over,
  });

  it('finds nothing to do when the server matches', () => {
    const server = bookFromPages([page('a'), page('b')]);
    expect(reconcileBook(server, server)).toEqual({ remove: [], restore: [], update: [], reorder: null });
  });

  it('plans a delete, its undo, content updates and reordering', () => {
    const server = bookFromPages([page('a'), page('b'), page('c')]);
    const deleted = removePage(server, 'b');
    expect(reconcileBook(server, deleted)).toEqual({ remove: ['b'], restore: [], update: [], reorder: null });
    // undo of the delete: b comes back (and its position is set by reorder)
    expect(reconcileBook(deleted, server)).toEqual({
      remove: [],
      restore: ['b'],
      update: [],
      reorder: ['a', 'b', 'c'],
    });
    const edited = placePanel(server, 'c', 0, 'panel');
    expect(reconcileBook(server, edited)).toEqual({ remove: [], restore: [], update: ['c'], reorder: null });
    expect(reconcileBook(server, movePage(server, 2, 0)).reorder).toEqual(['c', 'a', 'b']);
    // lettering edits count as content changes
    expect(reconcileBook(server, addLettering(server, 'a', 'caption', 'x')).update).toEqual(['a']);
  });
});
