/**
 * Lettering: captions (rectangular narration boxes) and speech balloons (an ellipse with a tail that
 * points at the speaker). This module turns a page's lettering into a drawing (outlines as SVG path
 * data, text broken into lines) that the Pages view renders as SVG elements and the exporter renders
 * as an SVG overlay, so line breaks and shapes are the same on screen and in print.
 *
 * Plain TypeScript with no platform imports (renderer and backend both use it).
 *
 * Units: a lettering's box and tail are fractions of the page (x and width of its width, y and height
 * of its height), so it keeps its place when the page size changes; letter sizes are points.
 *
 * @example
 * const drawing = letteringDrawing(balloon, { widthMm: 210, heightMm: 297 });
 * drawing.outline; // "M 120.3 40.1 A 30 12 0 1 1 ... L 95 80 Z"
 * drawing.text.lines; // [{ text: 'Where is', x: 110, y: 38.2 }, { text: 'the lamp?', ... }]
 */
import { FRAME_MM, ptToMm } from './layout.js';
import type { PageLayout, Rect } from './layout.js';

export type LetteringKind = 'caption' | 'speech';

/** A caption or a speech balloon on a page. */
export interface Lettering {
  id: string;
  kind: LetteringKind;
  /** The box: fractions of the page width (x, width) and height (y, height), top left origin. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Where a speech balloon's tail points, page fractions; null for captions and tail-less balloons. */
  tail: { x: number; y: number } | null;
  text: string;
  /** Letter size in points (1/72 in). */
  fontSizePt: number;
}

export const LETTERING_LIMITS = {
  /** Smallest box side, as a fraction of the page side. */
  minSize: 0.03,
  fontSizePt: { min: 5, max: 48 },
  textLength: 2000,
  perPage: 64,
} as const;

export const DEFAULT_FONT_SIZE_PT = 11;

/** Fonts for lettering: fonts found on most systems first (the exporter renders with the system's). */
export const LETTERING_FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

/** Colours and line widths of lettering and panel frames. */
export const LETTERING_STYLE = {
  ink: '#111111',
  captionFill: '#fff4c4',
  balloonFill: '#ffffff',
  /** Outline width, millimetres. */
  strokeMm: 0.4,
} as const;

/**
 * Average advance of a glyph as a fraction of the letter size. Text is broken into lines by this
 * estimate, not by font metrics, so the screen and the exporter break lines in the same places.
 */
const GLYPH_ADVANCE_EM = 0.58;
const LINE_HEIGHT_EM = 1.2;
/** The baseline's distance below the top of a line box, as a fraction of the letter size. */
const BASELINE_EM = 0.9;
/** A balloon's text area: the centred rectangle inscribed in its ellipse (1/sqrt 2 of each axis). */
const BALLOON_TEXT_AREA = 0.7;
/** Half the angle of a tail's base on the ellipse, radians. */
const TAIL_HALF_ANGLE = 0.22;

export interface TextLine {
  text: string;
  /** Anchor point (start of the line for captions, its centre for balloons), mm. */
  x: number;
  /** Baseline, mm. */
  y: number;
}

export interface TextLayout {
  lines: TextLine[];
  anchor: 'start' | 'middle';
  fontSizeMm: number;
  /** True when the lines need more height than the box gives. */
  overflows: boolean;
}

export interface LetteringDrawing {
  id: string;
  kind: LetteringKind;
  /** The box in millimetres. */
  box: Rect;
  /** The outline as SVG path data in millimetres (a balloon's tail included). */
  outline: string;
  fill: string;
  /** The tail's tip in millimetres, when there is one. */
  tip: { x: number; y: number } | null;
  text: TextLayout;
}

/** A lettering's box in millimetres on a page of the given size. */
export function letteringBox(l: Lettering, page: { widthMm: number; heightMm: number }): Rect {
  return {
    x: l.x * page.widthMm,
    y: l.y * page.heightMm,
    width: l.width * page.widthMm,
    height: l.height * page.heightMm,
  };
}

/** The drawing of one caption or balloon on a page of the given size. */
export function letteringDrawing(
  l: Lettering,
  page: { widthMm: number; heightMm: number },
): LetteringDrawing {
  const box = letteringBox(l, page);
  const tip =
    l.kind === 'speech' && l.tail ? { x: l.tail.x * page.widthMm, y: l.tail.y * page.heightMm } : null;
  return {
    id: l.id,
    kind: l.kind,
    box,
    outline: l.kind === 'caption' ? rectPath(box) : balloonPath(box, tip),
    fill: l.kind === 'caption' ? LETTERING_STYLE.captionFill : LETTERING_STYLE.balloonFill,
    tip,
    text: layoutText(l.text, l.kind, box, l.fontSizePt),
  };
}

/**
 * A speech balloon's outline: the ellipse inscribed in `box`, and, when `tip` lies outside it, a tail
 * whose base sits on the ellipse facing the tip.
 */
export function balloonPath(box: Rect, tip: { x: number; y: number } | null): string {
  const rx = box.width / 2;
  const ry = box.height / 2;
  const cx = box.x + rx;
  const cy = box.y + ry;
  const at = (angle: number) => ({ x: cx + rx * Math.cos(angle), y: cy + ry * Math.sin(angle) });
  // in the ellipse's own unit circle, a tip at distance <= 1 is inside the balloon: no tail
  const nx = tip ? (tip.x - cx) / rx : 0;
  const ny = tip ? (tip.y - cy) / ry : 0;
  if (!tip || Math.hypot(nx, ny) <= 1) {
    return `M ${n(cx - rx)} ${n(cy)} A ${n(rx)} ${n(ry)} 0 1 1 ${n(cx + rx)} ${n(cy)} A ${n(rx)} ${n(ry)} 0 1 1 ${n(cx - rx)} ${n(cy)} Z`;
  }
  const angle = Math.atan2(ny, nx);
  const start = at(angle + TAIL_HALF_ANGLE);
  const end = at(angle - TAIL_HALF_ANGLE);
  // the long way round from one side of the tail's base to the other, then out to the tip and back
  return (
    `M ${n(start.x)} ${n(start.y)} A ${n(rx)} ${n(ry)} 0 1 1 ${n(end.x)} ${n(end.y)} ` +
    `L ${n(tip.x)} ${n(tip.y)} Z`
  );
}

