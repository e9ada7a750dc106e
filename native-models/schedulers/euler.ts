/**
 * Euler sampler of the probability-flow ODE (Karras et al. 2022, Algorithm 2 with s_churn = 0),
 * as diffusers' EulerDiscreteScheduler, working on the VE latent x = x0 + s eps.
 *
 * Schedule: timesteps from the configured spacing (fractional for 'linspace'), sigmas linearly
 * interpolated from the train sigmas sqrt((1 - abar) / abar) at those timesteps, optionally
 * replaced by Karras sigmas (rho = 7, between the first and last interpolated sigma, timesteps
 * mapped back by log-sigma interpolation), then a final sigma of 0.
 * `timesteps` holds Math.round of the fractional timesteps for the UNet; {@link
 * EulerDiscreteScheduler.fractionalTimesteps} keeps the exact values (diffusers passes those floats
 * to the UNet).
 *
 * Step:  x0 = x - s m (epsilon) | m (-s / sqrt(s^2 + 1)) + x / (s^2 + 1) (v_prediction) | m (sample)
 *        d = (x - x0) / s,  x_next = x + (s_next - s) d
 * init_noise_sigma = max sigma for 'linspace'/'trailing' spacing, sqrt(max sigma^2 + 1) for 'leading'.
 */
import type { Rng } from '../tensor/random.js';
import {
  OwnedSchedulerState,
  alphasCumprodFor,
  checkNumInferenceSteps,
  checkOwnedState,
  checkSameLength,
  checkStepIndex,
  checkTimestepRange,
  interpAtIndex,
  karrasSigmas,
  sigmaToT,
  spacedTimesteps,
  trainSigmasFor,
  validateSchedulerConfig,
  vpFromVeSigma,
} from './scheduler.js';
import type {
  DiffusionScheduler,
  PredictionType,
  SchedulerConfig,
  SchedulerName,
  SchedulerState,
  StepResult,
} from './scheduler.js';

/** The Euler-family schedule: fractional timesteps (n) and sigmas (n + 1, the last one 0). */
export interface SigmaSchedule {
  timesteps: Float64Array;
  sigmas: Float64Array;
}

/** Builds the EulerDiscreteScheduler / EulerAncestralDiscreteScheduler schedule for n steps. */
export function eulerSigmaSchedule(
  name: SchedulerName,
  config: SchedulerConfig,
  alphasCumprod: Float64Array,
  n: number,
  useKarrasSigmas: boolean,
): SigmaSchedule {
  const T = config.numTrainTimesteps;
  const ts = spacedTimesteps(config, n);
  checkTimestepRange(name, ts, T);
  const trainSigmas = trainSigmasFor(alphasCumprod);
  let timesteps: Float64Array = Float64Array.from(ts);
  let stepSigmas: Float64Array = timesteps.map((t) => interpAtIndex(t, trainSigmas));
  if (useKarrasSigmas) {
    const logSigmas = trainSigmas.map(Math.log);
    stepSigmas = karrasSigmas(stepSigmas[n - 1], stepSigmas[0], n);
    timesteps = stepSigmas.map((s) => sigmaToT(s, logSigmas));
  }
  const sigmas = new Float64Array(n + 1);
  sigmas.set(stepSigmas);
  sigmas[n] = 0;
  return { timesteps, sigmas };
}

/** diffusers' init_noise_sigma rule for the Euler family. */
export function eulerInitNoiseSigma(config: SchedulerConfig, sigmas: Float64Array): number {
  let max = 0;
  for (const s of sigmas) max = Math.max(max, s);
  return config.timestepSpacing === 'leading' ? Math.sqrt(max * max + 1) : max;
}

/** x0 estimate from a model output at VE sigma s (the k-diffusion "denoised"). */
export function veDenoised(prediction: PredictionType, s: number, x: number, m: number): number {
  if (prediction === 'epsilon') return x - s * m;
  if (prediction === 'v_prediction') return m * (-s / Math.sqrt(s * s + 1)) + x / (s * s + 1);
  return m;
}

