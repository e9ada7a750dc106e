/**
 * One cast training as the studio runs it: the reference pictures are read from the file store's
 * paths, `trainCast` (native-models/personalize/cast-training.ts) fine-tunes the model into the variant
 * folder, and what the user should see (cut-outs, augmented samples, sample pictures) comes back as
 * PNG bytes. It runs inside the training worker (training-worker.ts); `InlineTrainingRunner` in
 * training-runner.ts runs it on the calling thread.
 *
 *   1. read     every reference picture (all unreadable ones are named in one error)
 *   2. train    trainCast with the settings; progress, previews and the prepared data are reported
 *   3. encode   cut-outs (the subject kept, the rest faded), a handful of samples and the previews as
 *               PNG, in the order they arrived, before the result is returned
 *
 * @example
 * const output = await runTrainingTask(task, { signal, onProgress: (p) => console.log(p.phase, p.step) });
 */
import { readFile } from 'node:fs/promises';
import type { TrainingSettings } from '../api/contract.js';
import { decodeImage } from '../../native-models/image/image.js';
import type { RgbImage } from '../../native-models/image/image.js';
import { encodePng } from '../../native-models/image/png.js';
import { cutOutPreview } from '../../native-models/personalize/augment.js';
import type {
  AugmentedSample,
  CutOutMethod,
  PreparedSubject,
} from '../../native-models/personalize/augment.js';
import { CastError } from '../../native-models/personalize/cast-file.js';
import { trainCast } from '../../native-models/personalize/cast-training.js';
import type {
  CastManifest,
  CastTrainingProgress,
  CastTrainingResult,
} from '../../native-models/personalize/cast-training.js';

/** Everything a training needs; plain data, so it crosses to the worker as `workerData`. */
export interface TrainingTask {
  baseModelDir: string;
  /** The variant folder to write. */
  outDir: string;
  /** Checkpoints; kept until the training completes. */
  workDir: string;
  /** Continue from the checkpoints in `workDir`. */
  resume: boolean;
  cast: {
    name: string;
    subjects: { name: string; identifier: string; classNoun: string; images: string[] }[];
  };
  settings: TrainingSettings;
}

export interface PreparedOutput {
  cutOuts: { subject: number; index: number; method: CutOutMethod; png: Uint8Array }[];
  samples: { caption: string; png: Uint8Array }[];
}

export interface PreviewOutput {
  step: number;
  images: { identifier: string; prompt: string; png: Uint8Array }[];
}

export interface TrainingOutput {
  stoppedBy: CastTrainingResult['stoppedBy'];
  unetSteps: number;
  lastLoss: number;
  seconds: number;
  manifest: CastManifest;
}

export interface TrainingCallbacks {
  signal?: AbortSignal;
  onProgress?: (p: CastTrainingProgress) => void;
  onPrepared?: (p: PreparedOutput) => void;
  onPreview?: (p: PreviewOutput) => void;
}

/** Cut-outs shown per subject, and augmented samples shown in all (the user checks them by eye). */
const CUT_OUTS_PER_SUBJECT = 6;
const SAMPLES_SHOWN = 8;

/**
 * Augmented samples per subject: enough for the pictures the steps will see (half a batch of subject
 * pictures per step with prior preservation), at least 3 and at most the engine's 48.
 */
export function samplesPerSubject(settings: TrainingSettings, subjects: number): number {
  const perStep = settings.classImages > 0 ? Math.max(1, Math.floor(settings.batch / 2)) : settings.batch;
  return Math.min(48, Math.max(3, Math.ceil((settings.steps * perStep) / Math.max(1, subjects))));
}

/** Runs one training (see the file header). Rejects with an AbortError when cancelled before the UNet phase. */
export async function runTrainingTask(
  task: TrainingTask,
  callbacks: TrainingCallbacks = {},
): Promise<TrainingOutput> {
  // 1. read the reference pictures
  const problems: string[] = [];
  const subjects = [];
  for (const s of task.cast.subjects) {
    const images: RgbImage[] = [];
    for (const [i, path] of s.images.entries()) {
      try {
        images.push(await decodeImage(await readFile(path), path));
      } catch (e) {
        problems.push(`subject '${s.name}': picture ${i + 1} cannot be read (${(e as Error).message})`);
      }
    }
    subjects.push({ name: s.name, identifier: s.identifier, classNoun: s.classNoun, images });
  }
  if (problems.length > 0) throw new CastError(problems.join('; '));

  // 2. train; the PNGs are encoded on one chain so they arrive in order
  let chain: Promise<void> = Promise.resolve();
  const later = (work: () => Promise<void>) => {
    chain = chain.then(work).catch(() => undefined); // a thumbnail is a nicety; training goes on
  };
  const { settings } = task;
  const perSubject = samplesPerSubject(settings, subjects.length);
  const result = await trainCast({
    baseModelDir: task.baseModelDir,
    cast: { name: task.cast.name, subjects },
    outDir: task.outDir,
    workDir: task.workDir,
    resume: task.resume,
    steps: settings.steps,
    batch: settings.batch,
    classImages: settings.classImages,
    segmentationSteps: settings.segmentationSteps,
    samplesPerSubject: perSubject,
    compositesPerSubject: subjects.length > 1 ? Math.min(16, Math.max(1, Math.round(perSubject / 3))) : 0,
    checkpointEvery: Math.max(1, Math.min(50, Math.round(settings.steps / 10))),
    previewEvery: settings.previewEvery,
    ...(callbacks.signal ? { signal: callbacks.signal } : {}),
    onProgress: (p) => callbacks.onProgress?.(p),
    onPrepared: ({ subjects: prepared, samples }) => {
      const report = callbacks.onPrepared;
      if (report) later(async () => report(await encodePrepared(prepared, samples)));
    },
    onPreview: (preview) => {
      const report = callbacks.onPreview;
      if (!report) return;
      later(async () =>
        report({
          step: preview.step,
          images: await Promise.all(
            preview.images.map(async (i) => ({
              identifier: i.identifier,
              prompt: i.prompt,
              png: await encodePng(i.image),
            })),
          ),
        }),
      );
    },
  });

  // 3. the last PNGs, then the result
  await chain;
  return {
    stoppedBy: result.stoppedBy,
    unetSteps: result.unetSteps,
    lastLoss: result.lastLoss,
    seconds: result.seconds,
    manifest: result.manifest,
  };
}

/** Every subject's cut-outs (up to a few each) and samples spread over singles and composites. */
async function encodePrepared(
  subjects: readonly PreparedSubject[],
  samples: readonly AugmentedSample[],
): Promise<PreparedOutput> {
  const cutOuts: PreparedOutput['cutOuts'] = [];
  for (const [s, subject] of subjects.entries()) {
    for (const cutOut of subject.cutOuts.slice(0, CUT_OUTS_PER_SUBJECT)) {
      const png = await encodePng(cutOutPreview(subject.images[cutOut.index], cutOut));
      cutOuts.push({ subject: s, index: cutOut.index, method: cutOut.method, png });
    }
  }
  const count = Math.min(SAMPLES_SHOWN, samples.length);
  const picked = Array.from({ length: count }, (_, i) => samples[Math.floor((i * samples.length) / count)]);
  const shown = [];
  for (const sample of picked) shown.push({ caption: sample.caption, png: await encodePng(sample.image) });
  return { cutOuts, samples: shown };
}
