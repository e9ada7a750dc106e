/**
 * The conditional UNet and its ControlNet (diffusers UNet2DConditionModel / ControlNetModel
 * layout, small): shared by the random test model and the tiny world's trained UNet, so training
 * and inference build the same graph with the same weight names (`down_blocks.0.resnets.0.conv1.weight`).
 *
 *   unet:        sample [B, C, h, w], timestep [T] (T = 1 or B), encoder_hidden_states [B, L, D]
 *                (+ down_block_{i}_additional_residual, mid_block_additional_residual for the
 *                ControlNet-aware variant)  -> out_sample [B, C, h, w]
 *   controlnet:  the UNet's down path and mid block plus a conditioning embedding of a pixel-space
 *                image, and one zero-initialised 1x1 conv per skip -> the residuals above, times
 *                conditioning_scale.
 *
 * Down path: conv_in, then per level `layersPerBlock` resnets (each followed by a spatial
 * transformer on levels with attention), a stride-2 downsampler between levels; every block output
 * is a skip. Up path: per level `layersPerBlock + 1` resnets over [h, skip] (plus transformers),
 * nearest upsampling between levels. Mid block: resnet, transformer, resnet.
 *
 * @example
 * const m = new ModelBuilder('unet', 1);
 * const out = unet(m, arch, { sample, timestep, context });
 * m.g.output(out, 'out_sample');
 */
import type { ModelBuilder } from '../onnx/layers.js';

export interface UnetArchitecture {
  latentChannels: number;
  /** Channels per level (diffusers `block_out_channels`). */
  blockOutChannels: number[];
  /** Per level: whether its blocks carry a spatial transformer (default: every level). */
  attention?: boolean[];
  /**
   * Resnets per down level (diffusers `layers_per_block`: one count for every level, or one per
   * level); up levels have one more. Default 1.
   */
  layersPerBlock?: number | readonly number[];
  heads: number;
  normGroups: number;
  /** Width of encoder_hidden_states (diffusers `cross_attention_dim`). */
  crossAttentionDim: number;
  /** Width of the sinusoidal timestep features. */
  timestepDim: number;
}

/** What the down path hands to the up path (and the ControlNet to its output convs). */
export interface UnetTrunk {
  temb: string;
  skips: string[];
  mid: string;
}

export interface UnetInputs {
  sample: string;
  timestep: string;
  context: string;
}

function attentionAt(a: UnetArchitecture, level: number): boolean {
  return a.attention?.[level] ?? true;
}

/** Resnets of down level `level` (its up level has one more). */
export function layersAt(a: UnetArchitecture, level: number): number {
  const l = a.layersPerBlock ?? 1;
  return typeof l === 'number' ? l : (l[level] ?? 1);
}

/** conv_in, time embedding, down blocks and mid block: shared by the UNet and the ControlNet. */
export function unetDownPath(
  m: ModelBuilder,
  a: UnetArchitecture,
  { sample, timestep, context }: UnetInputs,
  addToConvIn?: (h: string) => string,
): UnetTrunk {
  const blocks = a.blockOutChannels;
  const tembDim = 4 * blocks[0];
  const tfeat = m.timestepFeatures(timestep, a.timestepDim);
  const temb = m.linear(
    'time_embedding.linear_2',
    m.silu(m.linear('time_embedding.linear_1', tfeat, tembDim)),
    tembDim,
  );
  // time embedding is [T, tembDim]; the resnets add it as [T, C, 1, 1], which broadcasts over the batch when T = 1
  let h = m.conv2d('conv_in', sample, blocks[0], 3);
  if (addToConvIn) h = addToConvIn(h);
  const skips = [h];
  blocks.forEach((ch, level) => {
    const p = `down_blocks.${level}`;
    for (let j = 0; j < layersAt(a, level); j++) {
      h = m.resnetBlock(`${p}.resnets.${j}`, h, temb, ch, a.normGroups);
      if (attentionAt(a, level))
        h = m.spatialTransformer(`${p}.attentions.${j}`, h, context, a.heads, a.normGroups);
      skips.push(h);
    }
    if (level < blocks.length - 1) {
      h = m.downsample(`${p}.downsamplers.0`, h);
      skips.push(h);
    }
  });
  const top = blocks[blocks.length - 1];
  h = m.resnetBlock('mid_block.resnets.0', h, temb, top, a.normGroups);
  h = m.spatialTransformer('mid_block.attentions.0', h, context, a.heads, a.normGroups);
  h = m.resnetBlock('mid_block.resnets.1', h, temb, top, a.normGroups);
  return { temb, skips, mid: h };
}

