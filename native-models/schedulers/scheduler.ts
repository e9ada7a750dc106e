/**
 * The shared scheduler interface, configuration and numeric helpers.
 *
 * Schedulers follow the published definitions that the diffusers library implements (DDIM,
 * Euler / Euler ancestral from Karras et al. 2022 and k-diffusion, DPM-Solver++), configured from
 * a diffusers `scheduler/scheduler_config.json`. Differences from diffusers are listed where they
 * occur; the main one is that every schedule here is computed in float64 (diffusers builds betas
 * and alphas_cumprod in float32 torch tensors and stores sigmas as float32), so values agree to
 * roughly 1e-7 relative, not bit for bit.
 *
 * Sample spaces. DDIM and DPM-Solver++ work on the variance-preserving latent
 * x_t = alpha_t x0 + sigma_t eps (alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t)); the
 * Euler family works on the variance-exploding latent x = x0 + s eps with s = sigma_t / alpha_t,
 * which {@link DiffusionScheduler.scaleModelInput} maps back to the VP latent the UNet expects.
 */
import type { Rng } from '../tensor/random.js';

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  /** Explicit betas (length numTrainTimesteps); when set, betaStart/betaEnd/betaSchedule are unused. */
  trainedBetas?: number[];
  predictionType: PredictionType;
  stepsOffset: number;
  timestepSpacing: TimestepSpacing;
  /** DDIM only: the "previous" alpha_cumprod of the last step is 1 (true) or alphas_cumprod[0]. */
  setAlphaToOne: boolean;
  /** DDIM only: clamp the predicted x0 to [-clipSampleRange, clipSampleRange]. */
  clipSample: boolean;
  clipSampleRange: number;
  /** Euler and DPM-Solver++: use the Karras et al. (2022) rho = 7 sigma schedule. */
  useKarrasSigmas: boolean;
}

/**
 * Defaults for keys missing from a scheduler_config.json: the Stable Diffusion 1.x values
 * (runwayml/stable-diffusion-v1-5 `scheduler/scheduler_config.json`). diffusers' per-class
 * defaults differ for some keys (e.g. DDIMScheduler defaults to clip_sample and set_alpha_to_one
 * true, Euler/DPM-Solver default to 'linspace' spacing); real model configs set these keys.
 */
export const DEFAULT_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  predictionType: 'epsilon',
  stepsOffset: 1,
  timestepSpacing: 'leading',
  setAlphaToOne: false,
  clipSample: false,
  clipSampleRange: 1.0,
  useKarrasSigmas: false,
});

export interface StepResult {
  /** The sample for the next (less noisy) step; for the last step, the final denoised latent. */
  prevSample: Float32Array;
  /** The scheduler's estimate of the clean latent x0 at this step. */
  predOriginalSample: Float32Array;
}

/**
 * Per-trajectory mutable history (e.g. DPM-Solver's previous x0 prediction). Create one per
 * trajectory with {@link DiffusionScheduler.createState}; it belongs to that scheduler and to the
 * schedule of its last setTimesteps() call. Its contents are private to the scheduler.
 */
export interface SchedulerState {
  readonly schedulerName: SchedulerName;
}

export interface DiffusionScheduler {
  readonly name: SchedulerName;
  readonly config: SchedulerConfig;
  /** Cumulative product of (1 - beta) over the training schedule, length numTrainTimesteps. */
  readonly alphasCumprod: Float64Array;
  /** Builds the inference schedule; numInferenceSteps must be an integer in [1, numTrainTimesteps]. */
  setTimesteps(numInferenceSteps: number): void;
  /** Integer timesteps to pass to the UNet, one per step (empty before setTimesteps). */
  readonly timesteps: readonly number[];
  /** Scale of the initial noise: latents = initNoiseSigma * N(0, 1). */
  readonly initNoiseSigma: number;
  /** A fresh history for one trajectory; several states can run side by side on one scheduler. */
  createState(): SchedulerState;
  /** The UNet input for `sample` at step `stepIndex` (may return `sample` itself: treat as read-only). */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array;
  /** One denoising step; stepIndex runs 0..timesteps.length - 1. */
  step(
    state: SchedulerState,
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    rng?: Rng,
  ): StepResult;
  /** Noises a clean latent to the level of timesteps[stepIndex], in this scheduler's sample space. */
  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array;
  /**
   * sqrt(abar) and sqrt(1 - abar) at step `stepIndex`, so callers can form x0_hat for any
   * scheduler: scaleModelInput(sample, i) = alpha * x0 + sigma * eps. (For sigma schedulers these
   * come from the step's own sigma s: alpha = 1 / sqrt(1 + s^2), sigma = s * alpha.)
   */
  alphaSigmaAt(stepIndex: number): { alpha: number; sigma: number };
}

