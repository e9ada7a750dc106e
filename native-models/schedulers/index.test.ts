import { describe, expect, it } from 'vitest';

import { Rng } from '../tensor/random.js';
import {
  DEFAULT_SCHEDULER_CONFIG,
  SCHEDULER_NAMES,
  SchedulerConfigError,
  createScheduler,
  isSchedulerName,
} from './index.js';
import type { DiffusionScheduler, PredictionType, SchedulerConfig, SchedulerName } from './index.js';

const SD = DEFAULT_SCHEDULER_CONFIG;
const cfg = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD, ...over });

/** Schedulers whose full run ends exactly at sigma = 0 with the given config. */
function make(name: SchedulerName, over: Partial<SchedulerConfig> = {}, steps = 25): DiffusionScheduler {
  // DDIM only reaches abar = 1 at the end with set_alpha_to_one (see ddim.test.ts for SD's default).
  const s = createScheduler(name, cfg({ setAlphaToOne: name === 'ddim', ...over }));
  s.setTimesteps(steps);
  return s;
}

function fixedX0(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) * 0.9 + 0.05 * (i % 3));
}

/**
 * Runs a whole trajectory where the "model" knows x0: at each step it returns the exact epsilon
 * (or v, or x0) for the scheduler's own alpha/sigma and model input.
 */
