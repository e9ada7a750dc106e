/**
 * Gradient rules of elementwise ops. Broadcast inputs get their gradient summed back to their
 * own shape with sumToShape.
 *
 * Conventions at points where an op is not differentiable: at x = 0 Relu and LeakyRelu take
 * the x < 0 slope and Abs has slope 0; Clip passes the gradient to x on the closed
 * interval [min, max]; Min/Max give the whole gradient to the first input that attains the
 * result (ties go to the earliest input).
 */
import { siluGradient } from './normalization.js';
import { registerRule, sumToShape, type RuleContext } from '../backward.js';
import { FloatAttr, type Graph, type GraphNode } from '../../onnx/graph.js';
import { DTYPE_CODE, isFloat, type DType } from '../../onnx/dtype.js';

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
  // x * Sigmoid(x) is the SiLU the layers emit: one fused gradient instead of two generic ones
  const fused = siluGradient(ctx);
  if (fused) return fused;
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
  const b = node.inputs[1];
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

/**
 * A numeric attribute: a plain number from the builder, a FloatAttr from imported graphs.
 * FLOAT attributes are 32-bit in ONNX: use `floatAttr` for them, so that a gradient built with a
 * float64 constant uses the value the forward op saw.
 */
export function numberAttr(node: GraphNode, key: string, fallback: number): number {
  const v = node.attrs[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  if (v instanceof FloatAttr) return v.value;
  throw new Error(`attribute '${key}' must be a number`);
}

/** A FLOAT attribute, rounded to float32 as onnxruntime reads it. */
export function floatAttr(node: GraphNode, key: string, fallback: number): number {
  return Math.fround(numberAttr(node, key, fallback));
}

/** A cached scalar constant of a float dtype (float16 through a Cast from float32). */
export function scalarOf(g: Graph, value: number, dtype: DType): string {
  if (dtype !== 'float16') return g.scalar(value, dtype);
  return g.op1('Cast', [g.scalar(value, 'float32')], { to: DTYPE_CODE.float16 });
}

/** A float constant tensor of `dtype` with the given values. */
function tensorOf(g: Graph, values: readonly number[], shape: readonly number[], dtype: DType): string {
  if (dtype === 'float64') return g.initializer(g.fresh('const'), Float64Array.from(values), shape, dtype);
  const c = g.initializer(g.fresh('const'), Float32Array.from(values), shape, 'float32');
  return dtype === 'float32' ? c : g.op1('Cast', [c], { to: DTYPE_CODE[dtype] });
}

/**
 * Registers the rule of a one-input op whose input gradient is `dx(g, gy, x, y, node)`,
 * with x the node's input and y its output.
 */
function unary(
  opType: string,
  dx: (g: Graph, gy: string, x: string, y: string, node: GraphNode) => string,
): void {
  registerRule(opType, ({ g, node, gradOutputs: [gy], needs }) =>
    gy === undefined || !needs[0] ? [] : [dx(g, gy, node.inputs[0], node.outputs[0], node)],
  );
}

const c = (g: Graph, value: number, like: string) => scalarOf(g, value, g.dtype(like));
const mul = (g: Graph, a: string, b: string) => g.op1('Mul', [a, b]);

/** y = x^p with a constant exponent p (no gradient with respect to p). */
registerRule('Pow', ({ g, node, gradOutputs: [gy], needs }) => {
  if (gy === undefined) return [];
  const [x, p] = node.inputs;
  const exponent = g.constValue(p);
  if (exponent === undefined || needs[1]) {
    throw new Error(
      `the exponent '${p}' must be a constant: Pow is only differentiated with respect to its base`,
    );
  }
  if (!needs[0]) return [];
  const dtype = g.dtype(x);
  let slope: string; // p x^(p-1)
  if (exponent.every((e) => e === exponent[0])) {
    const e = exponent[0];
    if (e === 0) slope = c(g, 0, x);
    else if (e === 1) slope = c(g, 1, x);
    else if (e === 2) slope = mul(g, x, c(g, 2, x));
    else slope = mul(g, g.op1('Pow', [x, c(g, e - 1, x)]), c(g, e, x));
  } else {
    const shape = g.shape(p);
    const lowered = tensorOf(
      g,
      exponent.map((e) => e - 1),
      shape,
      dtype,
    );
    slope = mul(g, g.op1('Pow', [x, lowered]), tensorOf(g, exponent, shape, dtype));
  }
  return [sumToShape(g, mul(g, gy, slope), g.shape(x)), undefined];
});

unary('Sqrt', (g, gy, _x, y) => g.op1('Div', [mul(g, gy, c(g, 0.5, y)), y]));
unary('Exp', (g, gy, _x, y) => mul(g, gy, y));
unary('Log', (g, gy, x) => g.op1('Div', [gy, x]));
unary('Abs', (g, gy, x) => mul(g, gy, g.op1('Sign', [x])));
unary('Reciprocal', (g, gy, _x, y) => g.op1('Neg', [mul(g, gy, mul(g, y, y))]));
unary('Sin', (g, gy, x) => mul(g, gy, g.op1('Cos', [x])));
unary('Cos', (g, gy, x) => g.op1('Neg', [mul(g, gy, g.op1('Sin', [x]))]));
unary('Sigmoid', (g, gy, _x, y) => mul(g, gy, mul(g, y, g.op1('Sub', [c(g, 1, y), y]))));
unary('Tanh', (g, gy, _x, y) => mul(g, gy, g.op1('Sub', [c(g, 1, y), mul(g, y, y)])));
unary('Softplus', (g, gy, x) => mul(g, gy, g.op1('Sigmoid', [x])));
unary('Relu', (g, gy, x) => g.op1('Where', [g.op1('Greater', [x, c(g, 0, x)]), gy, c(g, 0, x)]));
unary('LeakyRelu', (g, gy, x, _y, node) => {
  const alpha = floatAttr(node, 'alpha', 0.01);
  return g.op1('Where', [g.op1('Greater', [x, c(g, 0, x)]), gy, mul(g, gy, c(g, alpha, x))]);
});
// d erf(x) = 2/sqrt(pi) exp(-x^2)
unary('Erf', (g, gy, x) =>
  mul(g, gy, mul(g, g.op1('Exp', [g.op1('Neg', [mul(g, x, x)])]), c(g, 2 / Math.sqrt(Math.PI), x))),
);

/**
 * Gelu-20. approximate 'none': y = x Phi(x), y' = Phi(x) + x phi(x).
 * approximate 'tanh': y = x (1 + tanh(u)) / 2 with u = k (x + 0.044715 x^3), k = sqrt(2/pi);
 * y' = (1 + t) / 2 + x (1 - t^2) k (1 + 3 * 0.044715 x^2) / 2 with t = tanh(u).
 */
unary('Gelu', (g, gy, x, _y, node) => {
  const approximate = node.attrs.approximate ?? 'none';
  const x2 = mul(g, x, x);
  let slope: string;
  if (approximate === 'none') {
    const cdf = mul(
      g,
      g.op1('Add', [c(g, 1, x), g.op1('Erf', [mul(g, x, c(g, Math.SQRT1_2, x))])]),
      c(g, 0.5, x),
    );
    const pdf = mul(g, g.op1('Exp', [mul(g, x2, c(g, -0.5, x))]), c(g, 1 / Math.sqrt(2 * Math.PI), x));
    slope = g.op1('Add', [cdf, mul(g, x, pdf)]);
  } else if (approximate === 'tanh') {
    const k = Math.sqrt(2 / Math.PI);
    const a = 0.044715;
    const u = mul(g, mul(g, x, c(g, k, x)), g.op1('Add', [c(g, 1, x), mul(g, x2, c(g, a, x))]));
    const t = g.op1('Tanh', [u]);
    const outer = mul(g, g.op1('Add', [c(g, 1, x), t]), c(g, 0.5, x));
    const inner = mul(
      g,
      mul(g, mul(g, x, c(g, 0.5 * k, x)), g.op1('Sub', [c(g, 1, x), mul(g, t, t)])),
      g.op1('Add', [c(g, 1, x), mul(g, x2, c(g, 3 * a, x))]),
    );
    slope = g.op1('Add', [outer, inner]);
  } else throw new Error(`unknown approximate '${String(approximate)}'`);
  return mul(g, gy, slope);
});

/** Clip(x, min?, max?): the gradient flows to x on [min, max], to min below it, to max above it. */
registerRule('Clip', ({ g, node, gradOutputs: [gy], needs }) => {
  if (gy === undefined) return [];
  const [x, minInput = '', maxInput = ''] = node.inputs;
  const zero = c(g, 0, x);
  // opset < 11 carries the bounds as attributes
  const bound = (input: string, key: string) => {
    if (input !== '') return input;
    const v = node.attrs[key];
    return v === undefined ? undefined : c(g, floatAttr(node, key, 0), x);
  };
  const min = bound(minInput, 'min');
  const max = bound(maxInput, 'max');
  const below = min === undefined ? undefined : g.op1('Less', [x, min]);
  const above = max === undefined ? undefined : g.op1('Greater', [x, max]);
  const outside = below && above ? g.op1('Or', [below, above]) : (below ?? above);
  const toBound = (mask: string | undefined, input: string) =>
    mask === undefined ? undefined : sumToShape(g, g.op1('Where', [mask, gy, zero]), g.shape(input));
  return [
    needs[0] ? (outside === undefined ? gy : g.op1('Where', [outside, zero, gy])) : undefined,
    needs[1] ? toBound(below, minInput) : undefined,
    needs[2] ? toBound(above, maxInput) : undefined,
  ];
});

/**
 * Min and Max (any number of inputs, broadcasting): the gradient goes to the input equal to the
 * result; on ties, to the first such input only.
 */
function extremumRule({ g, node, gradOutputs: [gy], needs }: RuleContext): (string | undefined)[] {
  if (gy === undefined) return [];
  const y = node.outputs[0];
  const n = node.inputs.length;
  if (n === 1) return [needs[0] ? gy : undefined];
  const zero = c(g, 0, gy);
  const lastNeeded = needs.lastIndexOf(true);
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  let claimed: string | undefined; // where an earlier input already equals y
  for (let i = 0; i <= lastNeeded; i++) {
    const x = node.inputs[i];
    if (i === n - 1) {
      // the last input gets what no earlier input claimed
      out[i] = sumToShape(g, g.op1('Where', [claimed as string, zero, gy]), g.shape(x));
      break;
    }
    const equal = g.op1('Equal', [x, y]);
    if (needs[i]) {
      const mask = claimed === undefined ? equal : g.op1('And', [equal, g.op1('Not', [claimed])]);
      out[i] = sumToShape(g, g.op1('Where', [mask, gy, zero]), g.shape(x));
    }
    if (i < lastNeeded) claimed = claimed === undefined ? equal : g.op1('Or', [claimed, equal]);
  }
  return out;
}
registerRule('Min', extremumRule);
registerRule('Max', extremumRule);

/** Where(condition, X, Y): X gets the gradient where the condition holds, Y elsewhere. */
registerRule('Where', ({ g, node, gradOutputs: [gy], needs }) => {
  if (gy === undefined) return [];
  const [cond, a, b] = node.inputs;
  const zero = c(g, 0, gy);
  return [
    undefined,
    needs[1] ? sumToShape(g, g.op1('Where', [cond, gy, zero]), g.shape(a)) : undefined,
    needs[2] ? sumToShape(g, g.op1('Where', [cond, zero, gy]), g.shape(b)) : undefined,
  ];
});

/** Cast between float types passes the gradient back in the input's dtype; other casts pass none. */
registerRule('Cast', ({ g, node, gradOutputs: [gy], needs }) => {
  const from = g.dtype(node.inputs[0]);
  const to = g.dtype(node.outputs[0]);
  if (gy === undefined || !needs[0] || !isFloat(from) || !isFloat(to)) return [undefined];
  return [from === to ? gy : g.op1('Cast', [gy], { to: DTYPE_CODE[from] })];
});
