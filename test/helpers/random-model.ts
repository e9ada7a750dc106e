/**
 * One tiny random model per test worker, created on first use in a temp folder.
 */
import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
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

/**
 * A copy of a random model (the shared one unless `from` is given) in the other ControlNet layout
 * of the model contract: unet/ itself takes the residuals (the ControlNet-aware UNet moved into
 * unet/), no unet_controlnet/.
 */
export async function foldedRandomModel(from?: string): Promise<string> {
  const dir = join(await makeTempDir(), 'tiny-random-folded');
  await cp(from ?? (await sharedRandomModel()), dir, { recursive: true });
  await rename(join(dir, 'unet_controlnet', 'model.onnx'), join(dir, 'unet', 'model.onnx'));
  await rm(join(dir, 'unet_controlnet'), { recursive: true });
  return dir;
}
