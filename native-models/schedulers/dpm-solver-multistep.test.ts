import { describe, expect, it } from 'vitest';

import { Rng } from '../tensor/random.js';
import { DPMSolverMultistepScheduler, dpmSolverTimesteps } from './dpm-solver-multistep.js';
import { DEFAULT_SCHEDULER_CONFIG, alphasCumprodFor, trainSigmasFor, vpFromVeSigma } from './scheduler.js';
import type { SchedulerConfig } from './scheduler.js';

const SD = DEFAULT_SCHEDULER_CONFIG;
const cfg = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD, ...over });
const TRAIN_SIGMAS = trainSigmasFor(alphasCumprodFor(SD));

function dpm(
  over: Partial<SchedulerConfig>,
  steps: number,
  forceKarras = false,
): DPMSolverMultistepScheduler {
  const s = new DPMSolverMultistepScheduler(cfg(over), { forceKarras });
  s.setTimesteps(steps);
  return s;
}

const lambda = (s: number) => {
  const { alpha, sigma } = vpFromVeSigma(s);
  return Math.log(alpha) - Math.log(sigma);
};

describe('DPMSolverMultistepScheduler schedule', () => {
  it('linspace: round(linspace(0, 999, n + 1)) reversed without the final 0', () => {
    const ts = dpm({ timestepSpacing: 'linspace' }, 20).timesteps;
    // 49.95 k rounded half to even: 949.05 -> 949, 499.5 -> 500, 49.95 -> 50
    expect(ts).toEqual([
      999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50,
    ]);
  });

  it('leading: arange(n + 1) * (T // (n + 1)) reversed without the last, + steps_offset', () => {
    const ts = dpm({}, 20).timesteps; // ratio 1000 // 21 = 47
    expect(ts).toEqual(Array.from({ length: 20 }, (_, k) => (20 - k) * 47 + 1));
    expect(ts[0]).toBe(941);
    expect(ts[19]).toBe(48);
    expect(dpmSolverTimesteps(cfg({ stepsOffset: 0 }), 3)).toEqual([750, 500, 250]);
  });

  it('trailing: as the other schedulers', () => {
    expect(dpm({ timestepSpacing: 'trailing' }, 4).timesteps).toEqual([999, 749, 499, 249]);
  });

  it('interpolated sigmas at the timesteps, then 0; init sigma 1 and no input scaling', () => {
    const s = dpm({ timestepSpacing: 'linspace' }, 20);
    const sig = s.sigmas;
    expect(sig.length).toBe(21);
    expect(sig[0]).toBeCloseTo(TRAIN_SIGMAS[999], 12);
    expect(sig[10]).toBeCloseTo(TRAIN_SIGMAS[500], 12);
    expect(sig[20]).toBe(0);
    expect(s.initNoiseSigma).toBe(1);
    const x = new Float32Array(3);
    expect(s.scaleModelInput(x, 0)).toBe(x);
  });

  it('Karras (dpmpp_2m_karras): rho = 7 between the train sigma extremes, rounded timesteps', () => {
    const s = dpm({ timestepSpacing: 'linspace' }, 20, true);
    expect(s.name).toBe('dpmpp_2m_karras');
    expect(s.config.useKarrasSigmas).toBe(true);
    const sig = s.sigmas;
    expect(sig[0]).toBe(TRAIN_SIGMAS[999]);
    expect(sig[19]).toBe(TRAIN_SIGMAS[0]);
    expect(sig[20]).toBe(0);
    // Pinned from an independent numpy model of diffusers' set_timesteps.
    expect(s.timesteps).toEqual([
      999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0,
    ]);
    // The spacing setting does not matter with Karras sigmas; config.useKarrasSigmas does the same.
    expect(dpm({}, 20, true).timesteps).toEqual(s.timesteps);
    const viaConfig = dpm({ useKarrasSigmas: true }, 20);
    expect(viaConfig.name).toBe('dpmpp_2m');
    expect(Array.from(viaConfig.sigmas)).toEqual(Array.from(sig));
  });
});

