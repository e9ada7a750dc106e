/**
 * The paper's personalization metrics (A.6), with any CLIP in ONNX and the cast's segmentation model:
 *
 *   CLIP-I  mean cosine, in CLIP image space, between a generated image and the subject's
 *           reference images. With one subject the whole generated image is compared (the
 *           DreamBooth / Textual Inversion definition the paper cites); in a multi-subject panel
 *           each subject's segment crop is (see {@link segmentCrop}).
 *   CLIP-T  cosine between the generated image and its prompt (multi-subject: the whole image and
 *           the global prompt). The paper reports, per prompt, the best of its generations,
 *           averaged over the prompts: {@link bestPerPromptMean}.
 *   SAS     mean cosine between the segmentation model's encoder features (the deepest encoder
 *           stage, global-average-pooled) of the generated subject's segment crop and of the
 *           references. The crop is masked to the segment: outside it the pixels are 0 in the
 *           model's [-1, 1] input space, exactly the x0 * m_seg the model sees in SAL (A.4).
 *
 * Crop rule ({@link segmentCrop}): the bounding box of the segment (mask > 0.5), made square
 * (side = its longer side) around the box's centre, shifted to stay inside the image where it fits,
 * padded with neutral gray where it does not. Squaring keeps the subject's proportions through the
 * encoders' square inputs (a CLIP centre crop of a tall box would cut the head off). CLIP-I keeps
 * the pixels around the subject inside the square (CLIP sees natural context, and the references
 * have backgrounds too); SAS masks them. When the generated side is cropped, references given with
 * a mask are cropped the same way, so both sides show the subject at the same scale; references
 * without a mask are used whole.
 *
 * CLIP folders ({@link loadImageTextEmbedder}; `config.json` says which kind):
 *
 *   tiny CLIP (`"_class_name": "MspTinyClip"`, written by tiny/clip-stage.ts writeClip):
 *     config.json          image_encoder {file, image_size}, text_encoder {file, tokenizer, sequence_length}
 *     image_encoder.onnx   pixel_values [B, 3, S, S] in [-1, 1] (RGB area-averaged to S) -> image_embeds
 *     text_encoder.onnx    input_ids [B, L] int32, padded with the end token -> text_embeds
 *   standard CLIP (a Hugging Face CLIP config, `"model_type": "clip"`), e.g. exported with
 *   CLIPVisionModelWithProjection / CLIPTextModelWithProjection:
 *     config.json                 the Hugging Face CLIPModel config
 *     image_encoder.onnx          pixel_values [B, 3, 224, 224] -> image_embeds [B, D]
 *     text_encoder.onnx           input_ids [B, 77] int64 (+ attention_mask, if the model takes it)
 *                                 -> text_embeds [B, D]
 *     tokenizer/ (or the folder)  vocab.json, merges.txt (+ special_tokens_map.json, tokenizer_config.json)
 *     preprocessor_config.json    optional: size.shortest_edge, crop_size, image_mean, image_std
 *   Standard preprocessing ({@link clipImageProcessor}): resize the shortest side to 224 (bicubic),
 *   centre crop 224 x 224, RGB / 255, normalise with mean [0.48145466, 0.4578275, 0.40821073] and
 *   std [0.26862954, 0.26130258, 0.27577711]. Embeddings are L2-normalised here whatever the model gives.
 *
 * SAS feature rule ({@link findEncoderFeatures}): the segmentation model (input `image`
 * [B, 3, H, W] in [-1, 1], output `logits`) is imported into the graph IR, and its encoder output
 * is the LAST rank-4 float value, in graph order, computed from `image` and from weights whose
 * names start with `encoder.` alone (no other weight or constant flows into it). For the tiny U-Net
 * of tiny/segmentation-stage.ts (weights `encoder.conv1`, `encoder.layer1..4`, then `decoder.blocks`
 * whose first op is an upsampling with a `scales` constant) that is the final ReLU of
 * `encoder.layer4`, 1/16 of the input size; for segmentation_models_pytorch exports that keep
 * their weight names it is the same. Exports that renamed their weights (folded batch norms become
 * `onnx::Conv_123`) must name the value: `featureTensor` (or another prefix: `encoderPrefix`).
 *
 * @example
 * const clip = await loadImageTextEmbedder(join(modelDir, 'clip'));
 * const seg = await SegmentationEncoder.load(join(modelDir, 'segmentation'));
 * const scores = await evaluatePanel(
 *   { image, prompt: 'a sks cartoon man and a zwx cat in a park', subjects: [
 *     { name: 'sks cartoon man', segment: manMask, references: manReferences },
 *     { name: 'zwx cat', segment: catMask, references: catReferences },
 *   ] },
 *   { clip, sas: seg },
 * );
 * scores.clipT; scores.subjects[0].clipI; scores.subjects[0].sas;
 */
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { imageChannels, imageToTensor, resizeImage, type RgbImage, type RgbTriplet } from '../image/image.js';
import { Graph } from '../onnx/graph.js';
import { importInto } from '../onnx/import.js';
import { readModelFile } from '../onnx/external-data.js';
import { decodeModel } from '../onnx/proto.js';
import type { ModelProto } from '../onnx/proto-types.js';
import { ClipEmbedder, tinyClipArchitecture } from '../tiny/clip-stage.js';
import { resizeNearest } from '../tiny/judge.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import type { PixelBox } from '../world/scene.js';

