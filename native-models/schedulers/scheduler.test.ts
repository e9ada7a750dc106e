import { describe, expect, it } from 'vitest';

import {
  DEFAULT_SCHEDULER_CONFIG,
  SCHEDULER_NAMES,
  SchedulerConfigError,
  alphasCumprodFor,
  betasFor,
  checkNumInferenceSteps,
  interpAtIndex,
  karrasSigmas,
  linspace,
  parseSchedulerConfig,
  roundHalfEven,
  sigmaToT,
  spacedTimesteps,
  trainSigmasFor,
  validateSchedulerConfig,
} from './scheduler.js';
import type { SchedulerConfig } from './scheduler.js';

/** runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json. */
const SD15_JSON = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.6.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

const SD = DEFAULT_SCHEDULER_CONFIG;
const cfg = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD, ...over });

describe('parseSchedulerConfig', () => {
  it('reads the SD 1.5 config', () => {
    const c = parseSchedulerConfig(SD15_JSON);
    expect(c).toEqual({
      numTrainTimesteps: 1000,
      betaStart: 0.00085,
      betaEnd: 0.012,
      betaSchedule: 'scaled_linear',
      predictionType: 'epsilon',
      stepsOffset: 1,
      timestepSpacing: 'leading',
      setAlphaToOne: false,
      clipSample: false,
      clipSampleRange: 1,
      useKarrasSigmas: false,
    });
    expect(c.trainedBetas).toBeUndefined();
  });

  it('fills defaults for an empty object (SD 1.5 values)', () => {
    expect(parseSchedulerConfig({})).toEqual({ ...DEFAULT_SCHEDULER_CONFIG });
  });

  it('maps every snake_case key and ignores unknown keys', () => {
    const c = parseSchedulerConfig({
      num_train_timesteps: 4,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: 'linear',
      trained_betas: [0.1, 0.2, 0.3, 0.4],
      prediction_type: 'v_prediction',
      steps_offset: 0,
      timestep_spacing: 'trailing',
      set_alpha_to_one: true,
      clip_sample: true,
      clip_sample_range: 2.5,
      use_karras_sigmas: true,
      thresholding: false,
      algorithm_type: 'dpmsolver++',
      some_future_key: { nested: 1 },
    });
    expect(c).toEqual({
      numTrainTimesteps: 4,
      betaStart: 0.0001,
      betaEnd: 0.02,
      betaSchedule: 'linear',
      trainedBetas: [0.1, 0.2, 0.3, 0.4],
      predictionType: 'v_prediction',
      stepsOffset: 0,
      timestepSpacing: 'trailing',
      setAlphaToOne: true,
      clipSample: true,
      clipSampleRange: 2.5,
      useKarrasSigmas: true,
    });
    expect(Object.keys(c)).not.toContain('thresholding');
  });

  it('treats null values as missing (diffusers writes null for unset options)', () => {
    expect(parseSchedulerConfig({ use_karras_sigmas: null, timestep_spacing: null }).useKarrasSigmas).toBe(
      false,
    );
  });

  it('names the key and the source file on wrong types', () => {
    const src = 'models/sd15/scheduler/scheduler_config.json';
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ beta_start: '0.00085' }, /beta_start.*number in \(0, 1\).*string "0\.00085"/],
      [{ beta_end: 1.5 }, /"beta_end" must be a number in \(0, 1\); got number 1\.5/],
      [{ num_train_timesteps: 1000.5 }, /"num_train_timesteps" must be a positive integer/],
      [{ steps_offset: -1 }, /"steps_offset" must be a non-negative integer/],
      [
        { beta_schedule: 'cosine' },
        /"beta_schedule" must be one of "linear", "scaled_linear", "squaredcos_cap_v2"/,
      ],
      [{ prediction_type: 'eps' }, /"prediction_type" must be one of "epsilon", "v_prediction", "sample"/],
      [{ timestep_spacing: 7 }, /"timestep_spacing" must be one of .*; got number 7/],
      [{ set_alpha_to_one: 'false' }, /"set_alpha_to_one" must be a boolean/],
      [{ clip_sample: 0 }, /"clip_sample" must be a boolean/],
      [{ use_karras_sigmas: 'yes' }, /"use_karras_sigmas" must be a boolean/],
      [{ clip_sample_range: 0 }, /"clip_sample_range" must be a positive number/],
      [{ trained_betas: 'x' }, /"trained_betas" must be an array/],
      [
        { num_train_timesteps: 3, trained_betas: [0.1, 2, 0.3] },
        /"trained_betas\[1\]" must be a number in \(0, 1\)/,
      ],
      [{ trained_betas: [0.1, 0.2] }, /"trained_betas" has 2 values but "num_train_timesteps" is 1000/],
    ];
    for (const [json, re] of bad) {
      let err: unknown;
      try {
        parseSchedulerConfig(json, src);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(json)).toBeInstanceOf(SchedulerConfigError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message.startsWith(`${src}: `)).toBe(true);
    }
  });

  it('defaults the source name and rejects non-objects', () => {
    expect(() => parseSchedulerConfig({ beta_start: 'x' })).toThrow(/^scheduler_config\.json: "beta_start"/);
    expect(() => parseSchedulerConfig(null)).toThrow(/expected a JSON object; got null/);
    expect(() => parseSchedulerConfig([1, 2])).toThrow(/expected a JSON object; got an array/);
    expect(() => parseSchedulerConfig('{}')).toThrow(SchedulerConfigError);
  });
});

