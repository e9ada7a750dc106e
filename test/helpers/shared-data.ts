/**
 * Third-party test inputs (the real CLIP vocabulary, exported ONNX graphs) live outside the
 * repository in ../shared/data, beside the checkout. MSP_SHARED_DATA overrides the location.
 * Tests that need them skip with a message where the folder is absent.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const candidates = [
  process.env.MSP_SHARED_DATA,
  resolve(import.meta.dirname, '..', '..', '..', 'shared', 'data'),
  '/work/shared/data',
].filter((p): p is string => typeof p === 'string' && p !== '');

/** The shared data folder, or undefined when no candidate exists. */
export const SHARED_DATA: string | undefined = candidates.find((p) => existsSync(p));

/** Path of a file or folder inside the shared data folder (which may not exist). */
export function sharedData(...parts: string[]): string {
  return join(SHARED_DATA ?? candidates[0] ?? '/nonexistent', ...parts);
}
