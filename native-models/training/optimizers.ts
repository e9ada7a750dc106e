/**
 * Optimizers, learning-rate schedules, gradient clipping and an exponential moving average of
 * weights, all working in place on Float32Arrays.
 *
 * Parameters are identified by name ({@link ParameterTensor}); per-parameter state (Adam moments,
 * momentum buffers) is created lazily the first time a parameter receives a gradient. Every step
 * is a plain loop over each parameter: nothing is allocated once the state exists.
 *
 * State for checkpoints has two parts ({@link OptimizerState}): `meta`, a small JSON-friendly
 * object, and `buffers`, the Float32Arrays by name, meant to be stored in a safetensors file.
 *
 * @example
 * const params: ParameterTensor[] = [{ name: 'w', shape: [3, 2], data: new Float32Array(6) }];
 * const opt = new AdamW({ weightDecay: 0.01 });
 * const schedule = cosineWithWarmup({ lr: 1e-4, warmupSteps: 100, totalSteps: 10_000, minLr: 1e-6 });
 * const ema = new Ema(params, 0.999);
 * for (let step = 0; step < 10_000; step++) {
 *   const grads = computeGradients(params); // Map<string, Float32Array>
 *   const norm = clipGradNorm(grads, 1.0);
 *   if (!Number.isFinite(norm)) continue; // skip the step on overflow
 *   opt.step(params, grads, schedule(step));
 *   ema.update(params);
 * }
 * const { meta, buffers } = opt.state(); // meta -> JSON, buffers -> safetensors
 */

/** A named float32 parameter, updated in place by the optimizers. */
export interface ParameterTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * Gradients for a step: by parameter name, or an array aligned with the parameter list.
 * A parameter without a gradient (missing name, `undefined` entry) is left untouched and its
 * state does not advance, as in PyTorch when `p.grad is None`.
 */
export type Gradients = ReadonlyMap<string, Float32Array> | readonly (Float32Array | undefined)[];

/** The JSON part of an optimizer (or EMA) state. */
export interface OptimizerMeta {
  format: 'msp-optimizer-state';
  version: 1;
  type: 'AdamW' | 'SGD' | 'Ema';
  /** Calls to `step()` (or `update()` for the EMA). */
  stepCount: number;
  /** The hyperparameters in use when the state was taken (informational; see `loadState`). */
  hyperparameters: Record<string, number | boolean>;
  /** Per parameter with state: how many updates it received and its number of elements. */
  params: Record<string, { step: number; size: number }>;
}

/**
 * A checkpointable state: `meta` is JSON-serializable, `buffers` holds every Float32Array
 * (store them in safetensors; the names are listed in each class's documentation).
 */
export interface OptimizerState {
  meta: OptimizerMeta;
  buffers: Record<string, Float32Array>;
}

/**
 * What `loadState()` accepts: a state as saved, with `meta` typically parsed back from JSON
 * (checked at run time, so its static type is loose).
 */
export interface SavedOptimizerState {
  meta: object;
  buffers: Record<string, Float32Array>;
}

export interface StateOptions {
  /**
   * Copy the buffers (default true). With `false` the returned arrays are the live state and
   * change on the next step; fine when they are written out immediately.
   */
  copy?: boolean;
}

/** A state that does not fit the optimizer it is loaded into, or parameters that do not fit a state. */
export class OptimizerStateError extends Error {
  override name = 'OptimizerStateError';
}

const STATE_FORMAT = 'msp-optimizer-state';

function checkRange(name: string, value: number, min: number, max: number, maxInclusive = true): void {
  const ok = Number.isFinite(value) && value >= min && (maxInclusive ? value <= max : value < max);
  if (!ok) {
    const upper = max === Infinity ? '' : `, ${max}${maxInclusive ? ']' : ')'}`;
    throw new RangeError(`${name} must be in [${min}${upper || ', ∞)'}, got ${value}`);
  }
}

