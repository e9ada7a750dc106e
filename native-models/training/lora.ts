/**
 * LoRA: low-rank adapters injected into chosen MatMul / Gemm / Conv nodes of an existing graph
 * (ours or an imported UNet / text encoder), trained, saved in safetensors, loaded back and
 * merged into the weights for export.
 *
 *   MatMul  y = x W            ->  y = x W + s (x A) B          A [in, r], B [r, out]
 *   Gemm    y = x W^T (transB)  ->  the same with W's layout
 *   Conv    y = conv(x, W)     ->  y = conv(x, W) + s conv1x1(conv(x, A), B)   A [r, in, kh, kw], B [out, r, 1, 1]
 *
 * s = alpha / rank. A starts random, B at zero, so an injected graph computes what it did before.
 * Saved keys follow PEFT (the format diffusers loads): `<module>.lora_A.weight` [r, in(, kh, kw)],
 * `<module>.lora_B.weight` [out, r(, 1, 1)], with rank and alpha in the metadata.
 *
 * @example
 * const lora = injectLora(g, { rank: 4, targets: /attn[12]\.to_(q|k|v)/ });
 * const step = await TrainStep.create({ graph: g, loss, parameters: lora.parameters });
 * await saveLora('cast.safetensors', lora, step.parameters);
 */
import type { Graph, GraphNode } from '../onnx/graph.js';
import { Rng } from '../tensor/random.js';
import { readSafetensorsFile, toFloat32Tensor, writeSafetensorsFile } from './safetensors.js';

export interface LoraOptions {
  rank: number;
  /** Scale numerator: s = alpha / rank (default alpha = rank, s = 1). */
  alpha?: number;
  /** Which nodes get adapters: matched against the weight's name and the node's name. */
  targets: RegExp | readonly string[];
  seed?: number;
}

export interface LoraAdapter {
  /** Module name: the weight name without `.weight` (or the node name for anonymous weights). */
  module: string;
  kind: 'matmul' | 'gemm' | 'conv';
  /** The frozen weight the adapter modifies. */
  weight: string;
  /** Graph inputs holding A and B. */
  down: string;
  up: string;
  rank: number;
  alpha: number;
  /** Shapes of A and B in the graph. */
  downShape: number[];
  upShape: number[];
}

export interface InjectedLora {
  adapters: LoraAdapter[];
  /** Initial values of every adapter parameter (graph inputs), for TrainStep. */
  parameters: Map<string, Float32Array>;
}

export class LoraError extends Error {
  override name = 'LoraError';
}

