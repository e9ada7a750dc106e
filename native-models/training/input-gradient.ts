/**
 * The gradient of a scalar function with respect to one input, for guidance: the SAL step of
 * the MSP pipeline runs latent -> vae_decoder -> segmentation model -> loss and moves the latent
 * against the gradient. Models are composed into one graph (importInto), their weights stay
 * frozen initializers (no weight gradients are built), and one session returns the value and
 * the gradient.
 *
 * @example
 * const g = new Graph();
 * const z = g.input('latent', [1, 4, 8, 8]);
 * const image = importInto(g, vaeDecoder, { bind: { latent_sample: z }, prefix: 'vae' }).outputs.sample;
 * const loss = mseLoss(g, image, g.input('target', [1, 3, 64, 64]));
 * const guide = await InputGradient.create({ graph: g, value: loss, wrt: z });
 * const { value, gradient } = await guide.run({ latent, target });
 */
import * as ort from 'onnxruntime-node';
import type { Graph } from '../onnx/graph.js';
import { gradients } from '../autodiff/index.js';

export interface InputGradientSpec {
  graph: Graph;
  /** A scalar value of the graph. */
  value: string;
  /** The graph input to differentiate with respect to. */
  wrt: string;
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

export class InputGradient {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputNames: readonly string[],
    readonly wrtShape: readonly number[],
  ) {}

  static async create(spec: InputGradientSpec): Promise<InputGradient> {
    const { graph: g, value, wrt } = spec;
    if (!g.inputs.includes(wrt)) throw new Error(`'${wrt}' is not an input of graph '${g.name}'`);
    const grad = gradients(g, value, [wrt]).get(wrt) as string;
    g.output(value, 'value');
    g.output(grad, 'gradient');
    g.foldConstants();
    const session = await ort.InferenceSession.create(g.toBytes(), {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...spec.sessionOptions,
    });
    return new InputGradient(session, [...g.inputs], g.shape(wrt));
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<{ value: number; gradient: Float32Array }> {
    for (const name of this.inputNames) if (!feeds[name]) throw new Error(`missing input '${name}'`);
    const out = await this.session.run(feeds, ['value', 'gradient']);
    return { value: Number(out.value.data[0]), gradient: out.gradient.data as Float32Array };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
