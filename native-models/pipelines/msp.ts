/**
 * MSP composite generation: one panel in which every segment of a painted segment map gets its
 * own prompt (a personalized subject, an object, the background), following Composite Diffusion
 * as MSP-Diffusion uses it (DESIGN.md section 3; paper sections 2 and A.3-A.5).
 *
 * Stages over the T denoising steps (k = scaffolding steps, g = global diffuser steps, k + g <= T):
 *   steps [0, g)        global diffuser: e = w CFG(z, c_global) + (1 - w) sum_j m_j CFG(z, c_j)
 *   steps [g, g + k)    scaffolding: segments develop on their own.
 *                       With a scaffold S: z^j = m_j z + (1 - m_j) q(S, t), e_j = CFG(z^j, c_j), each
 *                       segment steps its own scheduler state, z <- sum_j m_j z^j_{t-1}.
 *                       Without: e = sum_j m_j CFG(z, c_j) on the shared latent.
 *   steps [g + k, T)    harmonization: e = sum_j m_j CFG(z, c_j) on the shared latent.
 * Every UNet call gets the ControlNet residuals of its own latent and prompt when a pose is given.
 * SAL guidance, at chosen steps, moves z against the gradient of the subject-aware segmentation
 * loss of the decoded x0 estimate.
 *
 * DESIGN.md leaves open where the global diffuser weight w applies; here it weighs the global
 * prediction during the g global steps (w = 1: the global prompt alone), and the global diffuser
 * runs first, as the paper's appendix describes ("initially utilized the global diffuser for 8 steps").
 *
 * Masks m_j are at latent resolution and sum to 1 at every latent pixel (segments plus background),
 * so sum_j m_j CFG(z, c_j) = e_u + s (sum_j m_j e_j - e_u): where segments share a latent, the
 * unconditional prediction is computed once per step, and all predictions of a step go to the UNet
 * as batches of at most `maxBatch`.
 */
import { Rng } from '../tensor/random.js';
import { createScheduler } from '../schedulers/index.js';
import type { DiffusionScheduler, SchedulerName, SchedulerState } from '../schedulers/scheduler.js';
import type { RgbImage } from '../image/image.js';
import { imageToTensor } from '../image/image.js';
import { floatTensor, toFloat32 } from '../runtime/tensors.js';
import { denoiserFeeds, input, type StableDiffusion } from './stable-diffusion.js';

export interface CompositeSegment {
  /** Local prompt (for the background segment: the background prompt). */
  prompt: string;
  /** Soft mask at latent resolution (latentHeight * latentWidth), masks of all segments sum to 1. */
  mask: Float32Array;
}

/** A per-step guidance callback (SAL): returns d loss / d x0_hat for the current estimate. */
export interface LatentGuide {
  /** Steps (0-based indices) at which to apply guidance. */
  steps: ReadonlySet<number>;
  weight: number;
  gradient(x0: Float32Array, step: number): Promise<{ loss: number; gradient: Float32Array }>;
}

export interface CompositeOptions {
  prompt: string;
  negativePrompt: string;
  /** Segments, the background last; every latent pixel's masks sum to 1. */
  segments: CompositeSegment[];
  steps: number;
  scheduler: SchedulerName;
  guidanceScale: number;
  seed: number;
  width: number;
  height: number;
  scaffoldingSteps: number;
  globalDiffuserSteps: number;
  globalDiffuserWeight: number;
  /** Scaffolding image (already at width x height), or none. */
  scaffold?: RgbImage;
  /** OpenPose image at width x height: enables ControlNet on every UNet call. */
  controlImage?: RgbImage;
  controlnetScale?: number;
  guide?: LatentGuide;
  maxBatch?: number;
  /** Progress and previews; preview 'fast' is a linear latent-to-RGB map, 'vae' the full decoder. */
  onProgress?: (p: CompositeProgress) => void;
  previewEvery?: number;
  preview?: 'fast' | 'vae';
  signal?: AbortSignal;
  /**
   * Evaluate CFG per segment (2 UNet calls per segment and step) instead of sharing the
   * unconditional prediction; the result is the same. For comparisons and benchmarks.
   */
  naiveGuidance?: boolean;
  /** Test hook: every noise prediction that drives a scheduler step, with the latent it was made for. */
  onNoisePrediction?: (step: number, stage: Stage, noise: Float32Array, latent: Float32Array) => void;
}

