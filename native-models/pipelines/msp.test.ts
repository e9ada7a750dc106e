import { afterAll, describe, expect, it } from 'vitest';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from './stable-diffusion.js';
import { generateComposite, type CompositeOptions, type Stage } from './msp.js';
import { Rng } from '../tensor/random.js';
import { probeModel } from '../../test/helpers/probe-model.js';
import { cleanupTempDirs, foldedRandomModel, sharedRandomModel } from '../../test/helpers/random-model.js';

const runtime = new Runtime({ intraOpNumThreads: 1 });
afterAll(async () => {
  await runtime.dispose();
  await cleanupTempDirs();
});

const C = 4;
const SIDE = 8;
const PLANE = SIDE * SIDE;
const A = 0.5;
const B = 0.25;
const GUIDANCE = 7.5;

/** Left half: segment 0; right top: segment 1; right bottom: background. */
function hardMasks(): Float32Array[] {
  const masks = [new Float32Array(PLANE), new Float32Array(PLANE), new Float32Array(PLANE)];
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) masks[x < SIDE / 2 ? 0 : y < SIDE / 2 ? 1 : 2][y * SIDE + x] = 1;
  }
  return masks;
}

const PROMPTS = ['sks cat sitting', 'a red car', 'a park with trees'];

function options(extra: Partial<CompositeOptions> = {}): CompositeOptions {
  const masks = hardMasks();
  return {
    prompt: 'a cat next to a car in a park',
    negativePrompt: 'blurry',
    segments: PROMPTS.map((prompt, j) => ({ prompt, mask: masks[j] })),
    steps: 3,
    scheduler: 'ddim',
    guidanceScale: GUIDANCE,
    seed: 5,
    width: 64,
    height: 64,
    scaffoldingSteps: 0,
    globalDiffuserSteps: 0,
    globalDiffuserWeight: 1,
    ...extra,
  };
}

/** v(prompt): the probe's text term, the token-mean of the first C hidden dims. */
async function textTerms(sd: StableDiffusion, prompts: string[]): Promise<Float32Array[]> {
  const { data } = await sd.encodePrompts(prompts);
  const per = sd.sizes.sequenceLength * sd.sizes.hiddenSize;
  return prompts.map((_, p) => {
    const v = new Float32Array(C);
    for (let t = 0; t < sd.sizes.sequenceLength; t++) {
      for (let c = 0; c < C; c++)
        v[c] += data[p * per + t * sd.sizes.hiddenSize + c] / sd.sizes.sequenceLength;
    }
    return v;
  });
}

/** What the probe UNet predicts with CFG for a latent and a prompt term. */
function expected(latent: Float32Array, vu: Float32Array, vc: Float32Array): Float32Array {
  const e = new Float32Array(C * PLANE);
  for (let c = 0; c < C; c++) {
    let mean = 0;
    for (let q = 0; q < PLANE; q++) mean += latent[c * PLANE + q] / PLANE;
    for (let q = 0; q < PLANE; q++) {
      e[c * PLANE + q] = A * latent[c * PLANE + q] + B * mean + vu[c] + GUIDANCE * (vc[c] - vu[c]);
    }
  }
  return e;
}

