import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from './stable-diffusion.js';
import {
  encodeGenerationPng,
  GenerationOptionsError,
  textToImage,
  type GenerationProgress,
} from './text-to-image.js';
import { readPngText } from '../image/png.js';
import { decodeImage } from '../image/image.js';
import { SCHEDULER_NAMES } from '../schedulers/scheduler.js';
import { cleanupTempDirs, foldedRandomModel, sharedRandomModel } from '../../test/helpers/random-model.js';

let sd: StableDiffusion;
const runtime = new Runtime({ intraOpNumThreads: 1 });

beforeAll(async () => {
  sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
});
afterAll(async () => {
  await runtime.dispose();
  await cleanupTempDirs();
});

const base = {
  prompt: 'a cartoon cat waving',
  negativePrompt: 'blurry',
  steps: 4,
  seed: 42,
  width: 64,
  height: 64,
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('textToImage', () => {
  it('gives byte-identical PNGs for the same seed and different ones for another seed', async () => {
    const png = async (seed: number) => {
      const r = await textToImage(sd, { ...base, seed });
      return Buffer.from(await encodeGenerationPng(r.image, r.parameters));
    };
    const a = await png(42);
    const b = await png(42);
    const c = await png(43);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
  });

  it('computes guidance in one batch exactly as with two separate UNet calls (1e-5)', async () => {
    const batched = await textToImage(sd, { ...base, batchGuidance: true });
    const separate = await textToImage(sd, { ...base, batchGuidance: false });
    expect(batched.unetEvaluations).toBe(8);
    expect(maxAbsDiff(batched.latents, separate.latents)).toBeLessThan(1e-5);
  });

  it('feeds zero residuals to a unet/ that takes ControlNet residuals itself: the same latents as the plain UNet', async () => {
    const folded = await StableDiffusion.load(await foldedRandomModel(), runtime);
    // 48 rows: a 6-row latent, so the residuals below conv_in are ceil(6 / 2) = 3 rows
    for (const size of [{}, { height: 48 }]) {
      const plain = await textToImage(sd, { ...base, ...size });
      const viaResiduals = await textToImage(folded, { ...base, ...size });
      expect(viaResiduals.unetEvaluations).toBe(plain.unetEvaluations);
      expect(maxAbsDiff(viaResiduals.latents, plain.latents)).toBeLessThan(1e-5);
    }
  });

  it('makes one UNet evaluation per step without guidance and two with it', async () => {
    expect((await textToImage(sd, { ...base, guidanceScale: 1 })).unetEvaluations).toBe(4);
    expect((await textToImage(sd, { ...base, guidanceScale: 7.5 })).unetEvaluations).toBe(8);
  });

  it('runs every scheduler to a finite image of the requested size', async () => {
    for (const scheduler of SCHEDULER_NAMES) {
      const r = await textToImage(sd, { ...base, scheduler, width: 48, height: 32 });
      expect([r.image.width, r.image.height]).toEqual([48, 32]);
      expect(r.latents.every(Number.isFinite)).toBe(true);
      expect(r.parameters.scheduler).toBe(scheduler);
    }
  });

  it('reports progress every step and a preview every N steps', async () => {
    const events: GenerationProgress[] = [];
    await textToImage(sd, { ...base, steps: 6, previewEvery: 2, onProgress: (p) => events.push(p) });
    expect(events.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.map((e) => e.preview !== undefined)).toEqual([false, true, false, true, false, false]);
    expect(events[1].preview).toMatchObject({ width: 64, height: 64 });
    expect(events.map((e) => e.timestep)).toEqual([831, 665, 499, 333, 167, 1]); // leading spacing: 1000 // 6 = 166, +1 offset;
  });

  it('stops at the next step when cancelled', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const run = textToImage(sd, {
      ...base,
      steps: 10,
      signal: controller.signal,
      onProgress: (p) => {
        steps.push(p.step);
        if (p.step === 3) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(steps).toEqual([1, 2, 3]);
  });

  it('image-to-image runs only the last strength * steps steps and starts from the image', async () => {
    const first = await textToImage(sd, base);
    const events: number[] = [];
    const r = await textToImage(sd, {
      ...base,
      steps: 10,
      initImage: first.image,
      strength: 0.3,
      onProgress: (p) => events.push(p.timestep),
    });
    expect(r.unetEvaluations).toBe(6);
    expect(events).toEqual([201, 101, 1]);
    expect(r.parameters).toMatchObject({ pipeline: 'image-to-image', strength: 0.3 });
  });

  it('embeds the parameters in the PNG in both the A1111 layout and as JSON', async () => {
    const r = await textToImage(sd, base);
    const png = await encodeGenerationPng(r.image, r.parameters);
    const text = readPngText(png);
    expect(text.parameters).toBe(
      'a cartoon cat waving\nNegative prompt: blurry\nSteps: 4, Sampler: ddim, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: tiny-random',
    );
    expect(JSON.parse(text['msp:parameters'])).toEqual(r.parameters);
    const decoded = await decodeImage(png);
    expect(Buffer.from(decoded.data).equals(Buffer.from(r.image.data))).toBe(true);
  });

  it('refuses bad options with one clear error each', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ width: 60 }, /width 60 is not a multiple of 8/],
      [{ height: 0 }, /height must be a positive integer/],
      [{ steps: 0 }, /steps must be an integer from 1 to 1000, got 0/],
      [{ steps: 2.5 }, /steps must be an integer/],
      [{ scheduler: 'plms' }, /unknown scheduler "plms"; expected one of ddim, euler/],
      [{ guidanceScale: -1 }, /guidance scale must be >= 0/],
      [{ seed: -5 }, /seed must be an integer/],
      [{ strength: 0.5 }, /strength applies only with an init image/],
    ];
    for (const [override, message] of cases) {
      const error = await textToImage(sd, { ...base, ...override } as typeof base).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GenerationOptionsError);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('tells which prompts were cut at the sequence length', async () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const r = await textToImage(sd, { ...base, prompt: long, steps: 1 });
    expect(r.truncatedPrompts).toEqual([long]);
  });
});