describe('DPMSolverMultistepScheduler.step', () => {
  const x = Float32Array.from([1.5, -0.5, 0.25]);
  const e0 = Float32Array.from([0.3, -0.6, 0.9]);
  const e1 = Float32Array.from([-0.2, 0.4, 0.1]);

  it('first step is first order (DDIM to the next noise level)', () => {
    const s = dpm({}, 10);
    const sig = s.sigmas;
    const cur = vpFromVeSigma(sig[0]);
    const next = vpFromVeSigma(sig[1]);
    const r = s.step(s.createState(), e0, 0, x);
    for (let i = 0; i < 3; i++) {
      const x0 = (x[i] - cur.sigma * e0[i]) / cur.alpha;
      expect(r.predOriginalSample[i]).toBeCloseTo(x0, 5);
      // DPM-Solver++ first order: (sigma_t / sigma_s) x - alpha_t (e^-h - 1) x0 ...
      const h = lambda(sig[1]) - lambda(sig[0]);
      const dpm1 = (next.sigma / cur.sigma) * x[i] - next.alpha * (Math.exp(-h) - 1) * x0;
      expect(r.prevSample[i]).toBeCloseTo(dpm1, 5);
      // ... which is DDIM: alpha_t x0 + sigma_t eps.
      expect(r.prevSample[i]).toBeCloseTo(next.alpha * x0 + next.sigma * e0[i], 5);
    }
  });

  it('second step uses the previous x0 (2M midpoint update, hand-computed)', () => {
    const s = dpm({}, 10);
    const sig = s.sigmas;
    const st = s.createState();
    const r0 = s.step(st, e0, 0, x);
    const x1 = r0.prevSample;
    const r1 = s.step(st, e1, 1, x1);
    const cur = vpFromVeSigma(sig[1]);
    const next = vpFromVeSigma(sig[2]);
    const h = lambda(sig[2]) - lambda(sig[1]);
    const r = (lambda(sig[1]) - lambda(sig[0])) / h;
    for (let i = 0; i < 3; i++) {
      const m0 = (x1[i] - cur.sigma * e1[i]) / cur.alpha;
      const m1 = r0.predOriginalSample[i];
      const d1 = (m0 - m1) / r;
      const expected =
        (next.sigma / cur.sigma) * x1[i] -
        next.alpha * (Math.exp(-h) - 1) * m0 -
        0.5 * next.alpha * (Math.exp(-h) - 1) * d1;
      expect(r1.prevSample[i]).toBeCloseTo(expected, 5);
    }
    // A fresh state at step 1 has no history: first order, different result.
    const fresh = s.step(s.createState(), e1, 1, x1);
    expect(Array.from(fresh.prevSample)).not.toEqual(Array.from(r1.prevSample));
  });

  it('last step is first order onto sigma 0: returns the x0 prediction', () => {
    for (const steps of [1, 5, 20]) {
      const s = dpm({}, steps);
      const st = s.createState();
      let cur: Float32Array = x;
      let r = s.step(st, e0, 0, cur);
      for (let i = 1; i < steps; i++) {
        cur = r.prevSample;
        r = s.step(st, e1, i, cur);
      }
      for (let i = 0; i < 3; i++) expect(r.prevSample[i]).toBeCloseTo(r.predOriginalSample[i], 6);
    }
  });

  it('keeps its own copy of the history (callers may reuse output buffers)', () => {
    const s = dpm({}, 10);
    const a = s.createState();
    const b = s.createState();
    const ra = s.step(a, e0, 0, x);
    const rb = s.step(b, e0, 0, x);
    ra.predOriginalSample.fill(123); // must not leak into state a
    const na = s.step(a, e1, 1, ra.prevSample);
    const nb = s.step(b, e1, 1, rb.prevSample);
    expect(Array.from(na.prevSample)).toEqual(Array.from(nb.prevSample));
  });

  it('enforces step order within a trajectory', () => {
    const s = dpm({}, 10);
    const st = s.createState();
    s.step(st, e0, 0, x);
    expect(() => s.step(st, e0, 0, x)).toThrow(/last ran step 0, so the next step must be 1; got 0/);
    expect(() => s.step(st, e0, 2, x)).toThrow(/must be 1; got 2/);
    expect(() => s.step(st, new Float32Array(4), 1, new Float32Array(4))).toThrow(
      /differs from this trajectory/,
    );
    // img2img: a fresh state may start anywhere.
    expect(() => s.step(s.createState(), e0, 6, x)).not.toThrow();
  });

  it('addNoise is VP noising at the step sigma', () => {
    const s = dpm({}, 10);
    const { alpha, sigma } = s.alphaSigmaAt(2);
    const abar = s.alphasCumprod[s.timesteps[2]];
    expect(alpha).toBeCloseTo(Math.sqrt(abar), 12);
    expect(sigma).toBeCloseTo(Math.sqrt(1 - abar), 12);
    const out = s.addNoise(Float32Array.from([1]), Float32Array.from([2]), 2);
    expect(out[0]).toBeCloseTo(alpha + 2 * sigma, 6);
  });

  it('v_prediction and sample prediction match epsilon for consistent outputs over a run', () => {
    const steps = 12;
    const run = (pred: 'epsilon' | 'v_prediction' | 'sample') => {
      const s = dpm({ predictionType: pred }, steps, true);
      const st = s.createState();
      let cur = new Rng(3).randn(24);
      for (let i = 0; i < steps; i++) {
        const { alpha, sigma } = s.alphaSigmaAt(i);
        const eps = cur.map((v) => 0.5 * Math.tanh(v) + 0.1); // an arbitrary epsilon "model"
        const x0 = cur.map((v, j) => (v - sigma * eps[j]) / alpha);
        const out =
          pred === 'epsilon' ? eps : pred === 'sample' ? x0 : eps.map((e, j) => alpha * e - sigma * x0[j]);
        cur = s.step(st, out, i, cur).prevSample;
      }
      return cur;
    };
    const ref = run('epsilon');
    for (const pred of ['v_prediction', 'sample'] as const) {
      const got = run(pred);
      for (let j = 0; j < ref.length; j++) expect(Math.abs(got[j] - ref[j])).toBeLessThan(1e-4);
    }
  });
});
