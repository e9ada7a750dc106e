/**
 * The autoencoder (diffusers AutoencoderKL layout, small): shared by the random test model and
 * the tiny world's trained VAE, so training and inference build the same graph by name.
 *
 *   encoder: image [B, 3, H, W] in [-1, 1] -> latent_parameters [B, 2C, H/f, W/f] (mean, logvar)
 *   decoder: latent [B, C, h, w] (unscaled) -> image [B, 3, h*f, w*f]
 * with f = 2^(levels - 1).
 */
import type { ModelBuilder } from '../onnx/layers.js';

export interface VaeArchitecture {
  latentChannels: number;
  /** Channels per level; the scale factor is 2^(levels - 1). */
  blockOutChannels: number[];
  normGroups: number;
  /**
   * Resnets per decoder level (default 1; diffusers decoders have layers_per_block + 1). A decoder
   * grown from a trained one keeps its blocks as `resnets.0` and adds `resnets.1`, ... after them.
   */
  decoderResnetsPerBlock?: number;
  /** Resnets per encoder level (default 1); grown the same way, `resnets.0` first. */
  encoderResnetsPerBlock?: number;
}

export function vaeEncoder(m: ModelBuilder, a: VaeArchitecture, image: string): string {
  const blocks = a.blockOutChannels;
  let h = m.conv2d('encoder.conv_in', image, blocks[0], 3);
  blocks.forEach((ch, i) => {
    for (let j = 0; j < (a.encoderResnetsPerBlock ?? 1); j++)
      h = m.resnetBlock(`encoder.down_blocks.${i}.resnets.${j}`, h, undefined, ch, a.normGroups);
    if (i < blocks.length - 1) h = m.downsample(`encoder.down_blocks.${i}.downsamplers.0`, h);
  });
  h = m.resnetBlock('encoder.mid_block.resnets.0', h, undefined, blocks[blocks.length - 1], a.normGroups);
  h = m.conv2d(
    'encoder.conv_out',
    m.silu(m.groupNorm('encoder.conv_norm_out', h, a.normGroups)),
    2 * a.latentChannels,
    3,
  );
  return m.conv2d('quant_conv', h, 2 * a.latentChannels, 1);
}

export function vaeDecoder(m: ModelBuilder, a: VaeArchitecture, latent: string): string {
  const blocks = [...a.blockOutChannels].reverse();
  let h = m.conv2d('post_quant_conv', latent, a.latentChannels, 1);
  h = m.conv2d('decoder.conv_in', h, blocks[0], 3);
  h = m.resnetBlock('decoder.mid_block.resnets.0', h, undefined, blocks[0], a.normGroups);
  blocks.forEach((ch, i) => {
    for (let j = 0; j < (a.decoderResnetsPerBlock ?? 1); j++)
      h = m.resnetBlock(`decoder.up_blocks.${i}.resnets.${j}`, h, undefined, ch, a.normGroups);
    if (i < blocks.length - 1) h = m.upsample(`decoder.up_blocks.${i}.upsamplers.0`, h);
  });
  return m.conv2d('decoder.conv_out', m.silu(m.groupNorm('decoder.conv_norm_out', h, a.normGroups)), 3, 3);
}

export function vaeScaleFactor(a: VaeArchitecture): number {
  return 2 ** (a.blockOutChannels.length - 1);
}
