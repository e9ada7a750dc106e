/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
 * Probabilistic Models", Algorithm 2), as diffusers' DPMSolverMultistepScheduler with
 * algorithm_type 'dpmsolver++', solver_order 2, solver_type 'midpoint', lower_order_final true,
 * euler_at_final false, final_sigmas_type 'zero', lambda_min_clipped -inf.
 *
 * Works on the VP latent x_t = alpha_t x0 + sigma_t eps (initNoiseSigma 1, no input scaling), with
 * the schedule stored as VE sigmas s (alpha = 1 / sqrt(1 + s^2), sigma = s alpha,
 * lambda = log(alpha) - log(sigma)). Timesteps:
 *   linspace: round(linspace(0, T - 1, n + 1)) reversed, the last (0) dropped
 *   leading:  arange(0, n + 1) * (T // (n + 1)) reversed, the last dropped, + steps_offset
 *   trailing: round(arange(T, 0, -T / n)) - 1
 * sigmas: train sigmas interpolated at the timesteps, or with Karras sigmas (rho = 7) between the
 * smallest and largest train sigma and timesteps = round(sigma_to_t(sigma)); then a final 0.
 *
 * Each step converts the model output to a data prediction m_i = x0_hat, then, with h = lambda_next -
 * lambda_i:
 *   first order (first step, and the last step because the final sigma is 0):
 *     x_next = (sigma_next / sigma_i) x - alpha_next (exp(-h) - 1) m_i
 *   second order (otherwise; uses m_{i-1} from the state, r = (lambda_i - lambda_{i-1}) / h):
 *     D1 = (m_i - m_{i-1}) / r
 *     x_next = (sigma_next / sigma_i) x - alpha_next (exp(-h) - 1) (m_i + D1 / 2)
 * The previous data prediction lives in the state object, so trajectories are independent.
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
  interpAtIndex,
  karrasSigmas,
  linspace,
  roundHalfEven,
  sigmaToT,
  trailingTimesteps,
  trainSigmasFor,
  validateSchedulerConfig,
  vpFromVeSigma,
} from './scheduler.js';
import type { DiffusionScheduler, SchedulerConfig, SchedulerState, StepResult } from './scheduler.js';

/** diffusers settings this implementation fixes (documented here for reference). */
const SOLVER_ORDER = 2;
const LOWER_ORDER_FINAL = true;
const FINAL_SIGMA_ZERO = true;

/** Per-trajectory history: the previous step's data prediction. */
class DPMSolverState extends OwnedSchedulerState {
  /** x0 prediction of step `lastStepIndex`, or null before the first step. */
  prevX0: Float32Array | null = null;
  lastStepIndex = -1;
  /** diffusers' lower_order_nums: how many steps have run, capped at the solver order. */
  lowerOrderNums = 0;
}