export class MetricsError extends Error {
  override name = 'MetricsError';
}

/** CLIP's image normalisation (OpenAI CLIP, Hugging Face CLIPImageProcessor). */
export const CLIP_IMAGE_MEAN: RgbTriplet = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_IMAGE_STD: RgbTriplet = [0.26862954, 0.26130258, 0.27577711];

/** Fill of masked-out and padded pixels: mid gray, 0 in [-1, 1] pixel space. */
export const NEUTRAL_GRAY: RgbTriplet = [128, 128, 128];

// ---------------------------------------------------------------------------------------------
// CLIP embedders

/** A CLIP: images and texts into one space, as unit-length vectors. */
export interface ImageTextEmbedder {
  /** What it is, for reports: 'MspTinyClip' or 'CLIPModel'. */
  readonly kind: string;
  embedImages(images: readonly RgbImage[]): Promise<Float32Array[]>;
  embedTexts(texts: readonly string[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/**
 * Loads the CLIP in `dir`, choosing the implementation from its `config.json` (see the file header).
 *
 * @example
 * const clip = await loadImageTextEmbedder('native-models/weights/tiny-sd/clip');
 * const [image] = await clip.embedImages([picture]);
 */
export async function loadImageTextEmbedder(dir: string): Promise<ImageTextEmbedder> {
  const configPath = join(dir, 'config.json');
  const config = await readJson(configPath);
  if (config._class_name === 'MspTinyClip') return TinyClipEmbedder.load(dir, config);
  const architectures = Array.isArray(config.architectures) ? config.architectures : [];
  if (config.model_type === 'clip' || architectures.includes('CLIPModel'))
    return OnnxClipEmbedder.load(dir, config);
  throw new MetricsError(
    `${configPath} is not a CLIP config this app knows: expected "_class_name": "MspTinyClip" or a Hugging Face CLIP config ("model_type": "clip")`,
  );
}

/**
 * The tiny world's CLIP (tiny/clip-stage.ts), through its {@link ClipEmbedder}. Images that are
 * square with a side that is a multiple of the tower's size are area-averaged down as in training
 * (clipPixels); others are centre-cropped to a square and resized to it first.
 */
export class TinyClipEmbedder implements ImageTextEmbedder {
  readonly kind = 'MspTinyClip';

  private constructor(
    private readonly clip: ClipEmbedder,
    /** Side of the image tower's input. */
    readonly imageSize: number,
  ) {}

  static async load(dir: string, config?: Record<string, unknown>): Promise<TinyClipEmbedder> {
    const configPath = join(dir, 'config.json');
    const c = config ?? (await readJson(configPath));
    const image = objectField(c, 'image_encoder', configPath);
    const text = objectField(c, 'text_encoder', configPath);
    const imageSize = numberField(image, 'image_size', configPath);
    const sequenceLength = numberField(text, 'sequence_length', configPath);
    for (const [part, input, output] of [
      [image, 'pixel_values', 'image_embeds'],
      [text, 'input_ids', 'text_embeds'],
    ] as const) {
      if ((part.input ?? input) !== input || (part.output ?? output) !== output)
        throw new MetricsError(`${configPath}: the tiny CLIP's towers take '${input}' and give '${output}'`);
    }
    const tokenizerDir = resolve(dir, stringField(text, 'tokenizer', configPath));
    // In order, so a folder missing several files always reports the same (first) one.
    const imageEncoder = await readRequired(join(dir, stringField(image, 'file', configPath)));
    const textEmbedder = await readRequired(join(dir, stringField(text, 'file', configPath)));
    const tokenizer = await loadTokenizer(tokenizerDir);
    const architecture = tinyClipArchitecture(tokenizer.vocabSize);
    architecture.imageSize = imageSize;
    architecture.text.maxPositions = sequenceLength;
    const clip = await ClipEmbedder.create({ imageEncoder, textEmbedder }, tokenizer, architecture);
    return new TinyClipEmbedder(clip, imageSize);
  }

  async embedImages(images: readonly RgbImage[]): Promise<Float32Array[]> {
    const S = this.imageSize;
    const ready = await Promise.all(
      images.map(async (image) => {
        imageChannels(image);
        if (image.width === image.height && image.width % S === 0) return image;
        return resizeImage(centreSquare(image), S, S);
      }),
    );
    return (await this.clip.images(ready)).map(normalize);
  }

  async embedTexts(texts: readonly string[]): Promise<Float32Array[]> {
    return (await this.clip.texts(texts)).map(normalize);
  }

  async release(): Promise<void> {
    await this.clip.release();
  }
}

export interface ClipImageProcessing {
  /** Side the shortest image side is resized to (224). */
  shortestEdge: number;
  /** Side of the centre crop (224). */
  cropSize: number;
  mean: RgbTriplet;
  std: RgbTriplet;
}

export const CLIP_IMAGE_PROCESSING: ClipImageProcessing = {
  shortestEdge: 224,
  cropSize: 224,
  mean: CLIP_IMAGE_MEAN,
  std: CLIP_IMAGE_STD,
};

/**
 * Hugging Face CLIPImageProcessor's preprocessing: the shortest side resized to `shortestEdge`
 * (bicubic, the longer side to floor(shortestEdge * long / short)), a centre crop of `cropSize`,
 * RGB / 255 normalised by mean and std; CHW. The bicubic is libvips' (Catmull-Rom), close to but
 * not bit-identical with PIL's.
 *
 * @example
 * const pixelValues = await clipImageProcessor(image); // 3 * 224 * 224 values
 */
export async function clipImageProcessor(
  image: RgbImage,
  p: ClipImageProcessing = CLIP_IMAGE_PROCESSING,
): Promise<Float32Array> {
  imageChannels(image);
  const { width, height } = image;
  if (p.cropSize > p.shortestEdge)
    throw new MetricsError(
      `the crop (${p.cropSize}) must not exceed the resized shortest side (${p.shortestEdge})`,
    );
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const longSide = Math.floor((p.shortestEdge * long) / short);
  const [rw, rh] = width <= height ? [p.shortestEdge, longSide] : [longSide, p.shortestEdge];
  const data =
    rw === width && rh === height
      ? image.data
      : new Uint8Array(
          await sharp(image.data, { raw: { width, height, channels: 3 } })
            .resize(rw, rh, { fit: 'fill', kernel: 'cubic' })
            .raw()
            .toBuffer(),
        );
  const C = p.cropSize;
  const top = Math.floor((rh - C) / 2);
  const left = Math.floor((rw - C) / 2);
  const out = new Float32Array(3 * C * C);
  for (let y = 0; y < C; y++)
    for (let x = 0; x < C; x++) {
      const s = 3 * ((top + y) * rw + left + x);
      for (let c = 0; c < 3; c++) out[c * C * C + y * C + x] = (data[s + c] / 255 - p.mean[c]) / p.std[c];
    }
  return out;
}

/** A standard CLIP exported to ONNX as two towers (see the file header for the folder). */
export class OnnxClipEmbedder implements ImageTextEmbedder {
  readonly kind = 'CLIPModel';

  private constructor(
    private readonly image: ort.InferenceSession,
    private readonly text: ort.InferenceSession,
    private readonly tokenizer: CLIPTokenizer,
    readonly processing: ClipImageProcessing,
    readonly sequenceLength: number,
  ) {}

  static async load(dir: string, config?: Record<string, unknown>): Promise<OnnxClipEmbedder> {
    const configPath = join(dir, 'config.json');
    const c = config ?? (await readJson(configPath));
    const vision = isObject(c.vision_config) ? c.vision_config : {};
    const textConfig = isObject(c.text_config) ? c.text_config : {};
    const pre = await readJson(join(dir, 'preprocessor_config.json'), { optional: true });
    const crop = isObject(pre.crop_size) ? pre.crop_size.height : pre.crop_size;
    const size = isObject(pre.size) ? pre.size.shortest_edge : pre.size;
    const cropSize =
      typeof crop === 'number' ? crop : typeof vision.image_size === 'number' ? vision.image_size : 224;
    const processing: ClipImageProcessing = {
      shortestEdge: typeof size === 'number' ? size : cropSize,
      cropSize,
      mean: isTriplet(pre.image_mean) ? pre.image_mean : CLIP_IMAGE_MEAN,
      std: isTriplet(pre.image_std) ? pre.image_std : CLIP_IMAGE_STD,
    };
    const tokenizerDir = (await exists(join(dir, 'tokenizer', 'vocab.json'))) ? join(dir, 'tokenizer') : dir;
    const tokenizer = await loadTokenizer(tokenizerDir);
    const sequenceLength =
      typeof textConfig.max_position_embeddings === 'number' ? textConfig.max_position_embeddings : 77;
    const session = async (file: string, input: string, output: string) => {
      const path = join(dir, file);
      const s = await ort.InferenceSession.create(await readRequired(path));
      if (!s.inputNames.includes(input)) throw new MetricsError(`${path} is missing input '${input}'`);
      if (!s.outputNames.includes(output)) throw new MetricsError(`${path} is missing output '${output}'`);
      return s;
    };
    const image = await session('image_encoder.onnx', 'pixel_values', 'image_embeds');
    const text = await session('text_encoder.onnx', 'input_ids', 'text_embeds');
    return new OnnxClipEmbedder(image, text, tokenizer, processing, sequenceLength);
  }

  async embedImages(images: readonly RgbImage[]): Promise<Float32Array[]> {
    const C = this.processing.cropSize;
    const chunk = fixedBatch(this.image, 'pixel_values') ?? 16;
    const out: Float32Array[] = [];
    for (let start = 0; start < images.length; start += chunk) {
      const part = images.slice(start, start + chunk);
      const data = new Float32Array(part.length * 3 * C * C);
      for (const [i, image] of part.entries())
        data.set(await clipImageProcessor(image, this.processing), i * 3 * C * C);
      const r = await this.image.run({
        pixel_values: new ort.Tensor('float32', data, [part.length, 3, C, C]),
      });
      out.push(...rows(r.image_embeds));
    }
    return out.map(normalize);
  }

  async embedTexts(texts: readonly string[]): Promise<Float32Array[]> {
    const L = this.sequenceLength;
    const chunk = fixedBatch(this.text, 'input_ids') ?? 64;
    const int32 = tensorType(this.text, 'input_ids') === 'int32';
    const wantsMask = this.text.inputNames.includes('attention_mask');
    const out: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += chunk) {
      const part = texts.slice(start, start + chunk);
      const ids = new Array<number>(part.length * L);
      const mask = new Array<number>(part.length * L);
      part.forEach((t, i) => {
        const e = this.tokenizer.encode(t, { maxLength: L, padding: 'max_length', truncation: true });
        for (let k = 0; k < L; k++) {
          ids[i * L + k] = e.ids[k];
          mask[i * L + k] = e.attentionMask[k];
        }
      });
      const tensor = (values: number[]) =>
        int32
          ? new ort.Tensor('int32', Int32Array.from(values), [part.length, L])
          : new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [part.length, L]);
      const feeds: Record<string, ort.Tensor> = { input_ids: tensor(ids) };
      if (wantsMask) feeds.attention_mask = tensor(mask);
      out.push(...rows((await this.text.run(feeds)).text_embeds));
    }
    return out.map(normalize);
  }

  async release(): Promise<void> {
    await this.image.release();
    await this.text.release();
  }
}

// ---------------------------------------------------------------------------------------------
// segment crops

export interface SegmentCrop {
  /** The square crop, `side x side`. */
  image: RgbImage;
  /** `side * side`, 1 where the segment is. */
  mask: Uint8Array;
  /** The segment's bounding box in the source image, inclusive. */
  box: PixelBox;
  /** The square in source coordinates (x, y may be negative and x + side beyond the image when padded). */
  square: { x: number; y: number; side: number };
}

/**
 * The square crop around a segment (see the file header's crop rule). With `masked`, pixels
 * outside the segment become `fill` (neutral gray by default); padding is always `fill`.
 *
 * @example
 * const { image: crop } = segmentCrop(panel, scene.subjects[0].mask, { masked: true });
 */
export function segmentCrop(
  image: RgbImage,
  mask: ArrayLike<number>,
  { masked = false, fill = NEUTRAL_GRAY }: { masked?: boolean; fill?: RgbTriplet } = {},
): SegmentCrop {
  imageChannels(image);
  const { width: W, height: H } = image;
  if (mask.length !== W * H)
    throw new MetricsError(`the segment mask has ${mask.length} pixels, the ${W}x${H} image ${W * H}`);
  let x0 = W;
  let y0 = H;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      if (mask[y * W + x] > 0.5) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0) throw new MetricsError('the segment mask is empty (no pixel above 0.5)');
  const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const place = (lo: number, hi: number, extent: number) => {
    const centred = lo + Math.floor((hi - lo + 1 - side) / 2);
    return side <= extent ? Math.min(extent - side, Math.max(0, centred)) : Math.floor((extent - side) / 2);
  };
  const sx = place(x0, x1, W);
  const sy = place(y0, y1, H);
  const data = new Uint8Array(side * side * 3);
  const cropMask = new Uint8Array(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const o = y * side + x;
      const ix = sx + x;
      const iy = sy + y;
      const inside = ix >= 0 && ix < W && iy >= 0 && iy < H;
      const p = iy * W + ix;
      if (inside && mask[p] > 0.5) cropMask[o] = 1;
      if (inside && (!masked || cropMask[o])) data.set(image.data.subarray(3 * p, 3 * p + 3), 3 * o);
      else data.set(fill, 3 * o);
    }
  return {
    image: { width: side, height: side, data },
    mask: cropMask,
    box: { x0, y0, x1, y1 },
    square: { x: sx, y: sy, side },
  };
}

