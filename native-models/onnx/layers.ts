/**
 * Neural-network building blocks on the graph IR, named after diffusers checkpoint keys
 * (`down_blocks.0.resnets.0.conv1.weight`) so a reader can match a graph to a checkpoint.
 *
 * Layers are written to keep batch and spatial sizes dynamic in the exported model: reshapes
 * use 0 / -1 or a runtime Shape, never a size baked from the example shapes the IR infers with.
 * Linear weights are stored as [in, out] (MatMul layout), conv weights as [out, in/group, kh, kw].
 */
import { Graph, float } from './graph.js';
import { numel } from './dtype.js';
import { Rng } from '../tensor/random.js';

export type ParamMode = 'initializer' | 'input';

export interface Parameter {
  name: string;
  shape: number[];
  init: 'normal' | 'zeros' | 'ones';
  /** Standard deviation for 'normal'. */
  std: number;
}

/** A graph plus a seeded parameter factory. */
export class ModelBuilder {
  readonly g: Graph;
  readonly params: Parameter[] = [];
  /** Initial values of parameters made graph inputs ('input' mode). */
  readonly values = new Map<string, Float32Array>();
  private readonly rng: Rng;

  /**
   * @param mode 'initializer' bakes weights into the model (inference: ORT prepacks them);
   *   'input' makes them graph inputs (training: zero-copy, updated by the optimizer).
   */
  constructor(
    name: string,
    seed: number,
    readonly mode: ParamMode = 'initializer',
  ) {
    this.g = new Graph({ name });
    this.rng = new Rng(seed);
  }

  param(name: string, shape: number[], init: Parameter['init'] = 'normal', std = 0.02): string {
    this.params.push({ name, shape, init, std });
    const data = new Float32Array(numel(shape));
    if (init === 'ones') data.fill(1);
    else if (init === 'normal') this.rng.fillNormal(data, 0, std);
    if (this.mode === 'initializer') return this.g.initializer(name, data, shape);
    this.values.set(name, data);
    return this.g.input(name, shape);
  }

  /** y = x W + b over the last axis. */
  linear(
    name: string,
    x: string,
    outFeatures: number,
    { bias = true, std }: { bias?: boolean; std?: number } = {},
  ) {
    const g = this.g;
    const inFeatures = g.shape(x).at(-1) as number;
    const w = this.param(
      `${name}.weight`,
      [inFeatures, outFeatures],
      'normal',
      std ?? 1 / Math.sqrt(inFeatures),
    );
    let y = g.op1('MatMul', [x, w]);
    if (bias) y = g.op1('Add', [y, this.param(`${name}.bias`, [outFeatures], 'zeros')]);
    return y;
  }

