import { describe, expect, it } from 'vitest';
import { pageLayout, ptToMm } from './layout.js';
import {
  balloonPath,
  escapeXml,
  frameRects,
  layoutText,
  letteringDrawing,
  pageOverlaySvg,
  wrap,
} from './lettering.js';
import type { Lettering } from './lettering.js';

const PAGE = { widthMm: 200, heightMm: 300 };

const balloon: Lettering = {
  id: 'b1',
  kind: 'speech',
  x: 0.1,
  y: 0.1,
  width: 0.3,
  height: 0.1,
  tail: { x: 0.2, y: 0.4 },
  text: 'Where is the lamp?',
  fontSizePt: 11,
};

/** The numbers of an SVG path, as [x, y] pairs of its points (arc radii and flags skipped). */
function pathPoints(d: string): [number, number][] {
  const tokens = d.split(' ');
  const points: [number, number][] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === 'M' || tokens[i] === 'L') points.push([Number(tokens[i + 1]), Number(tokens[i + 2])]);
    if (tokens[i] === 'A') points.push([Number(tokens[i + 6]), Number(tokens[i + 7])]);
  }
  return points;
}

describe('balloons', () => {
  it('have a tail that ends at the tip, with its base on the ellipse facing the tip', () => {
    const d = letteringDrawing(balloon, PAGE);
    expect(d.box).toEqual({ x: 20, y: 30, width: 60, height: 30 });
    expect(d.tip).toEqual({ x: 40, y: 120 });
    const points = pathPoints(d.outline);
    expect(points).toHaveLength(3); // base start, base end (after the arc), tip
    const [start, end, tip] = points;
    expect(tip).toEqual([40, 120]);
    // both base points lie on the ellipse (centre 50,45; radii 30,15)
    for (const [x, y] of [start, end]) expect(((x - 50) / 30) ** 2 + ((y - 45) / 15) ** 2).toBeCloseTo(1, 3);
    // and on the side of the ellipse that faces the tip (below the centre)
    expect(start[1]).toBeGreaterThan(45);
    expect(end[1]).toBeGreaterThan(45);
    expect(d.outline).toMatch(/ A 30 15 0 1 1 /);
  });

  it('have no tail when the tip is inside the ellipse or absent', () => {
    const box = { x: 0, y: 0, width: 40, height: 20 };
    for (const tip of [null, { x: 25, y: 12 }]) {
      const d = balloonPath(box, tip);
      expect(d).not.toContain('L');
      expect(pathPoints(d)).toEqual([
        [0, 10],
        [40, 10],
        [0, 10],
      ]);
    }
  });

  it('captions are their box, with text left-aligned', () => {
    const d = letteringDrawing({ ...balloon, kind: 'caption', tail: null, text: 'Meanwhile...' }, PAGE);
    expect(d.outline).toBe('M 20 30 H 80 V 60 H 20 Z');
    expect(d.text.anchor).toBe('start');
    expect(d.text.lines[0].x).toBeGreaterThan(20);
    expect(d.tip).toBeNull();
  });
});

describe('text', () => {
  it('wraps at word boundaries, keeps newlines and splits words longer than a line', () => {
    expect(wrap('the quick brown fox jumps', 10)).toEqual(['the quick', 'brown fox', 'jumps']);
    expect(wrap('one\ntwo  three', 20)).toEqual(['one', 'two three']);
    expect(wrap('aaaaaaaaaaaaaaaaaaaaaaaaa b', 10)).toEqual(['aaaaaaaaaa', 'aaaaaaaaaa', 'aaaaa b']);
    expect(wrap('', 10)).toEqual([]);
    expect(wrap('end\n\n', 10)).toEqual(['end']);
    expect(wrap('a\n\nb', 10)).toEqual(['a', '', 'b']);
  });

  it('centres lines in a balloon, one line height apart, and says when they overflow', () => {
    const box = { x: 0, y: 0, width: 60, height: 30 };
    const layout = layoutText('Where is the lamp? I left it on the pier last night.', 'speech', box, 11);
    expect(layout.anchor).toBe('middle');
    expect(layout.fontSizeMm).toBeCloseTo(ptToMm(11), 9);
    expect(layout.lines.length).toBeGreaterThan(1);
    for (const line of layout.lines) {
      expect(line.x).toBe(30);
      // each line fits the text area by the glyph estimate
      expect(line.text.length * 0.58 * layout.fontSizeMm).toBeLessThanOrEqual(60 * 0.7 + 1e-9);
    }
    const gaps = layout.lines.slice(1).map((l, i) => l.y - layout.lines[i].y);
    for (const gap of gaps) expect(gap).toBeCloseTo(1.2 * layout.fontSizeMm, 9);
    // vertically centred: the middle of the block sits at the box's middle
    const first = layout.lines[0].y - 0.9 * layout.fontSizeMm - 0.1 * layout.fontSizeMm;
    const last = layout.lines[layout.lines.length - 1].y - 0.9 * layout.fontSizeMm - 0.1 * layout.fontSizeMm;
    expect((first + last + 1.2 * layout.fontSizeMm) / 2).toBeCloseTo(15, 6);
    expect(layout.overflows).toBe(false);
    expect(layoutText('a '.repeat(400), 'speech', box, 11).overflows).toBe(true);
  });
});

describe('overlay SVG', () => {
  it('draws one frame per slot and every lettering, with text escaped', () => {
    const layout = pageLayout('grid-2x2', { size: 'a4', dpi: 100, gutterMm: 4, marginMm: 12 });
    const svg = pageOverlaySvg(
      layout,
      [
        { ...balloon, text: 'Tom & "Jerry" <3' },
        { ...balloon, id: 'c', kind: 'caption', tail: null, text: 'Later\u0001' },
      ],
      { width: 827, height: 1169 },
    );
    expect(svg).toMatch(
      /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="827" height="1169" viewBox="0 0 210 297"/,
    );
    expect(svg.match(/<rect /g)).toHaveLength(4);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('Tom &#38; &#34;Jerry&#34; &#60;3');
    expect(svg).toContain('>Later</tspan>');
    const frames = frameRects(layout);
    expect(frames[0].x).toBeCloseTo(12.3, 9);
    expect(frames[0].width).toBeCloseTo(layout.slots[0].width - 0.6, 9);
    expect(escapeXml("it's")).toBe('it&#39;s');
  });
});
