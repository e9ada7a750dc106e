/**
 * The NCHWc lowering computes what the standard Conv computes: forward convs of every layout case
 * (input channels below the block or a multiple of it, output channels padded, strides,
 * dilations, asymmetric and automatic padding, no bias), the flipped dX kernels of the Conv rule,
 * a directional finite-difference check through a lowered train step, and a whole train step of
 * the toy UNet against the unlowered one.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph, type Attrs } from '../onnx/graph.js';
import { ModelBuilder } from '../onnx/layers.js';
import { numel } from '../onnx/dtype.js';
import { Rng } from '../tensor/random.js';
import { lowerConvsToNchwc, nchwcBlockSize } from './nchwc.js';
import { convInputGradient, type ConvGeometry } from './rules/conv.js';
import { buildToyUnet } from '../training/toy-unet.js';
import { ToyDenoisingData } from '../training/toy-data.js';
import { TrainStep } from '../training/train-step.js';
import { mseLoss } from '../training/losses.js';

const block = await nchwcBlockSize();
const randn = (shape: readonly number[], seed: number) => new Rng(seed).randn(numel(shape));

/** Runs the graph `build` makes as is and lowered; returns the largest difference relative to max |y|. */
async function loweredDifference(
  build: (g: Graph) => string,
  expectLowered: number,
): Promise<{ error: number; scale: number }> {
  const outputs: Float32Array[] = [];
  for (const lower of [false, true]) {
    const g = new Graph();
    g.output(build(g), 'y');
    if (lower) expect(lowerConvsToNchwc(g, block)).toBe(expectLowered);
    const session = await ort.InferenceSession.create(g.toBytes());
    const feeds = Object.fromEntries(
      g.inputs.map((name, i) => [
        name,
        new ort.Tensor('float32', randn(g.shape(name), 10 + i), g.shape(name)),
      ]),
    );
    outputs.push((await session.run(feeds)).y.data as Float32Array);
    await session.release();
  }
  const [plain, lowered] = outputs;
  let error = 0;
  let scale = 0;
  for (let i = 0; i < plain.length; i++) {
    error = Math.max(error, Math.abs(plain[i] - lowered[i]));
    scale = Math.max(scale, Math.abs(plain[i]));
  }
  return { error: error / scale, scale };
}