function gradientFor(grads: Gradients, param: ParameterTensor, index: number): Float32Array | undefined {
  const grad =
    grads instanceof Map ? grads.get(param.name) : (grads as readonly (Float32Array | undefined)[])[index];
  if (grad !== undefined && grad.length !== param.data.length) {
    throw new OptimizerStateError(
      `gradient of '${param.name}' has ${grad.length} elements, the parameter has ${param.data.length}`,
    );
  }
  return grad;
}

interface Slot {
  step: number;
  /** Number of elements of the parameter. */
  size: number;
  /** The `step()` call that last used this slot, to catch duplicate parameter names. */
  lastCall: number;
  buffers: Float32Array[];
}

/** What AdamW and SGD share: lazily created per-parameter slots, state save and load. */
abstract class SlotOptimizer {
  /** Number of calls to `step()`. */
  stepCount = 0;
  protected readonly slots = new Map<string, Slot>();
  protected abstract readonly type: 'AdamW' | 'SGD';
  /** Names of the per-parameter buffers, in slot order (e.g. `exp_avg`, `exp_avg_sq`). */
  protected abstract readonly bufferKinds: readonly string[];
  protected abstract hyperparameters(): Record<string, number | boolean>;

  /** Identifies the current `step()` call, to catch a parameter name listed twice. */
  private call = 0;

  /**
   * Checks a step's inputs before anything is modified (gradient sizes, state sizes, duplicate
   * names) and creates missing state, so that a step that throws leaves everything unchanged.
   */
  protected prepare(params: readonly ParameterTensor[], grads: Gradients): void {
    const call = ++this.call;
    for (let i = 0; i < params.length; i++) {
      const param = params[i];
      if (gradientFor(grads, param, i) === undefined) continue;
      let slot = this.slots.get(param.name);
      if (slot === undefined) {
        slot = {
          step: 0,
          size: param.data.length,
          lastCall: 0,
          buffers: this.bufferKinds.map(() => new Float32Array(param.data.length)),
        };
        this.slots.set(param.name, slot);
      } else if (slot.size !== param.data.length) {
        throw new OptimizerStateError(
          `parameter '${param.name}' has ${param.data.length} elements, its optimizer state has ${slot.size}`,
        );
      }
      if (slot.lastCall === call) {
        throw new OptimizerStateError(`parameter '${param.name}' appears twice in one step`);
      }
      slot.lastCall = call;
    }
  }

  protected slot(param: ParameterTensor): Slot {
    return this.slots.get(param.name) as Slot;
  }

  /**
   * The state for a checkpoint. Buffers are named `<kind>.<parameter name>`, e.g.
   * `exp_avg.unet.conv_in.weight`.
   */
  state(options: StateOptions = {}): OptimizerState {
    const copy = options.copy ?? true;
    const params: OptimizerMeta['params'] = {};
    const buffers: Record<string, Float32Array> = {};
    for (const [name, slot] of this.slots) {
      params[name] = { step: slot.step, size: slot.size };
      this.bufferKinds.forEach((kind, k) => {
        buffers[`${kind}.${name}`] = copy ? slot.buffers[k].slice() : slot.buffers[k];
      });
    }
    return {
      meta: {
        format: STATE_FORMAT,
        version: 1,
        type: this.type,
        stepCount: this.stepCount,
        hyperparameters: this.hyperparameters(),
        params,
      },
      buffers,
    };
  }

  /**
   * Restores a state taken with `state()` (the buffers are copied). The optimizer keeps its own
   * hyperparameters: those in `meta` are informational, so a resumed run may change them.
   * Throws an {@link OptimizerStateError} when the state is from another optimizer type or a
   * buffer is missing or has the wrong size.
   */
  loadState(state: SavedOptimizerState): void {
    const { slots, stepCount } = loadSlots(state, this.type, this.bufferKinds);
    this.slots.clear();
    for (const [name, slot] of slots) this.slots.set(name, slot);
    this.stepCount = stepCount;
  }
}

