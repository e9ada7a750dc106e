import { describe, expect, it } from 'vitest';
import {
  colorDistance,
  MIN_REGION_COLOR_DISTANCE,
  nextRegionColor,
  parseHexColor,
  REGION_PALETTE,
  toHexColor,
} from './color';
import { BRUSH_SIZES, commandForKey, stepBrushSize } from './shortcuts';
import type { KeyInput } from './shortcuts';
import { fitViewport, stepZoom, toImage, toScreen, zoomAt } from './viewport';

describe('region colors', () => {
  it('palette colors are far apart and far from the black background', () => {
    const rgb = REGION_PALETTE.map(parseHexColor);
    for (let i = 0; i < rgb.length; i++) {
      expect(colorDistance(rgb[i], [0, 0, 0])).toBeGreaterThan(2 * MIN_REGION_COLOR_DISTANCE);
      for (let j = i + 1; j < rgb.length; j++) {
        expect(colorDistance(rgb[i], rgb[j])).toBeGreaterThan(2 * MIN_REGION_COLOR_DISTANCE);
      }
    }
  });

  it('hands out unused colors, then generated ones that stay distinct', () => {
    expect(nextRegionColor([])).toBe(REGION_PALETTE[0]);
    expect(nextRegionColor([REGION_PALETTE[0].toUpperCase()])).toBe(REGION_PALETTE[1]);
    const used = [...REGION_PALETTE];
    const extra = nextRegionColor(used);
    expect(used).not.toContain(extra);
    for (const c of used)
      expect(colorDistance(parseHexColor(c), parseHexColor(extra))).toBeGreaterThan(
        MIN_REGION_COLOR_DISTANCE,
      );
  });

  it('hex round trip', () => {
    expect(toHexColor(parseHexColor('#A0b1C2'))).toBe('#a0b1c2');
    expect(() => parseHexColor('red')).toThrow(/not a color/);
  });
});

describe('shortcuts', () => {
  const key = (k: string, extra: Partial<KeyInput> = {}): KeyInput => ({
    key: k,
    ctrlKey: false,
    metaKey: false,
    shiftKey: false,
    altKey: false,
    inTextField: false,
    ...extra,
  });

  it('maps the paint-program keys', () => {
    expect(commandForKey(key('b'))).toEqual({ type: 'tool', tool: 'brush' });
    expect(commandForKey(key('E'))).toEqual({ type: 'tool', tool: 'eraser' });
    expect(commandForKey(key('p'))).toEqual({ type: 'tool', tool: 'pose' });
    expect(commandForKey(key('v'))).toEqual({ type: 'tool', tool: 'move' });
    expect(commandForKey(key('z', { ctrlKey: true }))).toEqual({ type: 'undo' });
    expect(commandForKey(key('Z', { ctrlKey: true, shiftKey: true }))).toEqual({ type: 'redo' });
    expect(commandForKey(key('Enter', { metaKey: true }))).toEqual({ type: 'render' });
    expect(commandForKey(key('0', { ctrlKey: true }))).toEqual({ type: 'zoom-100' });
    expect(commandForKey(key(']'))).toEqual({ type: 'brush-size', direction: 1 });
  });

  it('letters typed in a text field stay text; undo and render still work there', () => {
    expect(commandForKey(key('b', { inTextField: true }))).toBeUndefined();
    expect(commandForKey(key('z', { ctrlKey: true, inTextField: true }))).toEqual({ type: 'undo' });
    expect(commandForKey(key('Enter', { ctrlKey: true, inTextField: true }))).toEqual({ type: 'render' });
  });

  it('brush sizes step through the list', () => {
    expect(stepBrushSize(12, 1)).toBe(16);
    expect(stepBrushSize(12, -1)).toBe(8);
    expect(stepBrushSize(10, 1)).toBe(12);
    expect(stepBrushSize(BRUSH_SIZES[0], -1)).toBe(BRUSH_SIZES[0]);
  });
});

describe('viewport', () => {
  it('fits the image centred with a margin', () => {
    const v = fitViewport(64, 32, 1000, 600, 20);
    expect(v.zoom).toBeCloseTo(15);
    expect(toScreen(v, { x: 32, y: 16 })).toEqual({ x: 500, y: 300 });
  });

  it('zooming keeps the point under the pointer still', () => {
    const v = fitViewport(512, 512, 800, 600);
    const screen = { x: 123, y: 456 };
    const before = toImage(v, screen);
    const after = toImage(zoomAt(v, v.zoom * 3, screen), screen);
    expect(after.x).toBeCloseTo(before.x);
    expect(after.y).toBeCloseTo(before.y);
  });

  it('zoom steps are quarter powers of two', () => {
    expect(stepZoom(1, 1)).toBeCloseTo(2 ** 0.25);
    expect(stepZoom(2, -1)).toBeCloseTo(2 ** 0.75);
  });
});