// ---------------------------------------------------------------------------------------------
// SAS: the segmentation model's encoder

export interface SegmentationEncoderOptions {
  /** The value to use as encoder features, by its name in the model (overrides the rule). */
  featureTensor?: string;
  /** Weight-name prefix of the encoder for the default rule (default 'encoder.'). */
  encoderPrefix?: string;
  /** Side of the square input (default: `image_size` of the folder's config.json, else 128). */
  imageSize?: number;
}

/**
 * The encoder of a segmentation model in the SAL contract (pipelines/sal.ts), cut out of it by
 * {@link findEncoderFeatures} or by an explicit `featureTensor`, giving global-average-pooled
 * features of pictures.
 */
export class SegmentationEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** The model value used as features. */
    readonly featureTensor: string,
    /** Its shape at batch 1: [1, C, h, w] (or [1, C] when it is already pooled). */
    readonly featureShape: readonly number[],
    /** Side of the square pictures the encoder takes. */
    readonly imageSize: number,
  ) {}

  /** Loads `model.onnx` (and `config.json`'s `image_size`, when present) from a segmentation folder. */
  static async load(dir: string, options: SegmentationEncoderOptions = {}): Promise<SegmentationEncoder> {
    const path = join(dir, 'model.onnx');
    if (!(await exists(path))) throw new MetricsError(`${path} is missing`);
    const config = await readJson(join(dir, 'config.json'), { optional: true });
    const imageSize = options.imageSize ?? (typeof config.image_size === 'number' ? config.image_size : 128);
    return SegmentationEncoder.create(await readModelFile(path), { ...options, imageSize });
  }

  static async create(
    model: ModelProto | Uint8Array,
    options: SegmentationEncoderOptions = {},
  ): Promise<SegmentationEncoder> {
    const proto = model instanceof Uint8Array ? decodeModel(model) : model;
    const S = options.imageSize ?? 128;
    if (!Number.isInteger(S) || S < 16)
      throw new MetricsError(`imageSize must be an integer of at least 16, got ${S}`);
    if (!proto.graph.input.some((i) => i.name === 'image'))
      throw new MetricsError(`the segmentation model has no input 'image'`);
    const opset = proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1;
    const g = new Graph({ name: 'sas_encoder', opset });
    const { inputs } = importInto(g, proto, { inputShapes: { image: [1, 3, S, S] } });
    let feature: string;
    if (options.featureTensor !== undefined) {
      feature = options.featureTensor;
      if (!g.has(feature))
        throw new MetricsError(`the segmentation model has no value '${feature}' (featureTensor)`);
    } else feature = findEncoderFeatures(g, inputs.image, options.encoderPrefix ?? 'encoder.');
    const shape = g.shape(feature);
    if (!((shape.length === 4 || shape.length === 2) && shape[0] === 1))
      throw new MetricsError(
        `the feature value '${feature}' has shape [${shape.join(', ')}]; SAS needs [B, C, h, w] or [B, C]`,
      );
    g.output(feature, g.has('encoder_features') ? g.fresh('encoder_features') : 'encoder_features');
    g.prune();
    const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 2 });
    return new SegmentationEncoder(session, feature, shape, S);
  }

  /** Pooled features of pictures given as CHW values in [-1, 1] at `imageSize` x `imageSize`. */
  async features(pixels: readonly Float32Array[]): Promise<Float32Array[]> {
    const S = this.imageSize;
    const out: Float32Array[] = [];
    for (const p of pixels) {
      if (p.length !== 3 * S * S)
        throw new MetricsError(
          `expected a 3x${S}x${S} picture (${3 * S * S} values), got ${p.length} values`,
        );
      const result = await this.session.run({ image: new ort.Tensor('float32', p, [1, 3, S, S]) });
      const t = result[this.session.outputNames[0]];
      const data = t.data as Float32Array;
      const C = t.dims[1];
      const plane = t.dims.length === 4 ? t.dims[2] * t.dims[3] : 1;
      const pooled = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let k = 0; k < plane; k++) s += data[c * plane + k];
        pooled[c] = s / plane;
      }
      out.push(pooled);
    }
    return out;
  }

  /**
   * Pooled features of images: each is made square (letterboxed with gray), resized to the input
   * size, and, when a mask is given, zeroed outside it (in [-1, 1] space, as SAL masks x0).
   */
  async embedImages(
    images: readonly { image: RgbImage; mask?: ArrayLike<number> }[],
  ): Promise<Float32Array[]> {
    const S = this.imageSize;
    const pixels = await Promise.all(
      images.map(async ({ image, mask }) => {
        imageChannels(image);
        if (mask && mask.length !== image.width * image.height)
          throw new MetricsError(
            `the mask has ${mask.length} pixels, the ${image.width}x${image.height} image ${image.width * image.height}`,
          );
        const square = letterbox(image, mask ? binaryMask(mask) : null);
        const resized =
          square.image.width === S
            ? square.image
            : await resizeImage(square.image, S, S, { kernel: 'linear' });
        const values = imageToTensor(resized);
        if (square.mask) {
          const m = resizeNearest(square.mask, square.image.width, square.image.height, S, S);
          for (let p = 0; p < S * S; p++)
            if (!m[p]) values[p] = values[S * S + p] = values[2 * S * S + p] = 0;
        }
        return values;
      }),
    );
    return this.features(pixels);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The encoder's deepest features by the rule in the file header: the last rank-4 float value, in
 * graph order, that depends on `image` and on weights named `prefix...` and on no other weight or
 * constant.
 *
 * @throws MetricsError when no value qualifies (the weights are named otherwise).
 */
export function findEncoderFeatures(g: Graph, image: string, prefix: string): string {
  const FROM_IMAGE = 1;
  const ENCODER = 2;
  const OTHER = 4;
  const flags = new Map<string, number>([[image, FROM_IMAGE]]);
  for (const name of g.initializers.keys()) flags.set(name, name.startsWith(prefix) ? ENCODER : OTHER);
  let found: string | undefined;
  for (const node of g.nodes) {
    let f = 0;
    for (const x of node.inputs) if (x !== '') f |= flags.get(x) ?? 0;
    for (const o of node.outputs) {
      flags.set(o, f);
      const { shape, dtype } = g.info(o);
      if (f === (FROM_IMAGE | ENCODER) && shape.length === 4 && (dtype === 'float32' || dtype === 'float16'))
        found = o;
    }
  }
  if (found === undefined) {
    const seen = [...new Set([...g.initializers.keys()].map((n) => n.split('.')[0]))].slice(0, 4);
    throw new MetricsError(
      `no value of the segmentation model is computed from 'image' and weights named '${prefix}*' alone ` +
        `(its weights start with ${seen.map((s) => `'${s}'`).join(', ')}); name the encoder output with featureTensor`,
    );
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// the metrics

/** A reference image of a subject, with the subject's mask (1 / > 0.5 inside) when known. */
export type ReferenceImage = RgbImage | { image: RgbImage; mask: ArrayLike<number> };

/** References already embedded (by {@link embedReferences}), to score many images against them. */
export interface EmbeddedReferences {
  embeddings: readonly Float32Array[];
}

export interface CropOptions {
  /** The generated subject's segment (`width * height`, > 0.5 inside); without it the whole images are compared. */
  segment?: ArrayLike<number>;
  /** Fill everything outside the segment (and outside the references' masks) with gray. */
  masked?: boolean;
}

/** Cosine similarity of two vectors (clamped to [-1, 1]). */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length)
    throw new MetricsError(`cannot compare vectors of ${a.length} and ${b.length} values`);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa === 0 || bb === 0) throw new MetricsError('cannot compare an all-zero feature vector');
  return Math.max(-1, Math.min(1, ab / Math.sqrt(aa * bb)));
}

