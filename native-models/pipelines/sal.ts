/**
 * SAL, the subject-aware segmentation loss used as guidance (paper section 2(iii), A.4):
 * for each subject segment j, L_j = BCE(M(D(x0_hat) * m_j)[class of j], m_j), where D is the VAE
 * decoder and M a segmentation model that knows the cast's subjects. The MSP pipeline moves the
 * latent against d(sum_j L_j)/dz at chosen steps.
 *
 * The segmentation model contract (a folder, e.g. `segmentation/` in a model folder):
 *   model.onnx     input  `image`  float32 [B, 3, H, W], RGB in [-1, 1] (the VAE's output space)
 *                  output `logits` float32 [B, K, H', W'] (per-class logits; H', W' any size)
 *   classes.json   {"classes": ["background", "<subject id or class name>", ...]}  (K names)
 *
 * One ONNX graph does it all: latent -> 1/scaling -> vae_decoder -> masked copies (one per subject,
 * as a batch) -> segmentation model -> the subject's logit channel -> BCE against the mask. Weights
 * stay frozen initializers, so only the input gradient is built.
 *
 * @example
 * const seg = await loadSegmentationModel(join(modelDir, 'segmentation'));
 * const sal = await SalGuidance.create(sd, seg, { width: 512, height: 512, subjects: [{ className: 'sks_cat', mask }] });
 * const { loss, gradient } = await sal.gradient(x0);
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph, OPSET, float } from '../onnx/graph.js';
import { importInto } from '../onnx/import.js';
import { readModelFile } from '../onnx/external-data.js';
import type { ModelProto } from '../onnx/proto-types.js';
import { InputGradient } from '../training/input-gradient.js';
import { bceWithLogitsLoss } from '../training/losses.js';
import type { StableDiffusion } from './stable-diffusion.js';

export interface SegmentationModel {
  dir: string;
  model: ModelProto;
  classes: string[];
}

export class SegmentationModelError extends Error {
  override name = 'SegmentationModelError';
}

/** Loads and checks a segmentation model folder (model.onnx + classes.json). */
export async function loadSegmentationModel(dir: string): Promise<SegmentationModel> {
  let classes: unknown;
  try {
    classes = (JSON.parse(await readFile(join(dir, 'classes.json'), 'utf8')) as { classes?: unknown })
      .classes;
  } catch (e) {
    throw new SegmentationModelError(`${join(dir, 'classes.json')}: ${(e as Error).message}`);
  }
  if (!Array.isArray(classes) || classes.length < 2 || !classes.every((c) => typeof c === 'string')) {
    throw new SegmentationModelError(
      `${join(dir, 'classes.json')}: "classes" must list at least two class names`,
    );
  }
  const model = await readModelFile(join(dir, 'model.onnx')).catch((e: unknown) => {
    throw new SegmentationModelError(`${join(dir, 'model.onnx')}: ${(e as Error).message}`);
  });
  const input = model.graph.input.find((i) => i.name === 'image');
  const output = model.graph.output.find((o) => o.name === 'logits');
  if (!input) throw new SegmentationModelError(`${join(dir, 'model.onnx')} is missing input 'image'`);
  if (!output) throw new SegmentationModelError(`${join(dir, 'model.onnx')} is missing output 'logits'`);
  const k = output.type?.tensorType?.shape?.dim[1]?.dimValue;
  if (k !== undefined && k > 0 && k !== classes.length) {
    throw new SegmentationModelError(
      `${join(dir, 'model.onnx')} outputs ${k} classes but classes.json names ${classes.length}`,
    );
  }
  return { dir, model, classes: classes as string[] };
}

export interface SalSubject {
  /** The class (subject id) the segmentation model should find in this segment. */
  className: string;
  /** The segment's mask at latent resolution (latentHeight * latentWidth), values in [0, 1]. */
  mask: Float32Array;
}

export class SalGuidance {
  private constructor(
    private readonly guide: InputGradient,
    private readonly feeds: Record<string, ort.Tensor>,
    private readonly latentShape: number[],
  ) {}