function maxDiff(a: Float32Array, b: Float32Array, mask?: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (!mask || mask[i % PLANE] > 0) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function probe() {
  return StableDiffusion.load(await probeModel({ a: A, b: B }), runtime);
}

interface Seen {
  step: number;
  stage: Stage;
  noise: Float32Array;
  latent: Float32Array;
}

describe('generateComposite semantics (probe UNet)', () => {
  it('each region receives its own prompt prediction; in harmonization every segment sees the whole latent', async () => {
    const sd = await probe();
    const seen: Seen[] = [];
    await generateComposite(
      sd,
      options({
        onNoisePrediction: (step, stage, noise, latent) => seen.push({ step, stage, noise, latent }),
      }),
    );
    const [vu, ...vs] = await textTerms(sd, ['blurry', ...PROMPTS]);
    expect(seen.map((s) => s.stage)).toEqual(['harmonization', 'harmonization', 'harmonization']);
    const masks = hardMasks();
    for (const s of seen) {
      masks.forEach((m, j) => {
        // segment j's region holds CFG(z, c_j) computed on the shared latent (the mean term spans all regions)
        expect(maxDiff(s.noise, expected(s.latent, vu, vs[j]), m)).toBeLessThan(1e-4);
      });
    }
  });

  it('in the scaffolding stage with a scaffold image a segment does not see its neighbours', async () => {
    const sd = await probe();
    const seen: Seen[] = [];
    const scaffold = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(128) };
    await generateComposite(
      sd,
      options({
        scaffold,
        scaffoldingSteps: 2,
        steps: 3,
        onNoisePrediction: (step, stage, noise, latent) => seen.push({ step, stage, noise, latent }),
      }),
    );
    expect(seen.map((s) => s.stage)).toEqual([
      'scaffolding',
      'scaffolding',
      'scaffolding',
      'scaffolding',
      'scaffolding',
      'scaffolding',
      'harmonization',
    ]);
    const [vu, ...vs] = await textTerms(sd, ['blurry', ...PROMPTS]);
    const masks = hardMasks();
    for (const step of [0, 1]) {
      const perSegment = seen.filter((s) => s.step === step);
      perSegment.forEach((s, j) => {
        // its prediction is made on its own latent: the whole of it, not just its region
        expect(maxDiff(s.noise, expected(s.latent, vu, vs[j]))).toBeLessThan(1e-4);
        // outside its mask that latent is the noised scaffold, the same for every segment
        perSegment.forEach((other, k) => {
          if (k === j) return;
          const outsideBoth = masks[j].map((m, q) => (m === 0 && masks[k][q] === 0 ? 1 : 0));
          expect(maxDiff(s.latent, other.latent, outsideBoth)).toBeLessThan(1e-6);
          // inside its own region it is not what the neighbour sees there
          expect(maxDiff(s.latent, other.latent, masks[j])).toBeGreaterThan(1e-3);
        });
      });
    }
  });

  it('the global diffuser acts for exactly g steps with its weight', async () => {
    const sd = await probe();
    const seen: Seen[] = [];
    const w = 0.5;
    await generateComposite(
      sd,
      options({
        steps: 4,
        globalDiffuserSteps: 2,
        globalDiffuserWeight: w,
        onNoisePrediction: (step, stage, noise, latent) => seen.push({ step, stage, noise, latent }),
      }),
    );
    expect(seen.map((s) => s.stage)).toEqual(['global', 'global', 'harmonization', 'harmonization']);
    const [vu, vg, ...vs] = await textTerms(sd, ['blurry', 'a cat next to a car in a park', ...PROMPTS]);
    const masks = hardMasks();
    for (const s of seen) {
      const global = expected(s.latent, vu, vg);
      masks.forEach((m, j) => {
        const local = expected(s.latent, vu, vs[j]);
        const weight = s.stage === 'global' ? w : 0;
        const want = local.map((v, i) => weight * global[i] + (1 - weight) * v);
        expect(maxDiff(s.noise, want, m)).toBeLessThan(1e-4);
      });
    }
  });

  it('ControlNet residuals reach the UNet in every stage', async () => {
    const sd = await probe();
    const control = {
      width: 64,
      height: 64,
      data: Uint8Array.from(new Rng(3).randn(64 * 64 * 3), (v) => (v > 0 ? 255 : 0)),
    };
    const scaffold = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(100) };
    const [vu, vg, ...vs] = await textTerms(sd, ['blurry', 'a cat next to a car in a park', ...PROMPTS]);
    const run = async (withPose: boolean) => {
      const offsets: { stage: Stage; offset: number }[] = [];
      const masks = hardMasks();
      let segment = 0;
      await generateComposite(
        sd,
        options({
          steps: 3,
          globalDiffuserSteps: 1,
          scaffoldingSteps: 1,
          scaffold,
          ...(withPose ? { controlImage: control, controlnetScale: 1 } : {}),
          onNoisePrediction: (_step, stage, noise, latent) => {
            // the part of the prediction the probe's known terms do not explain
            const j = stage === 'scaffolding' ? segment++ % 3 : 0;
            const want = stage === 'global' ? expected(latent, vu, vg) : expected(latent, vu, vs[j]);
            const region = stage === 'global' ? undefined : masks[j];
            let offset = 0;
            for (let i = 0; i < noise.length; i++)
              if (!region || region[i % PLANE] > 0) offset = Math.max(offset, Math.abs(noise[i] - want[i]));
            offsets.push({ stage, offset });
          },
        }),
      );
      return offsets;
    };
    const plain = await run(false);
    const posed = await run(true);
    expect(plain.every((o) => o.offset < 1e-4)).toBe(true);
    expect(posed.map((o) => o.stage)).toEqual([
      'global',
      'scaffolding',
      'scaffolding',
      'scaffolding',
      'harmonization',
    ]);
    expect(posed.every((o) => o.offset > 1e-3)).toBe(true);
  });
});