function meanCosine(x: Float32Array, references: readonly Float32Array[]): number {
  if (references.length === 0) throw new MetricsError('no reference images to compare with');
  return references.reduce((s, r) => s + cosine(x, r), 0) / references.length;
}

/** The images a crop option turns the references into (see the file header). */
function referenceViews(references: readonly ReferenceImage[], cropped: boolean, masked: boolean) {
  return references.map((r) => {
    if ('image' in r) {
      if (cropped) {
        const crop = segmentCrop(r.image, r.mask, { masked });
        return { image: crop.image, mask: masked ? crop.mask : undefined };
      }
      return { image: r.image, mask: undefined };
    }
    return { image: r, mask: undefined };
  });
}

function generatedView(generated: RgbImage, { segment, masked = false }: CropOptions) {
  if (!segment) return { image: generated, mask: undefined };
  const crop = segmentCrop(generated, segment, { masked });
  return { image: crop.image, mask: masked ? crop.mask : undefined };
}

/** CLIP embeddings of references, cropped as `options` says, for repeated {@link clipI} calls. */
export async function embedReferences(
  clip: ImageTextEmbedder,
  references: readonly ReferenceImage[],
  options: CropOptions = {},
): Promise<EmbeddedReferences> {
  const views = referenceViews(references, options.segment !== undefined, options.masked ?? false);
  return { embeddings: await clip.embedImages(views.map((v) => v.image)) };
}

