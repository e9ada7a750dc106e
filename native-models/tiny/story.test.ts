import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRandomModel } from '../models/random-model.js';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { generateScene } from '../world/scene.js';
import { layoutFromScene, layoutSegments } from './layouts.js';
import { composePage, renderStory, storyLayouts } from './story.js';

describe('layouts from world scenes', () => {
  it('paints one region per subject that covers it, and latent masks that sum to one', () => {
    const scene = generateScene(21, { size: 64, subjects: 3 });
    const layout = layoutFromScene(scene);
    expect(layout.regions).toHaveLength(3);
    layout.regions.forEach((r, j) => {
      // the nearest subject's region covers all of its visible pixels; farther ones most of theirs
      let covered = 0;
      for (let p = 0; p < r.subjectMask.length; p++) if (r.subjectMask[p] && r.pixelMask[p]) covered++;
      expect(covered / scene.subjects[j].area).toBeGreaterThan(0.5);
    });
    const segments = layoutSegments(layout, 8);
    expect(segments).toHaveLength(4);
    expect(segments.at(-1)?.prompt).toBe(layout.backgroundPrompt);
    for (let i = 0; i < 64; i++) expect(segments.reduce((s, seg) => s + seg.mask[i], 0)).toBe(1);
  });
});

describe('the demo story', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('has three panels with two to four subjects, each with a pose', () => {
    const layouts = storyLayouts(128);
    expect(layouts.map((l) => l.regions.length)).toEqual([2, 3, 4]);
    for (const l of layouts) expect(l.controlImage).toBeDefined();
  });

  it('renders through the MSP pipeline and lays the panels out on one page', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'story-'));
    dirs.push(dir);
    const sd = await StableDiffusion.load(await createRandomModel(join(dir, 'model')), new Runtime());
    const seen: number[] = [];
    const story = await renderStory(
      sd,
      { steps: 2, guidanceScale: 3, seed: 1, pose: true },
      { onPanel: (i) => seen.push(i) },
    );
    expect(seen).toEqual([0, 1, 2]);
    expect(story.panels.map((p) => p.image.width)).toEqual([64, 64, 64]);
    // two 270-pixel panels over one 552-pixel panel, 24-pixel margins and a 12-pixel gutter
    expect([story.page.width, story.page.height]).toEqual([600, 24 + 270 + 12 + 552 + 24]);
  }, 60_000);

  it('composes covers: a panel pixel lands in its cell, margins stay white', async () => {
    const red = { width: 4, height: 4, data: new Uint8Array(48).map((_, i) => (i % 3 === 0 ? 255 : 0)) };
    const blue = { width: 4, height: 4, data: new Uint8Array(48).map((_, i) => (i % 3 === 2 ? 255 : 0)) };
    const page = await composePage([red, blue], { width: 100, margin: 10, gutter: 4, rows: [[0], [1]] });
    const at = (x: number, y: number) =>
      Array.from(page.data.subarray((y * 100 + x) * 3, (y * 100 + x) * 3 + 3));
    expect(at(50, 50)).toEqual([255, 0, 0]);
    expect(at(50, 10 + 80 + 4 + 40)).toEqual([0, 0, 255]);
    expect(at(3, 3)).toEqual([255, 255, 255]);
    await expect(composePage([red], { rows: [[0, 1]] })).rejects.toThrow(/panel 2/);
  });
});
