/**
 * Finite-difference checks of gradients built by `gradients()`: every rule is tested this way.
 *
 * The graph's inputs are fed with given values; the analytic gradient of the loss comes from
 * one session, the numeric one from central differences of the same session's loss
 * (with Richardson extrapolation, which makes float32 checks usable).
 *
 * @example
 * const g = new Graph({ floatType: 'float64' });
 * const x = g.input('x', [3], 'float64');
 * const loss = weightedSum(g, g.op1('Tanh', [x]));
 * const r = await checkGradients(g, loss, [x], { x: rng.randn(3) });
 * expect(r.maxError).toBeLessThan(1e-6);
 */
import * as ort from 'onnxruntime-node';
import type { Graph } from '../onnx/graph.js';
import { numel, type DType } from '../onnx/dtype.js';
import { Rng } from '../tensor/random.js';
import { gradients } from './index.js';

export interface GradCheckOptions {
  /** Finite-difference step per entry (default 1e-4 for float64, 1e-2 for float32 inputs). */
  step?: number;
  /** Step along the unit direction of the directional check (default 1e-5 for float64, 1e-3 for float32). */
  directionalStep?: number;
  /** How many entries of each input to check one by one (default: all up to 12, else 12 random ones). */
  entries?: number;
  seed?: number;
}

export interface GradCheckResult {
  /** max over checked entries of |analytic - numeric| / max(1, scale), scale = max |analytic| of that input. */
  maxError: number;
  /** Directional derivative along a unit direction (gradient-leaning plus random): analytic vs numeric, relative. */
  directionalError: number;
  worst: { input: string; index: number; analytic: number; numeric: number } | undefined;
  /** Largest |analytic gradient| over all inputs: a check of all-zero gradients proves little. */
  maxAbsGradient: number;
}

type FloatArray = Float32Array | Float64Array;

/** A loss that weighs every element differently, so a wrong gradient cannot hide: sum(y * R). */
export function weightedSum(g: Graph, y: string, seed = 99): string {
  const shape = g.shape(y);
  const r = new Rng(seed).randn(numel(shape));
  // the sum is taken in float64, so float32 graphs are not checked against float32 rounding of the sum
  const y64 = g.dtype(y) === 'float64' ? y : g.op1('Cast', [y], { to: 11 });
  const weights = g.initializer(g.fresh('loss_weights'), Float64Array.from(r), shape, 'float64');
  return g.op1('ReduceSum', [g.op1('Mul', [y64, weights])], { keepdims: 0 });
}

/**
 * Checks d loss / d wrt against central differences. `wrt` must be graph inputs; `feeds`
 * gives every graph input's values.
 */