export type Stage = 'global' | 'scaffolding' | 'harmonization';

export interface CompositeProgress {
  step: number;
  totalSteps: number;
  stage: Stage;
  preview?: RgbImage;
  salLoss?: number;
}

export interface CompositeResult {
  image: RgbImage;
  latents: Float32Array;
  unetEvaluations: number;
  controlnetEvaluations: number;
  salLosses: { step: number; loss: number }[];
}

/** The stage of a 0-based step. */
export function stageOf(step: number, g: number, k: number): Stage {
  if (step < g) return 'global';
  if (step < g + k) return 'scaffolding';
  return 'harmonization';
}

/** One UNet request: a latent and the index of the prompt embedding it is conditioned on. */
interface Evaluation {
  latent: Float32Array;
  prompt: number;
}

export async function generateComposite(sd: StableDiffusion, o: CompositeOptions): Promise<CompositeResult> {
  // 1. Check inputs
  const { latentChannels: C, vaeScaleFactor: f, sequenceLength: L, hiddenSize: H } = sd.sizes;
  const [h, w] = [o.height / f, o.width / f];
  const plane = h * w;
  const n = C * plane;
  const T = o.steps;
  const g = o.globalDiffuserSteps;
  const k = o.scaffoldingSteps;
  if (o.segments.length === 0) throw new Error('at least one segment (the background) is required');
  if (g + k > T) throw new Error(`scaffoldingSteps (${k}) + globalDiffuserSteps (${g}) exceed steps (${T})`);
  for (const s of o.segments) {
    if (s.mask.length !== plane)
      throw new Error(`segment masks must have ${h}x${w} latent pixels, got ${s.mask.length}`);
  }
  if (o.controlImage && !sd.model.components.controlnet)
    throw new Error(`a pose needs a ControlNet, which ${sd.name} lacks`);
  o.signal?.throwIfAborted();
  const guided = o.guidanceScale > 1;

  // 2. Encode prompts: [uncond, global, segment 0..n-1]
  const promptTexts = [o.negativePrompt, o.prompt, ...o.segments.map((s) => s.prompt)];
  const embeddings = await sd.encodePrompts(promptTexts);
  const UNCOND = 0;
  const GLOBAL = 1;
  const segmentPrompt = (j: number) => 2 + j;
  const ctxPer = L * H;
  const contextOf = (prompt: number) => embeddings.data.subarray(prompt * ctxPer, (prompt + 1) * ctxPer);

  // 3. Timesteps, noise and the scaffold
  const scheduler = createScheduler(o.scheduler, sd.model.schedulerConfig);
  scheduler.setTimesteps(T);
  const rng = new Rng(o.seed);
  const noise = rng.randn(n);
  let latents: Float32Array = new Float32Array(n);
  for (let i = 0; i < n; i++) latents[i] = noise[i] * scheduler.initNoiseSigma;
  const scaffoldLatents = o.scaffold && k > 0 ? await sd.encodeImage(o.scaffold) : undefined;
  const scaffoldNoise = scaffoldLatents ? rng.randn(n) : undefined;
  // ControlNets take their conditioning image in [0, 1] (diffusers' control image processor does not normalize)
  const control = o.controlImage ? imageToTensor(o.controlImage).map((v) => (v + 1) / 2) : undefined;

  // 4. The UNet (with ControlNet) over a list of evaluations, batched
  let unetEvaluations = 0;
  let controlnetEvaluations = 0;
  const maxBatch = Math.max(1, o.maxBatch ?? 8);
  const evaluate = async (items: Evaluation[], step: number): Promise<Float32Array[]> => {
    const t = scheduler.timesteps[step];
    const results: Float32Array[] = [];
    for (let start = 0; start < items.length; start += maxBatch) {
      const chunk = items.slice(start, start + maxBatch);
      const b = chunk.length;
      const batchLatents = new Float32Array(b * n);
      const batchContext = new Float32Array(b * ctxPer);
      chunk.forEach((e, i) => {
        batchLatents.set(scheduler.scaleModelInput(e.latent, step), i * n);
        batchContext.set(contextOf(e.prompt), i * ctxPer);
      });
      const out = control
        ? await predictWithControl(sd, batchLatents, b, [C, h, w], t, batchContext, control, o, maxBatch)
        : await sd.predictNoise(batchLatents, b, [C, h, w], t, batchContext, maxBatch);
      unetEvaluations += b;
      if (control) controlnetEvaluations += b;
      for (let i = 0; i < b; i++) results.push(out.subarray(i * n, (i + 1) * n));
    }
    return results;
  };
  const cfg = (u: Float32Array, c: Float32Array, out: Float32Array, weight = 1, add = false) => {
    for (let i = 0; i < n; i++) {
      const v = guided ? u[i] + o.guidanceScale * (c[i] - u[i]) : c[i];
      out[i] = add ? out[i] + weight * v : weight * v;
    }
  };
  /** sum_j m_j CFG(z, c_j) on a shared latent, with one unconditional prediction. */
  const compositeShared = async (
    z: Float32Array,
    step: number,
    globalWeight: number,
  ): Promise<Float32Array> => {
    const segmentWeight = 1 - globalWeight;
    const naive = o.naiveGuidance === true && guided;
    const items: Evaluation[] = [];
    if (guided && !naive) items.push({ latent: z, prompt: UNCOND });
    const pair = (prompt: number) => {
      if (naive) items.push({ latent: z, prompt: UNCOND });
      items.push({ latent: z, prompt });
    };
    if (globalWeight > 0) pair(GLOBAL);
    if (segmentWeight > 0) o.segments.forEach((_, j) => pair(segmentPrompt(j)));
    const preds = await evaluate(items, step);
    const e = new Float32Array(n);
    let next = 0;
    const shared = guided && !naive ? preds[next++] : undefined;
    const take = (): [Float32Array, Float32Array] => {
      const u = naive ? preds[next++] : (shared ?? preds[next]);
      return [u, preds[next++]];
    };
    if (globalWeight > 0) {
      const [u, c] = take();
      cfg(u, c, e, globalWeight);
    }
    if (segmentWeight > 0) {
      if (naive) {
        // one CFG pair per segment, masked: sum_j m_j (u_j + s (c_j - u_j))
        for (const s of o.segments) {
          const [u, c] = take();
          const one = new Float32Array(n);
          cfg(u, c, one);
          for (let ch = 0; ch < C; ch++) {
            for (let q = 0; q < plane; q++)
              e[ch * plane + q] += segmentWeight * s.mask[q] * one[ch * plane + q];
          }
        }
      } else {
        // combined conditional sum_j m_j e_j: the masks sum to 1, so CFG distributes over the sum
        const mixed = new Float32Array(n);
        let u: Float32Array = e;
        for (const s of o.segments) {
          const [uu, c] = take();
          u = uu;
          for (let ch = 0; ch < C; ch++) {
            for (let q = 0; q < plane; q++) mixed[ch * plane + q] += s.mask[q] * c[ch * plane + q];
          }
        }
        cfg(u, mixed, e, segmentWeight, true);
      }
    }
    return e;
  };

  // 5. Denoising loop
  let mainState: SchedulerState = scheduler.createState();
  let segmentStates: SchedulerState[] | undefined;
  const salLosses: { step: number; loss: number }[] = [];
  let previewMap: LatentPreview | undefined;
  for (let i = 0; i < T; i++) {
    o.signal?.throwIfAborted();
    const stage = stageOf(i, g, k);
    let salLoss: number | undefined;
    let predOriginal: Float32Array;
    if (stage === 'scaffolding' && scaffoldLatents && scaffoldNoise) {
      // 5a. scaffolding with an image: each segment over the noised scaffold, its own state
      segmentStates ??= o.segments.map(() => scheduler.createState());
      const noisedScaffold = scheduler.addNoise(scaffoldLatents, scaffoldNoise, i);
      const segmentLatents = o.segments.map((s) => blend(latents, noisedScaffold, s.mask, C, plane));
      const items: Evaluation[] = [];
      segmentLatents.forEach((z, j) => {
        if (guided) items.push({ latent: z, prompt: UNCOND });
        items.push({ latent: z, prompt: segmentPrompt(j) });
      });
      const preds = await evaluate(items, i);
      const next = new Float32Array(n);
      predOriginal = new Float32Array(n);
      for (const [j, s] of o.segments.entries()) {
        const e = new Float32Array(n);
        const per = guided ? 2 : 1;
        cfg(guided ? preds[j * per] : preds[j], preds[j * per + per - 1], e);
        o.onNoisePrediction?.(i, stage, e, segmentLatents[j]);
        const r = scheduler.step(segmentStates[j], e, i, segmentLatents[j], rng);
        accumulateMasked(next, r.prevSample, s.mask, C, plane);
        accumulateMasked(predOriginal, r.predOriginalSample, s.mask, C, plane);
      }
      latents = next;
    } else {
      // 5b. shared latent: global diffuser, scaffolding without an image, harmonization
      if (segmentStates) {
        segmentStates = undefined;
        mainState = scheduler.createState(); // the trajectories merged: multistep history restarts
      }
      let z = latents;
      let e = await compositeShared(z, i, stage === 'global' ? o.globalDiffuserWeight : 0);
      // 5c. SAL guidance: move z against the gradient of the segmentation loss of x0_hat
      if (o.guide && o.guide.steps.has(i) && o.guide.weight > 0) {
        const { x0, dx0dz } = estimateX0(scheduler, z, e, i);
        const { loss, gradient } = await o.guide.gradient(x0, i);
        salLoss = loss;
        salLosses.push({ step: i, loss });
        z = new Float32Array(z);
        for (let q = 0; q < n; q++) z[q] -= o.guide.weight * dx0dz * gradient[q];
        e = await compositeShared(z, i, stage === 'global' ? o.globalDiffuserWeight : 0);
      }
      o.onNoisePrediction?.(i, stage, e, z);
      const r = scheduler.step(mainState, e, i, z, rng);
      latents = r.prevSample;
      predOriginal = r.predOriginalSample;
    }
    // 5d. progress and previews
    if (o.onProgress) {
      const step = i + 1;
      const wantPreview = (o.previewEvery ?? 0) > 0 && step % (o.previewEvery ?? 1) === 0 && step < T;
      let preview: RgbImage | undefined;
      if (wantPreview) {
        if ((o.preview ?? 'fast') === 'vae')
          preview = await sd.decodeLatents(predOriginal, o.width, o.height);
        else {
          previewMap ??= await fitLatentPreview(sd);
          preview = previewMap.render(predOriginal, w, h);
        }
      }
      o.onProgress({
        step,
        totalSteps: T,
        stage,
        ...(preview ? { preview } : {}),
        ...(salLoss !== undefined ? { salLoss } : {}),
      });
    }
  }

  // 6. Decode
  o.signal?.throwIfAborted();
  const image = await sd.decodeLatents(latents, o.width, o.height);
  return { image, latents, unetEvaluations, controlnetEvaluations, salLosses };
}

