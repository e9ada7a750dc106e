/**
 * Where the app finds a model when none is given: MSP_MODEL_DIR, else the embedded tiny
 * model shipped under native-models/weights/tiny-sd (trained by the tiny-world recipe).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The embedded model folder, relative to the repository (and to the built dist/ tree). */
export const EMBEDDED_MODEL_RELATIVE = 'native-models/weights/tiny-sd';

export const EMBEDDED_MODEL_HINT =
  'the embedded tiny model is missing (native-models/weights/tiny-sd has no model_index.json). ' +
  'Give a model folder: a Stable Diffusion 1.5 ONNX export, or a random test model made with ' +
  '"msp create-random-model ./tiny-random" and then "--model ./tiny-random".';

function repositoryRoot(): string {
  // this file is native-models/models/ in the sources and dist/native-models/models/ when built
  const here = fileURLToPath(new URL('.', import.meta.url));
  const up = here.includes(`${join('dist', 'native-models')}`) ? '../../..' : '../..';
  return join(here, up);
}

/**
 * The unpacked twin of a path inside a packaged app's `app.asar`: the weights are unpacked
 * (build/electron-builder.yml) because onnxruntime opens them by plain file path, which cannot
 * read inside the archive. Other paths are returned as they are.
 */
export function unpackedPath(path: string): string {
  return path.replace(/([\\/])app\.asar(?=[\\/]|$)/, '$1app.asar.unpacked');
}

/** The shipped tiny model folder (whether or not it is complete). */
export function embeddedModelDir(): string {
  return unpackedPath(join(repositoryRoot(), EMBEDDED_MODEL_RELATIVE));
}

/** The model folder to use when the user gives none, or undefined when there is none. */
export function defaultModelDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.MSP_MODEL_DIR) return env.MSP_MODEL_DIR;
  const embedded = embeddedModelDir();
  return existsSync(join(embedded, 'model_index.json')) ? embedded : undefined;
}
