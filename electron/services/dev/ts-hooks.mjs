// Module hooks that let a worker thread run the TypeScript sources directly (tests and development
// run from source; the built app runs dist/*.js and never loads this file). Relative `.js`
// imports that have a `.ts` source beside them resolve to it, and `.ts` files are transpiled with
// the project's TypeScript (types are erased; nothing is type-checked here). Output is cached by
// content hash in node_modules/.cache/msp-studio-ts/, so only changed files are transpiled again.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const CACHE_DIR = fileURLToPath(new URL('../../../node_modules/.cache/msp-studio-ts/', import.meta.url));
const COMPILER_OPTIONS_KEY = 'esnext-es2022-v1';

/** @type {Promise<typeof import('typescript')> | undefined} */
let typescript;

/** @type {import('node:module').ResolveHook} */
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const candidate = new URL(specifier.slice(0, -3) + '.ts', parent);
    if (existsSync(fileURLToPath(candidate))) return { url: candidate.href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

/** @type {import('node:module').LoadHook} */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  const key = createHash('sha256').update(COMPILER_OPTIONS_KEY).update(path).update(source).digest('hex');
  const cached = `${CACHE_DIR}${key}.js`;
  const hit = await readFile(cached, 'utf8').catch(() => undefined);
  if (hit !== undefined) return { format: 'module', source: hit, shortCircuit: true };

  typescript ??= import('typescript').then((m) => m.default);
  const ts = await typescript;
  const output = ts.transpileModule(source, {
    fileName: path,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
    },
  }).outputText;
  try {
    await mkdir(CACHE_DIR, { recursive: true });
    const temp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(temp, output);
    await rename(temp, cached);
  } catch {
    // The cache is an optimization only.
  }
  return { format: 'module', source: output, shortCircuit: true };
}
