/**
 * Comic page layout: page sizes, templates and the geometry of their slots. The one place that
 * decides where a panel sits on a page: the Pages view draws with it and the exporter composes with
 * it, so what the artist sees is what gets printed.
 *
 * Plain TypeScript with no imports: it runs in the renderer (browser) and in the backend (Node).
 *
 * Units: page sizes, gutters and margins are millimetres; pixel rectangles come from
 * {@link slotPixels} at a print resolution in dots per inch. Slots are listed in reading order
 * (tiers top to bottom, panels left to right).
 *
 * @example
 * const layout = pageLayout('grid-2x2', { size: 'a4', dpi: 300, gutterMm: 4, marginMm: 12 });
 * layout.slots[1]; // { x: 107, y: 12, width: 91, height: 134.5 } (mm, top right panel)
 * pagePixelSize('a4', 300); // { width: 2480, height: 3508 }
 */

export const MM_PER_INCH = 25.4;
export const POINTS_PER_INCH = 72;

/** A rectangle; millimetres on the page unless a function says pixels. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

// ---------------------------------------------------------------------------------------------
// Page sizes

export type PageSizeId = 'a4' | 'letter' | 'comic';

export interface PageSize {
  label: string;
  widthMm: number;
  heightMm: number;
}

/** Trim sizes: ISO A4, US Letter (8.5 x 11 in) and the US comic book (6.625 x 10.25 in). */
export const PAGE_SIZES: Readonly<Record<PageSizeId, PageSize>> = {
  a4: { label: 'A4 (210 × 297 mm)', widthMm: 210, heightMm: 297 },
  letter: { label: 'US Letter (8.5 × 11 in)', widthMm: 8.5 * MM_PER_INCH, heightMm: 11 * MM_PER_INCH },
  comic: {
    label: 'Comic book (6.625 × 10.25 in)',
    widthMm: 6.625 * MM_PER_INCH,
    heightMm: 10.25 * MM_PER_INCH,
  },
};

export const PAGE_SIZE_IDS: readonly PageSizeId[] = ['a4', 'letter', 'comic'];

// ---------------------------------------------------------------------------------------------
// Templates

export type PageTemplateId = 'single' | 'two-tiers' | 'three-tiers' | 'grid-2x2' | 'grid-3x2' | 'splash-2';

/** A template: tiers (rows) with relative heights, each split into panels with relative widths. */
export interface PageTemplate {
  label: string;
  tiers: readonly { height: number; panels: readonly number[] }[];
}

export const PAGE_TEMPLATES: Readonly<Record<PageTemplateId, PageTemplate>> = {
  single: { label: 'Single', tiers: [{ height: 1, panels: [1] }] },
  'two-tiers': {
    label: '2 tiers',
    tiers: [
      { height: 1, panels: [1] },
      { height: 1, panels: [1] },
    ],
  },
  'three-tiers': {
    label: '3 tiers',
    tiers: [
      { height: 1, panels: [1] },
      { height: 1, panels: [1] },
      { height: 1, panels: [1] },
    ],
  },
  'grid-2x2': {
    label: '2×2 grid',
    tiers: [
      { height: 1, panels: [1, 1] },
      { height: 1, panels: [1, 1] },
    ],
  },
  'grid-3x2': {
    label: '3×2 grid',
    tiers: [
      { height: 1, panels: [1, 1] },
      { height: 1, panels: [1, 1] },
      { height: 1, panels: [1, 1] },
    ],
  },
  'splash-2': {
    label: 'Splash + 2',
    tiers: [
      { height: 2, panels: [1] },
      { height: 1, panels: [1, 1] },
    ],
  },
};

export const PAGE_TEMPLATE_IDS: readonly PageTemplateId[] = [
  'single',
  'two-tiers',
  'three-tiers',
  'grid-2x2',
  'grid-3x2',
  'splash-2',
];

