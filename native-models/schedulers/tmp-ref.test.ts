import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, alphasCumprodFor, DEFAULT_SCHEDULER_CONFIG } from './index.js';
import type { SchedulerConfig } from './index.js';

interface Case { cfg: { T: number; bs: number; be: number; sched: string; off: number; spacing: string }; n: number; ddim: number[];
  euler: { ts: number[]; sig: number[]; init: number }; euler_k: { ts: number[]; sig: number[]; init: number };
  dpm: { ts: number[]; sig: number[] }; dpm_k: { ts: number[]; sig: number[] } }
const ref = JSON.parse(readFileSync('/tmp/schedref/ref.json', 'utf8')) as { cases: Case[]; ac: number[] };
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
it('matches numpy reference', () => {
  const ac = alphasCumprodFor(DEFAULT_SCHEDULER_CONFIG);
  let worst = 0;
  for (let i = 0; i < 1000; i++) worst = Math.max(worst, rel(ac[i], ref.ac[i]));
  console.log('ac worst rel', worst);
  let maxSig = 0; let maxTs = 0; let maxInit = 0;
  for (const c of ref.cases) {
    const config: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, numTrainTimesteps: c.cfg.T, betaStart: c.cfg.bs, betaEnd: c.cfg.be,
      betaSchedule: c.cfg.sched as SchedulerConfig['betaSchedule'], stepsOffset: c.cfg.off, timestepSpacing: c.cfg.spacing as SchedulerConfig['timestepSpacing'] };
    const tag = JSON.stringify({ ...c.cfg, n: c.n });
    const d = new DDIMScheduler(config); d.setTimesteps(c.n);
    expect(d.timesteps, 'ddim ' + tag).toEqual(c.ddim);
    for (const k of [false, true]) {
      const e = new EulerDiscreteScheduler({ ...config, useKarrasSigmas: k }); e.setTimesteps(c.n);
      const r = k ? c.euler_k : c.euler;
      expect(e.fractionalTimesteps.length).toBe(r.ts.length);
      e.fractionalTimesteps.forEach((t, j) => { maxTs = Math.max(maxTs, Math.abs(t - r.ts[j])); });
      const es = e.sigmas; es.forEach((s, j) => { maxSig = Math.max(maxSig, rel(s, r.sig[j]) * (r.sig[j] === 0 ? 0 : 1)); });
      maxInit = Math.max(maxInit, rel(e.initNoiseSigma, r.init));
      const p = new DPMSolverMultistepScheduler({ ...config, useKarrasSigmas: k }); p.setTimesteps(c.n);
      const rp = k ? c.dpm_k : c.dpm;
      expect(p.timesteps, 'dpm ' + k + tag).toEqual(rp.ts);
      p.sigmas.forEach((s, j) => { maxSig = Math.max(maxSig, rel(s, rp.sig[j]) * (rp.sig[j] === 0 ? 0 : 1)); });
    }
  }
  console.log({ maxSig, maxTs, maxInit, n: ref.cases.length });
  expect(maxSig).toBeLessThan(1e-9);
});