/** Adds adapters to every matching MatMul / Gemm / Conv whose weight is an initializer. */
export function injectLora(g: Graph, options: LoraOptions): InjectedLora {
  const { rank } = options;
  if (!Number.isInteger(rank) || rank < 1)
    throw new LoraError(`LoRA rank must be a positive integer, got ${rank}`);
  const alpha = options.alpha ?? rank;
  const rng = new Rng(options.seed ?? 0);
  const matches = (node: GraphNode, weight: string) =>
    options.targets instanceof RegExp
      ? options.targets.test(weight) || options.targets.test(node.name)
      : options.targets.includes(moduleName(weight, node)) || options.targets.includes(node.name);

  const adapters: LoraAdapter[] = [];
  const parameters = new Map<string, Float32Array>();
  const candidates = g.nodes.filter(
    (n) => ['MatMul', 'Gemm', 'Conv'].includes(n.opType) && g.initializers.has(n.inputs[1]),
  );
  for (const node of candidates) {
    const weight = node.inputs[1];
    if (!matches(node, weight)) continue;
    const module = moduleName(weight, node);
    const x = node.inputs[0];
    const w = g.shape(weight);
    const kind = node.opType === 'MatMul' ? 'matmul' : node.opType === 'Gemm' ? 'gemm' : 'conv';
    let downShape: number[];
    let upShape: number[];
    if (kind === 'matmul') {
      if (w.length !== 2) continue; // batched weight products are not projections
      [downShape, upShape] = [
        [w[0], rank],
        [rank, w[1]],
      ];
    } else if (kind === 'gemm') {
      if (node.attrs.transA) throw new LoraError(`Gemm '${node.name}' with transA is not supported for LoRA`);
      const [inF, outF] = node.attrs.transB ? [w[1], w[0]] : [w[0], w[1]];
      [downShape, upShape] = [
        [inF, rank],
        [rank, outF],
      ];
    } else {
      if ((node.attrs.group ?? 1) !== 1)
        throw new LoraError(`grouped Conv '${node.name}' is not supported for LoRA`);
      [downShape, upShape] = [
        [rank, w[1], w[2], w[3]],
        [w[0], rank, 1, 1],
      ];
    }
    const down = g.input(`${module}.lora_A.weight`, downShape);
    const up = g.input(`${module}.lora_B.weight`, upShape);
    const fanIn = downShape.reduce((a, b) => a * b, 1) / rank;
    parameters.set(
      down,
      rng.randn(downShape.reduce((a, b) => a * b, 1)).map((v) => v / Math.sqrt(fanIn)),
    );
    parameters.set(up, new Float32Array(upShape.reduce((a, b) => a * b, 1)));
    const scale = alpha / rank;
    g.substitute(node.outputs[0], (base) => {
      let delta: string;
      if (kind === 'conv') {
        const convAttrs = { ...node.attrs, kernel_shape: [w[2], w[3]] };
        delta = g.op1('Conv', [g.op1('Conv', [x, down], convAttrs), up], { kernel_shape: [1, 1] });
      } else {
        delta = g.op1('MatMul', [g.op1('MatMul', [x, down]), up]);
      }
      if (scale !== 1) delta = g.op1('Mul', [delta, g.scalar(scale, g.dtype(base))]);
      return g.op1('Add', [base, delta]);
    });
    adapters.push({ module, kind, weight, down, up, rank, alpha, downShape, upShape });
  }
  if (adapters.length === 0)
    throw new LoraError(`no MatMul, Gemm or Conv weight matches the LoRA targets ${String(options.targets)}`);
  return { adapters, parameters };
}