/** m z + (1 - m) s per channel, masks at latent resolution. */
function blend(
  z: Float32Array,
  s: Float32Array,
  mask: Float32Array,
  channels: number,
  plane: number,
): Float32Array {
  const out = new Float32Array(z.length);
  for (let c = 0; c < channels; c++) {
    for (let q = 0; q < plane; q++) {
      const i = c * plane + q;
      out[i] = mask[q] * z[i] + (1 - mask[q]) * s[i];
    }
  }
  return out;
}

function accumulateMasked(
  out: Float32Array,
  x: Float32Array,
  mask: Float32Array,
  channels: number,
  plane: number,
): void {
  for (let c = 0; c < channels; c++)
    for (let q = 0; q < plane; q++) out[c * plane + q] += mask[q] * x[c * plane + q];
}

/**
 * x0_hat from the current latent and noise prediction, for any scheduler: the UNet sees
 * x_in = scaleModelInput(z) = alpha x0 + sigma eps, so x0 = (x_in - sigma e) / alpha, and
 * d x0 / d z = c / alpha where x_in = c z.
 */
export function estimateX0(
  scheduler: DiffusionScheduler,
  z: Float32Array,
  e: Float32Array,
  step: number,
): { x0: Float32Array; dx0dz: number } {
  const { alpha, sigma } = scheduler.alphaSigmaAt(step);
  const c = scheduler.scaleModelInput(Float32Array.of(1), step)[0];
  const x0 = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) x0[i] = (c * z[i] - sigma * e[i]) / alpha;
  return { x0, dx0dz: c / alpha };
}

