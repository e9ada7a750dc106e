/**
 * Keyboard shortcuts, as a pure mapping from a key event to an editor command. The keys are the ones
 * illustrators already know from Krita, Photoshop and Clip Studio Paint.
 */
import { TOOLS } from './tools';
import type { ToolId } from './tools';

export type Command =
  | { type: 'tool'; tool: ToolId }
  | { type: 'undo' }
  | { type: 'redo' }
  | { type: 'render' }
  | { type: 'zoom-in' }
  | { type: 'zoom-out' }
  | { type: 'zoom-100' }
  | { type: 'zoom-fit' }
  | { type: 'brush-size'; direction: 1 | -1 };

/** The parts of a KeyboardEvent the mapping reads. */
export interface KeyInput {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
  /** Focus is in a text field: single-letter shortcuts are typing there. */
  inTextField: boolean;
}

/** Tool by shortcut key, lower-case (the keys the toolbar shows). */
const TOOL_KEYS: Readonly<Record<string, ToolId>> = Object.fromEntries(
  TOOLS.map((t) => [t.key.toLowerCase(), t.id]),
);

/**
 * The command for a key press, or undefined.
 *
 * @example
 * ```ts
 * commandForKey({ key: 'z', ctrlKey: true, shiftKey: true, metaKey: false, altKey: false, inTextField: false });
 * // { type: 'redo' }
 * ```
 */
export function commandForKey(e: KeyInput): Command | undefined {
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (mod && !e.altKey) {
    if (key === 'enter') return { type: 'render' };
    if (key === 'z') return e.shiftKey ? { type: 'redo' } : { type: 'undo' };
    if (key === 'y' && !e.shiftKey) return { type: 'redo' };
    if (e.inTextField) return undefined;
    if (key === '=' || key === '+') return { type: 'zoom-in' };
    if (key === '-') return { type: 'zoom-out' };
    if (key === '0') return { type: 'zoom-100' };
    if (key === '1') return { type: 'zoom-fit' };
    return undefined;
  }
  if (e.inTextField || mod || e.altKey) return undefined;
  const tool = TOOL_KEYS[key];
  if (tool && !e.shiftKey) return { type: 'tool', tool };
  if (key === '[') return { type: 'brush-size', direction: -1 };
  if (key === ']') return { type: 'brush-size', direction: 1 };
  return undefined;
}

/** Brush sizes the size control steps through with [ and ]. */
export const BRUSH_SIZES: readonly number[] = Object.freeze([
  1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128,
]);

export function stepBrushSize(size: number, direction: 1 | -1): number {
  if (direction > 0) return BRUSH_SIZES.find((s) => s > size) ?? BRUSH_SIZES[BRUSH_SIZES.length - 1];
  return [...BRUSH_SIZES].reverse().find((s) => s < size) ?? BRUSH_SIZES[0];
}