function moduleName(weight: string, node: GraphNode): string {
  if (weight.endsWith('.weight')) return weight.slice(0, -'.weight'.length);
  // exported graphs often call weights onnx::MatMul_123; their node names carry the module path
  return node.name
    .replace(/^\//, '')
    .replace(/\/(MatMul|Gemm|Conv)$/, '')
    .replace(/\//g, '.');
}

/** Values of one adapter: A and B in the graph's layouts. */
export interface LoraValues {
  down: Float32Array;
  up: Float32Array;
}

/** Saves trained adapters as PEFT-style safetensors. `values` maps graph input names to data. */
export async function saveLora(
  path: string,
  adapters: readonly LoraAdapter[],
  values: Map<string, Float32Array> | readonly { name: string; data: Float32Array }[],
): Promise<void> {
  const get = (name: string) => {
    const v = values instanceof Map ? values.get(name) : values.find((p) => p.name === name)?.data;
    if (!v) throw new LoraError(`no values for adapter parameter '${name}'`);
    return v;
  };
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const a of adapters) {
    const { downFile, upFile } = fileLayout(a);
    const down = get(a.down);
    const up = get(a.up);
    // MatMul/Gemm adapters hold A [in, r] and B [r, out]; PEFT stores Linear weights [out_features, in_features]
    tensors[`${a.module}.lora_A.weight`] = {
      dtype: 'F32',
      shape: downFile,
      data: a.kind === 'conv' ? down : transpose2d(down, downFile[1], downFile[0]),
    };
    tensors[`${a.module}.lora_B.weight`] = {
      dtype: 'F32',
      shape: upFile,
      data: a.kind === 'conv' ? up : transpose2d(up, upFile[1], upFile[0]),
    };
  }
  const first = adapters[0];
  await writeSafetensorsFile(path, tensors, {
    format: 'pt',
    msp_lora: '1',
    rank: String(first?.rank ?? 0),
    alpha: String(first?.alpha ?? 0),
    modules: adapters.map((a) => a.module).join(','),
  });
}

/** The safetensors (PEFT) shapes of an adapter's A and B: Linear weights are [out_features, in_features]. */
function fileLayout(a: LoraAdapter): { downFile: number[]; upFile: number[] } {
  if (a.kind === 'conv') return { downFile: a.downShape, upFile: a.upShape };
  return { downFile: [a.downShape[1], a.downShape[0]], upFile: [a.upShape[1], a.upShape[0]] };
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

export interface LoadedLora {
  rank: number;
  alpha: number;
  /** Per module: A and B in the file's (PEFT) layout, with their shapes. */
  modules: Map<string, { down: Float32Array; downShape: number[]; up: Float32Array; upShape: number[] }>;
}

/** Reads a LoRA safetensors file (PEFT key layout). */
export async function loadLora(path: string): Promise<LoadedLora> {
  const { tensors, metadata } = await readSafetensorsFile(path);
  const modules: LoadedLora['modules'] = new Map();
  for (const key of Object.keys(tensors)) {
    const m = /^(.*)\.lora_A\.weight$/.exec(key);
    if (!m) continue;
    const upKey = `${m[1]}.lora_B.weight`;
    const up = tensors[upKey];
    if (!up) throw new LoraError(`${path}: '${key}' has no matching '${upKey}'`);
    const down = tensors[key];
    modules.set(m[1], {
      down: toFloat32Tensor(down),
      downShape: down.shape,
      up: toFloat32Tensor(up),
      upShape: up.shape,
    });
  }
  if (modules.size === 0) throw new LoraError(`${path} holds no LoRA weights (no '*.lora_A.weight' keys)`);
  const first = [...modules.values()][0];
  const rank = Number(metadata?.rank ?? first.downShape[0]);
  const alpha = Number(metadata?.alpha ?? rank);
  return { rank, alpha, modules };
}

/**
 * Merges loaded adapters into the weights of a graph without adapters: W += (alpha / rank) * delta.
 * Returns the modules merged; a module with no weight in the graph is an error.
 */
export function mergeLora(g: Graph, lora: LoadedLora): string[] {
  const scale = lora.alpha / lora.rank;
  const merged: string[] = [];
  const nodesByModule = new Map<string, GraphNode>();
  for (const node of g.nodes) {
    if (!['MatMul', 'Gemm', 'Conv'].includes(node.opType) || !g.initializers.has(node.inputs[1])) continue;
    nodesByModule.set(moduleName(node.inputs[1], node), node);
  }
  for (const [module, { down, downShape, up, upShape }] of lora.modules) {
    const node = nodesByModule.get(module);
    if (!node) throw new LoraError(`the graph has no weight for LoRA module '${module}'`);
    const init = g.initializers.get(node.inputs[1]);
    if (!init || !(init.data instanceof Float32Array))
      throw new LoraError(`weight of '${module}' is not float32`);
    const w = new Float32Array(init.data);
    const r = downShape[0];
    if (node.opType === 'Conv') {
      // W[o, i, kh, kw] += s * sum_r B[o, r] A[r, i, kh, kw]
      const [outC] = upShape;
      const per = downShape.slice(1).reduce((a, b) => a * b, 1);
      if (w.length !== outC * per)
        throw new LoraError(`LoRA '${module}' does not fit the weight of shape [${init.shape.join(', ')}]`);
      for (let o = 0; o < outC; o++) {
        for (let k = 0; k < r; k++) {
          const b = scale * up[o * r + k];
          if (b === 0) continue;
          for (let j = 0; j < per; j++) w[o * per + j] += b * down[k * per + j];
        }
      }
    } else {
      // delta[out, in] = B[out, r] A[r, in] (file layout); MatMul weights are [in, out], Gemm transB ones [out, in]
      const [outF] = upShape;
      const inF = downShape[1];
      const transposed = node.opType === 'Gemm' && node.attrs.transB === 1;
      const expected = transposed ? [outF, inF] : [inF, outF];
      if (init.shape.join() !== expected.join()) {
        throw new LoraError(
          `LoRA '${module}' ([${inF} -> ${outF}]) does not fit the weight of shape [${init.shape.join(', ')}]`,
        );
      }
      for (let o = 0; o < outF; o++) {
        for (let i = 0; i < inF; i++) {
          let d = 0;
          for (let k = 0; k < r; k++) d += up[o * r + k] * down[k * inF + i];
          w[transposed ? o * inF + i : i * outF + o] += scale * d;
        }
      }
    }
    g.setInitializer(node.inputs[1], w);
    merged.push(module);
  }
  return merged;
}
