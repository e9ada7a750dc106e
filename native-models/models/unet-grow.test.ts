import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../onnx/layers.js';
import { bakeParameters } from '../training/trainer.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { Rng } from '../tensor/random.js';
import { controlNet, unet, unetResidualShapes, type UnetArchitecture } from './unet.js';
import { growControlNetWeights, growUnetWeights } from './unet-grow.js';

const SMALL: UnetArchitecture = {
  latentChannels: 4,
  blockOutChannels: [8, 16, 16],
  attention: [false, true, true],
  layersPerBlock: 1,
  heads: 2,
  normGroups: 4,
  crossAttentionDim: 12,
  timestepDim: 8,
};
const SIDE = 8;
const L = 5;
const IMAGE_FACTOR = 2;

/** Every weight random (biases and zero-initialised convs too), so nothing matches by accident. */
function randomWeights(build: (m: ModelBuilder) => void, seed: number): ParameterTensor[] {
  const m = new ModelBuilder('weights', seed, 'input');
  build(m);
  const rng = new Rng(seed + 1);
  return [...m.values].map(([name, v]) => ({
    name,
    shape: m.g.shape(name),
    data: Float32Array.from(rng.randn(v.length), (x) => 0.15 * x + (name.endsWith('norm1.weight') ? 1 : 0)),
  }));
}

function unetInputs(m: ModelBuilder, a: UnetArchitecture) {
  const g = m.g;
  return {
    sample: g.input('sample', [1, a.latentChannels, SIDE, SIDE]),
    timestep: g.input('timestep', [1], 'int64'),
    context: g.input('encoder_hidden_states', [1, L, a.crossAttentionDim]),
  };
}

function controlInputs(m: ModelBuilder, a: UnetArchitecture) {
  return {
    ...unetInputs(m, a),
    cond: m.g.input('controlnet_cond', [1, 3, SIDE * IMAGE_FACTOR, SIDE * IMAGE_FACTOR]),
    scale: m.g.input('conditioning_scale', [1]),
  };
}

const feeds = () => {
  const rng = new Rng(3);
  return {
    sample: new ort.Tensor('float32', rng.randn(4 * SIDE * SIDE), [1, 4, SIDE, SIDE]),
    timestep: new ort.Tensor('int64', BigInt64Array.of(420n), [1]),
    encoder_hidden_states: new ort.Tensor('float32', rng.randn(L * 12), [1, L, 12]),
  };
};

async function runUnet(
  a: UnetArchitecture,
  params: readonly ParameterTensor[],
  residuals?: ort.Tensor[],
): Promise<Float32Array> {
  const m = new ModelBuilder('unet', 1);
  const g = m.g;
  const inputs = unetInputs(m, a);
  let extra: { down: string[]; mid: string } | undefined;
  if (residuals) {
    const shapes = unetResidualShapes(a, 1, SIDE);
    extra = {
      down: shapes.down.map((s, i) => g.input(`down_${i}`, s)),
      mid: g.input('mid', shapes.mid),
    };
  }
  g.output(unet(m, a, inputs, extra), 'out_sample');
  bakeParameters(g, params);
  const session = await ort.InferenceSession.create(g.toBytes());
  const extraFeeds: Record<string, ort.Tensor> = {};
  if (residuals) {
    residuals.slice(0, -1).forEach((r, i) => (extraFeeds[`down_${i}`] = r));
    extraFeeds.mid = residuals[residuals.length - 1];
  }
  const out = await session.run({ ...feeds(), ...extraFeeds });
  await session.release();
  return out.out_sample.data as Float32Array;
}

/** The ControlNet's residuals, down ones then mid. */
async function runControlNet(a: UnetArchitecture, params: readonly ParameterTensor[]): Promise<ort.Tensor[]> {
  const m = new ModelBuilder('controlnet', 1);
  const out = controlNet(m, a, controlInputs(m, a), { imageFactor: IMAGE_FACTOR });
  const names = [...out.down.map((r, i) => m.g.output(r, `down_${i}`)), m.g.output(out.mid, 'mid')];
  bakeParameters(m.g, params);
  const session = await ort.InferenceSession.create(m.g.toBytes());
  const image = SIDE * IMAGE_FACTOR;
  const result = await session.run({
    ...feeds(),
    controlnet_cond: new ort.Tensor('float32', new Rng(5).randn(3 * image * image), [1, 3, image, image]),
    conditioning_scale: new ort.Tensor('float32', Float32Array.of(1), [1]),
  });
  await session.release();
  return names.map((n) => result[n]);
}

function maxDiff(x: Float32Array, y: Float32Array): number {
  expect(x.length).toBe(y.length);
  return x.reduce((d, v, i) => Math.max(d, Math.abs(v - y[i])), 0);
}

const unetWeights = (a: UnetArchitecture, seed = 11) =>
  randomWeights((m) => unet(m, a, unetInputs(m, a)), seed);
