/**
 * Euler ancestral sampling (k-diffusion's sample_euler_ancestral, eta = 1), as diffusers'
 * EulerAncestralDiscreteScheduler: same schedule, input scaling and noising as the Euler
 * scheduler (see euler.ts; Karras sigmas are not used, as in diffusers), and each step
 *   x0 = denoised(x, s),  d = (x - x0) / s
 *   s_up = sqrt(s_next^2 (s^2 - s_next^2) / s^2),  s_down = sqrt(s_next^2 - s_up^2)
 *   x_next = x + (s_down - s) d + s_up z,   z ~ N(0, I) from the Rng passed to step()
 * Every step draws exactly sample.length normals from the Rng, element by element in index order
 * (also on the last step, where s_up = 0), so a seeded Rng makes the trajectory reproducible.
 * prediction_type 'sample' (which diffusers rejects here) is supported as x0 = model output.
 */
import type { Rng } from '../tensor/random.js';
import { SigmaSchedulerBase, veDenoised } from './euler.js';
import { checkSameLength, checkStepIndex } from './scheduler.js';
import type { SchedulerConfig, SchedulerState, StepResult } from './scheduler.js';

export class EulerAncestralDiscreteScheduler extends SigmaSchedulerBase {
  readonly name = 'euler_a' as const;

  constructor(config: SchedulerConfig) {
    super(config, () => false);
  }

  step(
    state: SchedulerState,
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    rng?: Rng,
  ): StepResult {
    this.checkState(state);
    checkStepIndex(this.name, stepIndex, this.steps.length);
    const n = checkSameLength(this.name, { modelOutput, sample });
    if (rng === undefined || rng === null || typeof rng.normal !== 'function') {
      throw new TypeError(
        `${this.name}: step() needs an Rng for the ancestral noise; pass one (e.g. new Rng(seed)) as the 5th argument`,
      );
    }
    const s = this.schedule.sigmas[stepIndex];
    const sNext = this.schedule.sigmas[stepIndex + 1];
    const sUp = Math.sqrt((sNext * sNext * (s * s - sNext * sNext)) / (s * s));
    const sDown = Math.sqrt(Math.max(sNext * sNext - sUp * sUp, 0));
    const dt = sDown - s;
    const prediction = this.config.predictionType;
    const prevSample = new Float32Array(n);
    const predOriginalSample = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const x0 = veDenoised(prediction, s, x, modelOutput[i]);
      predOriginalSample[i] = x0;
      prevSample[i] = x + ((x - x0) / s) * dt + sUp * rng.normal();
    }
    return { prevSample, predOriginalSample };
  }
}