  static async create(
    sd: StableDiffusion,
    seg: SegmentationModel,
    { width, height, subjects }: { width: number; height: number; subjects: SalSubject[] },
  ): Promise<SalGuidance> {
    if (subjects.length === 0) throw new SegmentationModelError('SAL needs at least one subject segment');
    const { latentChannels: C, vaeScaleFactor: f, scalingFactor } = sd.sizes;
    const [h, w] = [height / f, width / f];
    const J = subjects.length;
    const classIndex = subjects.map((s) => {
      const k = seg.classes.indexOf(s.className);
      if (k < 0) {
        throw new SegmentationModelError(
          `the segmentation model does not know '${s.className}' (it knows ${seg.classes.join(', ')})`,
        );
      }
      return k;
    });

    // 1. latent -> image through the frozen VAE decoder
    const g = new Graph({ name: 'sal', opset: OPSET });
    const x0 = g.input('x0', [1, C, h, w]);
    const vae = await readModelFile(sd.model.components.vae_decoder.path);
    const latent = g.op1('Mul', [x0, g.scalar(1 / scalingFactor)]);
    const image = importInto(g, vae, { bind: { latent_sample: latent }, prefix: 'vae', inputShapes: {} })
      .outputs.sample;

    // 2. one masked copy per subject, as a batch, through the frozen segmentation model
    const masks = g.input('masks', [J, 1, height, width]);
    const masked = g.op1('Mul', [g.op1('Expand', [image, g.ints([J, 3, height, width])]), masks]);
    const logits = importInto(g, seg.model, { bind: { image: masked }, prefix: 'seg', inputShapes: {} })
      .outputs.logits;
    const [, K, hs, ws] = g.shape(logits);

    // 3. each copy's subject channel against its mask at the segmentation output's size
    const selector = new Float32Array(J * K);
    classIndex.forEach((k, j) => (selector[j * K + k] = 1));
    const chosen = g.op1(
      'ReduceSum',
      [g.op1('Mul', [logits, g.initializer('sal_selector', selector, [J, K, 1, 1])]), g.ints([1])],
      {
        keepdims: 0,
      },
    );
    const targets = g.input('targets', [J, hs, ws]);
    const loss = bceWithLogitsLoss(g, chosen, targets, { reduction: 'mean' });
    const guide = await InputGradient.create({ graph: g, value: loss, wrt: x0 });

    const feeds = {
      masks: new ort.Tensor(
        'float32',
        upsampleMasks(
          subjects.map((s) => s.mask),
          w,
          h,
          width,
          height,
        ),
        [J, 1, height, width],
      ),
      targets: new ort.Tensor(
        'float32',
        upsampleMasks(
          subjects.map((s) => s.mask),
          w,
          h,
          ws,
          hs,
        ),
        [J, hs, ws],
      ),
    };
    return new SalGuidance(guide, feeds, [1, C, h, w]);
  }

  /** The SAL loss of an x0 estimate and its gradient with respect to it. */
  async gradient(x0: Float32Array): Promise<{ loss: number; gradient: Float32Array }> {
    const { value, gradient } = await this.guide.run({
      ...this.feeds,
      x0: new ort.Tensor('float32', x0, this.latentShape),
    });
    return { loss: value, gradient };
  }

  async dispose(): Promise<void> {
    await this.guide.dispose();
  }
}

/** Nearest-neighbour resampling of latent-resolution masks to another size. */
function upsampleMasks(
  masks: Float32Array[],
  lw: number,
  lh: number,
  width: number,
  height: number,
): Float32Array {
  const out = new Float32Array(masks.length * width * height);
  masks.forEach((m, j) => {
    for (let y = 0; y < height; y++) {
      const sy = Math.min(lh - 1, Math.floor((y * lh) / height));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(lw - 1, Math.floor((x * lw) / width));
        out[j * width * height + y * width + x] = m[sy * lw + sx];
      }
    }
  });
  return out;
}

/** A small random segmentation model in the contract above, for tests and trying SAL without a trained one. */
export function randomSegmentationModel(
  classes: string[],
  seed = 1,
): { model: Uint8Array; classesJson: string } {
  const g = new Graph({ name: 'random_segmentation' });
  const image = g.input('image', [1, 3, 64, 64]);
  const rnd = (n: number, s: number, std: number) => {
    let x = s;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = ((x / 2 ** 32) * 2 - 1) * std;
    }
    return out;
  };
  const conv = (x: string, name: string, cin: number, cout: number, k: number) =>
    g.op1(
      'Conv',
      [
        x,
        g.initializer(`${name}.weight`, rnd(cout * cin * k * k, seed + cout, 1 / Math.sqrt(cin * k * k)), [
          cout,
          cin,
          k,
          k,
        ]),
        g.initializer(`${name}.bias`, new Float32Array(cout), [cout]),
      ],
      { kernel_shape: [k, k], pads: [k >> 1, k >> 1, k >> 1, k >> 1] },
    );
  const hidden = g.op1('LeakyRelu', [conv(image, 'conv1', 3, 8, 3)], { alpha: float(0.1) });
  g.output(conv(hidden, 'classifier', 8, classes.length, 3), 'logits');
  return {
    model: g.toBytes({
      dynamicAxes: {
        image: { 0: 'batch', 2: 'height', 3: 'width' },
        logits: { 0: 'batch', 2: 'height', 3: 'width' },
      },
    }),
    classesJson: JSON.stringify({ classes }, null, 2) + '\n',
  };
}
