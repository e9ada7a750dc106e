/**
 * Reverse-mode automatic differentiation over the graph IR.
 *
 * `gradients(g, loss, wrt)` walks the node tape backwards from a scalar loss and appends, to
 * the same graph, standard ONNX nodes that compute d loss / d w for every requested value.
 * Each op has a rule (rules/*.ts) that receives its node, the gradients of its outputs and
 * which inputs need a gradient (frozen weights need none, so their rules emit nothing).
 * A value used several times gets the sum of its gradients; broadcasting is reduced back
 * to the input's shape by the rules (see `sumToShape`).
 *
 * @example
 * const g = new Graph();
 * const x = g.input('x', [4, 3]);
 * const w = g.input('w', [3, 2]);
 * const loss = g.op1('ReduceMean', [g.op1('Mul', [y, y])]); // y = x w
 * const grads = gradients(g, loss, [w]);
 * g.output(loss, 'loss'); g.output(grads.get(w)!, 'grad_w');
 */
import { GraphError, OPSET, type Graph, type GraphNode } from '../onnx/graph.js';
import { isFloat, numel } from '../onnx/dtype.js';

export interface RuleContext {
  g: Graph;
  node: GraphNode;
  /** Gradient of each output of the node; undefined where nothing flows back. */
  gradOutputs: (string | undefined)[];
  /** Whether each input needs a gradient. A rule may skip work for inputs that do not. */
  needs: boolean[];
}

/** Returns one gradient per node input (undefined for inputs that need none or get none). */
export type GradientRule = (ctx: RuleContext) => (string | undefined)[];

const RULES = new Map<string, GradientRule>();

/** Registers the gradient rule of an op type (default domain). */
export function registerRule(opType: string, rule: GradientRule): void {
  RULES.set(opType, rule);
}

export function hasRule(opType: string): boolean {
  return RULES.has(opType);
}

export function registeredOps(): string[] {
  return [...RULES.keys()].sort();
}

/** Gradient rules emit opset-18+ forms (axes as inputs, ScatterND with reduction). */
export const MIN_OPSET = 18;

export class AutodiffError extends GraphError {
  override name = 'AutodiffError';
}

export interface GradientOptions {
  /** Gradient of the loss itself (default 1). */
  seed?: number;
}

/**
 * Appends the gradient computation of `loss` with respect to each of `wrt` to `g`.
 * Returns a map from each requested value to the name of its gradient.
 */
export function gradients(
  g: Graph,
  loss: string,
  wrt: readonly string[],
  options: GradientOptions = {},
): Map<string, string> {
  // 1. Check the request.
  if (g.opset < MIN_OPSET) {
    throw new AutodiffError(
      `graph '${g.name}' has opset ${g.opset}; gradients need opset ${MIN_OPSET} or newer (import with { opset: ${OPSET} })`,
    );
  }
  const lossInfo = g.info(loss);
  if (numel(lossInfo.shape) !== 1) {
    throw new AutodiffError(
      `the loss '${loss}' must be a scalar, but has shape [${lossInfo.shape.join(', ')}]`,
    );
  }
  if (!isFloat(lossInfo.dtype))
    throw new AutodiffError(`the loss '${loss}' must be a float, not ${lossInfo.dtype}`);
  for (const w of wrt) {
    const info = g.info(w);
    if (!isFloat(info.dtype)) {
      throw new AutodiffError(`cannot differentiate with respect to '${w}': it is a ${info.dtype} tensor`);
    }
  }

  // 2. Which values depend on `wrt` (forward) and which feed the loss (backward).
  const tape = g.nodes.slice();
  const dependsOnWrt = new Set(wrt);
  for (const node of tape) {
    if (node.inputs.some((x) => dependsOnWrt.has(x))) {
      for (const o of node.outputs) if (isFloat(g.dtype(o))) dependsOnWrt.add(o);
    }
  }
  const feedsLoss = new Set([loss]);
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => feedsLoss.has(o)))
      for (const x of node.inputs) if (x !== '') feedsLoss.add(x);
  }

  // 3. Walk the tape backwards, accumulating gradients.
  const grads = new Map<string, string>();
  grads.set(loss, g.scalar(options.seed ?? 1, lossInfo.dtype, lossInfo.shape));
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    const gradOutputs = node.outputs.map((o) => grads.get(o));
    if (gradOutputs.every((x) => x === undefined)) continue;
    const needs = node.inputs.map((x) => x !== '' && dependsOnWrt.has(x) && feedsLoss.has(x));
    if (!needs.some(Boolean)) continue;
    const rule = RULES.get(node.opType);
    if (!rule || (node.domain !== '' && node.domain !== 'ai.onnx')) {
      throw new AutodiffError(
        `no gradient rule for op '${node.domain ? `${node.domain}.` : ''}${node.opType}' (node '${node.name}')`,
      );
    }
    let gradInputs: (string | undefined)[];
    try {
      gradInputs = rule({ g, node, gradOutputs, needs });
    } catch (e) {
      throw new AutodiffError(`gradient of ${node.opType} (node '${node.name}'): ${(e as Error).message}`);
    }
    node.inputs.forEach((x, j) => {
      const gx = gradInputs[j];
      if (!needs[j] || gx === undefined) return;
      const expected = g.shape(x);
      const got = g.shape(gx);
      if (expected.length !== got.length || expected.some((d, k) => d !== got[k])) {
        throw new AutodiffError(
          `gradient rule of ${node.opType} (node '${node.name}') gave shape [${got.join(', ')}] for input '${x}' of shape [${expected.join(', ')}]`,
        );
      }
      const previous = grads.get(x);
      grads.set(x, previous === undefined ? gx : g.op1('Add', [previous, gx]));
    });
  }

  // 4. Values the loss does not depend on get zero gradients.
  const result = new Map<string, string>();
  for (const w of wrt) {
    const info = g.info(w);
    result.set(w, grads.get(w) ?? g.scalar(0, info.dtype, info.shape));
  }
  return result;
}

/**
 * Sums a broadcast gradient back to `shape` (the shape of the input that was broadcast).
 */
export function sumToShape(g: Graph, grad: string, shape: readonly number[]): string {
  const s = g.shape(grad);
  if (s.length === shape.length && s.every((d, i) => d === shape[i])) return grad;
  const offset = s.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (i < offset || (shape[i - offset] === 1 && s[i] !== 1)) axes.push(i);
  }
  const reduced = axes.length > 0 ? g.op1('ReduceSum', [grad, g.ints(axes)], { keepdims: 1 }) : grad;
  return g.op1('Reshape', [reduced, g.ints([...shape])]);
}