  conv2d(
    name: string,
    x: string,
    outChannels: number,
    kernel: number,
    {
      stride = 1,
      padding = (kernel - 1) >> 1,
      std,
    }: { stride?: number; padding?: number; std?: number } = {},
  ): string {
    const inChannels = this.g.shape(x)[1];
    const fanIn = inChannels * kernel * kernel;
    const w = this.param(
      `${name}.weight`,
      [outChannels, inChannels, kernel, kernel],
      'normal',
      std ?? 1 / Math.sqrt(fanIn),
    );
    const b = this.param(`${name}.bias`, [outChannels], 'zeros');
    return this.g.op1('Conv', [x, w, b], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [padding, padding, padding, padding],
    });
  }

  groupNorm(name: string, x: string, groups: number, epsilon = 1e-5): string {
    const c = this.g.shape(x)[1];
    const scale = this.param(`${name}.weight`, [c], 'ones');
    const bias = this.param(`${name}.bias`, [c], 'zeros');
    return this.g.op1('GroupNormalization', [x, scale, bias], {
      num_groups: groups,
      epsilon: float(epsilon),
    });
  }

  layerNorm(name: string, x: string, epsilon = 1e-5): string {
    const c = this.g.shape(x).at(-1) as number;
    const scale = this.param(`${name}.weight`, [c], 'ones');
    const bias = this.param(`${name}.bias`, [c], 'zeros');
    return this.g.op1('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: float(epsilon) });
  }

  silu(x: string): string {
    return this.g.op1('Mul', [x, this.g.op1('Sigmoid', [x])]);
  }

  gelu(x: string): string {
    return this.g.op1('Gelu', [x]);
  }

  /**
   * Multi-head attention over [B, N, C] queries and [B, M, D] context (self-attention when
   * context is omitted). `mask` is an additive [N, M] mask (e.g. causal), optional.
   */
  attention(
    name: string,
    x: string,
    { heads, context, mask }: { heads: number; context?: string; mask?: string },
  ) {
    const g = this.g;
    const c = g.shape(x).at(-1) as number;
    const ctx = context ?? x;
    const dh = c / heads;
    const q = this.linear(`${name}.to_q`, x, c, { bias: false });
    const k = this.linear(`${name}.to_k`, ctx, c, { bias: false });
    const v = this.linear(`${name}.to_v`, ctx, c, { bias: false });
    const split = (t: string) =>
      g.op1('Transpose', [g.op1('Reshape', [t, g.ints([0, 0, heads, dh])])], { perm: [0, 2, 1, 3] });
    const qh = split(q);
    const kt = g.op1('Transpose', [g.op1('Reshape', [k, g.ints([0, 0, heads, dh])])], { perm: [0, 2, 3, 1] });
    const vh = split(v);
    let scores = g.op1('Mul', [g.op1('MatMul', [qh, kt]), g.scalar(1 / Math.sqrt(dh))]);
    if (mask) scores = g.op1('Add', [scores, mask]);
    const probs = g.op1('Softmax', [scores], { axis: -1 });
    const out = g.op1('Reshape', [
      g.op1('Transpose', [g.op1('MatMul', [probs, vh])], { perm: [0, 2, 1, 3] }),
      g.ints([0, 0, c]),
    ]);
    return this.linear(`${name}.to_out.0`, out, c);
  }

  /** Sinusoidal timestep features as diffusers' Timesteps(flip_sin_to_cos=True, shift 0): [T] -> [T, dim]. */
  timestepFeatures(timestep: string, dim: number, maxPeriod = 10000): string {
    const g = this.g;
    const half = dim / 2;
    const freqs = new Float32Array(half);
    for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(maxPeriod) * i) / half);
    const t = g.op1('Unsqueeze', [g.op1('Cast', [timestep], { to: 1 }), g.ints([1])]);
    const args = g.op1('Mul', [t, g.initializer(g.fresh('timestep_freqs'), freqs, [1, half])]);
    return g.op1('Concat', [g.op1('Cos', [args]), g.op1('Sin', [args])], { axis: 1 });
  }

  /** diffusers ResnetBlock2D: GN-SiLU-conv, + time embedding, GN-SiLU-conv, + (1x1-projected) input. */
  resnetBlock(
    name: string,
    x: string,
    temb: string | undefined,
    outChannels: number,
    groups: number,
  ): string {
    const g = this.g;
    const inChannels = g.shape(x)[1];
    let h = this.conv2d(
      `${name}.conv1`,
      this.silu(this.groupNorm(`${name}.norm1`, x, groups)),
      outChannels,
      3,
    );
    if (temb) {
      const t = this.linear(`${name}.time_emb_proj`, this.silu(temb), outChannels);
      h = g.op1('Add', [h, g.op1('Unsqueeze', [t, g.ints([2, 3])])]);
    }
    h = this.conv2d(`${name}.conv2`, this.silu(this.groupNorm(`${name}.norm2`, h, groups)), outChannels, 3);
    const skip = inChannels === outChannels ? x : this.conv2d(`${name}.conv_shortcut`, x, outChannels, 1);
    return g.op1('Add', [h, skip]);
  }

  /** diffusers Transformer2DModel with one BasicTransformerBlock (self-attn, cross-attn, GEGLU-free FF). */
  spatialTransformer(name: string, x: string, context: string, heads: number, groups: number): string {
    const g = this.g;
    const c = g.shape(x)[1];
    const shape = g.op1('Shape', [x]);
    let h = this.groupNorm(`${name}.norm`, x, groups, 1e-6);
    h = this.conv2d(`${name}.proj_in`, h, c, 1);
    // [B, C, H, W] -> [B, H*W, C]
    h = g.op1('Transpose', [g.op1('Reshape', [h, g.ints([0, 0, -1])])], { perm: [0, 2, 1] });
    const block = `${name}.transformer_blocks.0`;
    h = g.op1('Add', [h, this.attention(`${block}.attn1`, this.layerNorm(`${block}.norm1`, h), { heads })]);
    h = g.op1('Add', [
      h,
      this.attention(`${block}.attn2`, this.layerNorm(`${block}.norm2`, h), { heads, context }),
    ]);
    const ff = this.linear(
      `${block}.ff.net.2`,
      this.gelu(this.linear(`${block}.ff.net.0.proj`, this.layerNorm(`${block}.norm3`, h), 4 * c)),
      c,
    );
    h = g.op1('Add', [h, ff]);
    // back to [B, C, H, W] with the runtime shape of x, so spatial sizes stay dynamic
    h = g.op1('Reshape', [g.op1('Transpose', [h], { perm: [0, 2, 1] }), shape]);
    return g.op1('Add', [this.conv2d(`${name}.proj_out`, h, c, 1), x]);
  }

  downsample(name: string, x: string): string {
    return this.conv2d(`${name}.conv`, x, this.g.shape(x)[1], 3, { stride: 2, padding: 1 });
  }

  upsample(name: string, x: string): string {
    const up = this.g.op1(
      'Resize',
      [x, '', this.g.initializer(this.g.fresh('scales'), Float32Array.from([1, 1, 2, 2]), [4])],
      {
        mode: 'nearest',
        nearest_mode: 'floor',
        coordinate_transformation_mode: 'asymmetric',
      },
    );
    return this.conv2d(`${name}.conv`, up, this.g.shape(x)[1], 3);
  }
}