function loadSlots(
  state: SavedOptimizerState,
  type: OptimizerMeta['type'],
  kinds: readonly string[],
): { slots: Map<string, Slot>; stepCount: number } {
  const meta = (state?.meta ?? {}) as Partial<OptimizerMeta>;
  const buffers = state?.buffers ?? {};
  if (meta.format !== STATE_FORMAT || meta.version !== 1) {
    throw new OptimizerStateError(
      `not an optimizer state (format ${String(meta.format)}, version ${String(meta.version)})`,
    );
  }
  if (meta.type !== type)
    throw new OptimizerStateError(`cannot load a ${String(meta.type)} state into ${type}`);
  const stepCount = meta.stepCount;
  if (typeof stepCount !== 'number' || !Number.isInteger(stepCount) || stepCount < 0) {
    throw new OptimizerStateError(`invalid stepCount ${String(stepCount)}`);
  }
  if (typeof meta.params !== 'object' || meta.params === null) {
    throw new OptimizerStateError('the state has no parameter table');
  }
  const slots = new Map<string, Slot>();
  for (const [name, info] of Object.entries(meta.params)) {
    if (
      typeof info !== 'object' ||
      info === null ||
      !Number.isInteger(info.step) ||
      info.step < 0 ||
      !Number.isInteger(info.size) ||
      info.size < 0
    ) {
      throw new OptimizerStateError(`invalid state entry for '${name}': ${JSON.stringify(info)}`);
    }
    const slotBuffers = kinds.map((kind) => {
      const key = type === 'Ema' ? name : `${kind}.${name}`;
      const buffer = buffers[key];
      if (!(buffer instanceof Float32Array))
        throw new OptimizerStateError(`state buffer '${key}' is missing`);
      if (buffer.length !== info.size) {
        throw new OptimizerStateError(
          `state buffer '${key}' has ${buffer.length} elements, expected ${info.size}`,
        );
      }
      return buffer.slice();
    });
    slots.set(name, { step: info.step, size: info.size, lastCall: 0, buffers: slotBuffers });
  }
  return { slots, stepCount };
}

export interface AdamWOptions {
  /** Learning rate used when `step()` is called without one (default 1e-3). */
  lr?: number;
  /** Decay of the first moment (default 0.9). */
  beta1?: number;
  /** Decay of the second moment (default 0.999). */
  beta2?: number;
  /** Added to the bias-corrected sqrt of the second moment (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay coefficient (default 0.01), applied as `p -= lr * weightDecay * p`. */
  weightDecay?: number;
  /**
   * Parameters that get no weight decay, commonly biases and normalization scales
   * (e.g. `(p) => p.shape.length <= 1`). Default: every parameter is decayed.
   */
  noWeightDecay?: (param: ParameterTensor) => boolean;
}

/**
 * Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
 * 2019), with the same update as PyTorch's `torch.optim.AdamW` (amsgrad off). For each parameter
 * with gradient g, at its t-th update:
 *
 *     p = p * (1 - lr * weightDecay)
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g^2
 *     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * State buffers: `exp_avg.<name>` (m) and `exp_avg_sq.<name>` (v).
 *
 * @example
 * const opt = new AdamW({ beta2: 0.99, weightDecay: 1e-2 });
 * opt.step(params, grads, 1e-4);
 */
export class AdamW extends SlotOptimizer {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly noWeightDecay: ((param: ParameterTensor) => boolean) | undefined;
  protected readonly type = 'AdamW';
  protected readonly bufferKinds = ['exp_avg', 'exp_avg_sq'] as const;

  constructor(options: AdamWOptions = {}) {
    super();
    this.lr = options.lr ?? 1e-3;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.noWeightDecay = options.noWeightDecay;
    checkRange('lr', this.lr, 0, Infinity);
    checkRange('beta1', this.beta1, 0, 1, false);
    checkRange('beta2', this.beta2, 0, 1, false);
    checkRange('eps', this.eps, 0, Infinity);
    checkRange('weightDecay', this.weightDecay, 0, Infinity);
  }

  protected hyperparameters(): Record<string, number> {
    return {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
    };
  }