describe('validateSchedulerConfig', () => {
  it('returns a frozen copy of a valid config and names camelCase fields on errors', () => {
    const c = validateSchedulerConfig(cfg());
    expect(Object.isFrozen(c)).toBe(true);
    expect(c).toEqual({ ...SD });
    expect(() => validateSchedulerConfig(cfg({ numTrainTimesteps: 0 }))).toThrow(/"numTrainTimesteps"/);
    expect(() =>
      validateSchedulerConfig({ ...SD, betaSchedule: 'nope' } as unknown as SchedulerConfig),
    ).toThrow(/"betaSchedule" must be one of/);
  });
});

describe('training schedule', () => {
  it('scaled_linear betas are linspace(sqrt(0.00085), sqrt(0.012), 1000)^2', () => {
    const betas = betasFor(SD);
    expect(betas.length).toBe(1000);
    expect(betas[0]).toBeCloseTo(0.00085, 15);
    expect(betas[999]).toBeCloseTo(0.012, 15);
    const a = Math.sqrt(0.00085);
    const b = Math.sqrt(0.012);
    for (const k of [1, 250, 500, 998]) {
      const expected = (a + ((b - a) * k) / 999) ** 2;
      expect(Math.abs(betas[k] - expected) / expected).toBeLessThan(1e-13);
    }
  });

  it('alphas_cumprod matches an independent product formula', () => {
    const ac = alphasCumprodFor(SD);
    expect(ac[0]).toBeCloseTo(0.99915, 15);
    // Independent: exp(sum log(1 - beta_k)) with beta_k from the closed form.
    const a = Math.sqrt(0.00085);
    const b = Math.sqrt(0.012);
    let logSum = 0;
    for (let k = 0; k < 1000; k++) logSum += Math.log1p(-((a + ((b - a) * k) / 999) ** 2));
    expect(Math.abs(ac[999] - Math.exp(logSum)) / ac[999]).toBeLessThan(1e-12);
    // numpy float64 cumprod of the same betas (computed once): 0.004660098513077238.
    expect(ac[999]).toBeCloseTo(0.004660098513077238, 14);
    expect(ac[999]).toBeCloseTo(0.0046, 3);
    // Strictly decreasing.
    for (let t = 1; t < 1000; t++) expect(ac[t]).toBeLessThan(ac[t - 1]);
  });

  it('linear betas run from beta_start to beta_end', () => {
    const betas = betasFor(cfg({ betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 }));
    expect(betas[0]).toBe(0.0001);
    expect(betas[999]).toBe(0.02);
    expect(betas[500]).toBeCloseTo(0.0001 + (0.0199 * 500) / 999, 15);
  });

  it('squaredcos_cap_v2 telescopes to the cosine alpha_bar', () => {
    const T = 1000;
    const f = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    const c = cfg({ betaSchedule: 'squaredcos_cap_v2' });
    const betas = betasFor(c);
    expect(Math.max(...betas)).toBeLessThanOrEqual(0.999);
    expect(betas[999]).toBe(0.999); // the last beta is capped
    const ac = alphasCumprodFor(c);
    for (const t of [0, 10, 500, 900]) expect(ac[t]).toBeCloseTo(f((t + 1) / T) / f(0), 12);
  });

  it('uses trained_betas verbatim when given', () => {
    const c = cfg({ numTrainTimesteps: 3, trainedBetas: [0.1, 0.2, 0.5] });
    expect(Array.from(betasFor(c))).toEqual([0.1, 0.2, 0.5]);
    const ac = alphasCumprodFor(c);
    expect(ac[2]).toBeCloseTo(0.9 * 0.8 * 0.5, 15);
  });

  it('train sigmas run from 0.0292 to 14.6146 for SD', () => {
    const s = trainSigmasFor(alphasCumprodFor(SD));
    expect(s[0]).toBeCloseTo(0.029167158151720367, 12);
    expect(s[999]).toBeCloseTo(14.614641229333639, 10);
  });
});

