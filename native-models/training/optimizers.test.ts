import { describe, expect, it } from 'vitest';
import { Rng } from '../tensor/random.js';
import {
  AdamW,
  Ema,
  OptimizerStateError,
  SGD,
  clipGradNorm,
  constantWithWarmup,
  cosineWithWarmup,
  type OptimizerState,
  type ParameterTensor,
} from './optimizers.js';

function param(name: string, values: number[]): ParameterTensor {
  return { name, shape: [values.length], data: Float32Array.from(values) };
}

function randomParams(seed: number): ParameterTensor[] {
  const rng = new Rng(seed);
  return [
    { name: 'w', shape: [3, 4], data: rng.randn(12) },
    { name: 'b', shape: [4], data: rng.randn(4) },
  ];
}

function randomGrads(params: ParameterTensor[], seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  return new Map(params.map((p) => [p.name, rng.randn(p.data.length)]));
}

function clone(params: ParameterTensor[]): ParameterTensor[] {
  return params.map((p) => ({ ...p, shape: [...p.shape], data: p.data.slice() }));
}

/** Adam in its textbook form (bias-corrected moments), in float64, to compare against. */
function referenceAdamW(
  p0: number[],
  grads: number[][],
  lrs: number[],
  { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.01 } = {},
): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, step) => {
    const t = step + 1;
    const lr = lrs[step];
    for (let i = 0; i < p.length; i++) {
      p[i] -= lr * wd * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2;
      const mHat = m[i] / (1 - beta1 ** t);
      const vHat = v[i] / (1 - beta2 ** t);
      p[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return p;
}

describe('AdamW', () => {
  it('takes the first step by hand: decay, then a step of about lr against the gradient sign', () => {
    const p = param('p', [1, -2]);
    new AdamW({ weightDecay: 0.01 }).step([p], new Map([['p', Float32Array.from([0.5, -3])]]), 0.1);
    // decay: 1 * (1 - 0.1 * 0.01) = 0.999; m_hat = g, v_hat = g^2, so the step is 0.1 * g / (|g| + 1e-8)
    expect(p.data[0]).toBeCloseTo(0.999 - 0.1, 6);
    expect(p.data[1]).toBeCloseTo(-2 * 0.999 + 0.1, 6);
  });

  it('matches the textbook update over several steps with a changing learning rate', () => {
    const params = [param('p', [0.5, -1.5, 2, 0.01, -0.3])];
    const rng = new Rng(5);
    const grads = Array.from({ length: 7 }, () => Array.from(rng.randn(5)));
    const lrs = [0.01, 0.02, 0.03, 0.02, 0.01, 0.005, 0.001];
    const opt = new AdamW({ beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 });
    grads.forEach((g, i) => opt.step(params, [Float32Array.from(g)], lrs[i]));
    const expected = referenceAdamW([0.5, -1.5, 2, 0.01, -0.3], grads, lrs, {
      beta1: 0.8,
      beta2: 0.95,
      eps: 1e-6,
      wd: 0.1,
    });
    expected.forEach((e, i) => expect(params[0].data[i]).toBeCloseTo(e, 5));
    expect(opt.stepCount).toBe(7);
  });

  it('minimizes a quadratic', () => {
    const target = [3, -1, 0.5];
    const p = param('x', [0, 0, 0]);
    const opt = new AdamW({ weightDecay: 0 });
    const g = new Float32Array(3);
    for (let s = 0; s < 2000; s++) {
      for (let i = 0; i < 3; i++) g[i] = 2 * (p.data[i] - target[i]);
      opt.step([p], [g], 0.05);
    }
    target.forEach((t, i) => expect(p.data[i]).toBeCloseTo(t, 2));
  });

  it('skips parameters without a gradient and excludes some from weight decay', () => {
    const [w, b] = randomParams(1);
    const bBefore = b.data.slice();
    const opt = new AdamW({ weightDecay: 0.5, noWeightDecay: (p) => p.shape.length <= 1 });
    opt.step([w, b], new Map([['w', new Float32Array(12)]]), 0.1);
    expect(b.data).toEqual(bBefore);
    expect(opt.state().meta.params).toEqual({ w: { step: 1, size: 12 } });
    // zero gradient: only the decay moves w; a zero gradient on b does not decay it
    const wBefore = w.data.slice();
    opt.step([w, b], [new Float32Array(12), new Float32Array(4)], 0.1);
    w.data.forEach((x, i) => expect(x).toBeCloseTo(wBefore[i] * 0.95, 6));
    expect(b.data).toEqual(bBefore);
  });

  it('refuses wrong sizes and duplicate names, leaving the parameters unchanged', () => {
    const params = randomParams(2);
    const before = clone(params);
    const opt = new AdamW();
    expect(() => opt.step(params, [new Float32Array(12), new Float32Array(3)], 0.1)).toThrow(
      /gradient of 'b' has 3 elements, the parameter has 4/,
    );
    expect(params).toEqual(before);
    const dup = [params[0], { ...params[0], data: params[0].data }];
    expect(() => opt.step(dup, [new Float32Array(12), new Float32Array(12)], 0.1)).toThrow(
      /'w' appears twice in one step/,
    );
    expect(params).toEqual(before);
    opt.step(params, [new Float32Array(12), new Float32Array(4)], 0.1);
    expect(() =>
      opt.step([{ name: 'w', shape: [2], data: new Float32Array(2) }], [new Float32Array(2)]),
    ).toThrow(/'w' has 2 elements, its optimizer state has 12/);
    expect(() => new AdamW({ beta1: 1 })).toThrow(RangeError);
    expect(() => opt.step(params, [], -1)).toThrow(/lr must be/);
  });

  it('resumes from a saved state exactly, through JSON for the metadata', () => {
    const a = randomParams(3);
    const opt = new AdamW({ weightDecay: 0.02 });
    for (let s = 0; s < 3; s++) opt.step(a, randomGrads(a, 10 + s), 0.01);
    const saved = opt.state();
    const b = clone(a);
    const resumed = new AdamW({ weightDecay: 0.02 });
    resumed.loadState({ meta: JSON.parse(JSON.stringify(saved.meta)), buffers: saved.buffers });
    expect(resumed.stepCount).toBe(3);
    expect(Object.keys(saved.buffers).sort()).toEqual([
      'exp_avg.b',
      'exp_avg.w',
      'exp_avg_sq.b',
      'exp_avg_sq.w',
    ]);
    for (let s = 3; s < 6; s++) {
      opt.step(a, randomGrads(a, 10 + s), 0.01);
      resumed.step(b, randomGrads(b, 10 + s), 0.01);
    }
    expect(b).toEqual(a);
    // the saved buffers were copies: the steps above did not change them
    expect(saved.buffers['exp_avg.w']).not.toEqual(opt.state().buffers['exp_avg.w']);
    expect(opt.state({ copy: false }).buffers['exp_avg.w']).toBe(
      opt.state({ copy: false }).buffers['exp_avg.w'],
    );
  });

  it('rejects states that do not fit', () => {
    const params = randomParams(4);
    const opt = new AdamW();
    opt.step(params, randomGrads(params, 1), 0.01);
    const state = opt.state();
    expect(() => new SGD({ momentum: 0.9 }).loadState(state)).toThrow(/cannot load a AdamW state into SGD/);
    const missing: OptimizerState = { meta: state.meta, buffers: { ...state.buffers } };
    delete missing.buffers['exp_avg_sq.b'];
    expect(() => new AdamW().loadState(missing)).toThrow(/state buffer 'exp_avg_sq.b' is missing/);
    const short: OptimizerState = {
      meta: state.meta,
      buffers: { ...state.buffers, 'exp_avg.w': new Float32Array(3) },
    };
    expect(() => new AdamW().loadState(short)).toThrow(/'exp_avg.w' has 3 elements, expected 12/);
    expect(() => new AdamW().loadState({ meta: {} as OptimizerState['meta'], buffers: {} })).toThrow(
      OptimizerStateError,
    );
  });

  it('updates 2M parameters quickly', () => {
    const n = 2_000_000;
    const params: ParameterTensor[] = [
      { name: 'a', shape: [n / 2], data: new Rng(1).randn(n / 2) },
      { name: 'b', shape: [n / 2], data: new Rng(2).randn(n / 2) },
    ];
    const grads = [new Rng(3).randn(n / 2), new Rng(4).randn(n / 2)];
    const opt = new AdamW();
    for (let i = 0; i < 5; i++) opt.step(params, grads, 1e-3); // warm up the JIT
    const runs = 20;
    const start = performance.now();
    for (let i = 0; i < runs; i++) opt.step(params, grads, 1e-3);
    const ms = (performance.now() - start) / runs;
    console.log(`AdamW step on ${n} parameters: ${ms.toFixed(2)} ms`);
    expect(ms).toBeLessThan(250); // generous: catches a pathological slowdown, not noise
  });
});

describe('SGD', () => {
  it('plain SGD with weight decay: p -= lr (g + wd p)', () => {
    const p = param('p', [1, -2]);
    new SGD({ weightDecay: 0.1 }).step([p], [Float32Array.from([0.5, 1])], 0.2);
    expect(p.data[0]).toBeCloseTo(1 - 0.2 * (0.5 + 0.1), 6);
    expect(p.data[1]).toBeCloseTo(-2 - 0.2 * (1 - 0.2), 6);
  });

  for (const nesterov of [false, true]) {
    it(`momentum${nesterov ? ' (Nesterov)' : ''} follows the PyTorch recurrence`, () => {
      const p = param('p', [1]);
      const opt = new SGD({ momentum: 0.9, nesterov, dampening: 0 });
      const gs = [1, 0.5, -0.25, 2];
      let ref = 1;
      let buf = 0;
      gs.forEach((g, i) => {
        buf = i === 0 ? g : 0.9 * buf + g;
        ref -= 0.1 * (nesterov ? g + 0.9 * buf : buf);
        opt.step([p], [Float32Array.from([g])], 0.1);
        expect(p.data[0]).toBeCloseTo(ref, 6);
      });
      expect(Object.keys(opt.state().buffers)).toEqual(['momentum_buffer.p']);
    });
  }

  it('dampening scales the gradient entering the buffer after the first step', () => {
    const p = param('p', [0]);
    const opt = new SGD({ momentum: 0.5, dampening: 0.5 });
    opt.step([p], [Float32Array.from([1])], 1); // buf = 1
    opt.step([p], [Float32Array.from([1])], 1); // buf = 0.5 + 0.5 = 1
    expect(p.data[0]).toBeCloseTo(-2, 6);
    expect(() => new SGD({ nesterov: true })).toThrow(/Nesterov/);
  });

  it('resumes from a saved state exactly', () => {
    const a = randomParams(6);
    const opt = new SGD({ momentum: 0.9, weightDecay: 1e-3 });
    opt.step(a, randomGrads(a, 1), 0.1);
    const b = clone(a);
    const resumed = new SGD({ momentum: 0.9, weightDecay: 1e-3 });
    resumed.loadState(opt.state());
    opt.step(a, randomGrads(a, 2), 0.1);
    resumed.step(b, randomGrads(b, 2), 0.1);
    expect(b).toEqual(a);
    // without momentum there is no buffer, but steps are still counted
    const plain = new SGD();
    plain.step(a, randomGrads(a, 3));
    expect(plain.state()).toMatchObject({
      meta: { stepCount: 1, params: { w: { step: 1, size: 12 } } },
      buffers: {},
    });
  });
});

describe('clipGradNorm', () => {
  it('returns the global norm and scales everything down to maxNorm', () => {
    const grads = new Map([
      ['a', Float32Array.from([3, 0])],
      ['b', Float32Array.from([0, 4])],
    ]);
    expect(clipGradNorm(grads, 1)).toBeCloseTo(5, 6);
    expect(Array.from(grads.get('a')!)).toEqual([expect.closeTo(0.6, 6), 0]);
    expect(Array.from(grads.get('b')!)).toEqual([0, expect.closeTo(0.8, 6)]);
    expect(clipGradNorm(grads, 1)).toBeCloseTo(1, 5);
  });

  it('leaves gradients below maxNorm alone, and NaN or Inf norms unscaled', () => {
    const small = [Float32Array.from([0.1, 0.2]), undefined];
    expect(clipGradNorm(small, 1)).toBeCloseTo(Math.sqrt(0.05), 6);
    expect(small[0]).toEqual(Float32Array.from([0.1, 0.2]));
    const bad = [Float32Array.from([NaN, 100])];
    expect(clipGradNorm(bad, 1)).toBeNaN();
    expect(bad[0][1]).toBe(100);
    const inf = [Float32Array.from([Infinity, 100])];
    expect(clipGradNorm(inf, 1)).toBe(Infinity);
    expect(inf[0][1]).toBe(100);
    expect(() => clipGradNorm([], 0)).toThrow(RangeError);
  });
});

describe('learning-rate schedules', () => {
  it('constant with warmup ramps linearly from the first step', () => {
    const s = constantWithWarmup({ lr: 1, warmupSteps: 4 });
    expect([0, 1, 2, 3, 4, 100].map(s)).toEqual([0.25, 0.5, 0.75, 1, 1, 1]);
    expect(constantWithWarmup({ lr: 2, warmupSteps: 0 })(0)).toBe(2);
  });

  it('cosine with warmup: warmup, half-cosine down to minLr, then minLr', () => {
    const s = cosineWithWarmup({ lr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 });
    expect(s(0)).toBeCloseTo(0.1);
    expect(s(9)).toBeCloseTo(1);
    expect(s(10)).toBeCloseTo(1);
    expect(s(60)).toBeCloseTo(0.55);
    expect(s(35)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4)));
    expect(s(110)).toBeCloseTo(0.1);
    expect(s(1000)).toBeCloseTo(0.1);
    expect(() => cosineWithWarmup({ lr: 1, warmupSteps: 10, totalSteps: 5 })).toThrow(/totalSteps/);
    expect(() => cosineWithWarmup({ lr: 1, warmupSteps: 0, totalSteps: 5, minLr: 2 })).toThrow(/minLr/);
  });
});

