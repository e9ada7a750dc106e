/**
 * The Training place's pure pieces: folding live progress into a training (loss points, sample
 * pictures), the loss chart's geometry, and the words a phase is shown with.
 *
 * @example
 * const chart = lossChart(training.losses.filter((p) => p.phase === 'unet'), { width: 480, height: 200 });
 * // <path d={chart.raw} /> <path d={chart.smooth} />
 */
import type {
  TrainingLossPoint,
  TrainingPhase,
  TrainingPreview,
  TrainingProgress,
} from '../../../electron/api/contract';

/**
 * The loss curve with a new point. A step seen again (a resumed training repeats the steps after its
 * checkpoint) replaces the old point and the points after it, as the backend does.
 */
export function withLoss(
  points: readonly TrainingLossPoint[],
  point: TrainingLossPoint,
): TrainingLossPoint[] {
  return [...points.filter((p) => p.phase !== point.phase || p.step < point.step), point];
}

/** The previews with a new one (one per step, in step order). */
export function withPreview(
  previews: readonly TrainingPreview[],
  preview: TrainingPreview,
): TrainingPreview[] {
  return [...previews.filter((p) => p.step !== preview.step), preview].sort((a, b) => a.step - b.step);
}

/** What a phase is called on the Training screen. */
export const PHASE_LABELS: Readonly<Record<TrainingPhase, string>> = {
  prepare: 'Cutting out the subjects',
  'class-images': 'Drawing class pictures',
  encode: 'Reading the pictures',
  unet: 'Teaching the model the subjects',
  segmentation: 'Teaching the region checker (SAL)',
  export: 'Saving the trained model',
};

/** Milliseconds the current phase still needs at its pace so far, or null before it has a pace. */
export function timeLeftMs(progress: TrainingProgress | null): number | null {
  if (!progress || progress.phaseElapsedMs === undefined || progress.step < 1) return null;
  return (progress.phaseElapsedMs / progress.step) * Math.max(0, progress.totalSteps - progress.step);
}

/** "about 3 min left", "about 40 s left". */
export function formatTimeLeft(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 90) return `about ${s} s left`;
  const min = Math.round(s / 60);
  if (min < 90) return `about ${min} min left`;
  return `about ${(min / 60).toFixed(1)} h left`;
}

export interface LossChart {
  /** SVG path of the losses as they are. */
  raw: string;
  /** SVG path of an exponential moving average (what the trend is). */
  smooth: string;
  /** The loss range of the y axis. */
  min: number;
  max: number;
  /** The step range of the x axis. */
  firstStep: number;
  lastStep: number;
}

/**
 * The chart of a loss curve in a `width x height` box (`pad` pixels kept free on every side), x by
 * step, y linear between the smallest and largest loss (larger loss up). Null without points.
 */
export function lossChart(
  points: readonly TrainingLossPoint[],
  {
    width,
    height,
    pad = 4,
    smoothing = 0.8,
  }: { width: number; height: number; pad?: number; smoothing?: number },
): LossChart | null {
  if (points.length === 0) return null;
  const steps = points.map((p) => p.step);
  const losses = points.map((p) => p.loss);
  const firstStep = Math.min(...steps);
  const lastStep = Math.max(...steps);
  let min = Math.min(...losses);
  let max = Math.max(...losses);
  if (max - min < 1e-12) {
    // a flat line sits in the middle
    min -= 0.5 * Math.max(Math.abs(min), 1e-6);
    max += 0.5 * Math.max(Math.abs(max), 1e-6);
  }
  const x = (step: number) =>
    lastStep === firstStep
      ? width / 2
      : pad + ((step - firstStep) / (lastStep - firstStep)) * (width - 2 * pad);
  const y = (loss: number) => pad + (1 - (loss - min) / (max - min)) * (height - 2 * pad);
  const path = (values: readonly number[]) =>
    values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(steps[i]).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const averaged: number[] = [];
  for (const [i, v] of losses.entries())
    averaged.push(i === 0 ? v : smoothing * averaged[i - 1] + (1 - smoothing) * v);
  return { raw: path(losses), smooth: path(averaged), min, max, firstStep, lastStep };
}
