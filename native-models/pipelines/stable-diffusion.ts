/**
 * The components of a Stable-Diffusion-shaped model folder, loaded once and shared by the
 * pipelines: prompt encoding, one UNet noise prediction with classifier-free guidance, and
 * VAE encoding/decoding. Pipelines (text-to-image here, MSP composite later) are readable
 * loops over these calls.
 *
 * @example
 * const sd = await StableDiffusion.load('/models/tiny', new Runtime());
 * const context = await sd.encodePrompts(['a cat', '']);
 */
import type * as ort from 'onnxruntime-node';
import { basename } from 'node:path';
import {
  loadModelFolder,
  type ComponentSpec,
  type ModelFolder,
  type TensorSpec,
} from '../models/model-folder.js';
import type { ResidualPlace } from '../models/unet.js';
import type { ModelSession, Runtime } from '../runtime/session.js';
import { floatTensor, intTensor, toFloat32 } from '../runtime/tensors.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { imageToTensor, tensorToImage, type RgbImage } from '../image/image.js';

/** Encoded prompts: [count, sequenceLength, hiddenSize] hidden states. */
export interface PromptEmbeddings {
  data: Float32Array;
  count: number;
  /** Per prompt: tokens including start/end before truncation, and whether it was truncated. */
  tokenCounts: number[];
  truncated: boolean[];
}

export class StableDiffusion {
  private constructor(
    readonly model: ModelFolder,
    readonly tokenizer: CLIPTokenizer,
    readonly runtime: Runtime,
  ) {}

  static async load(modelDir: string, runtime: Runtime): Promise<StableDiffusion> {
    const model = await loadModelFolder(modelDir);
    const tokenizer = await CLIPTokenizer.fromFolder(model.tokenizerDir);
    return new StableDiffusion(model, tokenizer, runtime);
  }

  get name(): string {
    return basename(this.model.dir);
  }

  get sizes() {
    return this.model.sizes;
  }

  /** The session of a component, created on first use. */
  session(component: 'text_encoder' | 'unet' | 'vae_decoder' | 'vae_encoder'): Promise<ModelSession> {
    const spec = this.model.components[component];
    if (!spec) throw new Error(`${this.name} has no ${component}/model.onnx`);
    return this.runtime.session(spec.path);
  }

  /** The execution provider the UNet runs on (creates the UNet session if needed). */
  async executionProvider(): Promise<string> {
    return (await this.session('unet')).executionProvider;
  }

  /** Encodes prompts with the text encoder, in one batch where the model allows it. */
  async encodePrompts(prompts: readonly string[]): Promise<PromptEmbeddings> {
    const { sequenceLength: L, hiddenSize: H } = this.sizes;
    const spec = this.model.components.text_encoder;
    const idsSpec = input(spec, 'input_ids');
    const encoded = prompts.map((p) =>
      this.tokenizer.encode(p, { maxLength: L, padding: 'max_length', truncation: true }),
    );
    const session = await this.session('text_encoder');
    const data = new Float32Array(prompts.length * L * H);
    const batch = idsSpec.shape[0] === 1 ? 1 : prompts.length;
    for (let start = 0; start < prompts.length; start += batch) {
      const ids = encoded.slice(start, start + batch).flatMap((e) => Array.from(e.ids));
      const out = await session.run({ input_ids: intTensor(ids, [batch, L], idsSpec.dtype) }, [
        'last_hidden_state',
      ]);
      data.set(toFloat32(out.last_hidden_state), start * L * H);
    }
    return {
      data,
      count: prompts.length,
      tokenCounts: encoded.map((e) => e.tokenCount),
      truncated: encoded.map((e) => e.truncated),
    };
  }

  /**
   * One UNet evaluation over a batch of latents, each with its own prompt embedding.
   * `latents` is [B, C, h, w]; `context` holds B embeddings of [L, H]. Calls the UNet in chunks
   * of at most `maxBatch` (1 when the model has a static batch of 1).
   */
  async predictNoise(
    latents: Float32Array,
    batch: number,
    latentShape: readonly [number, number, number],
    timestep: number,
    context: Float32Array,
    maxBatch = 8,
  ): Promise<Float32Array> {
    const spec = this.model.components.unet;
    const session = await this.session('unet');
    const sampleSpec = input(spec, 'sample');
    const chunk = sampleSpec.shape[0] === 1 ? 1 : Math.max(1, maxBatch);
    const per = latentShape[0] * latentShape[1] * latentShape[2];
    const ctxPer = this.sizes.sequenceLength * this.sizes.hiddenSize;
    const out = new Float32Array(batch * per);
    for (let start = 0; start < batch; start += chunk) {
      const n = Math.min(chunk, batch - start);
      const feeds = denoiserFeeds(
        spec,
        latents.subarray(start * per, (start + n) * per),
        [n, ...latentShape],
        timestep,
        context.subarray(start * ctxPer, (start + n) * ctxPer),
        [this.sizes.sequenceLength, this.sizes.hiddenSize],
      );
      // A UNet that also takes ControlNet residuals gets zeros when no ControlNet runs.
      for (const i of spec.inputs) {
        if (!(i.name in feeds))
          feeds[i.name] = zeroResidual(i, this.model.unetResidualPlaces?.[i.name], n, latentShape);
      }
      const result = await session.run(feeds, ['out_sample']);
      out.set(toFloat32(result.out_sample), start * per);
    }
    return out;
  }

