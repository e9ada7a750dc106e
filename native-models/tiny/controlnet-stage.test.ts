import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readModelFile } from '../onnx/external-data.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { UnetArchitecture } from '../models/unet.js';
import { Rng } from '../tensor/random.js';
import {
  controlNetInferenceModel,
  controlNetTrainingGraph,
  poseScene,
  trainControlNet,
  writeControlNet,
} from './controlnet-stage.js';
import { LATENT_SIDE, trainUnet, unetInferenceModel, unetWeightsOnly } from './unet-stage.js';

const MODEL = join(import.meta.dirname, '..', 'weights', 'tiny-sd');
const SMALL: UnetArchitecture = {
  latentChannels: 4,
  blockOutChannels: [8, 16],
  attention: [false, true],
  heads: 2,
  normGroups: 4,
  crossAttentionDim: 128,
  timestepDim: 16,
};

describe('tiny ControlNet stage', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('pose scenes always hold a skeleton-drawn subject', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 20; i++) expect(poseScene(rng).subjects.some((s) => s.keypoints !== null)).toBe(true);
  });

  it('starts as the UNet (zero convolutions), trains, and exports residuals the ControlNet-aware UNet takes', async () => {
    const work = await mkdtemp(join(tmpdir(), 'controlnet-'));
    dirs.push(work);
    const base = await trainUnet({
      modelDir: MODEL,
      steps: 2,
      batch: 2,
      datasetSize: 4,
      architecture: SMALL,
    });
    // round trip through a float16 ONNX file, as the stage reads the shipped UNet
    const unetPath = join(work, 'unet.onnx');
    await writeFile(unetPath, unetInferenceModel(base.ema, { architecture: SMALL }));
    const unetWeights = unetWeightsOnly(await readOnnxWeights(unetPath), SMALL);
    expect(unetWeights.length).toBe(base.ema.length);

    const losses: number[] = [];
    const result = await trainControlNet({
      modelDir: MODEL,
      unetWeights,
      steps: 3,
      batch: 2,
      datasetSize: 4,
      architecture: SMALL,
      checkpointDir: join(work, 'controlnet'),
      onProgress: (p) => losses.push(p.loss),
    });
    expect(losses).toHaveLength(3);
    expect(losses.every(Number.isFinite)).toBe(true);
    // the copied down path starts from the UNet's weights; the zero convolutions from zero
    const start = controlNetTrainingGraph(SMALL, 1, 48, unetWeights).m.values;
    expect(start.get('conv_in.weight')).toEqual(unetWeights.find((p) => p.name === 'conv_in.weight')?.data);
    expect(start.get('controlnet_mid_block.weight')?.every((v) => v === 0)).toBe(true);

    const cn = await ort.InferenceSession.create(
      controlNetInferenceModel(result.parameters, { architecture: SMALL }),
    );
    const aware = await ort.InferenceSession.create(
      unetInferenceModel(unetWeights, { architecture: SMALL, residuals: true }),
    );
    const common = {
      sample: new ort.Tensor('float32', new Float32Array(4 * LATENT_SIDE * LATENT_SIDE).fill(0.3), [
        1,
        4,
        LATENT_SIDE,
        LATENT_SIDE,
      ]),
      timestep: new ort.Tensor('int64', BigInt64Array.from([300n]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', new Float32Array(48 * 128).fill(0.05), [1, 48, 128]),
    };
    const residuals = await cn.run({
      ...common,
      controlnet_cond: new ort.Tensor('float32', new Float32Array(3 * 128 * 128).fill(0.5), [1, 3, 128, 128]),
      conditioning_scale: new ort.Tensor('float32', Float32Array.of(1), [1]),
    });
    const out = await aware.run({ ...common, ...residuals });
    expect(out.out_sample.dims).toEqual([1, 4, LATENT_SIDE, LATENT_SIDE]);
    // after training the zero convolutions moved: the residuals are no longer all zero
    const mid = residuals.mid_block_additional_residual.data as Float32Array;
    expect(mid.some((v) => v !== 0)).toBe(true);
    await cn.release();
    await aware.release();

    // the folder gets controlnet/ and a unet/ that takes the residuals; an old unet_controlnet/ twin goes
    const folder = join(work, 'folder');
    await mkdir(join(folder, 'unet_controlnet'), { recursive: true });
    await writeFile(join(folder, 'unet_controlnet', 'model.onnx'), 'stale');
    await writeControlNet(
      folder,
      controlNetInferenceModel(result.parameters, { architecture: SMALL }),
      unetWeights,
      SMALL,
    );
    expect(existsSync(join(folder, 'unet_controlnet'))).toBe(false);
    const unetFile = await readModelFile(join(folder, 'unet', 'model.onnx'), { loadExternalData: false });
    const residualInputs = unetFile.graph.input.map((i) => i.name).filter((n) => n.endsWith('_residual'));
    const cnFile = await readModelFile(join(folder, 'controlnet', 'model.onnx'), { loadExternalData: false });
    expect(residualInputs).toEqual(cnFile.graph.output.map((o) => o.name));
    const written = new Map(
      (await readOnnxWeights(join(folder, 'unet', 'model.onnx'))).map((w) => [w.name, w.data]),
    );
    for (const w of unetWeights) expect(written.get(w.name)).toEqual(w.data);
    const config = JSON.parse(await readFile(join(folder, 'unet', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config.block_out_channels).toEqual(SMALL.blockOutChannels);
  }, 120_000);
});