export async function checkGradients(
  g: Graph,
  loss: string,
  wrt: readonly string[],
  feeds: Record<string, FloatArray | BigInt64Array | Int32Array>,
  options: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const grads = gradients(g, loss, wrt);
  g.output(loss, 'gradcheck_loss');
  const outNames = wrt.map((w, i) => g.output(grads.get(w) as string, `gradcheck_grad_${i}`));
  // 'basic': higher levels fuse x*sigmoid(x) into a float32-only kernel, breaking float64 checks
  const session = await ort.InferenceSession.create(g.toBytes(), {
    graphOptimizationLevel: 'basic',
    intraOpNumThreads: 1,
  });
  const tensors = (values: Record<string, FloatArray | BigInt64Array | Int32Array>) =>
    Object.fromEntries(
      g.inputs.map((name) => {
        const v = values[name];
        if (!v) throw new Error(`no value for graph input '${name}'`);
        return [name, new ort.Tensor(ortType(g.dtype(name)), v, g.shape(name))];
      }),
    );
  const lossAt = async (values: Record<string, FloatArray | BigInt64Array | Int32Array>) =>
    Number((await session.run(tensors(values), ['gradcheck_loss'])).gradcheck_loss.data[0]);

  const analytic = await session.run(tensors(feeds), outNames);
  // the step follows the precision of what is perturbed (the loss may be summed in float64)
  const inputType = g.dtype(wrt[0]);
  const h = options.step ?? (inputType === 'float64' ? 1e-4 : 1e-2);
  // central difference with Richardson extrapolation: (4 D(h/2) - D(h)) / 3
  const derivative = async (perturb: (values: typeof feeds, amount: number) => typeof feeds, step = h) => {
    const d = async (s: number) =>
      ((await lossAt(perturb(feeds, s))) - (await lossAt(perturb(feeds, -s)))) / (2 * s);
    return (4 * (await d(step / 2)) - (await d(step))) / 3;
  };
  // the directional check's direction has unit norm over every input at once: a smaller step keeps it local
  const directionalStep = options.directionalStep ?? (inputType === 'float64' ? 1e-5 : 1e-3);

  const rng = new Rng(options.seed ?? 3);
  let maxError = 0;
  let maxAbsGradient = 0;
  let worst: GradCheckResult['worst'];
  for (const [k, w] of wrt.entries()) {
    const a = analytic[outNames[k]].data as FloatArray;
    const base = feeds[w] as FloatArray;
    let scale = 0;
    for (const v of a) scale = Math.max(scale, Math.abs(v));
    maxAbsGradient = Math.max(maxAbsGradient, scale);
    const count = Math.min(base.length, options.entries ?? 12);
    const indices =
      count >= base.length
        ? [...base.keys()]
        : Array.from({ length: count }, () => Math.floor(rng.nextFloat() * base.length));
    for (const index of indices) {
      const numeric = await derivative((values, amount) => {
        const copy = base.slice();
        copy[index] += amount;
        return { ...values, [w]: copy };
      });
      const error = Math.abs(a[index] - numeric) / Math.max(1, scale);
      if (error > maxError || worst === undefined) {
        maxError = Math.max(maxError, error);
        worst = { input: w, index, analytic: a[index], numeric };
      }
    }
  }

  // Directional derivative along a unit direction over all inputs that leans on the analytic
  // gradient (so the loss change is large against float32 rounding) plus a random part (so a
  // gradient that is wrong in some other direction still shows).
  const analyticAll = wrt.map((_, k) => analytic[outNames[k]].data as FloatArray);
  let gradNorm = 0;
  for (const a of analyticAll) for (const v of a) gradNorm += v * v;
  gradNorm = Math.sqrt(gradNorm);
  const random = wrt.map((w) => rng.randn((feeds[w] as FloatArray).length));
  let randomNorm = 0;
  for (const r of random) for (const v of r) randomNorm += v * v;
  randomNorm = Math.sqrt(randomNorm) || 1;
  const direction = random.map((r, k) =>
    r.map((v, i) => 0.6 * (v / randomNorm) + (gradNorm > 0 ? (0.8 * analyticAll[k][i]) / gradNorm : 0)),
  );
  let analyticDirectional = 0;
  wrt.forEach((_, k) => {
    const a = analyticAll[k];
    for (let i = 0; i < a.length; i++) analyticDirectional += a[i] * direction[k][i];
  });
  const numericDirectional = await derivative((values, amount) => {
    const out = { ...values };
    wrt.forEach((w, k) => {
      const copy = (values[w] as FloatArray).slice();
      for (let i = 0; i < copy.length; i++) copy[i] += amount * direction[k][i];
      out[w] = copy;
    });
    return out;
  }, directionalStep);
  const directionalError =
    Math.abs(analyticDirectional - numericDirectional) /
    Math.max(1e-3, Math.abs(analyticDirectional), Math.abs(numericDirectional));
  await session.release();
  return { maxError, directionalError, worst, maxAbsGradient };
}

function ortType(dtype: DType): 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8' {
  switch (dtype) {
    case 'float32':
    case 'float64':
    case 'int64':
    case 'int32':
    case 'bool':
    case 'uint8':
      return dtype;
    default:
      throw new Error(`gradcheck does not feed ${dtype} inputs`);
  }
}
