import { describe, expect, it } from 'vitest';

import { Rng } from '../tensor/random.js';
import { EulerDiscreteScheduler, veDenoised } from './euler.js';
import { DEFAULT_SCHEDULER_CONFIG, alphasCumprodFor, sigmaToT, trainSigmasFor } from './scheduler.js';
import type { SchedulerConfig } from './scheduler.js';

const SD = DEFAULT_SCHEDULER_CONFIG;
const cfg = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD, ...over });
const TRAIN_SIGMAS = trainSigmasFor(alphasCumprodFor(SD));
const SIGMA_MAX = 14.614641229333639; // sqrt((1 - abar_999) / abar_999) for SD
const SIGMA_MIN = 0.029167158151720367; // sqrt((1 - abar_0) / abar_0)

function euler(over: Partial<SchedulerConfig>, steps: number): EulerDiscreteScheduler {
  const s = new EulerDiscreteScheduler(cfg(over));
  s.setTimesteps(steps);
  return s;
}

describe('EulerDiscreteScheduler schedule', () => {
  it('SD 1.5 sigma range', () => {
    expect(TRAIN_SIGMAS[999]).toBeCloseTo(SIGMA_MAX, 10);
    expect(TRAIN_SIGMAS[0]).toBeCloseTo(SIGMA_MIN, 12);
  });

  it('init_noise_sigma: max sigma for linspace/trailing, sqrt(max^2 + 1) for leading', () => {
    // 'linspace' starts at t = 999: init_noise_sigma = sigma_max = 14.6146
    const lin = euler({ timestepSpacing: 'linspace' }, 50);
    expect(lin.initNoiseSigma).toBeCloseTo(14.6146, 4);
    expect(lin.initNoiseSigma).toBeCloseTo(SIGMA_MAX, 10);
    expect(euler({ timestepSpacing: 'trailing' }, 50).initNoiseSigma).toBeCloseTo(SIGMA_MAX, 10);
    // SD 1.5's own config ('leading', steps_offset 1) starts at t = 981.
    const lead = euler({}, 50);
    expect(lead.timesteps[0]).toBe(981);
    expect(lead.initNoiseSigma).toBeCloseTo(Math.sqrt(TRAIN_SIGMAS[981] ** 2 + 1), 12);
    expect(lead.initNoiseSigma).toBeCloseTo(13.158464122127848, 9);
  });

  it('interpolates sigmas at fractional linspace timesteps and ends with sigma 0', () => {
    const s = euler({ timestepSpacing: 'linspace' }, 50);
    const ft = s.fractionalTimesteps;
    expect(ft[0]).toBe(999);
    expect(ft[1]).toBeCloseTo(999 - 999 / 49, 10); // 978.6122...
    expect(s.timesteps[1]).toBe(979);
    expect(ft[49]).toBe(0);
    const sig = s.sigmas;
    expect(sig.length).toBe(51);
    expect(sig[50]).toBe(0);
    expect(sig[0]).toBeCloseTo(SIGMA_MAX, 10);
    const w = ft[1] - 978;
    expect(sig[1]).toBeCloseTo(TRAIN_SIGMAS[978] + w * (TRAIN_SIGMAS[979] - TRAIN_SIGMAS[978]), 12);
    expect(sig[49]).toBeCloseTo(SIGMA_MIN, 12);
  });

  it('leading and trailing timesteps are integers', () => {
    expect(euler({}, 4).timesteps).toEqual([751, 501, 251, 1]);
    expect(euler({}, 4).fractionalTimesteps).toEqual([751, 501, 251, 1]);
    expect(euler({ timestepSpacing: 'trailing' }, 4).timesteps).toEqual([999, 749, 499, 249]);
    expect(euler({}, 4).sigmas[2]).toBeCloseTo(TRAIN_SIGMAS[251], 12);
  });

  it('Karras sigmas span the first and last interpolated sigma with rho = 7', () => {
    const n = 20;
    const s = euler({ timestepSpacing: 'linspace', useKarrasSigmas: true }, n);
    const sig = s.sigmas;
    expect(sig[0]).toBe(TRAIN_SIGMAS[999]);
    expect(sig[n - 1]).toBe(TRAIN_SIGMAS[0]);
    expect(sig[n]).toBe(0);
    const inv = (x: number) => x ** (1 / 7);
    for (let i = 0; i < n; i++) {
      const expected = (inv(SIGMA_MAX) + (i / (n - 1)) * (inv(SIGMA_MIN) - inv(SIGMA_MAX))) ** 7;
      expect(sig[i]).toBeCloseTo(expected, 9);
    }
    // Timesteps are the fractional train timesteps of those sigmas; the UNet gets them rounded.
    const logSigmas = TRAIN_SIGMAS.map(Math.log);
    s.fractionalTimesteps.forEach((t, i) => {
      expect(t).toBeCloseTo(sigmaToT(sig[i], logSigmas), 12);
      expect(s.timesteps[i]).toBe(Math.round(t));
    });
    expect(s.timesteps[0]).toBe(999);
    expect(s.timesteps[n - 1]).toBe(0);
    // With 'leading' the Karras range is that of the leading timesteps (951 .. 1 for 20 steps).
    const lead = euler({ useKarrasSigmas: true }, n);
    expect(lead.sigmas[0]).toBeCloseTo(TRAIN_SIGMAS[951], 12);
    expect(lead.sigmas[n - 1]).toBeCloseTo(TRAIN_SIGMAS[1], 12);
  });
});

