/**
 * One tiny random model per test worker, created on first use in a temp folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRandomModel } from '../../native-models/models/random-model.js';

let pending: Promise<string> | undefined;
const temps: string[] = [];

/** The path of a shared random model (do not modify it; copy it for destructive tests). */
export function sharedRandomModel(): Promise<string> {
  pending ??= (async () => {
    const root = await makeTempDir();
    return createRandomModel(join(root, 'tiny-random'));
  })();
  return pending;
}

export async function makeTempDir(prefix = 'msp-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export async function cleanupTempDirs(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  pending = undefined;
}