const controlWeights = (a: UnetArchitecture, seed = 21) =>
  randomWeights((m) => controlNet(m, a, controlInputs(m, a), { imageFactor: IMAGE_FACTOR }), seed);

describe('growUnetWeights', () => {
  for (const layers of [2, [2, 1, 3]]) {
    it(`keeps the UNet's output when it grows from 1 to ${JSON.stringify(layers)} resnets per level`, async () => {
      const weights = unetWeights(SMALL);
      const grownArch = { ...SMALL, layersPerBlock: layers };
      const grown = growUnetWeights(weights, SMALL, grownArch);
      const before = await runUnet(SMALL, weights);
      const after = await runUnet(grownArch, grown);
      const scale = before.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
      expect(scale).toBeGreaterThan(0.1);
      expect(maxDiff(before, after)).toBeLessThan(1e-5 * scale);
      expect(grown.length).toBeGreaterThan(weights.length);
    });
  }

  it('moves the old up resnets past the new ones (a same-name copy would change the output)', async () => {
    const weights = unetWeights(SMALL);
    const grownArch = { ...SMALL, layersPerBlock: 2 };
    const grown = growUnetWeights(weights, SMALL, grownArch);
    const byName = new Map(grown.map((w) => [w.name, w.data]));
    const old = new Map(weights.map((w) => [w.name, w.data]));
    expect(byName.get('up_blocks.0.resnets.2.conv1.weight')).toEqual(
      old.get('up_blocks.0.resnets.1.conv1.weight'),
    );
    expect(byName.get('up_blocks.0.resnets.0.conv1.weight')).toEqual(
      old.get('up_blocks.0.resnets.0.conv1.weight'),
    );
    // the new up resnet passes h through its shortcut and ignores its skip
    const shortcut = byName.get('up_blocks.1.resnets.1.conv_shortcut.weight') as Float32Array;
    expect(shortcut.length).toBe(16 * 32);
    expect(shortcut[0]).toBe(1);
    expect(shortcut[16 + 16]).toBe(0);
    expect(shortcut[32 + 1]).toBe(1);
    expect(
      [...(byName.get('down_blocks.1.resnets.1.conv2.weight') as Float32Array)].every((v) => v === 0),
    ).toBe(true);
  });

  it('refuses to shrink, to change anything but the resnet counts, and weights of another architecture', () => {
    const weights = unetWeights(SMALL);
    expect(() => growUnetWeights(weights, { ...SMALL, layersPerBlock: 2 }, SMALL)).toThrow(/shrink/);
    expect(() =>
      growUnetWeights(weights, SMALL, { ...SMALL, blockOutChannels: [8, 16, 32], layersPerBlock: 2 }),
    ).toThrow(/only in resnets per level/);
    const twoLevel = { ...SMALL, layersPerBlock: 2 };
    expect(() => growUnetWeights(unetWeights(twoLevel), SMALL, { ...SMALL, layersPerBlock: 3 })).toThrow(
      /no place in the grown model|has \d+ values/,
    );
    expect(() =>
      growUnetWeights(
        weights.filter((w) => w.name !== 'mid_block.resnets.0.conv1.weight'),
        SMALL,
        twoLevel,
      ),
    ).toThrow(/no mid_block.resnets.0.conv1.weight/);
  });
});

describe('growControlNetWeights', () => {
  it('keeps the residuals of the old skips, adds zero ones for the new, and the UNet fed by them agrees', async () => {
    const grownArch = { ...SMALL, layersPerBlock: [2, 2, 1] };
    const control = controlWeights(SMALL);
    const weights = unetWeights(SMALL);
    const before = await runControlNet(SMALL, control);
    const after = await runControlNet(
      grownArch,
      growControlNetWeights(control, SMALL, grownArch, IMAGE_FACTOR),
    );
    // old skips: conv_in, 0.r0, 0.down, 1.r0, 1.down, 2.r0 -> new: conv_in, 0.r0, 0.r1, 0.down, 1.r0,
    // 1.r1, 1.down, 2.r0; a level's last skip takes the old last one's residual (its first up resnet reads it)
    const oldAt = [0, -1, 1, 2, -1, 3, 4, 5];
    expect(after.length).toBe(oldAt.length + 1);
    oldAt.forEach((k, i) => {
      const got = after[i].data as Float32Array;
      if (k < 0) expect(got.every((v) => v === 0)).toBe(true);
      else expect(maxDiff(got, before[k].data as Float32Array)).toBeLessThan(1e-4);
    });
    expect(maxDiff(after[8].data as Float32Array, before[6].data as Float32Array)).toBeLessThan(1e-4);
    const unetBefore = await runUnet(SMALL, weights, before);
    const unetAfter = await runUnet(grownArch, growUnetWeights(weights, SMALL, grownArch), after);
    expect(maxDiff(unetBefore, unetAfter)).toBeLessThan(1e-4);
  });
});