describe('numeric helpers', () => {
  it('linspace follows numpy', () => {
    expect(Array.from(linspace(0, 1, 5))).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(linspace(3, 7, 1))).toEqual([3]);
    expect(linspace(0, 999, 7)[6]).toBe(999);
  });

  it('roundHalfEven matches numpy.round', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, 499.5, 166.5].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, -2, 2, 3, 500, 166,
    ]);
  });

  it('interpAtIndex interpolates linearly and clamps', () => {
    const fp = Float64Array.from([1, 3, 7]);
    expect(interpAtIndex(0, fp)).toBe(1);
    expect(interpAtIndex(0.5, fp)).toBe(2);
    expect(interpAtIndex(1.25, fp)).toBe(4);
    expect(interpAtIndex(2, fp)).toBe(7);
    expect(interpAtIndex(5, fp)).toBe(7);
    expect(interpAtIndex(-1, fp)).toBe(1);
  });

  it('karrasSigmas: rho = 7 schedule with exact endpoints', () => {
    const sMin = 0.029167158151720367;
    const sMax = 14.614641229333639;
    const s = karrasSigmas(sMin, sMax, 10);
    expect(s[0]).toBe(sMax);
    expect(s[9]).toBe(sMin);
    for (let i = 1; i < 10; i++) expect(s[i]).toBeLessThan(s[i - 1]);
    const r = 4 / 9;
    expect(s[4]).toBeCloseTo((sMax ** (1 / 7) + r * (sMin ** (1 / 7) - sMax ** (1 / 7))) ** 7, 12);
    expect(Array.from(karrasSigmas(sMin, sMax, 1))).toEqual([sMax]);
  });

  it('sigmaToT inverts the train sigmas by log-linear interpolation', () => {
    const sigmas = trainSigmasFor(alphasCumprodFor(SD));
    const logSigmas = sigmas.map(Math.log);
    for (const t of [0, 1, 500, 998, 999]) expect(sigmaToT(sigmas[t], logSigmas)).toBeCloseTo(t, 9);
    const mid = Math.exp(0.25 * logSigmas[10] + 0.75 * logSigmas[11]);
    expect(sigmaToT(mid, logSigmas)).toBeCloseTo(10.75, 9);
    expect(sigmaToT(1e-6, logSigmas)).toBe(0);
    expect(sigmaToT(1e6, logSigmas)).toBe(999);
  });
});

describe('spacedTimesteps', () => {
  it('leading: arange(n) * (T // n), reversed, + steps_offset', () => {
    const ts = spacedTimesteps(SD, 50);
    expect(ts.length).toBe(50);
    expect(ts.slice(0, 3)).toEqual([981, 961, 941]);
    expect(ts[49]).toBe(1);
    expect(spacedTimesteps(cfg({ stepsOffset: 0 }), 4)).toEqual([750, 500, 250, 0]);
    expect(spacedTimesteps(cfg({ stepsOffset: 0 }), 3)).toEqual([666, 333, 0]);
  });

  it('trailing: round(arange(T, 0, -T/n)) - 1 (hand-computed)', () => {
    const tr = cfg({ timestepSpacing: 'trailing' });
    expect(spacedTimesteps(tr, 4)).toEqual([999, 749, 499, 249]);
    // 1000, 666.67, 333.33 -> 1000, 667, 333
    expect(spacedTimesteps(tr, 3)).toEqual([999, 666, 332]);
    // 1000 - 62.5 i: 937.5 -> 938 and 812.5 -> 812 (half to even, as numpy)
    expect(spacedTimesteps(tr, 16).slice(0, 4)).toEqual([999, 937, 874, 811]);
    expect(spacedTimesteps(tr, 1)).toEqual([999]);
    // numpy's arange yields 62 elements (the last -1) for n = 61; exactly 61 are kept.
    const t61 = spacedTimesteps(tr, 61);
    expect(t61.length).toBe(61);
    expect(t61[60]).toBe(15);
  });

  it('linspace: linspace(0, T - 1, n) reversed, fractional', () => {
    const ls = cfg({ timestepSpacing: 'linspace' });
    expect(spacedTimesteps(ls, 4)).toEqual([999, 666, 333, 0]);
    expect(spacedTimesteps(ls, 3)).toEqual([999, 499.5, 0]);
    expect(spacedTimesteps(ls, 1)).toEqual([0]);
  });
});

describe('checkNumInferenceSteps', () => {
  it('accepts 1..T and rejects others with a clear message', () => {
    expect(() => checkNumInferenceSteps('x', 1, 1000)).not.toThrow();
    expect(() => checkNumInferenceSteps('x', 1000, 1000)).not.toThrow();
    expect(() => checkNumInferenceSteps('x', 0, 1000)).toThrow(
      /numInferenceSteps must be an integer in \[1, 1000\]/,
    );
    expect(() => checkNumInferenceSteps('x', 1001, 1000)).toThrow(/got 1001/);
    expect(() => checkNumInferenceSteps('x', 2.5, 1000)).toThrow(RangeError);
  });
});

it('SCHEDULER_NAMES lists the five schedulers', () => {
  expect(SCHEDULER_NAMES).toEqual(['ddim', 'euler', 'euler_a', 'dpmpp_2m', 'dpmpp_2m_karras']);
});
