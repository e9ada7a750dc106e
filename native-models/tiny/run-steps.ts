/**
 * Step counts across runs. A run that starts from the folder's weights (a joint run with the text
 * encoder, a grown UNet or ControlNet, a fine-tuned judge) trains in a checkpoint folder of its own
 * and counts its steps from 0, yet metrics.json should say how many steps the shipped weights have
 * had in all. So when such a run starts fresh it writes the folder's counts to
 * `<checkpointDir>/steps-before.json`, and every later resume of it reads them back from there
 * (metrics.json has moved on by then): the figure a run writes is its base plus its own steps.
 *
 * @example
 * const before = await stepsBefore({ checkpointDir, metricsDir: out, resume, base: { controlnet_steps: 'folder' } });
 * await mergeMetrics(out, { controlnet_steps: before.controlnet_steps + result.step });
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';

export const STEPS_BEFORE_FILE = 'steps-before.json';

/** Where a count starts on a fresh run: the folder's figure in metrics.json (0 when absent), or 0. */
export type StepBase = 'folder' | 'zero';

/**
 * The counts each metric had before this run: on a fresh run (no `latest.json` in the checkpoint
 * folder, or no `resume`) read from `<metricsDir>/metrics.json` as `base` says and written to the
 * checkpoint folder; on a resume read from the checkpoint folder. A resumed run whose folder
 * predates the file counts from 0 and says so through `warn`.
 */
export async function stepsBefore(o: {
  checkpointDir: string;
  metricsDir: string;
  resume: boolean;
  base: Record<string, StepBase>;
  warn?: (line: string) => void;
}): Promise<Record<string, number>> {
  const file = join(o.checkpointDir, STEPS_BEFORE_FILE);
  const keys = Object.keys(o.base);
  const resuming = o.resume && existsSync(join(o.checkpointDir, 'latest.json'));
  if (resuming) {
    if (!existsSync(file)) {
      o.warn?.(
        `${file} is missing (a checkpoint folder from before step counts were kept): ${keys.join(', ')} count this run's steps only`,
      );
      return Object.fromEntries(keys.map((k) => [k, 0]));
    }
    const saved = await readCounts(file);
    return Object.fromEntries(keys.map((k) => [k, saved[k] ?? 0]));
  }
  const metricsFile = join(o.metricsDir, 'metrics.json');
  const metrics = existsSync(metricsFile) ? await readCounts(metricsFile) : {};
  const counts = Object.fromEntries(keys.map((k) => [k, o.base[k] === 'folder' ? (metrics[k] ?? 0) : 0]));
  await mkdir(o.checkpointDir, { recursive: true });
  await writeFileAtomic(file, JSON.stringify(counts, null, 2) + '\n');
  return counts;
}

async function readCounts(file: string): Promise<Record<string, number>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`${file} should hold an object of step counts`);
  const counts: Record<string, number> = {};
  for (const [k, v] of Object.entries(parsed))
    if (Number.isInteger(v) && (v as number) >= 0) counts[k] = v as number;
  return counts;
}