/**
 * CLIP-I: the mean cosine between the generated image (or its segment crop) and the references.
 *
 * @example
 * const score = await clipI(clip, panel, catReferences, { segment: catMask });
 */
export async function clipI(
  clip: ImageTextEmbedder,
  generated: RgbImage,
  references: readonly ReferenceImage[] | EmbeddedReferences,
  options: CropOptions = {},
): Promise<number> {
  const [image] = await clip.embedImages([generatedView(generated, options).image]);
  const refs = 'embeddings' in references ? references : await embedReferences(clip, references, options);
  return meanCosine(image, refs.embeddings);
}

/**
 * CLIP-T: the cosine between the image and the prompt.
 *
 * @example
 * const score = await clipT(clip, panel, 'a sks cartoon man and a zwx cat in a park');
 */
export async function clipT(clip: ImageTextEmbedder, generated: RgbImage, prompt: string): Promise<number> {
  const [[image], [text]] = await Promise.all([clip.embedImages([generated]), clip.embedTexts([prompt])]);
  return cosine(image, text);
}

/**
 * SAS: the mean cosine between the segmentation encoder's pooled features of the generated subject
 * (its segment crop, masked by default as in SAL) and of the references.
 *
 * @example
 * const score = await sas(encoder, panel, catReferences, { segment: catMask });
 */
