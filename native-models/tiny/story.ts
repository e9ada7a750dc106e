/**
 * The demo story: three panels with two to four subjects each, laid out like an illustrator would
 * (a painted region and a class prompt per subject, skeletons for the people), rendered through the
 * MSP pipeline, and a one-page PNG with the panels in two tiers (two panels over one).
 *
 * @example
 * const story = await renderStory(sd, { onPanel: (i, ms) => console.log(i, ms) });
 * await writeFile('page.png', await encodePng(story.page));
 */
import type { RgbImage } from '../image/image.js';
import { resizeImage } from '../image/image.js';
import { generateComposite } from '../pipelines/msp.js';
import type { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { generateScene, type SubjectSpec } from '../world/scene.js';
import type { BackgroundKind } from '../world/backgrounds.js';
import { layoutFromScene, layoutSegments, type WorldLayout } from './layouts.js';

interface PanelScript {
  background: BackgroundKind;
  subjects: SubjectSpec[];
  /** Seed of the layout (where the world places the subjects). */
  layoutSeed: number;
}

/** "A walk in the park": meeting, a street, a day at the beach. */
export const DEMO_STORY: readonly PanelScript[] = [
  {
    background: 'park',
    layoutSeed: 11,
    subjects: [
      { className: 'man', color: 'blue', pose: 'waving', orientation: 'front' },
      { className: 'woman', color: 'yellow', pose: 'walking', orientation: 'left' },
    ],
  },
  {
    background: 'street',
    layoutSeed: 12,
    subjects: [
      { className: 'woman', color: 'yellow', pose: 'standing', orientation: 'front' },
      { className: 'dog', color: 'brown', pose: 'running', orientation: 'right' },
      { className: 'car', color: 'red' },
    ],
  },
  {
    background: 'beach',
    layoutSeed: 13,
    subjects: [
      { className: 'boy', color: 'green', pose: 'jumping', orientation: 'front' },
      { className: 'girl', color: 'pink', pose: 'waving', orientation: 'front' },
      { className: 'cat', color: 'orange', pose: 'sitting', orientation: 'left' },
      { className: 'tree', color: 'green' },
    ],
  },
];

export interface StorySettings {
  steps: number;
  guidanceScale: number;
  seed: number;
  /** Follow the skeletons with the ControlNet when the model has one. */
  pose: boolean;
}

export const DEFAULT_STORY_SETTINGS: StorySettings = { steps: 30, guidanceScale: 5, seed: 7, pose: true };

export interface StoryRender {
  panels: { image: RgbImage; layout: WorldLayout; ms: number }[];
  page: RgbImage;
}

/** The layouts of the demo story at the model's image size. */
export function storyLayouts(size: number): WorldLayout[] {
  return DEMO_STORY.map((p) =>
    layoutFromScene(
      generateScene(p.layoutSeed, {
        size,
        specs: p.subjects,
        background: { kind: p.background, variant: p.layoutSeed },
      }),
    ),
  );
}

export async function renderStory(
  sd: StableDiffusion,
  settings: StorySettings = DEFAULT_STORY_SETTINGS,
  { onPanel }: { onPanel?: (index: number, ms: number) => void } = {},
): Promise<StoryRender> {
  const size = sd.sizes.defaultImageSize ?? 128;
  const panels: StoryRender['panels'] = [];
  for (const [i, layout] of storyLayouts(size).entries()) {
    const started = performance.now();
    const control = settings.pose && sd.model.components.controlnet ? layout.controlImage : undefined;
    const result = await generateComposite(sd, {
      prompt: layout.prompt,
      negativePrompt: '',
      segments: layoutSegments(layout, sd.sizes.vaeScaleFactor),
      steps: settings.steps,
      scheduler: 'ddim',
      guidanceScale: settings.guidanceScale,
      seed: settings.seed + i,
      width: layout.width,
      height: layout.height,
      scaffoldingSteps: Math.round(settings.steps * 0.3),
      globalDiffuserSteps: 0,
      globalDiffuserWeight: 1,
      ...(control ? { controlImage: control, controlnetScale: 1 } : {}),
    });
    const ms = performance.now() - started;
    panels.push({ image: result.image, layout, ms });
    onPanel?.(i, ms);
  }
  return { panels, page: await composePage(panels.map((p) => p.image)) };
}

/**
 * A page of tiers: `rows` lists the panels of each tier (default: two panels over one); each panel
 * is scaled to cover its cell (square cells, the middle kept), with white margins and gutters and a
 * black frame.
 */
export async function composePage(
  panels: readonly RgbImage[],
  { width = 600, margin = 24, gutter = 12, rows = [[0, 1], [2]] as number[][] } = {},
): Promise<RgbImage> {
  const inner = width - 2 * margin;
  const cells = rows.map((row) => Math.floor((inner - (row.length - 1) * gutter) / row.length));
  const height = 2 * margin + cells.reduce((a, b) => a + b, 0) + (rows.length - 1) * gutter;
  const data = new Uint8Array(width * height * 3).fill(255);
  let top = margin;
  for (const [r, row] of rows.entries()) {
    const side = cells[r];
    for (const [c, index] of row.entries()) {
      const panel = panels[index];
      if (!panel) throw new RangeError(`page layout names panel ${index + 1}, there are ${panels.length}`);
      const scale = side / Math.min(panel.width, panel.height);
      const scaled = await resizeImage(
        panel,
        Math.round(panel.width * scale),
        Math.round(panel.height * scale),
      );
      const left = margin + c * (side + gutter);
      const sx = Math.floor((scaled.width - side) / 2);
      const sy = Math.floor((scaled.height - side) / 2);
      for (let y = 0; y < side; y++) {
        const src = ((y + sy) * scaled.width + sx) * 3;
        data.set(scaled.data.subarray(src, src + side * 3), ((top + y) * width + left) * 3);
      }
      frame(data, width, left, top, side, side);
    }
    top += side + gutter;
  }
  return { width, height, data };
}

/** A 2-pixel black frame around a cell. */
function frame(data: Uint8Array, width: number, left: number, top: number, w: number, h: number): void {
  for (let y = top - 2; y < top + h + 2; y++) {
    for (let x = left - 2; x < left + w + 2; x++) {
      const inside = y >= top && y < top + h && x >= left && x < left + w;
      if (!inside) data.fill(0, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
}
