/**
 * DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12) with eta = 0: the
 * deterministic sampler of diffusers' DDIMScheduler.
 *
 * With abar_t = alphasCumprod[t] and abar_prev = alphasCumprod[t - T // n] (or the final
 * alpha_cumprod, 1 if set_alpha_to_one else alphasCumprod[0], when that index is negative):
 *   epsilon:      x0 = (x - sqrt(1 - abar_t) e) / sqrt(abar_t),         eps = e
 *   v_prediction: x0 = sqrt(abar_t) x - sqrt(1 - abar_t) v,             eps = sqrt(abar_t) v + sqrt(1 - abar_t) x
 *   sample:       x0 = m,                                                eps = (x - sqrt(abar_t) x0) / sqrt(1 - abar_t)
 *   x0 is clamped to [-clip_sample_range, clip_sample_range] when clip_sample (eps is not recomputed)
 *   x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps
 *
 * As in diffusers, the previous timestep is t - T // n even for 'trailing' / 'linspace' spacing,
 * where it need not equal the next entry of `timesteps`.
 */
import type { Rng } from '../tensor/random.js';
import {
  OwnedSchedulerState,
  addNoiseVp,
  alphasCumprodFor,
  checkNumInferenceSteps,
  checkOwnedState,
  checkSameLength,
  checkStepIndex,
  checkTimestepRange,
  roundHalfEven,
  spacedTimesteps,
  validateSchedulerConfig,
} from './scheduler.js';
import type { DiffusionScheduler, SchedulerConfig, SchedulerState, StepResult } from './scheduler.js';

/** DDIM keeps no history; the state only ties a trajectory to its scheduler and schedule. */
class DDIMState extends OwnedSchedulerState {}

export class DDIMScheduler implements DiffusionScheduler {
  readonly name = 'ddim' as const;
  readonly config: SchedulerConfig;
  readonly alphasCumprod: Float64Array;
  /** alpha_cumprod used as "previous" for the last step(s). */
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma = 1;

  private steps: readonly number[] = Object.freeze([]);
  private numInferenceSteps = 0;
  private generation = 0;

  constructor(config: SchedulerConfig) {
    this.config = validateSchedulerConfig(config);
    this.alphasCumprod = alphasCumprodFor(this.config);
    this.finalAlphaCumprod = this.config.setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  get timesteps(): readonly number[] {
    return this.steps;
  }

  setTimesteps(numInferenceSteps: number): void {
    const T = this.config.numTrainTimesteps;
    checkNumInferenceSteps(this.name, numInferenceSteps, T);
    const ts = spacedTimesteps(this.config, numInferenceSteps).map(roundHalfEven);
    checkTimestepRange(this.name, ts, T);
    this.steps = Object.freeze(ts);
    this.numInferenceSteps = numInferenceSteps;
    this.generation++;
  }

  createState(): SchedulerState {
    this.requireTimesteps();
    return new DDIMState(this.name, this, this.generation);
  }

  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    return sample;
  }

  /** Train timestep of step `stepIndex` and the alpha_cumprod of it and of its DDIM predecessor. */
  private alphas(stepIndex: number): { abar: number; abarPrev: number } {
    const t = this.steps[stepIndex];
    const prev = t - Math.floor(this.config.numTrainTimesteps / this.numInferenceSteps);
    return {
      abar: this.alphasCumprod[t],
      abarPrev: prev >= 0 ? this.alphasCumprod[prev] : this.finalAlphaCumprod,
    };
  }

  step(
    state: SchedulerState,
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _rng?: Rng,
  ): StepResult {
    checkOwnedState(this, this.generation, state, DDIMState);
    checkStepIndex(this.name, stepIndex, this.steps.length);
    const n = checkSameLength(this.name, { modelOutput, sample });
    const { abar, abarPrev } = this.alphas(stepIndex);
    const a = Math.sqrt(abar);
    const b = Math.sqrt(1 - abar);
    const aPrev = Math.sqrt(abarPrev);
    const bPrev = Math.sqrt(1 - abarPrev);
    const clip = this.config.clipSample;
    const range = this.config.clipSampleRange;
    const prediction = this.config.predictionType;

    const prevSample = new Float32Array(n);
    const predOriginalSample = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      let x0: number;
      let eps: number;
      if (prediction === 'epsilon') {
        x0 = (x - b * m) / a;
        eps = m;
      } else if (prediction === 'v_prediction') {
        x0 = a * x - b * m;
        eps = a * m + b * x;
      } else {
        x0 = m;
        eps = (x - a * x0) / b;
      }
      if (clip) x0 = Math.min(Math.max(x0, -range), range);
      predOriginalSample[i] = x0;
      prevSample[i] = aPrev * x0 + bPrev * eps;
    }
    return { prevSample, predOriginalSample };
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array {
    return addNoiseVp(this, original, noise, stepIndex);
  }

  alphaSigmaAt(stepIndex: number): { alpha: number; sigma: number } {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    const abar = this.alphasCumprod[this.steps[stepIndex]];
    return { alpha: Math.sqrt(abar), sigma: Math.sqrt(1 - abar) };
  }

  private requireTimesteps(): void {
    if (this.steps.length === 0) throw new Error(`${this.name}: call setTimesteps() before createState()`);
  }
}
