/**
 * Gradient rules of reductions and matrix products.
 */
import { registerRule, type RuleContext } from '../backward.js';
import { normalizeAxis } from '../../onnx/shape-inference.js';

/** Axes a Reduce* node reduces over (opset 18+: an input; older graphs: an attribute). */
export function reducedAxes(ctx: RuleContext): number[] {
  const { g, node } = ctx;
  const rank = g.shape(node.inputs[0]).length;
  const fromInput = node.inputs[1] ? g.constValue(node.inputs[1]) : undefined;
  const fromAttr = node.attrs.axes as number[] | undefined;
  const axes = fromInput ?? fromAttr;
  if (axes && axes.length > 0) return axes.map((a) => normalizeAxis(a, rank));
  if (node.attrs.noop_with_empty_axes === 1) return [];
  return [...Array(rank).keys()];
}

/** Broadcasts the gradient of a reduction back over the reduced axes, times `scale`. */
function spreadBack(ctx: RuleContext, scale: number): (string | undefined)[] {
  const { g, node, gradOutputs } = ctx;
  const [gy] = gradOutputs;
  if (gy === undefined) return [];
  const x = g.shape(node.inputs[0]);
  const axes = reducedAxes(ctx);
  const keep = (node.attrs.keepdims ?? 1) === 1;
  let r = keep ? gy : g.op1('Reshape', [gy, g.ints(x.map((d, i) => (axes.includes(i) ? 1 : d)))]);
  if (scale !== 1) r = g.op1('Mul', [r, g.scalar(scale, g.dtype(gy))]);
  return [g.op1('Expand', [r, g.ints(x)]), undefined];
}

registerRule('ReduceSum', (ctx) => spreadBack(ctx, 1));

registerRule('ReduceMean', (ctx) => {
  const x = ctx.g.shape(ctx.node.inputs[0]);
  const count = reducedAxes(ctx).reduce((n, a) => n * x[a], 1);
  return spreadBack(ctx, 1 / count);
});
