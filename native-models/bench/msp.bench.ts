/**
 * MSP composite generation against plain text-to-image, in one run on the tiny random model:
 * for n = 1..4 subjects plus the background at equal steps, UNet evaluations and wall time per
 * image relative to text-to-image, and the same for the naive implementation (one CFG pair per
 * segment). Harmonization needs n_prompts + 1 evaluations per step instead of 2 n_prompts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRandomModel } from '../models/random-model.js';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { textToImage } from '../pipelines/text-to-image.js';
import { generateComposite, type CompositeSegment } from '../pipelines/msp.js';
import { median, type BenchSuite, type Figure } from './figures.js';

const STEPS = 20;
const SIZE = 128;
const REPEATS = 3;

/** n vertical stripes of subjects over the top half, the background below. */
function stripes(n: number, side: number): CompositeSegment[] {
  const masks = Array.from({ length: n + 1 }, () => new Float32Array(side * side));
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const j = y < side / 2 ? Math.min(n - 1, Math.floor((x * n) / side)) : n;
      masks[j][y * side + x] = 1;
    }
  }
  const prompts = ['a cartoon cat', 'a red car', 'a cartoon woman waving', 'a robot holding a mug'];
  return masks.map((mask, j) => ({ prompt: j < n ? prompts[j] : 'a park with trees', mask }));
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return median(times);
}

export const mspSuite: BenchSuite = {
  name: 'msp',
  async run(log) {
    const root = await mkdtemp(join(tmpdir(), 'msp-bench-'));
    const runtime = new Runtime();
    try {
      const sd = await StableDiffusion.load(await createRandomModel(join(root, 'tiny-random')), runtime);
      const side = SIZE / sd.sizes.vaeScaleFactor;
      const base = {
        prompt: 'friends in a park, comic style',
        negativePrompt: 'blurry',
        steps: STEPS,
        seed: 3,
        width: SIZE,
        height: SIZE,
      };
      let t2iEvals = 0;
      const t2i = await time(async () => (t2iEvals = (await textToImage(sd, base)).unetEvaluations));
      const figures: Figure[] = [
        {
          name: 'msp.t2i_unet_evals',
          value: t2iEvals,
          unit: 'evals',
          label: `text-to-image UNet evaluations (${STEPS} steps)`,
        },
        { name: 'msp.t2i_ms', value: t2i, unit: 'ms', label: `text-to-image ${SIZE}x${SIZE}` },
      ];
      for (let n = 1; n <= 4; n++) {
        const options = {
          ...base,
          scheduler: 'ddim' as const,
          guidanceScale: 7.5,
          segments: stripes(n, side),
          scaffoldingSteps: 0,
          globalDiffuserSteps: 0,
          globalDiffuserWeight: 1,
        };
        let evals = 0;
        let naiveEvals = 0;
        const shared = await time(
          async () => (evals = (await generateComposite(sd, options)).unetEvaluations),
        );
        const naive = await time(
          async () =>
            (naiveEvals = (await generateComposite(sd, { ...options, naiveGuidance: true })).unetEvaluations),
        );
        log(
          `msp n=${n}: ${evals} evals ${shared.toFixed(0)} ms; naive ${naiveEvals} evals ${naive.toFixed(0)} ms; t2i ${t2i.toFixed(0)} ms`,
        );
        figures.push(
          {
            name: `msp.unet_evals_n${n}`,
            value: evals,
            unit: 'evals',
            label: `MSP ${n} subject(s) + background, UNet evaluations`,
          },
          {
            name: `msp.eval_ratio_n${n}`,
            value: evals / t2iEvals,
            unit: 'x',
            label: `MSP / text-to-image evaluations, n=${n}`,
          },
          {
            name: `msp.time_ratio_n${n}`,
            value: shared / t2i,
            unit: 'x',
            label: `MSP / text-to-image wall time, n=${n}`,
          },
          {
            name: `msp.naive_unet_evals_n${n}`,
            value: naiveEvals,
            unit: 'evals',
            label: `naive (CFG pair per segment) evaluations, n=${n}`,
          },
          {
            name: `msp.naive_time_ratio_n${n}`,
            value: naive / t2i,
            unit: 'x',
            label: `naive / text-to-image wall time, n=${n}`,
          },
        );
      }
      return figures;
    } finally {
      await runtime.dispose();
      await rm(root, { recursive: true, force: true });
    }
  },
};