export function isPageTemplateId(value: unknown): value is PageTemplateId {
  return typeof value === 'string' && (PAGE_TEMPLATE_IDS as readonly string[]).includes(value);
}

/** How many panels a template holds. */
export function slotCount(template: PageTemplateId): number {
  return templateOf(template).tiers.reduce((n, tier) => n + tier.panels.length, 0);
}

// ---------------------------------------------------------------------------------------------
// Settings and limits

/** What a page's geometry depends on besides its template. */
export interface PageSettings {
  size: PageSizeId;
  /** Print resolution of exports, dots per inch. */
  dpi: number;
  /** White space between panels, millimetres. */
  gutterMm: number;
  /** White space between the panels and the trim edge, millimetres. */
  marginMm: number;
}

export const DEFAULT_PAGE_SETTINGS: Readonly<PageSettings> = {
  size: 'a4',
  dpi: 300,
  gutterMm: 4,
  marginMm: 12,
};

export const PAGE_LIMITS = {
  dpi: { min: 72, max: 600 },
  gutterMm: { min: 0, max: 30 },
  marginMm: { min: 0, max: 60 },
  /** The smallest panel side a layout may produce, millimetres. */
  minSlotMm: 10,
} as const;

/** The panel frame's line width, millimetres (drawn inside the slot). */
export const FRAME_MM = 0.6;

/** A layout that cannot be built from its settings; the message names the setting. */
export class LayoutError extends Error {
  override name = 'LayoutError';
}

// ---------------------------------------------------------------------------------------------
// Geometry

export interface PageLayout {
  template: PageTemplateId;
  widthMm: number;
  heightMm: number;
  /** Slots in reading order, millimetres from the page's top left corner. */
  slots: Rect[];
}

/**
 * The slots of a template on a page.
 *
 * @throws LayoutError for an unknown template or size, or settings that leave no room for panels
 *   ("the margin of 120 mm leaves no room for panels on A4").
 */
export function pageLayout(template: PageTemplateId, settings: PageSettings): PageLayout {
  const def = templateOf(template);
  const size = pageSizeOf(settings.size);
  checkRange('gutter', settings.gutterMm, PAGE_LIMITS.gutterMm, 'mm');
  checkRange('margin', settings.marginMm, PAGE_LIMITS.marginMm, 'mm');
  const { gutterMm: gutter, marginMm: margin } = settings;

  // 1. The live area inside the margins.
  const liveWidth = size.widthMm - 2 * margin;
  const liveHeight = size.heightMm - 2 * margin;

  // 2. Tier heights: the live height minus the gutters between tiers, shared by weight.
  const tierSpace = liveHeight - gutter * (def.tiers.length - 1);
  const tierWeight = def.tiers.reduce((n, t) => n + t.height, 0);
  const slots: Rect[] = [];
  let y = margin;
  for (const tier of def.tiers) {
    const height = (tierSpace * tier.height) / tierWeight;
    // 3. Panel widths within the tier, the same way.
    const panelSpace = liveWidth - gutter * (tier.panels.length - 1);
    const panelWeight = tier.panels.reduce((n, w) => n + w, 0);
    let x = margin;
    for (const weight of tier.panels) {
      const width = (panelSpace * weight) / panelWeight;
      slots.push({ x, y, width, height });
      x += width + gutter;
    }
    y += height + gutter;
  }

  const smallest = Math.min(...slots.map((s) => Math.min(s.width, s.height)));
  if (!(smallest >= PAGE_LIMITS.minSlotMm)) {
    throw new LayoutError(
      `a margin of ${settings.marginMm} mm and a gutter of ${settings.gutterMm} mm leave panels of ` +
        `${Math.max(0, smallest).toFixed(1)} mm on ${size.label} with the ${def.label} template; ` +
        `panels need at least ${PAGE_LIMITS.minSlotMm} mm, so make the margin or gutter smaller`,
    );
  }
  return { template, widthMm: size.widthMm, heightMm: size.heightMm, slots };
}