/** ControlNet residuals for a batch, then the ControlNet-aware UNet; both in chunks of maxBatch. */
async function predictWithControl(
  sd: StableDiffusion,
  latents: Float32Array,
  batch: number,
  latentShape: readonly [number, number, number],
  timestep: number,
  context: Float32Array,
  control: Float32Array,
  o: CompositeOptions,
  maxBatch: number,
): Promise<Float32Array> {
  const { controlnet: cnSpec, unet_controlnet: unetSpec } = sd.model.components;
  if (!cnSpec || !unetSpec) throw new Error(`${sd.name} has no ControlNet`);
  const cn = await sd.runtime.session(cnSpec.path);
  const unet = await sd.runtime.session(unetSpec.path);
  const [C, h, w] = latentShape;
  const n = C * h * w;
  const ctxPer = sd.sizes.sequenceLength * sd.sizes.hiddenSize;
  const out = new Float32Array(batch * n);
  const scaleSpec = input(cnSpec, 'conditioning_scale');
  for (let start = 0; start < batch; start += maxBatch) {
    const b = Math.min(maxBatch, batch - start);
    const sample = latents.subarray(start * n, (start + b) * n);
    const ctx = context.subarray(start * ctxPer, (start + b) * ctxPer);
    const cond = new Float32Array(b * control.length);
    for (let i = 0; i < b; i++) cond.set(control, i * control.length);
    const contextShape = [sd.sizes.sequenceLength, sd.sizes.hiddenSize] as const;
    const common = denoiserFeeds(cnSpec, sample, [b, C, h, w], timestep, ctx, contextShape);
    const residuals = await cn.run({
      ...common,
      controlnet_cond: floatTensor(cond, [b, 3, o.height, o.width], input(cnSpec, 'controlnet_cond').dtype),
      conditioning_scale: floatTensor(
        Float32Array.of(o.controlnetScale ?? 1),
        scaleSpec.shape.length === 0 ? [] : [1],
        scaleSpec.dtype,
      ),
    });
    const feeds = denoiserFeeds(unetSpec, sample, [b, C, h, w], timestep, ctx, contextShape);
    for (const name of sd.model.controlnetResiduals) feeds[name] = residuals[name];
    const result = await unet.run(feeds, ['out_sample']);
    out.set(toFloat32(result.out_sample), start * n);
  }
  return out;
}