class EulerState extends OwnedSchedulerState {}

/**
 * Shared machinery of the Euler-family schedulers (schedule, input scaling, noising); subclasses
 * implement step().
 */
export abstract class SigmaSchedulerBase implements DiffusionScheduler {
  abstract readonly name: SchedulerName;
  readonly config: SchedulerConfig;
  readonly alphasCumprod: Float64Array;

  protected schedule: SigmaSchedule = { timesteps: new Float64Array(0), sigmas: new Float64Array(0) };
  protected steps: readonly number[] = Object.freeze([]);
  protected generation = 0;

  /** Whether the schedule uses Karras sigmas. */
  readonly karras: boolean;

  /** `karras`: whether this scheduler uses Karras sigmas (from the validated config). */
  protected constructor(config: SchedulerConfig, karras: (validated: SchedulerConfig) => boolean) {
    this.config = validateSchedulerConfig(config);
    this.alphasCumprod = alphasCumprodFor(this.config);
    this.karras = karras(this.config);
  }

  get timesteps(): readonly number[] {
    return this.steps;
  }

  /** Exact (possibly fractional) timesteps of the schedule. */
  get fractionalTimesteps(): readonly number[] {
    return Array.from(this.schedule.timesteps);
  }

  /** The VE sigmas of the schedule, one per step plus the final 0 (a copy). */
  get sigmas(): Float64Array {
    return this.schedule.sigmas.slice();
  }

  get initNoiseSigma(): number {
    this.requireTimesteps('initNoiseSigma');
    return eulerInitNoiseSigma(this.config, this.schedule.sigmas);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkNumInferenceSteps(this.name, numInferenceSteps, this.config.numTrainTimesteps);
    this.schedule = eulerSigmaSchedule(
      this.name,
      this.config,
      this.alphasCumprod,
      numInferenceSteps,
      this.karras,
    );
    this.steps = Object.freeze(Array.from(this.schedule.timesteps, (t) => Math.round(t)));
    this.generation++;
  }

  createState(): SchedulerState {
    this.requireTimesteps('createState()');
    return new EulerState(this.name, this, this.generation);
  }

  protected checkState(state: SchedulerState): void {
    checkOwnedState(this, this.generation, state, EulerState);
  }

  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    const s = this.schedule.sigmas[stepIndex];
    const scale = 1 / Math.sqrt(s * s + 1);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) out[i] = sample[i] * scale;
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    const n = checkSameLength(this.name, { original, noise });
    const s = this.schedule.sigmas[stepIndex];
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = original[i] + s * noise[i];
    return out;
  }

  alphaSigmaAt(stepIndex: number): { alpha: number; sigma: number } {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    return vpFromVeSigma(this.schedule.sigmas[stepIndex]);
  }

  abstract step(
    state: SchedulerState,
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    rng?: Rng,
  ): StepResult;

  private requireTimesteps(what: string): void {
    if (this.steps.length === 0) throw new Error(`${this.name}: call setTimesteps() before ${what}`);
  }
}

/** diffusers' EulerDiscreteScheduler (s_churn = 0, final sigma 0, optional Karras sigmas). */
export class EulerDiscreteScheduler extends SigmaSchedulerBase {
  readonly name = 'euler' as const;

  constructor(config: SchedulerConfig) {
    super(config, (c) => c.useKarrasSigmas);
  }

  step(
    state: SchedulerState,
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _rng?: Rng,
  ): StepResult {
    this.checkState(state);
    checkStepIndex(this.name, stepIndex, this.steps.length);
    const n = checkSameLength(this.name, { modelOutput, sample });
    const s = this.schedule.sigmas[stepIndex];
    const dt = this.schedule.sigmas[stepIndex + 1] - s;
    const prediction = this.config.predictionType;
    const prevSample = new Float32Array(n);
    const predOriginalSample = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const x0 = veDenoised(prediction, s, x, modelOutput[i]);
      predOriginalSample[i] = x0;
      prevSample[i] = x + ((x - x0) / s) * dt;
    }
    return { prevSample, predOriginalSample };
  }
}
