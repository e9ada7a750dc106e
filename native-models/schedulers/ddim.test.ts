import { describe, expect, it } from 'vitest';

import { Rng } from '../tensor/random.js';
import { DDIMScheduler } from './ddim.js';
import { EulerDiscreteScheduler } from './euler.js';
import { DEFAULT_SCHEDULER_CONFIG } from './scheduler.js';
import type { SchedulerConfig } from './scheduler.js';

const SD = DEFAULT_SCHEDULER_CONFIG;
const cfg = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD, ...over });

function ddim(over: Partial<SchedulerConfig>, steps: number): DDIMScheduler {
  const s = new DDIMScheduler(cfg(over));
  s.setTimesteps(steps);
  return s;
}

describe('DDIMScheduler timesteps', () => {
  it('SD 1.5, 50 steps, leading + steps_offset 1: 981, 961, ..., 1', () => {
    const s = ddim({}, 50);
    expect(s.timesteps).toEqual(Array.from({ length: 50 }, (_, k) => 981 - 20 * k));
    expect(s.initNoiseSigma).toBe(1);
  });

  it('trailing and linspace spacing (hand-computed small cases)', () => {
    expect(ddim({ timestepSpacing: 'trailing' }, 4).timesteps).toEqual([999, 749, 499, 249]);
    expect(ddim({ timestepSpacing: 'trailing' }, 3).timesteps).toEqual([999, 666, 332]);
    // linspace(0, 999, 4) = 0, 333, 666, 999
    expect(ddim({ timestepSpacing: 'linspace' }, 4).timesteps).toEqual([999, 666, 333, 0]);
    // linspace(0, 999, 3) = 0, 499.5, 999; numpy rounds 499.5 to the even 500
    expect(ddim({ timestepSpacing: 'linspace' }, 3).timesteps).toEqual([999, 500, 0]);
    // linspace(0, 999, 7): 166.5 -> 166, 499.5 -> 500, 832.5 -> 832
    expect(ddim({ timestepSpacing: 'linspace' }, 7).timesteps).toEqual([999, 832, 666, 500, 333, 166, 0]);
  });

  it('rejects step counts whose steps_offset leaves the training range', () => {
    expect(() => ddim({ stepsOffset: 1 }, 1000)).toThrow(/timestep 1000 is outside \[0, 999\]/);
    expect(ddim({ stepsOffset: 0 }, 1000).timesteps[0]).toBe(999);
  });
});