/** Millimetres to pixels at `dpi`. */
export function mmToPx(mm: number, dpi: number): number {
  return (mm * dpi) / MM_PER_INCH;
}

/** Millimetres to PostScript points (PDF user space). */
export function mmToPt(mm: number): number {
  return (mm * POINTS_PER_INCH) / MM_PER_INCH;
}

/** Points (font sizes) to millimetres. */
export function ptToMm(pt: number): number {
  return (pt * MM_PER_INCH) / POINTS_PER_INCH;
}

/**
 * The page's size in pixels at `dpi` (rounded to whole pixels).
 *
 * @throws LayoutError for an unknown size or a resolution outside {@link PAGE_LIMITS}.
 */
export function pagePixelSize(size: PageSizeId, dpi: number): { width: number; height: number } {
  const page = pageSizeOf(size);
  checkRange('print resolution', dpi, PAGE_LIMITS.dpi, 'dpi');
  return { width: roundPx(mmToPx(page.widthMm, dpi)), height: roundPx(mmToPx(page.heightMm, dpi)) };
}

/**
 * A rectangle in whole pixels at `dpi`. Edges are rounded, not sizes, so neighbouring slots keep the
 * same gutter everywhere and never overlap.
 */
export function slotPixels(rect: Rect, dpi: number): Rect {
  const x0 = roundPx(mmToPx(rect.x, dpi));
  const y0 = roundPx(mmToPx(rect.y, dpi));
  const x1 = roundPx(mmToPx(rect.x + rect.width, dpi));
  const y1 = roundPx(mmToPx(rect.y + rect.height, dpi));
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * The part of a source image that fills a slot "cover" style, centred: the largest centred window
 * with the slot's aspect ratio, in whole source pixels. Scaling that window to the slot fills it
 * without distortion.
 *
 * @example
 * coverCrop({ width: 64, height: 64 }, { width: 200, height: 100 }); // { x: 0, y: 16, width: 64, height: 32 }
 */
export function coverCrop(
  source: { width: number; height: number },
  slot: { width: number; height: number },
): Rect {
  if (!(source.width > 0 && source.height > 0)) throw new LayoutError('the image has no pixels');
  if (!(slot.width > 0 && slot.height > 0)) throw new LayoutError('the slot has no area');
  const slotAspect = slot.width / slot.height;
  if (source.width / source.height > slotAspect) {
    const width = clampInt(Math.round(source.height * slotAspect), 1, source.width);
    return { x: Math.floor((source.width - width) / 2), y: 0, width, height: source.height };
  }
  const height = clampInt(Math.round(source.width / slotAspect), 1, source.height);
  return { x: 0, y: Math.floor((source.height - height) / 2), width: source.width, height };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function templateOf(template: PageTemplateId): PageTemplate {
  if (!isPageTemplateId(template)) {
    throw new LayoutError(
      `unknown page template ${JSON.stringify(template)}; use one of ${PAGE_TEMPLATE_IDS.join(', ')}`,
    );
  }
  return PAGE_TEMPLATES[template];
}

function pageSizeOf(size: PageSizeId): PageSize {
  if (!(PAGE_SIZE_IDS as readonly string[]).includes(size)) {
    throw new LayoutError(
      `unknown page size ${JSON.stringify(size)}; use one of ${PAGE_SIZE_IDS.join(', ')}`,
    );
  }
  return PAGE_SIZES[size];
}

function checkRange(name: string, value: number, range: { min: number; max: number }, unit: string): void {
  if (!Number.isFinite(value) || value < range.min || value > range.max) {
    throw new LayoutError(
      `the ${name} must be between ${range.min} and ${range.max} ${unit}, got ${String(value)}`,
    );
  }
}

/** Rounds half up, ignoring float noise (6.625 in at 300 dpi is 1987.5 px, computed as 1987.4999...). */
function roundPx(value: number): number {
  return Math.round(value + 1e-6);
}

function clampInt(value: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, value));
}