describe('generateComposite on the random model', () => {
  it('shares the unconditional prediction with the same result as per-segment CFG (1e-5), with fewer UNet calls', async () => {
    const sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
    const shared = await generateComposite(sd, options({ steps: 4 }));
    const naive = await generateComposite(sd, options({ steps: 4, naiveGuidance: true }));
    expect(maxDiff(shared.latents, naive.latents)).toBeLessThan(1e-5);
    expect(shared.unetEvaluations).toBe(4 * (1 + 3));
    expect(naive.unetEvaluations).toBe(4 * 2 * 3);
  });

  it('renders the same posed composite when unet/ itself takes the ControlNet residuals (1e-5)', async () => {
    const control = {
      width: 64,
      height: 64,
      data: Uint8Array.from(new Rng(4).randn(64 * 64 * 3), (v) => (v > 0 ? 255 : 0)),
    };
    const posed = options({ steps: 3, globalDiffuserSteps: 1, controlImage: control, controlnetScale: 1 });
    const split = await StableDiffusion.load(await sharedRandomModel(), runtime);
    const folded = await StableDiffusion.load(await foldedRandomModel(), runtime);
    const a = await generateComposite(split, posed);
    const b = await generateComposite(folded, posed);
    const unposed = await generateComposite(split, options({ steps: 3, globalDiffuserSteps: 1 }));
    expect(maxDiff(a.latents, b.latents)).toBeLessThan(1e-5);
    expect(maxDiff(a.latents, unposed.latents)).toBeGreaterThan(1e-3);
  });

  it('is deterministic by seed and differs across seeds', async () => {
    const sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
    const a = await generateComposite(sd, options({ seed: 1 }));
    const b = await generateComposite(sd, options({ seed: 1 }));
    const c = await generateComposite(sd, options({ seed: 2 }));
    expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(true);
    expect(Buffer.from(a.image.data).equals(Buffer.from(c.image.data))).toBe(false);
  });

  it('with one full mask and the global prompt it is plain text-to-image (the baseline)', async () => {
    const { textToImage } = await import('./text-to-image.js');
    const sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
    const full = new Float32Array(PLANE).fill(1);
    const composite = await generateComposite(
      sd,
      options({ segments: [{ prompt: 'a red car', mask: full }] }),
    );
    const plain = await textToImage(sd, {
      prompt: 'a red car',
      negativePrompt: 'blurry',
      steps: 3,
      seed: 5,
      width: 64,
      height: 64,
    });
    expect(maxDiff(composite.latents, plain.latents)).toBeLessThan(1e-5);
  });

  it('previews every N steps with the fast linear latent-to-RGB map or the full decoder', async () => {
    const sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
    for (const preview of ['fast', 'vae'] as const) {
      const shown: number[] = [];
      await generateComposite(
        sd,
        options({
          steps: 4,
          previewEvery: 2,
          preview,
          onProgress: (p) => {
            if (p.preview) {
              expect([p.preview.width, p.preview.height]).toEqual([64, 64]);
              shown.push(p.step);
            }
          },
        }),
      );
      expect(shown).toEqual([2]);
    }
  });

  it('refuses k + g > steps and masks of the wrong size', async () => {
    const sd = await StableDiffusion.load(await sharedRandomModel(), runtime);
    await expect(
      generateComposite(sd, options({ steps: 4, scaffoldingSteps: 3, globalDiffuserSteps: 2 })),
    ).rejects.toThrow(/scaffoldingSteps \(3\) \+ globalDiffuserSteps \(2\) exceed steps \(4\)/);
    await expect(
      generateComposite(sd, options({ segments: [{ prompt: 'x', mask: new Float32Array(10) }] })),
    ).rejects.toThrow(/segment masks must have 8x8 latent pixels/);
  });
});
