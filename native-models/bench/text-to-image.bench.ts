/**
 * Text-to-image on the tiny random model: ms per denoising step and per image at two sizes,
 * UNet evaluations per image (classifier-free guidance on), and peak memory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRandomModel } from '../models/random-model.js';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { textToImage } from '../pipelines/text-to-image.js';
import { median, type BenchSuite, type Figure } from './figures.js';

const STEPS = 20;
const REPEATS = 5;
const SIZES = [64, 128];

export const textToImageSuite: BenchSuite = {
  name: 't2i',
  async run(log) {
    const root = await mkdtemp(join(tmpdir(), 'msp-bench-'));
    const runtime = new Runtime();
    try {
      const sd = await StableDiffusion.load(await createRandomModel(join(root, 'tiny-random')), runtime);
      const figures: Figure[] = [];
      let evals = 0;
      for (const size of SIZES) {
        const options = {
          prompt: 'a cartoon cat waving in a park',
          steps: STEPS,
          seed: 1,
          width: size,
          height: size,
        };
        await textToImage(sd, options); // warm-up: sessions, allocations
        const times: number[] = [];
        const stepTimes: number[] = [];
        for (let i = 0; i < REPEATS; i++) {
          const started = performance.now();
          const marks: number[] = [];
          const r = await textToImage(sd, {
            ...options,
            seed: i + 1,
            onProgress: () => marks.push(performance.now()),
          });
          times.push(performance.now() - started);
          // denoising steps only: the span between the first and last step, per step
          stepTimes.push((marks[marks.length - 1] - marks[0]) / (marks.length - 1));
          evals = r.unetEvaluations;
        }
        const perImage = median(times);
        const perStep = median(stepTimes);
        log(`t2i ${size}x${size}: ${times.map((t) => t.toFixed(0)).join(', ')} ms per image`);
        figures.push(
          {
            name: `t2i.ms_per_image_${size}`,
            value: perImage,
            unit: 'ms',
            label: `one ${size}x${size} image, ${STEPS} steps, CFG`,
          },
          {
            name: `t2i.ms_per_step_${size}`,
            value: perStep,
            unit: 'ms',
            label: `one denoising step at ${size}x${size} (2 UNet evals)`,
          },
        );
      }
      figures.push({
        name: 't2i.unet_evals_per_image',
        value: evals,
        unit: 'evals',
        label: `UNet evaluations per image (${STEPS} steps, CFG)`,
      });
      figures.push({
        name: 't2i.execution_provider_cpu',
        value: (await sd.executionProvider()) === 'cpu' ? 1 : 0,
        unit: 'bool',
        label: 'ran on the CPU provider',
      });
      return figures;
    } finally {
      await runtime.dispose();
      await rm(root, { recursive: true, force: true });
    }
  },
};