function analyticRun(
  s: DiffusionScheduler,
  x0: Float32Array,
  noise: Float32Array,
  prediction: PredictionType,
  rng?: Rng,
): { final: Float32Array; lastPred: Float32Array } {
  const state = s.createState();
  let x: Float32Array = noise.map((v) => v * s.initNoiseSigma);
  let lastPred: Float32Array = new Float32Array(x.length);
  for (let i = 0; i < s.timesteps.length; i++) {
    const xin = s.scaleModelInput(x, i);
    const { alpha, sigma } = s.alphaSigmaAt(i);
    const out = new Float32Array(x.length);
    for (let j = 0; j < x.length; j++) {
      const eps = (xin[j] - alpha * x0[j]) / sigma;
      out[j] =
        prediction === 'epsilon' ? eps : prediction === 'v_prediction' ? alpha * eps - sigma * x0[j] : x0[j];
    }
    const r = s.step(state, out, i, x, rng);
    x = r.prevSample;
    lastPred = r.predOriginalSample;
  }
  return { final: x, lastPred };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A smooth nonlinear stand-in for a UNet (as in the numpy cross-check). */
function toyModel(xin: Float32Array, t: number, prediction: PredictionType): Float32Array {
  return xin.map((v) => {
    const m = 0.3 * Math.tanh(v) + 0.1 * Math.sin(3 * v + t / 100);
    return prediction === 'epsilon' ? m : prediction === 'sample' ? 2 * m : m - 0.2 * v;
  });
}

describe('createScheduler', () => {
  it('creates each named scheduler', () => {
    for (const name of SCHEDULER_NAMES) {
      const s = createScheduler(name, SD);
      expect(s.name).toBe(name);
      expect(s.timesteps).toEqual([]);
      expect(s.alphasCumprod.length).toBe(1000);
    }
    expect(createScheduler('dpmpp_2m_karras', SD).config.useKarrasSigmas).toBe(true);
    expect(createScheduler('dpmpp_2m', SD).config.useKarrasSigmas).toBe(false);
    expect(isSchedulerName('euler')).toBe(true);
    expect(isSchedulerName('pndm')).toBe(false);
  });

  it('rejects unknown names with the list of valid ones', () => {
    expect(() => createScheduler('x', SD)).toThrow(
      'unknown scheduler "x"; expected one of ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras',
    );
    expect(() => createScheduler('DDIM', SD)).toThrow(/unknown scheduler "DDIM"/);
  });

  it('rejects bad configs built in code', () => {
    for (const name of SCHEDULER_NAMES) {
      expect(() => createScheduler(name, cfg({ numTrainTimesteps: 'x' as unknown as number }))).toThrow(
        SchedulerConfigError,
      );
      expect(() => createScheduler(name, cfg({ predictionType: 'eps' as PredictionType }))).toThrow(
        /"predictionType" must be one of/,
      );
    }
  });
});

describe.each(SCHEDULER_NAMES)('%s: common behaviour', (name) => {
  const rngFor = () => (name === 'euler_a' ? new Rng(1234) : undefined);

  it.each(['epsilon', 'v_prediction', 'sample'] as const)(
    'recovers x0 on the analytic problem (%s)',
    (pred) => {
      for (const spacing of ['leading', 'linspace', 'trailing'] as const) {
        for (const steps of [1, 2, 10, 25, 50]) {
          const s = make(name, { predictionType: pred, timestepSpacing: spacing }, steps);
          const x0 = fixedX0(64);
          const noise = new Rng(7).randn(64);
          const { final } = analyticRun(s, x0, noise, pred, rngFor());
          expect(maxAbsDiff(final, x0), `${spacing} ${steps}`).toBeLessThan(1e-3);
        }
      }
    },
  );

  it('recovers x0 with Karras sigmas where supported', () => {
    const s = make(name, { useKarrasSigmas: true }, 20);
    const x0 = fixedX0(32);
    const { final } = analyticRun(s, x0, new Rng(3).randn(32), 'epsilon', rngFor());
    expect(maxAbsDiff(final, x0)).toBeLessThan(1e-3);
  });

  it('runs independent states side by side exactly like separate schedulers', () => {
    const steps = 12;
    const shared = make(name, {}, steps);
    const sepA = make(name, {}, steps);
    const sepB = make(name, {}, steps);
    const stA = shared.createState();
    const stB = shared.createState();
    const stSepA = sepA.createState();
    const stSepB = sepB.createState();
    const rngA = new Rng(11);
    const rngB = new Rng(22);
    const rngSepA = new Rng(11);
    const rngSepB = new Rng(22);
    let a: Float32Array = new Rng(1).randn(48).map((v) => v * shared.initNoiseSigma);
    let b: Float32Array = new Rng(2).randn(48).map((v) => v * shared.initNoiseSigma);
    let sa: Float32Array = a.slice();
    let sb: Float32Array = b.slice();
    for (let i = 0; i < steps; i++) {
      const t = shared.timesteps[i];
      // Interleave: A then B on the shared scheduler.
      a = shared.step(stA, toyModel(shared.scaleModelInput(a, i), t, 'epsilon'), i, a, rngA).prevSample;
      b = shared.step(stB, toyModel(shared.scaleModelInput(b, i), t, 'epsilon'), i, b, rngB).prevSample;
      sa = sepA.step(stSepA, toyModel(sepA.scaleModelInput(sa, i), t, 'epsilon'), i, sa, rngSepA).prevSample;
      sb = sepB.step(stSepB, toyModel(sepB.scaleModelInput(sb, i), t, 'epsilon'), i, sb, rngSepB).prevSample;
    }
    expect(Array.from(a)).toEqual(Array.from(sa));
    expect(Array.from(b)).toEqual(Array.from(sb));
    expect(maxAbsDiff(a, b)).toBeGreaterThan(0.01);
  });

  it('addNoise, scaleModelInput and alphaSigmaAt agree', () => {
    const s = make(name, {}, 20);
    const x0 = fixedX0(16);
    const eps = new Rng(5).randn(16);
    for (const i of [0, 7, 19]) {
      const noisy = s.addNoise(x0, eps, i);
      const xin = s.scaleModelInput(noisy, i);
      const { alpha, sigma } = s.alphaSigmaAt(i);
      expect(alpha * alpha + sigma * sigma).toBeCloseTo(1, 12);
      const expected = x0.map((v, j) => alpha * v + sigma * eps[j]);
      expect(maxAbsDiff(xin, expected)).toBeLessThan(1e-5);
      // The timestep handed to the UNet matches the noise level (abar of the integer timestep).
      if (!s.config.useKarrasSigmas) {
        const abar = s.alphasCumprod[s.timesteps[i]];
        expect(alpha).toBeCloseTo(Math.sqrt(abar), name === 'ddim' ? 12 : 2);
      }
    }
    // Noising a latent to step 0 of a full run is as noisy as the initial latents.
    const { alpha, sigma } = s.alphaSigmaAt(0);
    expect(sigma / alpha).toBeGreaterThan(10);
  });

  it('validates step counts, indices, lengths and states', () => {
    const s = createScheduler(name, SD);
    expect(() => s.createState()).toThrow(/call setTimesteps\(\)/);
    expect(() => s.alphaSigmaAt(0)).toThrow(/call setTimesteps\(\)/);
    expect(() => s.setTimesteps(0)).toThrow(/numInferenceSteps must be an integer in \[1, 1000\].*; got 0/);
    expect(() => s.setTimesteps(1001)).toThrow(/got 1001/);
    expect(() => s.setTimesteps(2.5)).toThrow(RangeError);
    expect(() => s.setTimesteps(Number.NaN)).toThrow(RangeError);
    s.setTimesteps(10);
    expect(s.timesteps.length).toBe(10);
    const st = s.createState();
    const x = new Float32Array(4);
    const rng = new Rng(1);
    expect(() => s.step(st, x, -1, x, rng)).toThrow(/stepIndex must be an integer in \[0, 9\]; got -1/);
    expect(() => s.step(st, x, 10, x, rng)).toThrow(/got 10/);
    expect(() => s.scaleModelInput(x, 10)).toThrow(RangeError);
    expect(() => s.addNoise(x, x, 1.5)).toThrow(RangeError);
    expect(() => s.step(st, new Float32Array(3), 0, x, rng)).toThrow(/length differs/);
    expect(() => s.addNoise(x, new Float32Array(5), 0)).toThrow(/length differs/);
    const other = createScheduler(name, SD);
    other.setTimesteps(10);
    expect(() => s.step(other.createState(), x, 0, x, rng)).toThrow(
      /state was not created by this scheduler/,
    );
    s.setTimesteps(10);
    expect(() => s.step(st, x, 0, x, rng)).toThrow(/created before the latest setTimesteps/);
  });

  it('accepts the full 1000-step schedule without leaving the train range', () => {
    const s = createScheduler(name, cfg({ stepsOffset: 0 }));
    s.setTimesteps(1000);
    expect(Math.max(...s.timesteps)).toBeLessThanOrEqual(999);
    expect(Math.min(...s.timesteps)).toBeGreaterThanOrEqual(0);
  });
});

describe('ODE accuracy on Gaussian data (closed-form probability-flow solution)', () => {
  // x0 ~ N(0, c^2): E[x0 | x_t] = alpha c^2 / (alpha^2 c^2 + sigma^2) x_t, and the probability-flow
  // ODE keeps x_t / sqrt(alpha^2 c^2 + sigma^2) constant in the VP (model input) space. Compare
  // each sampler's latent at the last nonzero noise level (before the final denoising jump, which
  // returns E[x0 | x] rather than the ODE endpoint) with the exact ODE solution there. 'leading'
  // spacing keeps DDIM's t - T // n predecessor equal to the next timestep.
  const c = 0.5;
  function odeError(name: SchedulerName, steps: number): number {
    const s = make(name, { timestepSpacing: 'leading' }, steps);
    const state = s.createState();
    let x: Float32Array = new Rng(9).randn(256).map((v) => v * s.initNoiseSigma);
    const first = s.alphaSigmaAt(0);
    const invariant = s
      .scaleModelInput(x, 0)
      .map((v) => v / Math.sqrt(first.alpha ** 2 * c * c + first.sigma ** 2));
    for (let i = 0; i < steps - 1; i++) {
      const xin = s.scaleModelInput(x, i);
      const { alpha, sigma } = s.alphaSigmaAt(i);
      const eps = xin.map((v) => {
        const x0hat = ((alpha * c * c) / (alpha * alpha * c * c + sigma * sigma)) * v;
        return (v - alpha * x0hat) / sigma;
      });
      x = s.step(state, eps, i, x).prevSample;
    }
    const last = s.alphaSigmaAt(steps - 1);
    const exact = invariant.map((v) => v * Math.sqrt(last.alpha ** 2 * c * c + last.sigma ** 2));
    return maxAbsDiff(s.scaleModelInput(x, steps - 1), exact);
  }

  it('DPM-Solver++ 2M is far more accurate than the first-order samplers', () => {
    for (const n of [10, 20, 40]) {
      const dpm = odeError('dpmpp_2m', n);
      const euler = odeError('euler', n);
      expect(dpm, `n = ${n}`).toBeLessThan(0.015);
      expect(dpm, `n = ${n}`).toBeLessThan(0.1 * euler);
    }
    // First-order error halves when the steps double.
    expect(odeError('euler', 20)).toBeLessThan(0.6 * odeError('euler', 10));
  });

  it('DDIM is the Euler method in (x / alpha, sigma / alpha) coordinates: same trajectory', () => {
    for (const n of [10, 20]) {
      expect(Math.abs(odeError('ddim', n) - odeError('euler', n))).toBeLessThan(1e-5);
    }
  });
});

describe('golden trajectories', () => {
  // Final latents of a 5-step run ('linspace' spacing, epsilon, the toy model, initial latents
  // linspace(-2, 2, 16) * initNoiseSigma, euler_a with Rng(7)), computed once by an independent
  // numpy model of the diffusers formulas; elements 0, 5, 10, 15.
  const golden: [SchedulerName, boolean, number[]][] = [
    ['ddim', false, [-15.873795509338379, -5.31184196472168, 4.6981401443481445, 16.734325408935547]],
    ['euler', false, [-24.2989559173584, -7.951410293579102, 7.099850654602051, 24.853364944458008]],
    ['euler', true, [-23.831775665283203, -7.987595558166504, 7.076898574829102, 25.414339065551758]],
    ['euler_a', false, [-31.321748733520508, -9.362375259399414, 3.8407814502716064, 32.39331817626953]],
    ['dpmpp_2m', false, [-24.3286075592041, -7.623576641082764, 6.725505352020264, 25.65745735168457]],
    [
      'dpmpp_2m_karras',
      false,
      [-23.856672286987305, -7.4433722496032715, 6.411777019500732, 25.49989128112793],
    ],
  ];
  it.each(golden)('%s (karras %s)', (name, karras, expected) => {
    const s = createScheduler(name, cfg({ timestepSpacing: 'linspace', useKarrasSigmas: karras }));
    s.setTimesteps(5);
    const st = s.createState();
    const rng = new Rng(7);
    let x: Float32Array = Float32Array.from({ length: 16 }, (_, i) => (-2 + (4 * i) / 15) * s.initNoiseSigma);
    for (let i = 0; i < 5; i++) {
      x = s.step(st, toyModel(s.scaleModelInput(x, i), s.timesteps[i], 'epsilon'), i, x, rng).prevSample;
    }
    const got = [x[0], x[5], x[10], x[15]];
    for (let k = 0; k < 4; k++) expect(Math.abs(got[k] - expected[k])).toBeLessThan(1e-4);
  });
});