/** DPM-Solver++ timesteps (integers, high to low) for n steps, before any Karras replacement. */
export function dpmSolverTimesteps(config: SchedulerConfig, n: number): number[] {
  const T = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'linspace':
      return Array.from(linspace(0, T - 1, n + 1), roundHalfEven)
        .reverse()
        .slice(0, n);
    case 'leading': {
      const ratio = Math.floor(T / (n + 1));
      return Array.from({ length: n }, (_, k) => (n - k) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return trailingTimesteps(T, T, n);
  }
}

export interface DPMSolverOptions {
  /** Use Karras sigmas regardless of config.useKarrasSigmas (the 'dpmpp_2m_karras' scheduler). */
  forceKarras?: boolean;
}

export class DPMSolverMultistepScheduler implements DiffusionScheduler {
  readonly name: 'dpmpp_2m' | 'dpmpp_2m_karras';
  readonly config: SchedulerConfig;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;

  private sigmaSchedule = new Float64Array(0);
  private steps: readonly number[] = Object.freeze([]);
  private generation = 0;

  constructor(config: SchedulerConfig, options: DPMSolverOptions = {}) {
    const validated = validateSchedulerConfig(config);
    this.name = options.forceKarras ? 'dpmpp_2m_karras' : 'dpmpp_2m';
    this.config = options.forceKarras ? Object.freeze({ ...validated, useKarrasSigmas: true }) : validated;
    this.alphasCumprod = alphasCumprodFor(this.config);
  }

  get timesteps(): readonly number[] {
    return this.steps;
  }

  /** The VE sigmas of the schedule, one per step plus the final 0 (a copy). */
  get sigmas(): Float64Array {
    return this.sigmaSchedule.slice();
  }

  setTimesteps(numInferenceSteps: number): void {
    const T = this.config.numTrainTimesteps;
    checkNumInferenceSteps(this.name, numInferenceSteps, T);
    const n = numInferenceSteps;
    let timesteps = dpmSolverTimesteps(this.config, n);
    checkTimestepRange(this.name, timesteps, T);
    const trainSigmas = trainSigmasFor(this.alphasCumprod);
    let stepSigmas: Float64Array;
    if (this.config.useKarrasSigmas) {
      const logSigmas = trainSigmas.map(Math.log);
      stepSigmas = karrasSigmas(trainSigmas[0], trainSigmas[T - 1], n);
      timesteps = Array.from(stepSigmas, (s) => roundHalfEven(sigmaToT(s, logSigmas)));
    } else {
      stepSigmas = Float64Array.from(timesteps, (t) => interpAtIndex(t, trainSigmas));
    }
    const sigmas = new Float64Array(n + 1);
    sigmas.set(stepSigmas);
    sigmas[n] = 0; // final_sigmas_type 'zero'
    this.sigmaSchedule = sigmas;
    this.steps = Object.freeze(timesteps);
    this.generation++;
  }

  createState(): SchedulerState {
    if (this.steps.length === 0) throw new Error(`${this.name}: call setTimesteps() before createState()`);
    return new DPMSolverState(this.name, this, this.generation);
  }

  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    return sample;
  }

  step(
    state: SchedulerState,
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _rng?: Rng,
  ): StepResult {
    const st = checkOwnedState(this, this.generation, state, DPMSolverState);
    const steps = this.steps.length;
    checkStepIndex(this.name, stepIndex, steps);
    const n = checkSameLength(this.name, { modelOutput, sample });
    if (st.lastStepIndex >= 0 && stepIndex !== st.lastStepIndex + 1) {
      throw new Error(
        `${this.name}: this state last ran step ${st.lastStepIndex}, so the next step must be ` +
          `${st.lastStepIndex + 1}; got ${stepIndex} (use createState() to start a new trajectory)`,
      );
    }
    if (st.prevX0 !== null && st.prevX0.length !== n) {
      throw new RangeError(
        `${this.name}: sample length ${n} differs from this trajectory's previous steps (${st.prevX0.length})`,
      );
    }

    // diffusers: lower_order_final = last step and (euler_at_final or (lower_order_final and
    // steps < 15) or final_sigmas_type == 'zero'); with order 2, lower_order_second has no effect.
    const isLast = stepIndex === steps - 1;
    const lowerOrderFinal = isLast && ((LOWER_ORDER_FINAL && steps < 15) || FINAL_SIGMA_ZERO);
    const firstOrder = st.lowerOrderNums < 1 || lowerOrderFinal || st.prevX0 === null;

    const sig = this.sigmaSchedule;
    const cur = vpFromVeSigma(sig[stepIndex]);
    const next = vpFromVeSigma(sig[stepIndex + 1]);
    const lambdaCur = Math.log(cur.alpha) - Math.log(cur.sigma);
    const lambdaNext = Math.log(next.alpha) - Math.log(next.sigma); // +inf at the final sigma 0
    const h = lambdaNext - lambdaCur;
    const sampleCoef = next.sigma / cur.sigma;
    const x0Coef = -next.alpha * Math.expm1(-h); // -alpha_next (exp(-h) - 1)
    let d1Coef = 0;
    if (!firstOrder) {
      const prev = vpFromVeSigma(sig[stepIndex - 1]);
      const lambdaPrev = Math.log(prev.alpha) - Math.log(prev.sigma);
      const r = (lambdaCur - lambdaPrev) / h;
      d1Coef = 0.5 / r; // midpoint: x0Coef * (m0 + 0.5 * (m0 - m1) / r)
    }

    const prediction = this.config.predictionType;
    const { alpha, sigma } = cur;
    const prevX0 = st.prevX0;
    const prevSample = new Float32Array(n);
    const predOriginalSample = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      let x0: number;
      if (prediction === 'epsilon') x0 = (x - sigma * m) / alpha;
      else if (prediction === 'v_prediction') x0 = alpha * x - sigma * m;
      else x0 = m;
      predOriginalSample[i] = x0;
      // The history is stored as float32, so use the float32-rounded value for D1 as well.
      const d = prevX0 === null || d1Coef === 0 ? 0 : d1Coef * (predOriginalSample[i] - prevX0[i]);
      prevSample[i] = sampleCoef * x + x0Coef * (x0 + d);
    }

    // Record history (one buffer per state, reused across steps).
    if (st.prevX0 === null) st.prevX0 = new Float32Array(n);
    st.prevX0.set(predOriginalSample);
    st.lastStepIndex = stepIndex;
    if (st.lowerOrderNums < SOLVER_ORDER) st.lowerOrderNums++;
    return { prevSample, predOriginalSample };
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array {
    return addNoiseVp(this, original, noise, stepIndex);
  }

  alphaSigmaAt(stepIndex: number): { alpha: number; sigma: number } {
    checkStepIndex(this.name, stepIndex, this.steps.length);
    return vpFromVeSigma(this.sigmaSchedule[stepIndex]);
  }
}
