/**
 * A small denoising UNet (about 2M parameters) for engine tests and benchmarks: three
 * resolutions, ResNet blocks with a learned timestep embedding, self-attention at the lowest
 * resolution, nearest upsampling with skip connections. Its topology matches the feasibility
 * prototype's (../shared/prototypes/ortgrad/layers.js) so the two engines can be timed on the
 * same network.
 *
 * @example
 * const net = buildToyUnet({ batch: 8, size: 32, mode: 'input' });
 * const loss = mseLoss(net.builder.g, net.prediction, net.target);
 */
import { ModelBuilder, type ParamMode } from '../onnx/layers.js';

export interface ToyUnetOptions {
  batch: number;
  size: number;
  channels?: number;
  inChannels?: number;
  groups?: number;
  heads?: number;
  embedding?: number;
  trainTimesteps?: number;
  seed?: number;
  mode?: ParamMode;
}

export interface ToyUnet {
  builder: ModelBuilder;
  /** Graph inputs: noisy image, integer timestep per item. */
  sample: string;
  timestep: string;
  prediction: string;
  parameterCount: number;
}

export function buildToyUnet(options: ToyUnetOptions): ToyUnet {
  const { batch, size, channels: c1 = 64, inChannels = 3, groups = 8, heads = 4, embedding = 128 } = options;
  const m = new ModelBuilder('toy_unet', options.seed ?? 1, options.mode ?? 'input');
  const g = m.g;
  const c2 = 2 * c1;
  const sample = g.input('sample', [batch, inChannels, size, size]);
  const timestep = g.input('timestep', [batch], 'int64');

  // 1. timestep embedding: a learned table, then Linear + SiLU
  const table = m.param('time_embedding.table', [options.trainTimesteps ?? 1000, embedding], 'normal', 1);
  const temb = m.silu(
    m.linear('time_embedding.linear', g.op1('Gather', [table, timestep], { axis: 0 }), embedding),
  );

  const block = (name: string, x: string, ch: number) => m.resnetBlock(name, x, temb, ch, groups);
  const upsample = (x: string) =>
    g.op1('Resize', [x, '', g.initializer(g.fresh('scales'), Float32Array.from([1, 1, 2, 2]), [4])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });

  // 2. down path
  let h = m.conv2d('conv_in', sample, c1, 3);
  const skip1 = block('down_blocks.0', h, c1);
  h = m.conv2d('down_blocks.0.downsample', skip1, c2, 3, { stride: 2 });
  const skip2 = block('down_blocks.1', h, c2);
  h = m.conv2d('down_blocks.1.downsample', skip2, c2, 3, { stride: 2 });

  // 3. middle: ResNet block and self-attention over the H/4 x W/4 positions
  h = block('mid_block.resnets.0', h, c2);
  const tokens = g.op1(
    'Transpose',
    [g.op1('Reshape', [m.groupNorm('mid_block.attentions.0.norm', h, groups), g.ints([0, 0, -1])])],
    {
      perm: [0, 2, 1],
    },
  );
  const attended = m.attention('mid_block.attentions.0', tokens, { heads });
  h = g.op1('Add', [
    h,
    g.op1('Reshape', [g.op1('Transpose', [attended], { perm: [0, 2, 1] }), g.ints(g.shape(h))]),
  ]);

  // 4. up path with skip connections
  h = m.conv2d('up_blocks.0.conv_in', g.op1('Concat', [upsample(h), skip2], { axis: 1 }), c2, 3);
  h = block('up_blocks.0', h, c2);
  h = m.conv2d('up_blocks.1.conv_in', g.op1('Concat', [upsample(h), skip1], { axis: 1 }), c1, 3);
  h = block('up_blocks.1', h, c1);
  const prediction = m.conv2d('conv_out', m.silu(m.groupNorm('conv_norm_out', h, groups)), inChannels, 3, {
    std: 1e-2,
  });

  const parameterCount = m.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  return { builder: m, sample, timestep, prediction, parameterCount };
}
