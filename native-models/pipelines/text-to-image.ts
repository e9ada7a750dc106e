/**
 * Text-to-image (and image-to-image with `initImage` + `strength`) on a Stable-Diffusion-shaped
 * model folder, with classifier-free guidance, seeded noise, previews and cancellation.
 *
 * Noise is reproducible: `new Rng(seed).randn(C*h*w)` in NCHW order is the initial latent
 * (times the scheduler's init sigma); ancestral schedulers draw their per-step noise from the
 * same generator, continuing after it. See native-models/tensor/random.ts for the algorithm.
 *
 * @example
 * const sd = await StableDiffusion.load(dir, new Runtime());
 * const { image, parameters } = await textToImage(sd, { prompt: 'a cat', seed: 42, steps: 20 });
 * await writeFile('cat.png', await encodeGenerationPng(image, parameters));
 */
import { Rng } from '../tensor/random.js';
import { createScheduler } from '../schedulers/index.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../schedulers/scheduler.js';
import type { RgbImage } from '../image/image.js';
import { resizeImage } from '../image/image.js';
import { encodePng, formatA1111Parameters } from '../image/png.js';
import type { StableDiffusion } from './stable-diffusion.js';

export interface TextToImageOptions {
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  scheduler?: SchedulerName;
  /** Classifier-free guidance scale; <= 1 disables guidance (one UNet call per step). */
  guidanceScale?: number;
  seed?: number;
  /** Defaults to the model's training size, from its configs. */
  width?: number;
  height?: number;
  /** Image-to-image: the start image (resized to width x height) and how much of it to repaint (0..1]. */
  initImage?: RgbImage;
  strength?: number;
  /** Decode a preview of the predicted image every N steps (0 = never). */
  previewEvery?: number;
  onProgress?: (progress: GenerationProgress) => void;
  signal?: AbortSignal;
  /** Evaluate the conditional and unconditional predictions in one UNet batch (default) or two calls. */
  batchGuidance?: boolean;
}

export interface GenerationProgress {
  step: number;
  totalSteps: number;
  timestep: number;
  preview?: RgbImage;
}

/** Everything that determines the image; embedded in the PNG and enough to reproduce it. */
export interface GenerationParameters {
  pipeline: 'text-to-image' | 'image-to-image';
  prompt: string;
  negativePrompt: string;
  steps: number;
  scheduler: SchedulerName;
  guidanceScale: number;
  seed: number;
  width: number;
  height: number;
  strength?: number;
  model: string;
}

export interface TextToImageResult {
  image: RgbImage;
  latents: Float32Array;
  parameters: GenerationParameters;
  unetEvaluations: number;
  /** Prompts longer than the model's sequence length were cut; the user should know. */
  truncatedPrompts: string[];
}

export class GenerationOptionsError extends Error {
  override name = 'GenerationOptionsError';
}

export const DEFAULTS = { steps: 30, scheduler: 'ddim' as SchedulerName, guidanceScale: 7.5 };

/** Checks options against the model; returns the resolved parameters or throws one clear error. */
export function resolveParameters(sd: StableDiffusion, options: TextToImageOptions): GenerationParameters {
  const { vaeScaleFactor, defaultImageSize } = sd.sizes;
  const fail = (message: string): never => {
    throw new GenerationOptionsError(message);
  };
  if (typeof options.prompt !== 'string') fail('prompt must be a string');
  const steps = options.steps ?? DEFAULTS.steps;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000)
    fail(`steps must be an integer from 1 to 1000, got ${steps}`);
  const scheduler = options.scheduler ?? DEFAULTS.scheduler;
  if (!SCHEDULER_NAMES.includes(scheduler)) {
    fail(`unknown scheduler "${scheduler}"; expected one of ${SCHEDULER_NAMES.join(', ')}`);
  }
  const guidanceScale = options.guidanceScale ?? DEFAULTS.guidanceScale;
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0)
    fail(`guidance scale must be >= 0, got ${guidanceScale}`);
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isSafeInteger(seed) || seed < 0)
    fail(`seed must be an integer from 0 to 2^53 - 1, got ${seed}`);
  const size = defaultImageSize;
  const width =
    options.width ?? size ?? fail('width is required: the model configs give no default image size');
  const height =
    options.height ?? size ?? fail('height is required: the model configs give no default image size');
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) fail(`${name} must be a positive integer, got ${v}`);
    if (v % vaeScaleFactor !== 0) {
      fail(`${name} ${v} is not a multiple of ${vaeScaleFactor} (the VAE scale factor of ${sd.name})`);
    }
  }
  const parameters: GenerationParameters = {
    pipeline: options.initImage ? 'image-to-image' : 'text-to-image',
    prompt: options.prompt,
    negativePrompt: options.negativePrompt ?? '',
    steps,
    scheduler,
    guidanceScale,
    seed,
    width,
    height,
    model: sd.name,
  };
  if (options.initImage) {
    const strength = options.strength ?? 0.75;
    if (!(strength > 0 && strength <= 1)) fail(`strength must be in (0, 1], got ${strength}`);
    if (!sd.model.components.vae_encoder)
      fail(`image-to-image needs vae_encoder/model.onnx, which ${sd.name} lacks`);
    parameters.strength = strength;
  } else if (options.strength !== undefined) {
    fail('strength applies only with an init image');
  }
  return parameters;
}