export async function sas(
  encoder: SegmentationEncoder,
  generated: RgbImage,
  references: readonly ReferenceImage[] | EmbeddedReferences,
  options: CropOptions = {},
): Promise<number> {
  const o = { ...options, masked: options.masked ?? true };
  const [features] = await encoder.embedImages([generatedView(generated, o)]);
  const refs = 'embeddings' in references ? references : await embedSasReferences(encoder, references, o);
  return meanCosine(features, refs.embeddings);
}

/** SAS features of references, cropped as `options` say (masked by default), for repeated {@link sas} calls. */
export async function embedSasReferences(
  encoder: SegmentationEncoder,
  references: readonly ReferenceImage[],
  options: CropOptions = {},
): Promise<EmbeddedReferences> {
  const masked = options.masked ?? true;
  return {
    embeddings: await encoder.embedImages(referenceViews(references, options.segment !== undefined, masked)),
  };
}

/**
 * CLIP-T as the paper reports it: for each prompt the best score among its generations, averaged
 * over the prompts.
 *
 * @example
 * bestPerPromptMean([[0.21, 0.30], [0.25, 0.19]]); // 0.275
 */
export function bestPerPromptMean(scoresPerPrompt: readonly (readonly number[])[]): number {
  if (scoresPerPrompt.length === 0 || scoresPerPrompt.some((s) => s.length === 0))
    throw new MetricsError('every prompt needs at least one score');
  return scoresPerPrompt.reduce((sum, s) => sum + Math.max(...s), 0) / scoresPerPrompt.length;
}

