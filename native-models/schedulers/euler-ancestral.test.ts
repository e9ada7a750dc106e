import { describe, expect, it } from 'vitest';

import { Rng } from '../tensor/random.js';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EulerDiscreteScheduler } from './euler.js';
import { DEFAULT_SCHEDULER_CONFIG } from './scheduler.js';
import type { SchedulerConfig } from './scheduler.js';

const SD = DEFAULT_SCHEDULER_CONFIG;
const cfg = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD, ...over });

function eulerA(over: Partial<SchedulerConfig>, steps: number): EulerAncestralDiscreteScheduler {
  const s = new EulerAncestralDiscreteScheduler(cfg(over));
  s.setTimesteps(steps);
  return s;
}

/** Runs the exact-epsilon analytic problem; returns the final latent. */
function run(
  s: EulerAncestralDiscreteScheduler,
  x0: Float32Array,
  seed: number,
  noiseSeed = 5,
): Float32Array {
  const rng = new Rng(seed);
  const st = s.createState();
  let x: Float32Array = new Rng(noiseSeed).randn(x0.length).map((v) => v * s.initNoiseSigma);
  for (let i = 0; i < s.timesteps.length; i++) {
    const xin = s.scaleModelInput(x, i);
    const { alpha, sigma } = s.alphaSigmaAt(i);
    x = s.step(
      st,
      xin.map((u, j) => (u - alpha * x0[j]) / sigma),
      i,
      x,
      rng,
    ).prevSample;
  }
  return x;
}

describe('EulerAncestralDiscreteScheduler', () => {
  it('has the Euler schedule (and ignores use_karras_sigmas, as diffusers)', () => {
    const a = eulerA({ timestepSpacing: 'linspace' }, 30);
    const e = new EulerDiscreteScheduler(cfg({ timestepSpacing: 'linspace' }));
    e.setTimesteps(30);
    expect(a.timesteps).toEqual(e.timesteps);
    expect(Array.from(a.sigmas)).toEqual(Array.from(e.sigmas));
    expect(a.initNoiseSigma).toBe(e.initNoiseSigma);
    expect(Array.from(eulerA({ useKarrasSigmas: true }, 30).sigmas)).toEqual(
      Array.from(eulerA({}, 30).sigmas),
    );
  });

  it('throws a clear error when no Rng is passed', () => {
    const s = eulerA({}, 10);
    const x = new Float32Array(4);
    expect(() => s.step(s.createState(), x, 0, x)).toThrow(
      /euler_a: step\(\) needs an Rng for the ancestral noise/,
    );
  });

  it('implements the ancestral step (hand-computed with the same Rng draws)', () => {
    const s = eulerA({ timestepSpacing: 'linspace' }, 10);
    const sig = s.sigmas;
    const x = Float32Array.from([2, -3, 0.5]);
    const e = Float32Array.from([0.1, 0.2, -0.4]);
    const r = s.step(s.createState(), e, 4, x, new Rng(77));
    const z = new Rng(77).randn(3);
    const [from, to] = [sig[4], sig[5]];
    const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
    const down = Math.sqrt(to * to - up * up);
    for (let i = 0; i < 3; i++) {
      const x0 = x[i] - from * e[i];
      expect(r.predOriginalSample[i]).toBeCloseTo(x0, 5);
      expect(r.prevSample[i]).toBeCloseTo(x[i] + ((x[i] - x0) / from) * (down - from) + up * z[i], 5);
    }
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const s = eulerA({}, 20);
    const x0 = Float32Array.from({ length: 16 }, (_, i) => i / 16);
    const model = (xin: Float32Array) => xin.map((v) => 0.5 * Math.sin(v));
    const go = (seed: number) => {
      const rng = new Rng(seed);
      const st = s.createState();
      let x: Float32Array = new Rng(1).randn(16).map((v) => v * s.initNoiseSigma);
      for (let i = 0; i < 20; i++) x = s.step(st, model(s.scaleModelInput(x, i)), i, x, rng).prevSample;
      return Array.from(x);
    };
    expect(go(42)).toEqual(go(42));
    expect(go(42)).not.toEqual(go(43));
    expect(run(s, x0, 9)).toEqual(run(s, x0, 9));
  });

  it('reaches x0 on the analytic problem for any seed (the last step adds no noise)', () => {
    const x0 = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i / 3));
    for (const spacing of ['leading', 'linspace', 'trailing'] as const) {
      for (const seed of [1, 2, 3]) {
        const out = run(eulerA({ timestepSpacing: spacing }, 25), x0, seed);
        for (let j = 0; j < 64; j++) expect(Math.abs(out[j] - x0[j])).toBeLessThan(1e-3);
      }
    }
  });

  it('keeps the marginal noise level: x_next - x0 has std sigma_next', () => {
    const s = eulerA({ timestepSpacing: 'linspace' }, 10);
    const n = 200_000;
    const x0 = new Float32Array(n).fill(0.25);
    const sig = s.sigmas;
    const noise = new Rng(3).randn(n);
    const x = s.addNoise(x0, noise, 3);
    const { alpha, sigma } = s.alphaSigmaAt(3);
    const xin = s.scaleModelInput(x, 3);
    const eps = xin.map((u, j) => (u - alpha * x0[j]) / sigma);
    const next = s.step(s.createState(), eps, 3, x, new Rng(4)).prevSample;
    let sumSq = 0;
    for (let j = 0; j < n; j++) sumSq += (next[j] - x0[j]) ** 2;
    expect(Math.sqrt(sumSq / n) / sig[4]).toBeCloseTo(1, 2);
  });

  it('draws exactly sample.length normals per step, including the last', () => {
    const s = eulerA({}, 3);
    const rng = new Rng(10);
    const st = s.createState();
    let x: Float32Array = new Float32Array(5).fill(1);
    for (let i = 0; i < 3; i++) x = s.step(st, new Float32Array(5), i, x, rng).prevSample;
    const ref = new Rng(10);
    ref.randn(15);
    expect(rng.getState()).toEqual(ref.getState());
  });
});