describe('Ema', () => {
  it('warms the decay up as min(decay, (1 + t) / (10 + t))', () => {
    const p = param('p', [0]);
    const ema = new Ema([p], 0.5);
    expect(ema.currentDecay()).toBeCloseTo(0.1);
    p.data[0] = 10;
    ema.update([p]); // 0.1 * 0 + 0.9 * 10
    expect(ema.get('p')![0]).toBeCloseTo(9, 5);
    expect(ema.currentDecay()).toBeCloseTo(2 / 11);
    for (let i = 0; i < 20; i++) ema.update([p]);
    expect(ema.currentDecay()).toBe(0.5);
    expect(new Ema([p], 0.99, { warmup: false }).currentDecay()).toBe(0.99);
  });

  it('averages with a constant decay, copies into parameters and restores its state', () => {
    const p = param('p', [1, 2]);
    const ema = new Ema([p], 0.9, { warmup: false });
    p.data.set([2, 4]);
    ema.update([p]);
    expect(Array.from(ema.get('p')!)).toEqual([expect.closeTo(1.1, 6), expect.closeTo(2.2, 6)]);
    const target = param('p', [0, 0]);
    ema.copyTo([target, param('other', [5])]);
    expect(Array.from(target.data)).toEqual(Array.from(ema.get('p')!));
    // new parameters start as a copy
    ema.update([p, param('late', [7])]);
    expect(ema.get('late')).toEqual(Float32Array.from([7]));

    const state = ema.state();
    expect(Object.keys(state.buffers).sort()).toEqual(['late', 'p']);
    const restored = new Ema([], 0.9, { warmup: false });
    restored.loadState({ meta: JSON.parse(JSON.stringify(state.meta)), buffers: state.buffers });
    expect(restored.stepCount).toBe(2);
    ema.update([p]);
    restored.update([p]);
    expect(restored.get('p')).toEqual(ema.get('p'));
    expect(() => ema.update([param('p', [1])])).toThrow(/has 1 elements, its average has 2/);
  });
});
