/**
 * Loss functions built on the graph IR. Each builder appends standard ONNX nodes to a graph and
 * returns the name of the result: a scalar loss (shape []) except for {@link cosineSimilarity},
 * which gives one value per row. Every op used has a gradient rule and a float32 and float64
 * kernel in onnxruntime's CPU provider, so the losses can be differentiated with `gradients()`
 * and checked in float64.
 *
 * The formulas follow PyTorch's `torch.nn.functional` losses of the same names.
 *
 * @example
 * const g = new Graph();
 * const x = g.input('x', [8, 4]);
 * const w = g.input('w', [4, 4]);
 * const target = g.input('target', [8, 4]);
 * const loss = mseLoss(g, g.op1('MatMul', [x, w]), target);
 * const grads = gradients(g, loss, [w]);
 * g.output(loss, 'loss');
 */
import { GraphError, type Graph } from '../onnx/graph.js';
import { numel } from '../onnx/dtype.js';

/** How per-element losses become a scalar: their mean (default) or their sum. */
export type Reduction = 'mean' | 'sum';

export interface ReductionOptions {
  reduction?: Reduction;
}

function sameShape(g: Graph, what: string, a: string, b: string): void {
  const sa = g.shape(a);
  const sb = g.shape(b);
  if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i])) {
    throw new GraphError(`${what}: shapes [${sa.join(', ')}] and [${sb.join(', ')}] differ`);
  }
}

/** A scalar constant of the dtype of `like`. */
function constant(g: Graph, value: number, like: string): string {
  return g.scalar(value, g.dtype(like));
}

function reduceAll(g: Graph, x: string, reduction: Reduction = 'mean'): string {
  if (reduction !== 'mean' && reduction !== 'sum')
    throw new GraphError(`unknown reduction '${String(reduction)}'`);
  return g.op1(reduction === 'sum' ? 'ReduceSum' : 'ReduceMean', [x], { keepdims: 0 });
}

function normalizeAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new GraphError(`${what}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

/**
 * Mean squared error, `reduce((prediction - target)^2)`. The two must have the same shape
 * (no silent broadcasting).
 *
 * @example
 * const loss = mseLoss(g, predictedNoise, noise); // mean over every element
 * const total = mseLoss(g, predictedNoise, noise, { reduction: 'sum' });
 */
export function mseLoss(
  g: Graph,
  prediction: string,
  target: string,
  { reduction = 'mean' }: ReductionOptions = {},
): string {
  sameShape(g, 'mseLoss', prediction, target);
  const diff = g.op1('Sub', [prediction, target]);
  return reduceAll(g, g.op1('Mul', [diff, diff]), reduction);
}

export interface BceWithLogitsOptions extends ReductionOptions {
  /** Per-element weights, broadcastable to the logits' shape (PyTorch's `weight`). */
  weight?: string;
}

/**
 * Binary cross-entropy on logits, `reduce(weight * (-t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))))`,
 * computed in the numerically stable form
 *
 *     max(x, 0) - x * t + log(1 + exp(-|x|))
 *
 * which never exponentiates a positive number. `max(x, 0)` is written as `(x + |x|) / 2` so that
 * the gradient is exactly `sigmoid(x) - t` everywhere, including at x = 0 (where a zero-initialized
 * head puts every logit): with Abs' = sign, the two kinks contribute 1/2 and 0 there. Targets may
 * be soft (any value in [0, 1]) and must have the logits' shape. The mean divides by the number of
 * elements, whatever the weights.
 *
 * @example
 * const loss = bceWithLogitsLoss(g, logits, labels, { weight: mask });
 */
export function bceWithLogitsLoss(
  g: Graph,
  logits: string,
  targets: string,
  { weight, reduction = 'mean' }: BceWithLogitsOptions = {},
): string {
  sameShape(g, 'bceWithLogitsLoss', logits, targets);
  const x = logits;
  const absX = g.op1('Abs', [x]);
  const positivePart = g.op1('Mul', [g.op1('Add', [x, absX]), constant(g, 0.5, x)]);
  const logTerm = g.op1('Log', [g.op1('Add', [constant(g, 1, x), g.op1('Exp', [g.op1('Neg', [absX])])])]);
  let perElement = g.op1('Add', [g.op1('Sub', [positivePart, g.op1('Mul', [x, targets])]), logTerm]);
  if (weight !== undefined) {
    perElement = g.op1('Mul', [perElement, weight]);
    sameShape(g, 'bceWithLogitsLoss: the weight must broadcast to the logits', perElement, logits);
  }
  return reduceAll(g, perElement, reduction);
}

export interface CrossEntropyOptions extends ReductionOptions {
  /** The class axis (default 1, as in PyTorch: [N, C] or [N, C, H, W]); negative counts from the end. */
  axis?: number;
}

/**
 * Cross-entropy between logits and target distributions over `axis`:
 * `-sum_axis(targets * logSoftmax(logits, axis))` per position, then the mean over the
 * positions (batch and spatial dimensions; PyTorch's `cross_entropy` with probability targets)
 * or the sum. Targets are one-hot vectors or probabilities with the logits' shape; to use class
 * indices, one-hot encode them first (e.g. with an `OneHot` node or in JS).
 *
 * @example
 * const logits = g.input('logits', [16, 10]);
 * const onehot = g.input('labels', [16, 10]);
 * const loss = crossEntropyLoss(g, logits, onehot);
 */
export function crossEntropyLoss(
  g: Graph,
  logits: string,
  targets: string,
  { axis = 1, reduction = 'mean' }: CrossEntropyOptions = {},
): string {
  sameShape(g, 'crossEntropyLoss', logits, targets);
  const shape = g.shape(logits);
  const a = normalizeAxis(axis, shape.length, 'crossEntropyLoss');
  const logProbabilities = g.op1('LogSoftmax', [logits], { axis: a });
  const total = g.op1('ReduceSum', [g.op1('Mul', [targets, logProbabilities])], { keepdims: 0 });
  if (reduction === 'sum') return g.op1('Neg', [total]);
  if (reduction !== 'mean') throw new GraphError(`unknown reduction '${String(reduction)}'`);
  const positions = numel(shape) / shape[a];
  return g.op1('Div', [total, constant(g, -positions, logits)]);
}

export interface CosineOptions {
  /** The axis holding the vectors (default -1, the last). */
  axis?: number;
  /** Smallest norm used in the denominator, so zero vectors give 0 rather than NaN (default 1e-8). */
  eps?: number;
}

/**
 * Cosine similarity of `a` and `b` along `axis`, `a·b / (max(|a|, eps) * max(|b|, eps))`: one
 * value per row, with `axis` removed (e.g. [N, D] -> [N]). This is not a loss; see
 * {@link cosineEmbeddingLoss}. `a` and `b` are broadcast against each other first. The clamp is
 * applied to the squared norms (`sqrt(max(|a|^2, eps^2))`), which has the same value and keeps the
 * gradient finite for a zero vector.
 *
 * @example
 * const cos = cosineSimilarity(g, imageEmbeds, textEmbeds); // [N]
 */
export function cosineSimilarity(
  g: Graph,
  a: string,
  b: string,
  { axis = -1, eps = 1e-8 }: CosineOptions = {},
): string {
  if (!(eps > 0)) throw new GraphError(`cosineSimilarity: eps must be positive, got ${eps}`);
  const product = g.op1('Mul', [a, b]); // checks that the shapes broadcast
  const shape = g.shape(product);
  const ax = normalizeAxis(axis, shape.length, 'cosineSimilarity');
  const full = (x: string) => {
    const s = g.shape(x);
    return s.length === shape.length && s.every((d, i) => d === shape[i])
      ? x
      : g.op1('Expand', [x, g.ints(shape)]);
  };
  const sumOver = (x: string) => g.op1('ReduceSum', [x, g.ints([ax])], { keepdims: 0 });
  const norm = (x: string) => {
    const xf = full(x);
    const squares = sumOver(g.op1('Mul', [xf, xf]));
    return g.op1('Sqrt', [g.op1('Max', [squares, constant(g, eps * eps, squares)])]);
  };
  return g.op1('Div', [sumOver(product), g.op1('Mul', [norm(a), norm(b)])]);
}

/**
 * `reduce(1 - cosineSimilarity(a, b))` over the rows: 0 when every pair points the same way.
 * (PyTorch's `cosine_embedding_loss` with every target +1.)
 *
 * @example
 * const loss = cosineEmbeddingLoss(g, predicted, reference, { axis: 1 });
 */
export function cosineEmbeddingLoss(
  g: Graph,
  a: string,
  b: string,
  { reduction = 'mean', ...options }: CosineOptions & ReductionOptions = {},
): string {
  const cos = cosineSimilarity(g, a, b, options);
  return reduceAll(g, g.op1('Sub', [constant(g, 1, cos), cos]), reduction);
}
