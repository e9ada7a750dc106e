import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from './stable-diffusion.js';
import { loadSegmentationModel, SalGuidance } from './sal.js';
import { Rng } from '../tensor/random.js';
import { cleanupTempDirs, sharedRandomModel } from '../../test/helpers/random-model.js';

const runtime = new Runtime({ intraOpNumThreads: 1 });
afterAll(async () => {
  await runtime.dispose();
  await cleanupTempDirs();
});

function halfMasks(side: number): [Float32Array, Float32Array] {
  const left = new Float32Array(side * side);
  const right = new Float32Array(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) (x < side / 2 ? left : right)[y * side + x] = 1;
  return [left, right];
}

async function setup() {
  const dir = await sharedRandomModel();
  const sd = await StableDiffusion.load(dir, runtime);
  const seg = await loadSegmentationModel(join(dir, 'segmentation'));
  const [left, right] = halfMasks(8);
  const sal = await SalGuidance.create(sd, seg, {
    width: 64,
    height: 64,
    subjects: [
      { className: 'sks_cat', mask: left },
      { className: 'sks_dog', mask: right },
    ],
  });
  return { sd, sal };
}

describe('SAL guidance on the tiny random models', () => {
  it('its gradient matches finite differences of the loss', async () => {
    const { sal } = await setup();
    const rng = new Rng(4);
    const x0 = rng.randn(4 * 64);
    const { loss, gradient } = await sal.gradient(x0);
    expect(Number.isFinite(loss)).toBe(true);
    // directional derivative along a unit direction leaning on the gradient, Richardson-extrapolated
    let norm = 0;
    for (const v of gradient) norm += v * v;
    norm = Math.sqrt(norm);
    const random = rng.randn(x0.length);
    let rnorm = 0;
    for (const v of random) rnorm += v * v;
    rnorm = Math.sqrt(rnorm);
    const direction = random.map((v, i) => (0.6 * v) / rnorm + (0.8 * gradient[i]) / norm);
    let analytic = 0;
    for (let i = 0; i < x0.length; i++) analytic += gradient[i] * direction[i];
    const at = async (h: number) => (await sal.gradient(x0.map((v, i) => v + h * direction[i]))).loss;
    const d = async (h: number) => ((await at(h)) - (await at(-h))) / (2 * h);
    const numeric = (4 * (await d(5e-3)) - (await d(1e-2))) / 3;
    const error = Math.abs(analytic - numeric) / Math.max(1e-6, Math.abs(analytic));
    console.log(
      `SAL gradient: analytic ${analytic.toExponential(4)}, numeric ${numeric.toExponential(4)}, relative error ${error.toExponential(2)}`,
    );
    expect(error).toBeLessThan(1e-2);
  });

  it('a guidance step lowers the SAL loss (measured before and after)', async () => {
    const { sal } = await setup();
    const x0 = new Rng(7).randn(4 * 64);
    const before = await sal.gradient(x0);
    let norm = 0;
    for (const v of before.gradient) norm += v * v;
    const step = 0.5 / Math.sqrt(norm);
    const moved = x0.map((v, i) => v - step * before.gradient[i]);
    const after = (await sal.gradient(moved)).loss;
    console.log(`SAL loss before ${before.loss.toFixed(5)}, after one step ${after.toFixed(5)}`);
    expect(after).toBeLessThan(before.loss);
  });

  it('refuses a subject the segmentation model does not know', async () => {
    const dir = await sharedRandomModel();
    const sd = await StableDiffusion.load(dir, runtime);
    const seg = await loadSegmentationModel(join(dir, 'segmentation'));
    const [left] = halfMasks(8);
    await expect(
      SalGuidance.create(sd, seg, {
        width: 64,
        height: 64,
        subjects: [{ className: 'sks_unicorn', mask: left }],
      }),
    ).rejects.toThrow(
      /does not know 'sks_unicorn' \(it knows background, sks_cat, sks_dog, sks_man, sks_woman\)/,
    );
  });
});