/**
 * The UNet's noise prediction. With `residuals` (ControlNet outputs, one per skip plus the mid
 * block) they are added to the skips and the mid block, as diffusers does.
 */
export function unet(
  m: ModelBuilder,
  a: UnetArchitecture,
  inputs: UnetInputs,
  residuals?: { down: string[]; mid: string },
): string {
  const g = m.g;
  const trunk = unetDownPath(m, a, inputs);
  let skips = trunk.skips;
  let h = trunk.mid;
  if (residuals) {
    if (residuals.down.length !== skips.length)
      throw new RangeError(`unet: ${residuals.down.length} residuals for ${skips.length} skips`);
    skips = skips.map((s, i) => g.op1('Add', [s, residuals.down[i]]));
    h = g.op1('Add', [h, residuals.mid]);
  }
  const levels = a.blockOutChannels.length;
  [...a.blockOutChannels].reverse().forEach((ch, i) => {
    const p = `up_blocks.${i}`;
    const level = levels - 1 - i;
    for (let j = 0; j <= layersAt(a, level); j++) {
      const skip = skips.pop() as string;
      h = m.resnetBlock(
        `${p}.resnets.${j}`,
        g.op1('Concat', [h, skip], { axis: 1 }),
        trunk.temb,
        ch,
        a.normGroups,
      );
      if (attentionAt(a, level))
        h = m.spatialTransformer(`${p}.attentions.${j}`, h, inputs.context, a.heads, a.normGroups);
    }
    if (i < levels - 1) h = m.upsample(`${p}.upsamplers.0`, h);
  });
  if (skips.length !== 0) throw new Error(`internal: ${skips.length} unused UNet skip connections`);
  return m.conv2d('conv_out', m.silu(m.groupNorm('conv_norm_out', h, a.normGroups)), a.latentChannels, 3, {
    std: 0.05,
  });
}

/**
 * Where each ControlNet residual sits (diffusers layout: conv_in, each level's resnets, then its
 * downsampler unless it is the last level; the mid block at the last level): its channels and how
 * many times the latent was halved before it, so residual k of a latent `side` wide is
 * ceil(side / 2^downsampling) wide.
 */
export function unetResidualLayout(
  blockOutChannels: readonly number[],
  layersPerBlock: number | readonly number[] = 1,
): { down: ResidualPlace[]; mid: ResidualPlace } {
  const layers = (level: number) =>
    typeof layersPerBlock === 'number' ? layersPerBlock : (layersPerBlock[level] ?? 1);
  const down: ResidualPlace[] = [{ channels: blockOutChannels[0], downsampling: 0 }];
  blockOutChannels.forEach((channels, level) => {
    for (let j = 0; j < layers(level); j++) down.push({ channels, downsampling: level });
    if (level < blockOutChannels.length - 1) down.push({ channels, downsampling: level + 1 });
  });
  const last = blockOutChannels.length - 1;
  return { down, mid: { channels: blockOutChannels[last], downsampling: last } };
}

export interface ResidualPlace {
  channels: number;
  /** Halvings of the latent before this residual (0 = latent size). */
  downsampling: number;
}

