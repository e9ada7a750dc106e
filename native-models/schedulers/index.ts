/**
 * Diffusion schedulers by name. Each call returns a new scheduler; call setTimesteps() on it, then
 * createState() once per trajectory.
 */
import { DDIMScheduler } from './ddim.js';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EulerDiscreteScheduler } from './euler.js';
import { SCHEDULER_NAMES } from './scheduler.js';
import type { DiffusionScheduler, SchedulerConfig, SchedulerName } from './scheduler.js';

export * from './scheduler.js';
export { DDIMScheduler } from './ddim.js';
export { EulerDiscreteScheduler, SigmaSchedulerBase } from './euler.js';
export { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
export { DPMSolverMultistepScheduler, dpmSolverTimesteps } from './dpm-solver-multistep.js';
export type { DPMSolverOptions } from './dpm-solver-multistep.js';

/** True when `name` is one of {@link SCHEDULER_NAMES}. */
export function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(name);
}

/**
 * A scheduler by name:
 * - `ddim`: DDIM, eta 0
 * - `euler`: Euler (Karras sigmas if config.useKarrasSigmas)
 * - `euler_a`: Euler ancestral (needs an Rng in step())
 * - `dpmpp_2m`: DPM-Solver++ 2M (Karras sigmas if config.useKarrasSigmas)
 * - `dpmpp_2m_karras`: DPM-Solver++ 2M with Karras sigmas forced on
 */
export function createScheduler(name: string, config: SchedulerConfig): DiffusionScheduler {
  if (!isSchedulerName(name)) {
    throw new Error(
      `unknown scheduler ${JSON.stringify(String(name))}; expected one of ${SCHEDULER_NAMES.join(', ')}`,
    );
  }
  switch (name) {
    case 'ddim':
      return new DDIMScheduler(config);
    case 'euler':
      return new EulerDiscreteScheduler(config);
    case 'euler_a':
      return new EulerAncestralDiscreteScheduler(config);
    case 'dpmpp_2m':
      return new DPMSolverMultistepScheduler(config);
    case 'dpmpp_2m_karras':
      return new DPMSolverMultistepScheduler(config, { forceKarras: true });
  }
}
