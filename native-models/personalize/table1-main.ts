/**
 * `npm run eval:table1 -- [--quick] [--steps N] [--images N] [--prompts N] [--compositions N]
 *   [--sal-weight X] [--out DIR] [--model DIR] [--work DIR] [--retrain] [--train-steps N]
 *   [--segmentation-steps N] [--class-images N]`
 *
 * The paper's Table 1 on the tiny world (table1.ts): trains the identity set's cast once (cached in
 * `<work>/cast-model`, default .tmp/table1), renders every row, and writes table1.md, table1.json
 * and table1-samples.png to `--out` (default docs/). `--quick` is a smoke run with tiny counts; it
 * caches its cast in `<work>/cast-model-quick` and writes to `<work>/quick` unless `--out` is given,
 * so it never replaces the real table. Prints how long training and evaluation took.
 * Exit codes: 0 done, 1 failed or cancelled, 2 bad arguments.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { embeddedModelDir } from '../models/default-model.js';
import {
  runTable1,
  TABLE1_DEFAULT_COUNTS,
  TABLE1_DEFAULT_SAMPLING,
  TABLE1_DEFAULT_TRAINING,
  TABLE1_QUICK,
  table1Markdown,
  writeTable1,
  type Table1Counts,
  type Table1Sampling,
  type Table1Training,
} from './table1.js';

const REPO = resolve(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);

const USAGE =
  'npm run eval:table1 -- [--quick] [--steps N] [--images N] [--prompts N] [--compositions N] [--sal-weight X]\n' +
  '    [--out DIR] [--model DIR] [--work DIR] [--retrain] [--train-steps N] [--segmentation-steps N] [--class-images N]';

class UsageError extends Error {}

function integer(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (!Number.isInteger(v) || v < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return v;
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (!Number.isFinite(v) || v < 0) throw new UsageError(`--${name} must be a number >= 0, got "${value}"`);
  return v;
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean' },
        steps: { type: 'string' },
        images: { type: 'string' },
        prompts: { type: 'string' },
        compositions: { type: 'string' },
        'sal-weight': { type: 'string' },
        out: { type: 'string' },
        model: { type: 'string' },
        work: { type: 'string' },
        retrain: { type: 'boolean' },
        'train-steps': { type: 'string' },
        'segmentation-steps': { type: 'string' },
        'class-images': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (e) {
    process.stderr.write(`eval:table1: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let counts: Table1Counts;
  let sampling: Table1Sampling;
  let training: Table1Training;
  try {
    const quick = values.quick === true;
    counts = {
      ...TABLE1_DEFAULT_COUNTS,
      ...(quick ? TABLE1_QUICK.counts : {}),
      ...defined({
        compositions: integer(values.compositions, 'compositions', 1),
        prompts: integer(values.prompts, 'prompts', 1),
        images: integer(values.images, 'images', 1),
      }),
    };
    sampling = {
      ...TABLE1_DEFAULT_SAMPLING,
      ...(quick ? TABLE1_QUICK.sampling : {}),
      ...defined({
        steps: integer(values.steps, 'steps', 2),
        salWeight: number(values['sal-weight'], 'sal-weight'),
      }),
    };
    training = {
      ...TABLE1_DEFAULT_TRAINING,
      ...(quick ? TABLE1_QUICK.training : {}),
      ...defined({
        steps: integer(values['train-steps'], 'train-steps', 1),
        segmentationSteps: integer(values['segmentation-steps'], 'segmentation-steps', 1),
        classImages: integer(values['class-images'], 'class-images', 0),
      }),
    };
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`eval:table1: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  const quick = values.quick === true;
  const work = resolve(values.work ?? join(REPO, '.tmp', 'table1'));
  const out = resolve(values.out ?? (quick ? join(work, 'quick') : join(REPO, 'docs')));
  const baseModelDir = resolve(values.model ?? embeddedModelDir());
  const castModelDir = join(work, quick ? 'cast-model-quick' : 'cast-model');

  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const log = (line: string) => process.stdout.write(`${line}\n`);
  let lastPhase = '';
  let lastReport = 0;
  try {
    const result = await runTable1({
      baseModelDir,
      castModelDir,
      retrain: values.retrain === true,
      counts,
      sampling,
      training,
      signal: controller.signal,
      log,
      onTrainingProgress: (p) => {
        const now = performance.now();
        if (p.phase !== lastPhase || now - lastReport > 30_000 || p.step === p.totalSteps) {
          log(
            `cast ${p.phase} ${p.step}/${p.totalSteps}${p.loss !== undefined ? ` loss ${p.loss.toFixed(4)}` : ''}`,
          );
          lastPhase = p.phase;
          lastReport = now;
        }
      },
    });
    const paths = await writeTable1(result, out);
    log('');
    log(table1Markdown(result).split('\n## Settings')[0]);
    log(`wrote ${paths.markdown}, ${paths.json}, ${paths.samples}`);
    log(
      `time: cast training ${result.castReused ? '0 s (reused the cached cast model)' : `${result.trainingSeconds.toFixed(0)} s`}, evaluation ${result.evaluationSeconds.toFixed(0)} s (${result.renders} renders, ${(result.evaluationSeconds / Math.max(1, result.renders)).toFixed(1)} s each with scoring)`,
    );
    return 0;
  } catch (e) {
    if (controller.signal.aborted) {
      process.stderr.write(
        'eval:table1: cancelled; run again to resume the cast training or redo the evaluation\n',
      );
      return 1;
    }
    process.stderr.write(`eval:table1: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
