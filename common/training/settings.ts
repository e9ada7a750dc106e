/**
 * The settings of a cast training (`TrainingSettings` in electron/api/contract.ts): defaults and the
 * ranges the backend accepts. Shared so the Training screen offers what the service will take.
 *
 * @example
 * const settings = { ...TRAINING_DEFAULTS, steps: 200 };
 */

/** The engine's defaults, with a sample picture of every subject each 50 steps. */
export const TRAINING_DEFAULTS = Object.freeze({
  steps: 400,
  classImages: 8,
  segmentationSteps: 300,
  previewEvery: 50,
  batch: 8,
});

/** Inclusive ranges of each setting (whole numbers). */
export const TRAINING_LIMITS = Object.freeze({
  steps: { min: 1, max: 100_000 },
  classImages: { min: 0, max: 200 },
  segmentationSteps: { min: 0, max: 100_000 },
  previewEvery: { min: 0, max: 100_000 },
  batch: { min: 1, max: 64 },
});