export type SchedulerName = 'ddim' | 'euler' | 'euler_a' | 'dpmpp_2m' | 'dpmpp_2m_karras';

export const SCHEDULER_NAMES: readonly SchedulerName[] = Object.freeze([
  'ddim',
  'euler',
  'euler_a',
  'dpmpp_2m',
  'dpmpp_2m_karras',
] as const);

// ---------------------------------------------------------------------------------------------
// Config parsing and validation

const BETA_SCHEDULES: readonly BetaSchedule[] = ['linear', 'scaled_linear', 'squaredcos_cap_v2'];
const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'v_prediction', 'sample'];
const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

/** Thrown for scheduler configs with missing or ill-typed values; the message names key and source. */
export class SchedulerConfigError extends Error {
  override name = 'SchedulerConfigError';
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}

type Check<T> = (value: unknown, key: string, source: string) => T;

function fail(source: string, key: string, expected: string, value: unknown): never {
  throw new SchedulerConfigError(`${source}: "${key}" must be ${expected}; got ${describeValue(value)}`);
}

const positiveInteger: Check<number> = (v, key, source) =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : fail(source, key, 'a positive integer', v);

const nonNegativeInteger: Check<number> = (v, key, source) =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
    ? v
    : fail(source, key, 'a non-negative integer', v);

const betaValue: Check<number> = (v, key, source) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 && v < 1
    ? v
    : fail(source, key, 'a number in (0, 1)', v);

const positiveNumber: Check<number> = (v, key, source) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fail(source, key, 'a positive number', v);

const bool: Check<boolean> = (v, key, source) =>
  typeof v === 'boolean' ? v : fail(source, key, 'a boolean (true or false)', v);

function oneOf<T extends string>(options: readonly T[]): Check<T> {
  return (v, key, source) =>
    typeof v === 'string' && (options as readonly string[]).includes(v)
      ? (v as T)
      : fail(source, key, `one of ${options.map((o) => `"${o}"`).join(', ')}`, v);
}

const betaArray: Check<number[]> = (v, key, source) => {
  if (!Array.isArray(v)) return fail(source, key, 'an array of numbers in (0, 1) or null', v);
  v.forEach((b: unknown, i) => betaValue(b, `${key}[${i}]`, source));
  return (v as number[]).slice();
};

/** camelCase field -> [diffusers key, check]. */
const FIELDS: { [K in keyof SchedulerConfig]-?: [string, Check<NonNullable<SchedulerConfig[K]>>] } = {
  numTrainTimesteps: ['num_train_timesteps', positiveInteger],
  betaStart: ['beta_start', betaValue],
  betaEnd: ['beta_end', betaValue],
  betaSchedule: ['beta_schedule', oneOf(BETA_SCHEDULES)],
  trainedBetas: ['trained_betas', betaArray],
  predictionType: ['prediction_type', oneOf(PREDICTION_TYPES)],
  stepsOffset: ['steps_offset', nonNegativeInteger],
  timestepSpacing: ['timestep_spacing', oneOf(TIMESTEP_SPACINGS)],
  setAlphaToOne: ['set_alpha_to_one', bool],
  clipSample: ['clip_sample', bool],
  clipSampleRange: ['clip_sample_range', positiveNumber],
  useKarrasSigmas: ['use_karras_sigmas', bool],
};