describe.skipIf(block === 0)(`NCHWc lowering (block ${block})`, () => {
  const b = block;
  // [name, x, w, attrs, bias, lowered?]
  const convs: [string, number[], number[], Attrs, boolean, boolean][] = [
    [
      '3x3, channels a multiple of the block',
      [2, b, 7, 6],
      [2 * b, b, 3, 3],
      { pads: [1, 1, 1, 1] },
      true,
      true,
    ],
    [
      'few input channels (NCHW input), output channels padded',
      [2, 3, 6, 5],
      [b + 3, 3, 3, 3],
      { pads: [1, 1, 1, 1] },
      true,
      true,
    ],
    [
      'output channels below the block',
      [1, 2 * b, 5, 5],
      [3, 2 * b, 3, 3],
      { pads: [1, 1, 1, 1] },
      true,
      true,
    ],
    [
      'stride 2, asymmetric pads, no bias',
      [2, b, 9, 8],
      [b, b, 3, 3],
      { strides: [2, 2], pads: [1, 0, 0, 1] },
      false,
      true,
    ],
    [
      'dilation 2, 3x2 kernel',
      [1, b, 9, 8],
      [b, b, 3, 2],
      { dilations: [2, 2], pads: [2, 1, 2, 1] },
      true,
      true,
    ],
    ['1x1', [2, 2 * b, 4, 3], [b, 2 * b, 1, 1], {}, true, true],
    ['1x1, stride 2 (a ResNet downsample)', [2, b, 7, 6], [2 * b, b, 1, 1], { strides: [2, 2] }, false, true],
    [
      'auto_pad SAME_UPPER, stride 2',
      [1, b, 7, 6],
      [b, b, 3, 3],
      { strides: [2, 2], auto_pad: 'SAME_UPPER' },
      true,
      true,
    ],
    [
      'input channels neither below nor a multiple of the block (left alone)',
      [1, b + 4, 5, 5],
      [b, b + 4, 3, 3],
      { pads: [1, 1, 1, 1] },
      true,
      false,
    ],
    [
      'groups 2 (left alone)',
      [1, 2 * b, 5, 5],
      [2 * b, b, 3, 3],
      { group: 2, pads: [1, 1, 1, 1] },
      true,
      false,
    ],
  ];
  for (const [name, xs, ws, attrs, bias, lowered] of convs) {
    it(`forward Conv: ${name}`, async () => {
      const { error } = await loweredDifference(
        (g) => {
          const inputs = [g.input('x', xs), g.input('w', ws)];
          if (bias) inputs.push(g.input('b', [ws[0]]));
          return g.op1('Conv', inputs, attrs);
        },
        lowered ? 1 : 0,
      );
      expect(error).toBeLessThan(1e-5);
    });
  }

  it('leaves a Conv with a constant weight to onnxruntime', () => {
    const g = new Graph();
    const y = g.op1(
      'Conv',
      [g.input('x', [1, b, 4, 4]), g.initializer('w', randn([b, b, 3, 3], 1), [b, b, 3, 3])],
      {
        pads: [1, 1, 1, 1],
      },
    );
    g.output(y, 'y');
    expect(lowerConvsToNchwc(g, block)).toBe(0);
    expect(lowerConvsToNchwc(g, 1)).toBe(0);
  });

  // dX of y = conv(x, w): the rule's flipped kernel, reordered straight from w
  const flipped: [string, number, number, [number, number], Attrs][] = [
    ['3x3, both channel counts multiples of the block', 2 * b, b, [3, 3], { pads: [1, 1, 1, 1] }],
    ['x with few channels (dX output padded)', 3, b, [3, 3], { pads: [1, 1, 1, 1] }],
    ['y with few channels (conv_out: NCHW input)', b, 3, [3, 3], { pads: [1, 1, 1, 1] }],
    ['dilation 2, asymmetric pads, 3x2 kernel', b, b, [3, 2], { dilations: [2, 2], pads: [2, 0, 1, 2] }],
    ['1x1', 2 * b, b, [1, 1], {}],
  ];
  for (const [name, c, m, [kh, kw], attrs] of flipped) {
    it(`dX kernel: ${name}`, async () => {
      const { error } = await loweredDifference((g) => {
        const x = g.input('x', [2, c, 7, 6]);
        const w = g.input('w', [m, c, kh, kw]);
        const y = g.op1('Conv', [x, w], attrs);
        const [, , ho, wo] = g.shape(y);
        const pads = (attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
        const geo: ConvGeometry = {
          n: 2,
          c,
          h: 7,
          w: 6,
          m,
          ho,
          wo,
          group: 1,
          kernel: [kh, kw],
          strides: [1, 1],
          dilations: ((attrs.dilations as number[] | undefined) ?? [1, 1]) as [number, number],
          pads: pads as [number, number, number, number],
        };
        return convInputGradient(g, geo, w, g.input('gy', [2, m, ho, wo]), 'flipped-conv');
      }, 2);
      expect(error).toBeLessThan(1e-5);
    });
  }

  it('passes a directional finite-difference check through a lowered train step', async () => {
    // conv 3x3 (c a multiple of the block) -> SiLU -> conv 3x3 to 3 channels (padded output) -> MSE
    const m = new ModelBuilder('convnet', 3, 'input');
    const x = m.g.input('x', [2, b, 8, 8]);
    const y = m.conv2d('conv_out', m.silu(m.conv2d('conv_in', x, b, 3)), 3, 3);
    const loss = mseLoss(m.g, y, m.g.input('target', [2, 3, 8, 8]), { reduction: 'mean' });
    const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values, nchwc: true });
    // both forward Convs are lowered; conv_out's dX is a third Conv at block 16, while at block 8
    // (AVX2 machines) conv_out reads only 8 channels and its dX is a ConvTranspose by design
    // (chooseInputGradMethod: a Conv producing so few channels is slower)
    const lowered = m.g.nodes.filter((n) => n.domain === 'com.microsoft.nchwc' && n.opType === 'Conv');
    expect(lowered.length).toBe(b === 8 ? 2 : 3);
    const batch = {
      x: new ort.Tensor('float32', randn([2, b, 8, 8], 4), [2, b, 8, 8]),
      target: new ort.Tensor('float32', randn([2, 3, 8, 8], 5), [2, 3, 8, 8]),
    };
    const { gradients } = await step.run(batch);
    // a unit direction over all parameters, half along the gradient and half random (as gradcheck.ts)
    const rng = new Rng(6);
    const grads = step.parameters.map((p) => gradients.get(p.name) as Float32Array);
    const gradNorm = Math.sqrt(grads.reduce((a, gp) => a + gp.reduce((s, v) => s + v * v, 0), 0));
    const noise = step.parameters.map((p) => rng.randn(p.data.length));
    const noiseNorm = Math.sqrt(noise.reduce((a, d) => a + d.reduce((s, v) => s + v * v, 0), 0));
    const direction = grads.map((gp, i) => gp.map((v, k) => v / gradNorm + noise[i][k] / noiseNorm));
    const norm = Math.sqrt(direction.reduce((a, d) => a + d.reduce((s, v) => s + v * v, 0), 0));
    let analytic = 0;
    grads.forEach((gp, i) => gp.forEach((v, k) => (analytic += (v * direction[i][k]) / norm)));
    const lossAt = async (t: number) => {
      const saved = step.parameters.map((p) => p.data.slice());
      step.parameters.forEach((p, i) =>
        p.data.forEach((v, k) => (p.data[k] = v + (t * direction[i][k]) / norm)),
      );
      const r = await step.run(batch);
      step.parameters.forEach((p, i) => p.data.set(saved[i]));
      return r.loss;
    };
    const central = async (h: number) => ((await lossAt(h)) - (await lossAt(-h))) / (2 * h);
    const numeric = (4 * (await central(0.01)) - (await central(0.02))) / 3; // Richardson
    await step.dispose();
    expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
    expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(2e-3);
  });

  it('gives the same train step on the toy UNet', async () => {
    const results = [];
    for (const nchwc of [false, true]) {
      const net = buildToyUnet({ batch: 2, size: 16, channels: 32, groups: 8 });
      const g = net.builder.g;
      const loss = mseLoss(g, net.prediction, g.input('target', g.shape(net.prediction)), {
        reduction: 'mean',
      });
      const step = await TrainStep.create({ graph: g, loss, parameters: net.builder.values, nchwc });
      expect(g.nodes.some((n) => n.domain === 'com.microsoft.nchwc')).toBe(nchwc);
      results.push(await step.run(new ToyDenoisingData(2, 16).next(new Rng(1))));
      await step.dispose();
    }
    const [plain, lowered] = results;
    expect(lowered.loss).toBeCloseTo(plain.loss, 5);
    for (const [name, expected] of plain.gradients) {
      const got = lowered.gradients.get(name) as Float32Array;
      let error = 0;
      let scale = 0;
      for (let i = 0; i < expected.length; i++) {
        error = Math.max(error, Math.abs(got[i] - expected[i]));
        scale = Math.max(scale, Math.abs(expected[i]));
      }
      expect(error, name).toBeLessThanOrEqual(1e-4 * scale + 1e-9);
    }
  });
});
