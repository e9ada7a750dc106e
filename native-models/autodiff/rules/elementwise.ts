/**
 * Gradient rules of elementwise ops. Broadcast inputs get their gradient summed back to their
 * own shape with sumToShape.
 */
import { registerRule, sumToShape, type RuleContext } from '../backward.js';

const shapeOf = (ctx: RuleContext, i: number) => ctx.g.shape(ctx.node.inputs[i]);

registerRule('Identity', ({ gradOutputs: [gy] }) => [gy]);

registerRule('Add', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  return [0, 1].map((i) => (ctx.needs[i] ? sumToShape(ctx.g, gy, shapeOf(ctx, i)) : undefined));
});

registerRule('Sub', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const { g, needs } = ctx;
  return [
    needs[0] ? sumToShape(g, gy, shapeOf(ctx, 0)) : undefined,
    needs[1] ? sumToShape(g, g.op1('Neg', [gy]), shapeOf(ctx, 1)) : undefined,
  ];
});

registerRule('Mul', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const { g, needs, node } = ctx;
  const [a, b] = node.inputs;
  return [
    needs[0] ? sumToShape(g, g.op1('Mul', [gy, b]), shapeOf(ctx, 0)) : undefined,
    needs[1] ? sumToShape(g, g.op1('Mul', [gy, a]), shapeOf(ctx, 1)) : undefined,
  ];
});

registerRule('Div', (ctx) => {
  const [gy] = ctx.gradOutputs;
  if (gy === undefined) return [];
  const { g, needs, node } = ctx;
  const [a, b] = node.inputs;
  const y = node.outputs[0];
  return [
    needs[0] ? sumToShape(g, g.op1('Div', [gy, b]), shapeOf(ctx, 0)) : undefined,
    // d(a/b)/db = -a/b^2 = -y/b
    needs[1]
      ? sumToShape(g, g.op1('Neg', [g.op1('Div', [g.op1('Mul', [gy, y]), b])]), shapeOf(ctx, 1))
      : undefined,
  ];
});

registerRule('Neg', ({ g, gradOutputs: [gy] }) => [gy === undefined ? undefined : g.op1('Neg', [gy])]);