function checkCrossFields(
  config: SchedulerConfig,
  source: string,
  keyOf: (k: keyof SchedulerConfig) => string,
) {
  if (config.trainedBetas !== undefined && config.trainedBetas.length !== config.numTrainTimesteps) {
    throw new SchedulerConfigError(
      `${source}: "${keyOf('trainedBetas')}" has ${config.trainedBetas.length} values but ` +
        `"${keyOf('numTrainTimesteps')}" is ${config.numTrainTimesteps}`,
    );
  }
  if (config.numTrainTimesteps < 2) {
    throw new SchedulerConfigError(`${source}: "${keyOf('numTrainTimesteps')}" must be at least 2`);
  }
}

/**
 * Reads a diffusers scheduler config (the parsed JSON of `scheduler/scheduler_config.json`):
 * snake_case keys map to camelCase fields, missing keys (and `null`, as diffusers writes for unset
 * optional values) take {@link DEFAULT_SCHEDULER_CONFIG}, unknown keys (`_class_name`,
 * `skip_prk_steps`, ...) are ignored. Ill-typed values throw a {@link SchedulerConfigError} naming
 * the key and `source`.
 *
 * Not supported (ignored like any unknown key): thresholding, rescale_betas_zero_snr,
 * timestep_type, interpolation_type, final_sigmas_type, solver_order, algorithm_type and the other
 * sampler-specific options; the schedulers use the diffusers defaults for those.
 */
export function parseSchedulerConfig(json: unknown, source = 'scheduler_config.json'): SchedulerConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SchedulerConfigError(`${source}: expected a JSON object; got ${describeValue(json)}`);
  }
  const obj = json as Record<string, unknown>;
  const config: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG };
  const out = config as unknown as Record<string, unknown>;
  for (const [field, [key, check]] of Object.entries(FIELDS) as [string, [string, Check<unknown>]][]) {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
    const value = obj[key];
    if (value === null || value === undefined) continue;
    out[field] = check(value, key, source);
  }
  checkCrossFields(config, source, (k) => FIELDS[k][0]);
  return config;
}

/**
 * Validates a config built in code (camelCase) and returns a frozen copy. Used by the scheduler
 * constructors; errors name the camelCase field.
 */
export function validateSchedulerConfig(
  config: SchedulerConfig,
  source = 'scheduler config',
): SchedulerConfig {
  if (typeof config !== 'object' || config === null) {
    throw new SchedulerConfigError(`${source}: expected an object; got ${describeValue(config)}`);
  }
  const out: Record<string, unknown> = {};
  const input = config as unknown as Record<string, unknown>;
  for (const [field, [, check]] of Object.entries(FIELDS) as [string, [string, Check<unknown>]][]) {
    const value = input[field];
    if (field === 'trainedBetas' && (value === undefined || value === null)) continue;
    out[field] = check(value, field, source);
  }
  const result = out as unknown as SchedulerConfig;
  checkCrossFields(result, source, (k) => k);
  if (result.trainedBetas) Object.freeze(result.trainedBetas);
  return Object.freeze(result);
}

// ---------------------------------------------------------------------------------------------
// Training schedule

/**
 * numpy.linspace(start, stop, num) with numpy's arithmetic: start + k * ((stop - start) / (num - 1)),
 * the last element exactly `stop`; num = 1 gives [start].
 */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let k = 0; k < num; k++) out[k] = k * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** Round half to even, as numpy.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** alpha_bar of the cosine schedule (Nichol & Dhariwal 2021), as diffusers' betas_for_alpha_bar. */
function cosineAlphaBar(t: number): number {
  return Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
}