/** One subject of a generated panel. */
export interface PanelSubject {
  name: string;
  /** Its segment in the panel (`width * height`, > 0.5 inside). */
  segment: ArrayLike<number>;
  references: readonly ReferenceImage[];
}

/**
 * Reference embeddings kept across {@link evaluatePanel} calls, by reference list (the same array
 * object) and view, so that scoring many panels against the same subjects embeds every reference
 * once. One cache belongs to one CLIP and one segmentation encoder.
 *
 * @example
 * const cache = new ReferenceEmbeddingCache();
 * for (const panel of panels) await evaluatePanel(panel, { clip, sas: encoder, cache });
 */
export class ReferenceEmbeddingCache {
  private readonly entries = new WeakMap<
    readonly ReferenceImage[],
    Map<string, Promise<EmbeddedReferences>>
  >();

  /** The embeddings of `references` in `view`, computed by `embed` the first time. */
  get(
    references: readonly ReferenceImage[],
    view: string,
    embed: () => Promise<EmbeddedReferences>,
  ): Promise<EmbeddedReferences> {
    let views = this.entries.get(references);
    if (!views) {
      views = new Map();
      this.entries.set(references, views);
    }
    let pending = views.get(view);
    if (!pending) {
      pending = embed();
      views.set(view, pending);
    }
    return pending;
  }
}

export interface PanelScores {
  clipT: number;
  /** Mean over the subjects. */
  clipI: number;
  /** Mean over the subjects, or null without a segmentation encoder. */
  sas: number | null;
  subjects: { name: string; clipI: number; sas: number | null }[];
}

/**
 * All three metrics for one generated panel: CLIP-T of the whole image and the (global) prompt;
 * per subject CLIP-I (whole image with one subject, segment crops with several) and SAS (segment
 * crop, masked). With a `cache`, each subject's references are embedded once across calls.
 */