function rectPath(r: Rect): string {
  return `M ${n(r.x)} ${n(r.y)} H ${n(r.x + r.width)} V ${n(r.y + r.height)} H ${n(r.x)} Z`;
}

/**
 * Breaks `text` into lines that fit the lettering's text area (newlines are kept; words longer than
 * a line are split) and places them: captions left-aligned, balloons centred, both centred vertically.
 */
export function layoutText(text: string, kind: LetteringKind, box: Rect, fontSizePt: number): TextLayout {
  const fontSizeMm = ptToMm(fontSizePt);
  const padding = Math.max(1.5, 0.5 * fontSizeMm);
  const area =
    kind === 'caption'
      ? {
          x: box.x + padding,
          y: box.y + padding,
          width: Math.max(0, box.width - 2 * padding),
          height: Math.max(0, box.height - 2 * padding),
        }
      : {
          x: box.x + (box.width * (1 - BALLOON_TEXT_AREA)) / 2,
          y: box.y + (box.height * (1 - BALLOON_TEXT_AREA)) / 2,
          width: box.width * BALLOON_TEXT_AREA,
          height: box.height * BALLOON_TEXT_AREA,
        };
  const perLine = Math.max(1, Math.floor(area.width / (GLYPH_ADVANCE_EM * fontSizeMm)));
  const words = wrap(text, perLine);
  const lineHeight = LINE_HEIGHT_EM * fontSizeMm;
  const total = words.length * lineHeight;
  const top = area.y + (area.height - total) / 2;
  const x = kind === 'caption' ? area.x : area.x + area.width / 2;
  return {
    lines: words.map((line, i) => ({
      text: line,
      x,
      y: top + i * lineHeight + (lineHeight - fontSizeMm) / 2 + BASELINE_EM * fontSizeMm,
    })),
    anchor: kind === 'caption' ? 'start' : 'middle',
    fontSizeMm,
    overflows: total > area.height + 1e-9,
  };
}

/** Greedy word wrap to at most `perLine` characters per line. */
export function wrap(text: string, perLine: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split(/\r?\n/)) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter((w) => w !== '')) {
      let rest = word;
      while (rest.length > perLine) {
        if (line !== '') {
          lines.push(line);
          line = '';
        }
        lines.push(rest.slice(0, perLine));
        rest = rest.slice(perLine);
      }
      if (line === '') line = rest;
      else if (line.length + 1 + rest.length <= perLine) line += ` ${rest}`;
      else {
        lines.push(line);
        line = rest;
      }
    }
    lines.push(line);
  }
  // drop blank lines at the end (a trailing newline while typing), keep inner ones
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * The page's panel frames and lettering as one SVG document (viewBox in millimetres, drawn at
 * `pixels` size), for compositing over the panel images.
 */
export function pageOverlaySvg(
  layout: PageLayout,
  lettering: readonly Lettering[],
  pixels: { width: number; height: number },
): string {
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${pixels.width}" height="${pixels.height}" ` +
      `viewBox="0 0 ${n(layout.widthMm)} ${n(layout.heightMm)}" preserveAspectRatio="none">`,
  ];
  for (const frame of frameRects(layout)) {
    parts.push(
      `<rect x="${n(frame.x)}" y="${n(frame.y)}" width="${n(frame.width)}" height="${n(frame.height)}" ` +
        `fill="none" stroke="${LETTERING_STYLE.ink}" stroke-width="${n(FRAME_MM)}"/>`,
    );
  }
  for (const l of lettering) {
    const d = letteringDrawing(l, layout);
    parts.push(
      `<path d="${d.outline}" fill="${d.fill}" stroke="${LETTERING_STYLE.ink}" ` +
        `stroke-width="${n(LETTERING_STYLE.strokeMm)}" stroke-linejoin="round"/>`,
    );
    if (d.text.lines.length > 0) {
      parts.push(
        `<text font-family="${LETTERING_FONT}" font-size="${n(d.text.fontSizeMm)}" ` +
          `fill="${LETTERING_STYLE.ink}" text-anchor="${d.text.anchor}">`,
      );
      for (const line of d.text.lines) {
        parts.push(`<tspan x="${n(line.x)}" y="${n(line.y)}">${escapeXml(line.text)}</tspan>`);
      }
      parts.push('</text>');
    }
  }
  parts.push('</svg>');
  return parts.join('');
}

/** Panel frames: each slot's outline, inset by half the line width so the line stays inside the slot. */
export function frameRects(layout: PageLayout): Rect[] {
  const inset = FRAME_MM / 2;
  return layout.slots.map((s) => ({
    x: s.x + inset,
    y: s.y + inset,
    width: s.width - FRAME_MM,
    height: s.height - FRAME_MM,
  }));
}

/** Text for XML: markup characters escaped, characters XML cannot hold (controls) dropped. */
export function escapeXml(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
  );
}

/** A number for SVG markup: at most 3 decimals, no trailing zeros. */
function n(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}