/** A linear latent -> RGB map for cheap previews, fitted once per model against its VAE decoder. */
export interface LatentPreview {
  /** [3][C + 1]: RGB = M [latent; 1], in [-1, 1]. */
  matrix: number[][];
  render(latents: Float32Array, latentWidth: number, latentHeight: number): RgbImage;
}

const previewCache = new WeakMap<StableDiffusion, Promise<LatentPreview>>();

/**
 * Fits the preview map by least squares: decodes a few random latents at a small size, averages
 * the decoded pixels over each latent cell, and solves for the 3 x (C + 1) matrix.
 */
export function fitLatentPreview(sd: StableDiffusion): Promise<LatentPreview> {
  let pending = previewCache.get(sd);
  if (!pending) {
    pending = fit(sd);
    previewCache.set(sd, pending);
  }
  return pending;
}

async function fit(sd: StableDiffusion): Promise<LatentPreview> {
  const { latentChannels: C, vaeScaleFactor: f } = sd.sizes;
  const size = 8;
  const rng = new Rng(20240601);
  const rows: number[][] = [];
  const targets: number[][] = [];
  for (let sample = 0; sample < 4; sample++) {
    const latent = rng.randn(C * size * size);
    const image = await sd.decodeLatents(latent, size * f, size * f);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const rgb = [0, 0, 0];
        for (let dy = 0; dy < f; dy++) {
          for (let dx = 0; dx < f; dx++) {
            const p = ((y * f + dy) * size * f + (x * f + dx)) * 3;
            for (let c = 0; c < 3; c++) rgb[c] += image.data[p + c] / 127.5 - 1;
          }
        }
        rows.push([...Array.from({ length: C }, (_, c) => latent[c * size * size + y * size + x]), 1]);
        targets.push(rgb.map((v) => v / (f * f)));
      }
    }
  }
  const matrix = [0, 1, 2].map((c) =>
    leastSquares(
      rows,
      targets.map((t) => t[c]),
    ),
  );
  return {
    matrix,
    render(latents, lw, lh) {
      const scale = f;
      const width = lw * scale;
      const height = lh * scale;
      const data = new Uint8Array(width * height * 3);
      const plane = lw * lh;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const q = Math.floor(y / scale) * lw + Math.floor(x / scale);
          for (let c = 0; c < 3; c++) {
            let v = matrix[c][C];
            for (let k = 0; k < C; k++) v += matrix[c][k] * latents[k * plane + q];
            data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
          }
        }
      }
      return { width, height, data };
    },
  };
}