describe('DDIMScheduler.step', () => {
  it('implements eq. 12 with eta = 0 (hand-computed single step)', () => {
    const s = ddim({}, 10); // timesteps 901, 801, ...; previous of 901 is 801
    const ac = s.alphasCumprod;
    const st = s.createState();
    const x = Float32Array.from([0.5, -1.25]);
    const e = Float32Array.from([0.1, -0.3]);
    const r = s.step(st, e, 0, x);
    for (let i = 0; i < 2; i++) {
      const x0 = (x[i] - Math.sqrt(1 - ac[901]) * e[i]) / Math.sqrt(ac[901]);
      expect(r.predOriginalSample[i]).toBeCloseTo(x0, 5);
      expect(r.prevSample[i]).toBeCloseTo(Math.sqrt(ac[801]) * x0 + Math.sqrt(1 - ac[801]) * e[i], 5);
    }
  });

  it('last step uses final_alpha_cumprod: alphas_cumprod[0] unless set_alpha_to_one', () => {
    const x = Float32Array.from([0.3]);
    const e = Float32Array.from([0.2]);
    for (const setAlphaToOne of [false, true]) {
      const s = ddim({ setAlphaToOne }, 50);
      expect(s.finalAlphaCumprod).toBe(setAlphaToOne ? 1 : s.alphasCumprod[0]);
      const ac1 = s.alphasCumprod[1]; // timesteps[49] = 1, previous 1 - 20 < 0
      const x0 = (x[0] - Math.sqrt(1 - ac1) * e[0]) / Math.sqrt(ac1);
      const fin = s.finalAlphaCumprod;
      const r = s.step(s.createState(), e, 49, x);
      expect(r.prevSample[0]).toBeCloseTo(Math.sqrt(fin) * x0 + Math.sqrt(1 - fin) * e[0], 6);
    }
  });

  it('uses t - T // n as the previous timestep even with trailing spacing (as diffusers)', () => {
    const s = ddim({ timestepSpacing: 'trailing' }, 3); // 999, 666, 332; previous of 666 is 333
    const ac = s.alphasCumprod;
    const x = Float32Array.from([1]);
    const e = Float32Array.from([0.5]);
    const r = s.step(s.createState(), e, 1, x);
    const x0 = (1 - Math.sqrt(1 - ac[666]) * 0.5) / Math.sqrt(ac[666]);
    expect(r.prevSample[0]).toBeCloseTo(Math.sqrt(ac[333]) * x0 + Math.sqrt(1 - ac[333]) * 0.5, 6);
  });

  it('v_prediction and sample prediction give the same step as the equivalent epsilon', () => {
    const steps = 20;
    const x = new Rng(1).randn(32);
    const eps = new Rng(2).randn(32);
    const base = ddim({}, steps);
    const ref = base.step(base.createState(), eps, 3, x);
    const { alpha, sigma } = base.alphaSigmaAt(3);
    const x0 = x.map((v, i) => (v - sigma * eps[i]) / alpha);
    const v = eps.map((e, i) => alpha * e - sigma * x0[i]);
    const sv = ddim({ predictionType: 'v_prediction' }, steps);
    const ss = ddim({ predictionType: 'sample' }, steps);
    const rv = sv.step(sv.createState(), v, 3, x);
    const rs = ss.step(ss.createState(), x0, 3, x);
    for (let i = 0; i < 32; i++) {
      expect(rv.prevSample[i]).toBeCloseTo(ref.prevSample[i], 4);
      expect(rs.prevSample[i]).toBeCloseTo(ref.prevSample[i], 4);
      expect(rv.predOriginalSample[i]).toBeCloseTo(ref.predOriginalSample[i], 4);
    }
  });

  it('clip_sample clamps the x0 prediction to the range (epsilon unchanged)', () => {
    const s = ddim({ clipSample: true, clipSampleRange: 1.5 }, 10);
    const x = Float32Array.from([5, -5, 0.1]);
    const e = Float32Array.from([0, 0, 0]);
    const r = s.step(s.createState(), e, 0, x);
    const ac = s.alphasCumprod;
    const x0Mid = 0.1 / Math.sqrt(ac[901]);
    expect(Array.from(r.predOriginalSample)).toEqual([1.5, -1.5, Math.fround(x0Mid)]);
    expect(r.prevSample[0]).toBeCloseTo(Math.sqrt(ac[801]) * 1.5, 6);
  });

  it('SD default (set_alpha_to_one false): the final latent keeps alphas_cumprod[0] noise, x0 prediction is exact', () => {
    const s = ddim({}, 50);
    const x0 = Float32Array.from({ length: 32 }, (_, i) => Math.cos(i));
    let x = new Rng(4).randn(32);
    const st = s.createState();
    let r = { prevSample: x, predOriginalSample: x };
    let lastEps = new Float32Array(32);
    for (let i = 0; i < 50; i++) {
      const { alpha, sigma } = s.alphaSigmaAt(i);
      lastEps = x.map((v, j) => (v - alpha * x0[j]) / sigma);
      r = s.step(st, lastEps, i, x);
      x = r.prevSample;
    }
    const a0 = s.alphasCumprod[0];
    for (let j = 0; j < 32; j++) {
      expect(Math.abs(r.predOriginalSample[j] - x0[j])).toBeLessThan(1e-4);
      expect(x[j]).toBeCloseTo(Math.sqrt(a0) * x0[j] + Math.sqrt(1 - a0) * lastEps[j], 5);
    }
  });

  it('matches the Euler sampler step for step (DDIM is Euler in x / alpha, sigma / alpha)', () => {
    // With 'leading' spacing DDIM's predecessor t - T // n is the next timestep, so both walk the
    // same noise levels; with set_alpha_to_one both end at sigma = 0.
    const n = 15;
    const d = ddim({ setAlphaToOne: true }, n);
    const e = new EulerDiscreteScheduler(cfg());
    e.setTimesteps(n);
    expect(e.timesteps).toEqual(d.timesteps);
    const model = (xin: Float32Array, t: number) =>
      xin.map((v) => 0.4 * Math.tanh(v) + 0.1 * Math.cos(v + t / 200));
    let xd = new Rng(8).randn(64);
    let xe: Float32Array = xd.map((v) => v / d.alphaSigmaAt(0).alpha); // same VP latent, in Euler's VE space
    const sd = d.createState();
    const se = e.createState();
    for (let i = 0; i < n; i++) {
      const t = d.timesteps[i];
      xd = d.step(sd, model(d.scaleModelInput(xd, i), t), i, xd).prevSample;
      xe = e.step(se, model(e.scaleModelInput(xe, i), t), i, xe).prevSample;
      const next = i + 1 < n ? e.alphaSigmaAt(i + 1).alpha : 1;
      for (let j = 0; j < 64; j++) expect(Math.abs(xd[j] - xe[j] * next)).toBeLessThan(2e-5);
    }
  });

  it('scaleModelInput is the identity and addNoise is sqrt(abar) x + sqrt(1 - abar) n', () => {
    const s = ddim({}, 50);
    const x = Float32Array.from([1, 2]);
    expect(s.scaleModelInput(x, 0)).toBe(x);
    const noisy = s.addNoise(x, Float32Array.from([1, -1]), 10); // timestep 781
    const abar = s.alphasCumprod[781];
    expect(noisy[0]).toBeCloseTo(Math.sqrt(abar) + Math.sqrt(1 - abar), 6);
    expect(noisy[1]).toBeCloseTo(2 * Math.sqrt(abar) - Math.sqrt(1 - abar), 6);
    expect(s.alphaSigmaAt(10)).toEqual({ alpha: Math.sqrt(abar), sigma: Math.sqrt(1 - abar) });
  });
});