  /** One update of every parameter that has a gradient, in place. */
  step(params: readonly ParameterTensor[], grads: Gradients, lr: number = this.lr): void {
    checkRange('lr', lr, 0, Infinity);
    const { beta1, beta2, eps } = this;
    const oneMinusBeta1 = 1 - beta1;
    const oneMinusBeta2 = 1 - beta2;
    this.prepare(params, grads);
    for (let i = 0; i < params.length; i++) {
      const param = params[i];
      const g = gradientFor(grads, param, i);
      if (g === undefined) continue;
      const slot = this.slot(param);
      const t = ++slot.step;
      const m = slot.buffers[0];
      const v = slot.buffers[1];
      const p = param.data;
      const stepSize = lr / (1 - beta1 ** t);
      const invSqrtBias2 = 1 / Math.sqrt(1 - beta2 ** t);
      const decayed = this.noWeightDecay?.(param) ? 0 : this.weightDecay;
      const keep = 1 - lr * decayed;
      const n = p.length;
      for (let j = 0; j < n; j++) {
        const gj = g[j];
        const mj = beta1 * m[j] + oneMinusBeta1 * gj;
        const vj = beta2 * v[j] + oneMinusBeta2 * gj * gj;
        m[j] = mj;
        v[j] = vj;
        p[j] = p[j] * keep - (stepSize * mj) / (Math.sqrt(vj) * invSqrtBias2 + eps);
      }
    }
    this.stepCount++;
  }
}

export interface SGDOptions {
  /** Learning rate used when `step()` is called without one (default 1e-2). */
  lr?: number;
  /** Momentum factor (default 0: plain SGD, no state). */
  momentum?: number;
  /** Dampening of the gradient's contribution to the momentum buffer (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient, `g + weightDecay * p` (default 0). */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with optional momentum, Nesterov momentum and (coupled, L2)
 * weight decay; the update of PyTorch's `torch.optim.SGD`:
 *
 *     d = g + weightDecay * p
 *     b = d on the first update, else momentum * b + (1 - dampening) * d    (when momentum > 0)
 *     d = nesterov ? d + momentum * b : b                                   (when momentum > 0)
 *     p = p - lr * d
 *
 * State buffers (momentum > 0 only): `momentum_buffer.<name>`.
 *
 * @example
 * const opt = new SGD({ momentum: 0.9, nesterov: true });
 * opt.step(params, grads, 0.05);
 */
export class SGD extends SlotOptimizer {
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  protected readonly type = 'SGD';
  protected readonly bufferKinds: readonly string[];

  constructor(options: SGDOptions = {}) {
    super();
    this.lr = options.lr ?? 1e-2;
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    this.weightDecay = options.weightDecay ?? 0;
    checkRange('lr', this.lr, 0, Infinity);
    checkRange('momentum', this.momentum, 0, Infinity);
    checkRange('dampening', this.dampening, 0, 1);
    checkRange('weightDecay', this.weightDecay, 0, Infinity);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError('Nesterov momentum needs momentum > 0 and dampening 0');
    }
    this.bufferKinds = this.momentum > 0 ? ['momentum_buffer'] : [];
  }

  protected hyperparameters(): Record<string, number | boolean> {
    return {
      lr: this.lr,
      momentum: this.momentum,
      dampening: this.dampening,
      nesterov: this.nesterov,
      weightDecay: this.weightDecay,
    };
  }

  /** One update of every parameter that has a gradient, in place. */
  step(params: readonly ParameterTensor[], grads: Gradients, lr: number = this.lr): void {
    checkRange('lr', lr, 0, Infinity);
    const { momentum, weightDecay: wd, nesterov } = this;
    const inflow = 1 - this.dampening;
    this.prepare(params, grads);
    for (let i = 0; i < params.length; i++) {
      const param = params[i];
      const g = gradientFor(grads, param, i);
      if (g === undefined) continue;
      const slot = this.slot(param);
      const first = slot.step === 0;
      slot.step++;
      const p = param.data;
      const n = p.length;
      if (momentum === 0) {
        for (let j = 0; j < n; j++) p[j] -= lr * (g[j] + wd * p[j]);
        continue;
      }
      const b = slot.buffers[0];
      for (let j = 0; j < n; j++) {
        const d = g[j] + wd * p[j];
        const bj = first ? d : momentum * b[j] + inflow * d;
        b[j] = bj;
        p[j] -= lr * (nesterov ? d + momentum * bj : bj);
      }
    }
    this.stepCount++;
  }
}