  /** Latents [1, C, h, w] (already scaled) -> an RGB image of width x height. */
  async decodeLatents(latents: Float32Array, width: number, height: number): Promise<RgbImage> {
    const { latentChannels, vaeScaleFactor, scalingFactor } = this.sizes;
    const spec = this.model.components.vae_decoder;
    const session = await this.session('vae_decoder');
    const scaled = new Float32Array(latents.length);
    for (let i = 0; i < latents.length; i++) scaled[i] = latents[i] / scalingFactor;
    const shape = [1, latentChannels, height / vaeScaleFactor, width / vaeScaleFactor];
    const out = await session.run(
      { latent_sample: floatTensor(scaled, shape, input(spec, 'latent_sample').dtype) },
      ['sample'],
    );
    return tensorToImage(toFloat32(out.sample), width, height);
  }

  /** An RGB image -> scaled latents [1, C, h, w] (the mean of the VAE posterior). */
  async encodeImage(image: RgbImage): Promise<Float32Array> {
    const spec = this.model.components.vae_encoder;
    const output = this.model.vaeEncoderOutput;
    if (!spec || !output)
      throw new Error(`${this.name} has no vae_encoder/model.onnx, which image-to-image needs`);
    const session = await this.session('vae_encoder');
    const out = await session.run(
      {
        sample: floatTensor(
          imageToTensor(image),
          [1, 3, image.height, image.width],
          input(spec, 'sample').dtype,
        ),
      },
      [output.name],
    );
    const params = toFloat32(out[output.name]);
    const C = this.sizes.latentChannels;
    const per = params.length / (output.kind === 'latent_parameters' ? 2 : 1);
    if (per % C !== 0)
      throw new Error(
        `vae_encoder/model.onnx returned ${params.length} values, not a multiple of ${C} channels`,
      );
    const latents = new Float32Array(per);
    for (let i = 0; i < per; i++) latents[i] = params[i] * this.sizes.scalingFactor;
    return latents;
  }
}

/** The three inputs every UNet and ControlNet takes, in the dtypes the model declares. */
export function denoiserFeeds(
  spec: ComponentSpec,
  sample: Float32Array,
  sampleShape: readonly number[],
  timestep: number,
  context: Float32Array,
  contextShape: readonly [number, number],
): Record<string, ort.Tensor> {
  const batch = sampleShape[0];
  return {
    sample: floatTensor(sample, sampleShape, input(spec, 'sample').dtype),
    timestep: timestepTensor(input(spec, 'timestep'), timestep, batch),
    encoder_hidden_states: floatTensor(
      context,
      [batch, ...contextShape],
      input(spec, 'encoder_hidden_states').dtype,
    ),
  };
}

export function input(spec: ComponentSpec, name: string): TensorSpec {
  const t = spec.inputs.find((i) => i.name === name);
  if (!t) throw new Error(`${spec.file} has no input '${name}'`);
  return t;
}

/** The timestep as the UNet declares it: a scalar, [1] when static, else one per batch item. */
export function timestepTensor(spec: TensorSpec, timestep: number, batch: number): ort.Tensor {
  if (spec.shape.length === 0) return intTensor([timestep], [], spec.dtype);
  const n = spec.shape[0] === 1 ? 1 : batch;
  return intTensor(new Array<number>(n).fill(timestep), [n], spec.dtype);
}

function zeroResidual(
  spec: TensorSpec,
  place: ResidualPlace | undefined,
  batch: number,
  latentShape: readonly [number, number, number],
): ort.Tensor {
  if (!place) throw new Error(`unet/model.onnx: nothing says the size of its input '${spec.name}'`);
  const h = Math.ceil(latentShape[1] / 2 ** place.downsampling);
  const w = Math.ceil(latentShape[2] / 2 ** place.downsampling);
  return floatTensor(
    new Float32Array(batch * place.channels * h * w),
    [batch, place.channels, h, w],
    spec.dtype,
  );
}