/** Shapes of the skips and the mid block for a latent of `side` x `side` (the ControlNet's outputs). */
export function unetResidualShapes(a: UnetArchitecture, batch: number, side: number) {
  const { down, mid } = unetResidualLayout(a.blockOutChannels, a.layersPerBlock);
  const shape = ({ channels, downsampling }: ResidualPlace) => {
    const s = Math.ceil(side / 2 ** downsampling);
    return [batch, channels, s, s];
  };
  return { down: down.map(shape), mid: shape(mid) };
}

/**
 * The ControlNet: a copy of the UNet's down path (same weight names, so it can start from the
 * UNet's weights) whose conv_in output gets an embedding of the conditioning image (pixel space,
 * `imageFactor` times the latent size), and one 1x1 conv per skip and for the mid block
 * (`zeroConvStd` 0 = the zero convolutions of the paper). Returns the scaled residuals.
 */
export function controlNet(
  m: ModelBuilder,
  a: UnetArchitecture,
  inputs: UnetInputs & { cond: string; scale: string },
  { imageFactor, zeroConvStd = 0 }: { imageFactor: number; zeroConvStd?: number },
): { down: string[]; mid: string } {
  const g = m.g;
  const condEmbedding = (h0: string) => {
    let e = m.silu(m.conv2d('controlnet_cond_embedding.conv_in', inputs.cond, 8, 3));
    let ch = 8;
    for (let i = 0; 2 ** i < imageFactor; i++) {
      ch = Math.min(ch * 2, a.blockOutChannels[0]);
      e = m.silu(m.conv2d(`controlnet_cond_embedding.blocks.${i}`, e, ch, 3, { stride: 2 }));
    }
    const out =
      zeroConvStd === 0
        ? zeroConv(m, 'controlnet_cond_embedding.conv_out', e, a.blockOutChannels[0], 3)
        : m.conv2d('controlnet_cond_embedding.conv_out', e, a.blockOutChannels[0], 3);
    return g.op1('Add', [h0, out]);
  };
  const trunk = unetDownPath(m, a, inputs, condEmbedding);
  const project = (name: string, s: string) => {
    const ch = g.shape(s)[1];
    const r =
      zeroConvStd === 0 ? zeroConv(m, name, s, ch, 1) : m.conv2d(name, s, ch, 1, { std: zeroConvStd });
    return g.op1('Mul', [r, inputs.scale]);
  };
  return {
    down: trunk.skips.map((s, i) => project(`controlnet_down_blocks.${i}`, s)),
    mid: project('controlnet_mid_block', trunk.mid),
  };
}

function zeroConv(m: ModelBuilder, name: string, x: string, outChannels: number, kernel: number): string {
  const inChannels = m.g.shape(x)[1];
  const w = m.param(`${name}.weight`, [outChannels, inChannels, kernel, kernel], 'zeros');
  const b = m.param(`${name}.bias`, [outChannels], 'zeros');
  const pad = (kernel - 1) >> 1;
  return m.g.op1('Conv', [x, w, b], {
    kernel_shape: [kernel, kernel],
    strides: [1, 1],
    pads: [pad, pad, pad, pad],
  });
}

/** diffusers-style config.json for the UNet (the ControlNet adds `_class_name` and `conditioning_channels`). */
export function unetConfig(a: UnetArchitecture, sampleSize: number): Record<string, unknown> {
  return {
    _class_name: 'UNet2DConditionModel',
    in_channels: a.latentChannels,
    out_channels: a.latentChannels,
    sample_size: sampleSize,
    block_out_channels: a.blockOutChannels,
    layers_per_block: a.layersPerBlock ?? 1,
    cross_attention_dim: a.crossAttentionDim,
    attention_head_dim: a.heads,
    norm_num_groups: a.normGroups,
    down_block_types: a.blockOutChannels.map((_, i) =>
      attentionAt(a, i) ? 'CrossAttnDownBlock2D' : 'DownBlock2D',
    ),
    up_block_types: a.blockOutChannels
      .map((_, i) => (attentionAt(a, i) ? 'CrossAttnUpBlock2D' : 'UpBlock2D'))
      .reverse(),
  };
}