describe('EulerDiscreteScheduler.step', () => {
  it('scaleModelInput divides by sqrt(sigma^2 + 1); addNoise is x + sigma n', () => {
    const s = euler({}, 10);
    const sig = s.sigmas[3];
    const x = Float32Array.from([2, -4]);
    const scaled = s.scaleModelInput(x, 3);
    expect(scaled).not.toBe(x);
    expect(scaled[0]).toBeCloseTo(2 / Math.sqrt(sig * sig + 1), 6);
    const noisy = s.addNoise(x, Float32Array.from([1, 1]), 3);
    expect(noisy[0]).toBeCloseTo(2 + sig, 5);
    expect(noisy[1]).toBeCloseTo(-4 + sig, 5);
    const { alpha, sigma } = s.alphaSigmaAt(3);
    expect(alpha).toBeCloseTo(1 / Math.sqrt(sig * sig + 1), 14);
    expect(sigma).toBeCloseTo(sig / Math.sqrt(sig * sig + 1), 14);
  });

  it('takes an Euler step of the ODE dx/dsigma = (x - x0) / sigma (hand-computed)', () => {
    const s = euler({ timestepSpacing: 'linspace' }, 10);
    const sig = s.sigmas;
    const x = Float32Array.from([3, -1]);
    const e = Float32Array.from([0.25, 0.5]);
    const r = s.step(s.createState(), e, 2, x);
    for (let i = 0; i < 2; i++) {
      const x0 = x[i] - sig[2] * e[i];
      expect(r.predOriginalSample[i]).toBeCloseTo(x0, 5);
      expect(r.prevSample[i]).toBeCloseTo(x[i] + ((x[i] - x0) / sig[2]) * (sig[3] - sig[2]), 5);
    }
  });

  it('the last step lands on the x0 prediction (final sigma 0)', () => {
    const s = euler({}, 10);
    const x = Float32Array.from([0.7, -0.2]);
    const e = Float32Array.from([1, 2]);
    const r = s.step(s.createState(), e, 9, x);
    expect(Array.from(r.prevSample)).toEqual(Array.from(r.predOriginalSample));
  });

  it('veDenoised: v_prediction and sample agree with epsilon for consistent outputs', () => {
    const sig = 2.5;
    const x0 = 0.3;
    const eps = -1.1;
    const x = x0 + sig * eps;
    const alpha = 1 / Math.sqrt(1 + sig * sig);
    const sigmaVp = sig * alpha;
    const v = alpha * eps - sigmaVp * x0;
    expect(veDenoised('epsilon', sig, x, eps)).toBeCloseTo(x0, 14);
    expect(veDenoised('v_prediction', sig, x, v)).toBeCloseTo(x0, 14);
    expect(veDenoised('sample', sig, x, x0)).toBe(x0);
  });

  it('recovers x0 exactly from an exact-epsilon model with Karras sigmas and v_prediction', () => {
    const s = euler(
      { useKarrasSigmas: true, predictionType: 'v_prediction', timestepSpacing: 'trailing' },
      30,
    );
    const x0 = Float32Array.from({ length: 40 }, (_, i) => Math.tanh(i - 20));
    let x: Float32Array = new Rng(12).randn(40).map((v) => v * s.initNoiseSigma);
    const st = s.createState();
    for (let i = 0; i < 30; i++) {
      const xin = s.scaleModelInput(x, i);
      const { alpha, sigma } = s.alphaSigmaAt(i);
      const v = xin.map((u, j) => alpha * ((u - alpha * x0[j]) / sigma) - sigma * x0[j]);
      x = s.step(st, v, i, x).prevSample;
    }
    for (let j = 0; j < 40; j++) expect(Math.abs(x[j] - x0[j])).toBeLessThan(1e-3);
  });
});