export async function textToImage(
  sd: StableDiffusion,
  options: TextToImageOptions,
): Promise<TextToImageResult> {
  // 1. Check inputs
  const p = resolveParameters(sd, options);
  const { signal } = options;
  signal?.throwIfAborted();
  const { latentChannels: C, vaeScaleFactor } = sd.sizes;
  const [h, w] = [p.height / vaeScaleFactor, p.width / vaeScaleFactor];
  const latentShape = [C, h, w] as const;
  const n = C * h * w;
  const guided = p.guidanceScale > 1;

  // 2. Encode the prompt and the negative prompt (the unconditional prompt is the negative one)
  const prompts = guided ? [p.negativePrompt, p.prompt] : [p.prompt];
  const embeddings = await sd.encodePrompts(prompts);
  const truncatedPrompts = prompts.filter((_, i) => embeddings.truncated[i]);

  // 3. Prepare timesteps
  const scheduler = createScheduler(p.scheduler, sd.model.schedulerConfig);
  scheduler.setTimesteps(p.steps);
  const startIndex = p.strength === undefined ? 0 : p.steps - Math.max(1, Math.floor(p.steps * p.strength));

  // 4. Prepare latents: seeded noise, or the encoded init image noised to the start timestep
  const rng = new Rng(p.seed);
  const noise = rng.randn(n);
  let latents: Float32Array;
  if (options.initImage) {
    const init = await resizeImage(options.initImage, p.width, p.height, { kernel: 'lanczos3' });
    latents = scheduler.addNoise(await sd.encodeImage(init), noise, startIndex);
  } else {
    latents = new Float32Array(n);
    for (let i = 0; i < n; i++) latents[i] = noise[i] * scheduler.initNoiseSigma;
  }

  // 5. Denoising loop
  const state = scheduler.createState();
  const batchGuidance = options.batchGuidance ?? true;
  let unetEvaluations = 0;
  const total = p.steps - startIndex;
  for (let i = startIndex; i < p.steps; i++) {
    signal?.throwIfAborted();
    const t = scheduler.timesteps[i];
    const input = scheduler.scaleModelInput(latents, i);
    let noisePred: Float32Array;
    if (!guided) {
      noisePred = await sd.predictNoise(input, 1, latentShape, t, embeddings.data);
      unetEvaluations += 1;
    } else {
      // 5a. unconditional and conditional predictions, as one batch of two or as two calls
      const both = new Float32Array(2 * n);
      both.set(input, 0);
      both.set(input, n);
      const out = await sd.predictNoise(both, 2, latentShape, t, embeddings.data, batchGuidance ? 2 : 1);
      unetEvaluations += 2;
      // 5b. classifier-free guidance: e = e_u + s (e_c - e_u)
      noisePred = new Float32Array(n);
      for (let k = 0; k < n; k++) noisePred[k] = out[k] + p.guidanceScale * (out[n + k] - out[k]);
    }
    // 5c. scheduler step
    const { prevSample, predOriginalSample } = scheduler.step(state, noisePred, i, latents, rng);
    latents = prevSample;
    const step = i - startIndex + 1;
    if (options.onProgress) {
      const wantPreview =
        options.previewEvery && options.previewEvery > 0 && step % options.previewEvery === 0 && step < total;
      const preview = wantPreview ? await sd.decodeLatents(predOriginalSample, p.width, p.height) : undefined;
      options.onProgress({ step, totalSteps: total, timestep: t, ...(preview ? { preview } : {}) });
    }
  }

  // 6. Decode the latents
  signal?.throwIfAborted();
  const image = await sd.decodeLatents(latents, p.width, p.height);
  return { image, latents, parameters: p, unetEvaluations, truncatedPrompts };
}

/**
 * The image as PNG with its parameters in text chunks: `parameters` in the AUTOMATIC1111
 * layout other tools read, and `msp:parameters` with the exact JSON.
 */
export async function encodeGenerationPng(
  image: RgbImage,
  parameters: GenerationParameters,
): Promise<Uint8Array> {
  const a1111 = formatA1111Parameters({
    prompt: parameters.prompt,
    negativePrompt: parameters.negativePrompt,
    steps: parameters.steps,
    sampler: parameters.scheduler,
    guidanceScale: parameters.guidanceScale,
    seed: parameters.seed,
    width: parameters.width,
    height: parameters.height,
    model: parameters.model,
    ...(parameters.strength !== undefined ? { extra: { 'Denoising strength': parameters.strength } } : {}),
  });
  return encodePng(image, { parameters: a1111, 'msp:parameters': JSON.stringify(parameters) });
}