/** Betas of the training schedule, in float64. */
export function betasFor(config: SchedulerConfig): Float64Array {
  const T = config.numTrainTimesteps;
  if (config.trainedBetas !== undefined) return Float64Array.from(config.trainedBetas);
  switch (config.betaSchedule) {
    case 'linear':
      return linspace(config.betaStart, config.betaEnd, T);
    case 'scaled_linear': {
      const b = linspace(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), T);
      for (let i = 0; i < T; i++) b[i] = b[i] * b[i];
      return b;
    }
    case 'squaredcos_cap_v2': {
      // beta_i = min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999)
      const b = new Float64Array(T);
      for (let i = 0; i < T; i++)
        b[i] = Math.min(1 - cosineAlphaBar((i + 1) / T) / cosineAlphaBar(i / T), 0.999);
      return b;
    }
    default:
      throw new SchedulerConfigError(`unknown beta schedule ${JSON.stringify(config.betaSchedule)}`);
  }
}

/** alphas_cumprod[t] = prod_{i <= t} (1 - betas[i]), in float64. */
export function alphasCumprodFor(config: SchedulerConfig): Float64Array {
  const betas = betasFor(config);
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= 1 - betas[i];
    out[i] = acc;
  }
  return out;
}

/** Train-schedule sigmas of the Euler family: sqrt((1 - abar) / abar), ascending in t. */
export function trainSigmasFor(alphasCumprod: Float64Array): Float64Array {
  return alphasCumprod.map((a) => Math.sqrt((1 - a) / a));
}

// ---------------------------------------------------------------------------------------------
// Timestep spacing and sigma helpers

/**
 * Timesteps of DDIM / Euler-style schedulers for `n` inference steps, high to low, as diffusers
 * computes them (before any rounding for 'linspace'):
 * - leading:  arange(0, n) * (T // n), reversed, + steps_offset
 * - trailing: round(arange(T, 0, -T / n)) - 1 (numpy's arange arithmetic and half-to-even rounding)
 * - linspace: linspace(0, T - 1, n), reversed (fractional; DDIM rounds them, Euler interpolates)
 */
export function spacedTimesteps(config: SchedulerConfig, n: number): number[] {
  const T = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'leading': {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, k) => (n - 1 - k) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return trailingTimesteps(T, T, n);
    case 'linspace':
      return Array.from(linspace(0, T - 1, n)).reverse();
  }
}

/**
 * round(numpy.arange(start, 0, -T / n)) - 1, first n values. numpy computes arange elements as
 * start + i * ((start + step) - start); for some n its length rounds up to n + 1 (e.g. T = 1000,
 * n = 61, ending in a spurious timestep -1), which diffusers inherits; here exactly n are kept.
 */
export function trailingTimesteps(T: number, start: number, n: number): number[] {
  const step = -T / n;
  const delta = start + step - start;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(roundHalfEven(start + i * delta) - 1);
  return out;
}

/** numpy.interp(x, arange(len(fp)), fp): linear interpolation, clamped at both ends. */
export function interpAtIndex(x: number, fp: Float64Array): number {
  const last = fp.length - 1;
  if (!(x > 0)) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  const frac = x - j;
  return frac === 0 ? fp[j] : fp[j] + frac * (fp[j + 1] - fp[j]);
}

/**
 * Karras et al. (2022) eq. 5 with rho = 7: (max^(1/rho) + ramp * (min^(1/rho) - max^(1/rho)))^rho,
 * ramp = linspace(0, 1, n); the first value is exactly sigmaMax and the last exactly sigmaMin.
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): Float64Array {
  const ramp = linspace(0, 1, n);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const out = ramp.map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
  // (x^(1/rho))^rho is off by an ulp or two; pin the endpoints exactly.
  out[0] = sigmaMax;
  if (n > 1) out[n - 1] = sigmaMin;
  return out;
}

/**
 * The fractional train timestep whose sigma is `sigma`: linear interpolation in log-sigma between
 * the neighbouring train sigmas (diffusers' _sigma_to_t), clamped to [0, T - 1].
 * `logSigmas` is ascending (log of {@link trainSigmasFor}).
 */