/**
 * Scales all gradients in place so that their global L2 norm (over every array together) is at
 * most `maxNorm`, as PyTorch's `clip_grad_norm_` does (scale = maxNorm / (norm + 1e-6)).
 * Returns the norm before clipping. A NaN or infinite norm is returned as is and nothing is
 * scaled, so the caller can skip the step.
 *
 * @example
 * const norm = clipGradNorm(grads, 1.0);
 * if (Number.isFinite(norm)) opt.step(params, grads, lr);
 */
export function clipGradNorm(
  grads: ReadonlyMap<string, Float32Array> | Iterable<Float32Array | undefined>,
  maxNorm: number,
): number {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be positive, got ${maxNorm}`);
  const arrays = grads instanceof Map ? grads.values() : (grads as Iterable<Float32Array | undefined>);
  const list: Float32Array[] = [];
  let sumSquares = 0;
  for (const g of arrays) {
    if (g === undefined) continue;
    list.push(g);
    let s = 0;
    for (let j = 0; j < g.length; j++) s += g[j] * g[j];
    sumSquares += s;
  }
  const norm = Math.sqrt(sumSquares);
  if (!Number.isFinite(norm)) return norm;
  if (norm > maxNorm) {
    const scale = maxNorm / (norm + 1e-6);
    for (const g of list) for (let j = 0; j < g.length; j++) g[j] *= scale;
  }
  return norm;
}

/** A learning-rate schedule: the rate for the optimizer step with 0-based index `step`. */
export type LrSchedule = (step: number) => number;

function warmupFactor(step: number, warmupSteps: number): number {
  return warmupSteps > 0 && step < warmupSteps ? (step + 1) / warmupSteps : 1;
}

function checkSchedule(lr: number, warmupSteps: number): void {
  checkRange('lr', lr, 0, Infinity);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
}

/**
 * Linear warmup to `lr` over `warmupSteps` steps (step s < warmupSteps gets lr * (s + 1) / warmupSteps,
 * so the first step is not wasted at 0), then constant.
 *
 * @example
 * const schedule = constantWithWarmup({ lr: 1e-4, warmupSteps: 500 });
 * schedule(0); // 2e-7
 * schedule(499); // 1e-4
 */
export function constantWithWarmup({ lr, warmupSteps }: { lr: number; warmupSteps: number }): LrSchedule {
  checkSchedule(lr, warmupSteps);
  return (step) => lr * warmupFactor(step, warmupSteps);
}

/**
 * Linear warmup (as {@link constantWithWarmup}), then a half-cosine from `lr` down to `minLr`
 * at `totalSteps`; `minLr` after that.
 *
 *     lr(s) = minLr + (lr - minLr) * (1 + cos(pi * (s - warmupSteps) / (totalSteps - warmupSteps))) / 2
 *
 * @example
 * const schedule = cosineWithWarmup({ lr: 1e-4, warmupSteps: 100, totalSteps: 1000, minLr: 1e-6 });
 * schedule(550); // ≈ 5.05e-5 (halfway down)
 */
export function cosineWithWarmup({
  lr,
  warmupSteps,
  totalSteps,
  minLr = 0,
}: {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLr?: number;
}): LrSchedule {
  checkSchedule(lr, warmupSteps);
  checkRange('minLr', minLr, 0, lr);
  if (!Number.isInteger(totalSteps) || totalSteps < warmupSteps) {
    throw new RangeError(`totalSteps must be an integer >= warmupSteps (${warmupSteps}), got ${totalSteps}`);
  }
  const decaySteps = Math.max(1, totalSteps - warmupSteps);
  return (step) => {
    if (step < warmupSteps) return lr * warmupFactor(step, warmupSteps);
    const progress = Math.min(1, (step - warmupSteps) / decaySteps);
    return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

export interface EmaOptions {
  /**
   * Ramp the decay up early in training, decay_t = min(decay, (1 + t) / (10 + t)) where t is
   * the number of earlier updates, as diffusion training scripts commonly do (default true).
   * Without it the decay is constant, and the average stays close to the initial weights for
   * about 1 / (1 - decay) updates.
   */
  warmup?: boolean;
}

/**
 * An exponential moving average of the weights: after each optimizer step,
 * `shadow = d * shadow + (1 - d) * param`. The shadow starts as a copy of the parameters.
 *
 * State: `meta.stepCount` counts updates; the buffers are the shadow weights keyed by the
 * parameter names themselves, so `state().buffers` can be saved directly as a model file.
 *
 * @example
 * const ema = new Ema(params, 0.9999);
 * // ... after every opt.step(params, grads, lr):
 * ema.update(params);
 * // for evaluation or export:
 * ema.copyTo(evalParams);
 */
export class Ema {
  readonly decay: number;
  readonly warmup: boolean;
  /** Number of calls to `update()`. */
  stepCount = 0;
  private readonly shadow = new Map<string, Float32Array>();

  constructor(params: readonly ParameterTensor[], decay = 0.9999, options: EmaOptions = {}) {
    checkRange('decay', decay, 0, 1);
    this.decay = decay;
    this.warmup = options.warmup ?? true;
    for (const p of params) this.shadow.set(p.name, p.data.slice());
  }

  /** The decay that the next `update()` uses. */
  currentDecay(): number {
    if (!this.warmup) return this.decay;
    const t = this.stepCount;
    return Math.min(this.decay, (1 + t) / (10 + t));
  }

  /** Moves the average towards `params`. Parameters not seen before start as a copy. */
  update(params: readonly ParameterTensor[]): void {
    const d = this.currentDecay();
    const rate = 1 - d;
    for (const param of params) {
      const s = this.shadow.get(param.name);
      const p = param.data;
      if (s === undefined) {
        this.shadow.set(param.name, p.slice());
        continue;
      }
      if (s.length !== p.length) {
        throw new OptimizerStateError(
          `parameter '${param.name}' has ${p.length} elements, its average has ${s.length}`,
        );
      }
      for (let j = 0; j < p.length; j++) s[j] += rate * (p[j] - s[j]);
    }
    this.stepCount++;
  }

  /** Writes the averaged weights into `params` (by name; names without an average are skipped). */
  copyTo(params: readonly ParameterTensor[]): void {
    for (const param of params) {
      const s = this.shadow.get(param.name);
      if (s === undefined) continue;
      if (s.length !== param.data.length) {
        throw new OptimizerStateError(
          `parameter '${param.name}' has ${param.data.length} elements, its average has ${s.length}`,
        );
      }
      param.data.set(s);
    }
  }

  /** The averaged weights of one parameter (live; do not modify), or undefined. */
  get(name: string): Float32Array | undefined {
    return this.shadow.get(name);
  }

  /** The state for a checkpoint; buffers are keyed by parameter name. */
  state(options: StateOptions = {}): OptimizerState {
    const copy = options.copy ?? true;
    const params: OptimizerMeta['params'] = {};
    const buffers: Record<string, Float32Array> = {};
    for (const [name, s] of this.shadow) {
      params[name] = { step: this.stepCount, size: s.length };
      buffers[name] = copy ? s.slice() : s;
    }
    return {
      meta: {
        format: STATE_FORMAT,
        version: 1,
        type: 'Ema',
        stepCount: this.stepCount,
        hyperparameters: { decay: this.decay, warmup: this.warmup },
        params,
      },
      buffers,
    };
  }

  /** Restores a state taken with `state()` (copying the buffers); decay and warmup stay as constructed. */
  loadState(state: SavedOptimizerState): void {
    const { slots, stepCount } = loadSlots(state, 'Ema', ['shadow']);
    this.shadow.clear();
    for (const [name, slot] of slots) this.shadow.set(name, slot.buffers[0]);
    this.stepCount = stepCount;
  }
}
