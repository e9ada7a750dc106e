/**
 * The render engine: loads the model once and renders panels (resolved scenes) with the MSP
 * pipeline, reporting progress with fast previews. It runs inside the render worker
 * (render-worker.ts); {@link InlineRenderRunner} in render-runner.ts runs it on the calling thread.
 *
 * Model choice: the folder given (the embedded tiny model, MSP_MODEL_DIR or a folder the user
 * imported and made active), else a random-weight test model created once in `randomModelDir` (its
 * pictures are structured noise; the model info says so).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ModelInfo } from '../api/contract.js';
import { resizeImage } from '../../native-models/image/image.js';
import { encodePng } from '../../native-models/image/png.js';
import { createRandomModel } from '../../native-models/models/random-model.js';
import type { ResolvedScene, SeededGenerationRequest } from '../../native-models/msp/request.js';
import { readRareTokens } from '../../native-models/personalize/cast-file.js';
import { encodeRenderPng, renderScene } from '../../native-models/pipelines/render-scene.js';
import { StableDiffusion } from '../../native-models/pipelines/stable-diffusion.js';
import { Runtime } from '../../native-models/runtime/session.js';
import type { ExecutionProviderChoice } from '../../native-models/runtime/session.js';
import { SCHEDULER_NAMES } from '../../native-models/schedulers/scheduler.js';

/** How the engine finds its model. */
export interface EngineOptions {
  /** A model folder, or undefined to use (and create once) the random test model. */
  modelDir?: string;
  /** Where the model came from, for the UI. */
  modelSource?: 'embedded' | 'env' | 'folder';
  /** Where the random test model lives (`<dataDir>/models/tiny-random`). */
  randomModelDir: string;
  executionProvider?: ExecutionProviderChoice;
}

/** One render: the scene (files as absolute paths) and how often to send previews. */
export interface RenderTask {
  scene: ResolvedScene;
  /** A preview every n steps (0: none). */
  previewEvery: number;
}

export interface EngineProgress {
  step: number;
  totalSteps: number;
  stage: 'global' | 'scaffolding' | 'harmonization';
  /** A PNG preview (the fast latent preview, scaled to the panel size). */
  previewPng?: Uint8Array;
}

export interface RenderOutput {
  /** The render as PNG with `parameters` and `msp:request` text chunks. */
  png: Uint8Array;
  request: SeededGenerationRequest;
  warnings: string[];
  width: number;
  height: number;
  modelName: string;
}

export class RenderEngine {
  private constructor(
    private readonly sd: StableDiffusion,
    readonly info: ModelInfo,
  ) {}

  /** Loads the model (creating the random test model first when there is none). */
  static async create(options: EngineOptions): Promise<RenderEngine> {
    let dir = options.modelDir;
    let source: ModelInfo['source'] = options.modelSource ?? 'embedded';
    if (dir === undefined) {
      dir = await ensureRandomModel(options.randomModelDir);
      source = 'random';
    }
    const runtime = new Runtime({ executionProvider: options.executionProvider ?? 'auto' });
    const sd = await StableDiffusion.load(dir, runtime);
    const unet = await sd.session('unet');
    const sizes = sd.sizes;
    const note =
      source === 'random'
        ? `No trained model is installed, so renders use a random-weight test model (${basename(dir)}); its pictures are structured noise.`
        : source === 'env'
          ? `The model from MSP_MODEL_DIR (${dir}).`
          : source === 'folder'
            ? `The model folder you imported (${dir}).`
            : `The embedded tiny model (${dir}), trained on the project's procedural world: see its MODEL_CARD.md.`;
    const info: ModelInfo = {
      name: sd.name,
      source,
      note,
      executionProvider: unet.executionProvider,
      ...(unet.fallbackReason ? { providerFallbackReason: unet.fallbackReason } : {}),
      sizes: {
        defaultImageSize: sizes.defaultImageSize ?? null,
        vaeScaleFactor: sizes.vaeScaleFactor,
        latentChannels: sizes.latentChannels,
        sequenceLength: sizes.sequenceLength,
        hiddenSize: sizes.hiddenSize,
      },
      hasControlNet: sd.model.components.controlnet !== undefined,
      hasSegmentation: existsSync(join(sd.model.dir, 'segmentation', 'model.onnx')),
      schedulers: [...SCHEDULER_NAMES],
    };
    const rareTokens = await readRareTokens(sd.model.tokenizerDir);
    if (rareTokens.length > 0) info.rareTokens = rareTokens;
    const segmentationClasses = await readSegmentationClasses(join(sd.model.dir, 'segmentation'));
    if (segmentationClasses.length > 0) info.segmentationClasses = segmentationClasses;
    return new RenderEngine(sd, info);
  }

  /** Renders a scene; rejects with the pipeline's error (or an AbortError when cancelled). */
  async render(
    task: RenderTask,
    options: { signal?: AbortSignal; onProgress?: (p: EngineProgress) => void } = {},
  ): Promise<RenderOutput> {
    // Reports go through one promise chain: previews are encoded off the denoising loop's back,
    // and progress still arrives in step order.
    let chain = Promise.resolve();
    const { width, height } = task.scene.request;
    const result = await renderScene(this.sd, task.scene, {
      previewEvery: task.previewEvery,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (p) => {
        const report = options.onProgress;
        if (!report) return;
        const base = { step: p.step, totalSteps: p.totalSteps, stage: p.stage };
        const preview = p.preview;
        chain = chain.then(async () => {
          if (!preview) return report(base);
          try {
            const scaled =
              width !== undefined && height !== undefined
                ? await resizeImage(preview, width, height, { kernel: 'linear' })
                : preview;
            report({ ...base, previewPng: await encodePng(scaled) });
          } catch {
            report(base); // a preview is a nicety; the render goes on without it
          }
        });
      },
    });
    await chain;
    options.signal?.throwIfAborted();
    const png = await encodeRenderPng(result.image, result.request, this.sd.name);
    return {
      png,
      request: result.request,
      warnings: result.warnings,
      width: result.image.width,
      height: result.image.height,
      modelName: this.sd.name,
    };
  }

  async dispose(): Promise<void> {
    await this.sd.runtime.dispose();
  }
}

/** The identifier tokens a model reserves for subjects (`tokenizer/rare_tokens.json`), or none. */
export { readRareTokens };

/** The class names of a segmentation model folder (`classes.json`), or none. */
export async function readSegmentationClasses(segmentationDir: string): Promise<string[]> {
  try {
    const json = JSON.parse(await readFile(join(segmentationDir, 'classes.json'), 'utf8')) as unknown;
    const list = (json as { classes?: unknown }).classes;
    return Array.isArray(list) ? list.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * The random test model folder, created on first use. It is built in a temp folder beside the
 * target and renamed into place, so a crash never leaves a half-written model.
 */
export async function ensureRandomModel(dir: string): Promise<string> {
  if (existsSync(join(dir, 'model_index.json'))) return dir;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  // Temp folders of creations that were cut short (the process was stopped) are removed.
  for (const name of await readdir(dirname(dir))) {
    if (name.startsWith(`${basename(dir)}.tmp-`))
      await rm(join(dirname(dir), name), { recursive: true, force: true });
  }
  const temp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await createRandomModel(temp);
    await rename(temp, dir);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    if (existsSync(join(dir, 'model_index.json'))) return dir; // another process made it meanwhile
    throw err;
  }
  return dir;
}
