import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { evaluateTinyModel, imageGrid } from './evaluate.js';

const DIR = join(import.meta.dirname, '..', 'weights', 'tiny-sd');

describe.skipIf(!existsSync(join(DIR, 'segmentation', 'model.onnx')))('evaluateTinyModel', () => {
  it('measures every figure of metrics.json on a few held-out scenes', async () => {
    const runtime = new Runtime();
    const sd = await StableDiffusion.load(DIR, runtime);
    const result = await evaluateTinyModel({
      sd,
      settings: { steps: 2, guidanceScale: 7.5, scaffolding: 0.5 },
      counts: { t2i: 3, pose: 2, msp: 1 },
      // the same judge again: the same pictures must read the same
      referenceJudgeDir: join(DIR, 'segmentation'),
    }).finally(() => runtime.dispose());
    expect(result.referenceFigures).toEqual(result.figures);
    // a reference judge that is not there fails before any picture is rendered
    const again = new Runtime();
    const lines: string[] = [];
    await expect(
      evaluateTinyModel({
        sd: await StableDiffusion.load(DIR, again),
        settings: { steps: 50, guidanceScale: 7.5, scaffolding: 0.5 },
        counts: { t2i: 200, pose: 50, msp: 20 },
        referenceJudgeDir: join(DIR, 'no-such-judge'),
        log: (line) => lines.push(line),
      }).finally(() => again.dispose()),
    ).rejects.toThrow(/no-such-judge[/\\]classes.json: ENOENT/);
    expect(lines).toEqual([]);
    expect(Object.keys(result.figures).sort()).toEqual(
      [
        't2i_class_acc',
        't2i_color_acc',
        't2i_color_acc_any_subject',
        'pose_silhouette_iou',
        'pose_silhouette_iou_any_class',
        'pose_silhouette_iou_figure',
        ...[2, 3, 4].flatMap((n) => [`msp_segment_class_acc_n${n}`, `baseline_segment_class_acc_n${n}`]),
      ].sort(),
    );
    for (const v of Object.values(result.figures)) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    // classes in turn: man, woman, boy
    expect(Object.keys(result.perClass)).toEqual(['man', 'woman', 'boy']);
    const found = Object.values(result.perClass).reduce((n, c) => n + c.found, 0);
    expect(result.figures.t2i_class_acc).toBeCloseTo(found / 3, 4);
    const colored = Object.values(result.perClass).reduce((n, c) => n + c.color, 0);
    expect(result.figures.t2i_color_acc).toBeCloseTo(colored / 3, 4);
    for (const c of Object.values(result.perClass)) {
      const misses = Object.values(c.readAs).reduce((n, k) => n + k, 0);
      expect(misses).toBe(c.images - c.found);
    }
    // skeleton classes in turn; the per-class sums give the means
    expect(Object.keys(result.posePerClass)).toEqual(['man', 'woman']);
    const pose = Object.values(result.posePerClass);
    expect(pose.reduce((s, c) => s + c.iou, 0) / 2).toBeCloseTo(result.figures.pose_silhouette_iou, 3);
    expect(pose.reduce((s, c) => s + c.anyClassIou, 0) / 2).toBeCloseTo(
      result.figures.pose_silhouette_iou_any_class,
      3,
    );
    expect(result.samples.t2i).toHaveLength(3);
    expect(result.samples.pose).toHaveLength(2);
    expect(result.samples.poseControl[0]).toMatchObject({ width: 128, height: 128 });
    expect(result.samples.msp).toHaveLength(3);
    expect(result.samples.baseline).toHaveLength(3);
  });
});

describe('imageGrid', () => {
  const cell = (v: number) => ({ width: 2, height: 1, data: new Uint8Array(6).fill(v) });

  it('lays pictures out in rows with white gutters', () => {
    const grid = imageGrid([[cell(10), cell(20)], [cell(30)]], { gap: 1 });
    expect([grid.width, grid.height]).toEqual([5, 3]);
    const px = (x: number, y: number) => grid.data[(y * grid.width + x) * 3];
    expect([px(0, 0), px(1, 0), px(2, 0), px(3, 0), px(4, 0)]).toEqual([10, 10, 255, 20, 20]);
    expect(px(0, 1)).toBe(255);
    expect([px(0, 2), px(1, 2), px(3, 2)]).toEqual([30, 30, 255]);
  });

  it('refuses an empty grid and pictures of different sizes', () => {
    expect(() => imageGrid([[]])).toThrow(/at least one picture/);
    expect(() => imageGrid([[cell(1), { width: 1, height: 1, data: new Uint8Array(3) }]])).toThrow(
      /differ in size/,
    );
  });
});