export async function evaluatePanel(
  panel: { image: RgbImage; prompt: string; subjects: readonly PanelSubject[] },
  models: { clip: ImageTextEmbedder; sas?: SegmentationEncoder; cache?: ReferenceEmbeddingCache },
): Promise<PanelScores> {
  if (panel.subjects.length === 0) throw new MetricsError('the panel has no subjects');
  const several = panel.subjects.length > 1;
  const { cache } = models;
  const subjects: PanelScores['subjects'] = [];
  for (const s of panel.subjects) {
    const crop = several ? { segment: s.segment } : {};
    const clipReferences = cache
      ? await cache.get(s.references, several ? 'clip-crop' : 'clip', () =>
          embedReferences(models.clip, s.references, crop),
        )
      : s.references;
    const clip = await clipI(models.clip, panel.image, clipReferences, crop);
    const encoder = models.sas;
    const sasReferences =
      cache && encoder
        ? await cache.get(s.references, 'sas', () =>
            embedSasReferences(encoder, s.references, { segment: s.segment }),
          )
        : s.references;
    const subjectSas = encoder
      ? await sas(encoder, panel.image, sasReferences, { segment: s.segment })
      : null;
    subjects.push({ name: s.name, clipI: clip, sas: subjectSas });
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    clipT: await clipT(models.clip, panel.image, panel.prompt),
    clipI: mean(subjects.map((s) => s.clipI)),
    sas: models.sas ? mean(subjects.map((s) => s.sas ?? 0)) : null,
    subjects,
  };
}

// ---------------------------------------------------------------------------------------------
// helpers

function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  if (s === 0) throw new MetricsError('the CLIP gave an all-zero embedding');
  const inv = 1 / Math.sqrt(s);
  return v.map((x) => x * inv);
}

function rows(t: ort.Tensor): Float32Array[] {
  const [n, d] = t.dims;
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

function binaryMask(mask: ArrayLike<number>): Uint8Array {
  return Uint8Array.from(mask, (v) => (v > 0.5 ? 1 : 0));
}

/** The image centred on a gray square (its mask on a square of 0s); square images are returned as they are. */
function letterbox(image: RgbImage, mask: Uint8Array | null): { image: RgbImage; mask: Uint8Array | null } {
  const { width: W, height: H } = image;
  if (W === H) return { image, mask };
  const side = Math.max(W, H);
  const x0 = Math.floor((side - W) / 2);
  const y0 = Math.floor((side - H) / 2);
  const data = new Uint8Array(side * side * 3);
  for (let p = 0; p < side * side; p++) data.set(NEUTRAL_GRAY, 3 * p);
  const squareMask = mask ? new Uint8Array(side * side) : null;
  for (let y = 0; y < H; y++) {
    const o = (y0 + y) * side + x0;
    data.set(image.data.subarray(3 * y * W, 3 * (y + 1) * W), 3 * o);
    if (mask && squareMask) squareMask.set(mask.subarray(y * W, (y + 1) * W), o);
  }
  return { image: { width: side, height: side, data }, mask: squareMask };
}

/** The largest centred square of an image. */
function centreSquare(image: RgbImage): RgbImage {
  const side = Math.min(image.width, image.height);
  const x0 = Math.floor((image.width - side) / 2);
  const y0 = Math.floor((image.height - side) / 2);
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++)
    data.set(
      image.data.subarray(3 * ((y0 + y) * image.width + x0), 3 * ((y0 + y) * image.width + x0 + side)),
      3 * y * side,
    );
  return { width: side, height: side, data };
}

/** The fixed batch size of an input, or undefined when it is dynamic. */
function fixedBatch(session: ort.InferenceSession, input: string): number | undefined {
  const meta = session.inputMetadata.find((m) => m.name === input);
  const first = meta && meta.isTensor ? meta.shape[0] : undefined;
  return typeof first === 'number' && first > 0 ? first : undefined;
}

function tensorType(session: ort.InferenceSession, input: string): string | undefined {
  const meta = session.inputMetadata.find((m) => m.name === input);
  return meta && meta.isTensor ? meta.type : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTriplet(v: unknown): v is RgbTriplet {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number');
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function readRequired(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MetricsError(`${path} is missing`);
    throw new MetricsError(`${path}: ${(e as Error).message}`);
  }
}

async function readJson(path: string, { optional = false } = {}): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new MetricsError(
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? `${path} is missing`
        : `${path}: ${(e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MetricsError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(json)) throw new MetricsError(`${path} must hold a JSON object`);
  return json;
}

async function loadTokenizer(dir: string): Promise<CLIPTokenizer> {
  try {
    return await CLIPTokenizer.fromFolder(dir);
  } catch (e) {
    throw new MetricsError(`the CLIP tokenizer in ${dir} cannot be loaded: ${(e as Error).message}`);
  }
}

function objectField(c: Record<string, unknown>, key: string, path: string): Record<string, unknown> {
  const v = c[key];
  if (!isObject(v)) throw new MetricsError(`${path}: "${key}" must be an object`);
  return v;
}

function numberField(c: Record<string, unknown>, key: string, path: string): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new MetricsError(`${path}: "${key}" must be a positive integer`);
  return v;
}

function stringField(c: Record<string, unknown>, key: string, path: string): string {
  const v = c[key];
  if (typeof v !== 'string' || v === '')
    throw new MetricsError(`${path}: "${key}" must be a file or folder name`);
  return v;
}