export function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // low = last index with logSigmas[i] <= logSigma (0 if none), at most T - 2.
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigmas[i] <= logSigma) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  const w = Math.min(Math.max((lo - logSigma) / (lo - hi), 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** VP (alpha, sigma) of a VE sigma s: alpha = 1 / sqrt(1 + s^2), sigma = s * alpha. */
export function vpFromVeSigma(s: number): { alpha: number; sigma: number } {
  const alpha = 1 / Math.sqrt(s * s + 1);
  return { alpha, sigma: s * alpha };
}

// ---------------------------------------------------------------------------------------------
// Argument checks shared by the schedulers

/** Throws a RangeError unless 1 <= n <= numTrainTimesteps (integer). */
export function checkNumInferenceSteps(name: string, n: number, numTrainTimesteps: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > numTrainTimesteps) {
    throw new RangeError(
      `${name}: numInferenceSteps must be an integer in [1, ${numTrainTimesteps}] ` +
        `(num_train_timesteps); got ${String(n)}`,
    );
  }
}

/** Throws unless setTimesteps() ran and 0 <= stepIndex < steps. */
export function checkStepIndex(name: string, stepIndex: number, steps: number): void {
  if (steps === 0) throw new Error(`${name}: call setTimesteps() before using the scheduler`);
  if (typeof stepIndex !== 'number' || !Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= steps) {
    throw new RangeError(
      `${name}: stepIndex must be an integer in [0, ${steps - 1}]; got ${String(stepIndex)}`,
    );
  }
}

/** Throws unless all arrays have the same length. */
export function checkSameLength(name: string, arrays: Record<string, Float32Array>): number {
  const entries = Object.entries(arrays);
  const n = entries[0][1].length;
  for (const [label, a] of entries) {
    if (a.length !== n) {
      const sizes = entries.map(([l, x]) => `${l} ${x.length}`).join(', ');
      throw new RangeError(`${name}: ${label} length differs from the others (${sizes})`);
    }
  }
  return n;
}

/** Checks that timesteps are valid train-timestep indices (steps_offset can push them out). */
export function checkTimestepRange(name: string, timesteps: readonly number[], T: number): void {
  for (const t of timesteps) {
    if (!(t >= 0 && t <= T - 1)) {
      throw new RangeError(
        `${name}: timestep ${t} is outside [0, ${T - 1}] for this step count ` +
          `(timestep_spacing and steps_offset push it out of the training schedule)`,
      );
    }
  }
}

/**
 * Base of the per-trajectory state objects: records the owning scheduler and the schedule
 * (setTimesteps generation) it was created for, so misuse fails loudly.
 */
export class OwnedSchedulerState implements SchedulerState {
  constructor(
    readonly schedulerName: SchedulerName,
    /** @internal */ readonly owner: object,
    /** @internal */ readonly generation: number,
  ) {}
}

/** Throws unless `state` was created by `owner` after its latest setTimesteps(). */
export function checkOwnedState<S extends OwnedSchedulerState>(
  owner: object & { readonly name: SchedulerName },
  generation: number,
  state: SchedulerState,
  ctor: abstract new (...args: never[]) => S,
): S {
  if (!(state instanceof ctor) || state.owner !== owner) {
    throw new TypeError(
      `${owner.name}: state was not created by this scheduler; use scheduler.createState() for each trajectory`,
    );
  }
  if (state.generation !== generation) {
    throw new Error(
      `${owner.name}: state was created before the latest setTimesteps(); create a new state with createState()`,
    );
  }
  return state;
}

/**
 * Variance-preserving noising to the level of one step: alpha * x0 + sigma * noise, with
 * (alpha, sigma) from the scheduler's alphaSigmaAt (DDIM and DPM-Solver share it).
 */
export function addNoiseVp(
  scheduler: Pick<DiffusionScheduler, 'name' | 'alphaSigmaAt'>,
  original: Float32Array,
  noise: Float32Array,
  stepIndex: number,
): Float32Array {
  const n = checkSameLength(scheduler.name, { original, noise });
  const { alpha, sigma } = scheduler.alphaSigmaAt(stepIndex);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = alpha * original[i] + sigma * noise[i];
  return out;
}