/** Solves min |A x - b| by the normal equations (A small and well conditioned: C + 1 columns). */
function leastSquares(a: number[][], b: number[]): number[] {
  const m = a[0].length;
  const ata = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  const atb = new Array<number>(m).fill(0);
  a.forEach((row, r) => {
    for (let i = 0; i < m; i++) {
      atb[i] += row[i] * b[r];
      for (let j = 0; j < m; j++) ata[i][j] += row[i] * row[j];
    }
  });
  for (let i = 0; i < m; i++) ata[i][i] += 1e-6;
  // Gaussian elimination with partial pivoting
  for (let col = 0; col < m; col++) {
    let pivot = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(ata[r][col]) > Math.abs(ata[pivot][col])) pivot = r;
    [ata[col], ata[pivot]] = [ata[pivot], ata[col]];
    [atb[col], atb[pivot]] = [atb[pivot], atb[col]];
    for (let r = col + 1; r < m; r++) {
      const factor = ata[r][col] / ata[col][col];
      for (let c = col; c < m; c++) ata[r][c] -= factor * ata[col][c];
      atb[r] -= factor * atb[col];
    }
  }
  const x = new Array<number>(m).fill(0);
  for (let r = m - 1; r >= 0; r--) {
    let s = atb[r];
    for (let c = r + 1; c < m; c++) s -= ata[r][c] * x[c];
    x[r] = s / ata[r][r];
  }
  return x;
}
