/**
 * One compiled training step: a forward graph with a scalar loss becomes ONE ONNX model that
 * returns the loss and the gradients of the trainable parameters, run by onnxruntime.
 *
 * Trainable parameters are graph inputs fed zero-copy every step (the optimizer updates their
 * Float32Arrays in place); frozen weights stay initializers, which onnxruntime prepacks. Convs
 * with trainable weights (and the dX convs) are lowered to the blocked NCHWc kernels onnxruntime
 * gives constant weights, reordering the weights in the graph (autodiff/nchwc.ts).
 *
 * @example
 * const m = new ModelBuilder('toy', 1, 'input');
 * ... build, then loss = mseLoss(m.g, prediction, target)
 * const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values });
 * const { loss, gradients } = await step.run({ x, target });
 */
import * as ort from 'onnxruntime-node';
import type { Graph } from '../onnx/graph.js';
import { gradients, lowerConvsToNchwc, nchwcBlockSize } from '../autodiff/index.js';
import type { ParameterTensor } from './optimizers.js';

export interface TrainStepSpec {
  graph: Graph;
  loss: string;
  /**
   * Trainable parameters: graph inputs with their initial values, and/or names of initializers
   * to train (their current values are taken over). Everything else stays frozen.
   */
  parameters: Map<string, Float32Array> | readonly string[];
  /** Extra values to return each step (e.g. a prediction for logging). */
  extraOutputs?: readonly string[];
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /**
   * Run the convolutions whose weights change every step on onnxruntime's NCHWc kernels
   * (autodiff/nchwc.ts). Default: when the CPU provider has them and no other provider is asked.
   */
  nchwc?: boolean;
}

export interface StepResult {
  loss: number;
  gradients: Map<string, Float32Array>;
  extras: Record<string, ort.Tensor>;
}

export class TrainStep {
  private constructor(
    readonly parameters: ParameterTensor[],
    private readonly session: ort.InferenceSession,
    private readonly gradientOutputs: string[],
    private readonly dataInputs: string[],
    private readonly extraOutputs: readonly string[],
    /** Node counts before and after differentiation, for reports. */
    readonly nodeCounts: { forward: number; total: number },
  ) {}

  static async create(spec: TrainStepSpec): Promise<TrainStep> {
    const { graph: g, loss } = spec;
    const forward = g.nodes.length;
    // 1. Parameters: inputs keep their given values; initializers named for training become inputs.
    const parameters: ParameterTensor[] = [];
    const entries: [string, Float32Array | undefined][] =
      spec.parameters instanceof Map ? [...spec.parameters] : spec.parameters.map((n) => [n, undefined]);
    for (const [name, given] of entries) {
      let data = given;
      if (g.initializers.has(name)) {
        const init = g.promoteToInput(name);
        if (!(init.data instanceof Float32Array))
          throw new Error(`parameter '${name}' is ${init.dtype}, not float32`);
        data ??= init.data;
      }
      if (!g.inputs.includes(name))
        throw new Error(`parameter '${name}' is neither a graph input nor an initializer`);
      if (!data) throw new Error(`no initial values for parameter '${name}'`);
      const shape = g.shape(name);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) {
        throw new Error(`parameter '${name}' has ${data.length} values for shape [${shape.join(', ')}]`);
      }
      parameters.push({ name, shape: [...shape], data });
    }
    // 2. Differentiate and expose loss + gradients.
    const names = parameters.map((p) => p.name);
    const grads = gradients(g, loss, names);
    g.output(loss, 'loss');
    // Gradients computed by a node are outputs under their own names (an Identity rename would
    // copy each one every step); constants and values already exposed get a renamed copy.
    const produced = new Set(g.nodes.flatMap((node) => node.outputs));
    const exposed = new Set<string>(['loss']);
    const gradientOutputs = names.map((n, i) => {
      const value = grads.get(n) as string;
      const name =
        produced.has(value) && !exposed.has(value) ? g.output(value) : g.output(value, `grad_${i}`);
      exposed.add(name);
      return name;
    });
    for (const extra of spec.extraOutputs ?? []) g.output(extra);
    // 3. Fold shape arithmetic into constants and drop what the outputs do not need.
    g.foldConstants();
    // 4. Convolutions with run-time weights onto the blocked kernels baked weights get.
    const providers = spec.sessionOptions?.executionProviders ?? [];
    const cpuOnly = providers.every((p) => (typeof p === 'string' ? p : p.name) === 'cpu');
    if (spec.nchwc ?? cpuOnly) lowerConvsToNchwc(g, await nchwcBlockSize());
    const session = await ort.InferenceSession.create(g.toBytes(), {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...spec.sessionOptions,
    });
    const dataInputs = g.inputs.filter((n) => !names.includes(n));
    return new TrainStep(parameters, session, gradientOutputs, dataInputs, spec.extraOutputs ?? [], {
      forward,
      total: g.nodes.length,
    });
  }

  /** The graph inputs a batch must provide. */
  get batchInputs(): readonly string[] {
    return this.dataInputs;
  }

  /** Runs forward and backward on one batch with the parameters' current values. */
  async run(batch: Record<string, ort.Tensor>): Promise<StepResult> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.dataInputs) {
      const t = batch[name];
      if (!t) throw new Error(`the batch lacks input '${name}'`);
      feeds[name] = t;
    }
    for (const p of this.parameters) feeds[p.name] = new ort.Tensor('float32', p.data, p.shape);
    const out = await this.session.run(feeds, ['loss', ...this.gradientOutputs, ...this.extraOutputs]);
    const gradientsByName = new Map<string, Float32Array>();
    this.parameters.forEach((p, i) =>
      gradientsByName.set(p.name, out[this.gradientOutputs[i]].data as Float32Array),
    );
    const extras: Record<string, ort.Tensor> = {};
    for (const e of this.extraOutputs) extras[e] = out[e];
    return { loss: Number(out.loss.data[0]), gradients: gradientsByName, extras };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
