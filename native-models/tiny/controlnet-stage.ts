/**
 * The tiny world's OpenPose ControlNet, in the split convention of the model contract: controlnet/
 * computes the residuals, and the folder's unet/ takes them as inputs (its plain pictures feed
 * zeros), so the UNet's weights are stored once.
 *
 * As in the ControlNet paper, the ControlNet starts as a copy of the trained UNet's down path and
 * mid block, with zero-initialised output convolutions and conditioning embedding, so training starts
 * from exactly the UNet's behaviour. The UNet stays frozen: one training graph runs the ControlNet,
 * feeds its residuals into the frozen UNet (weights baked, so only input gradients flow through
 * it), and takes the same min-SNR noise loss as the UNet stage. Data: world scenes with at least one
 * skeleton-drawn subject (people and robots) and their OpenPose renderings, conditioning in [0, 1].
 *
 * @example
 * const result = await trainControlNet({ modelDir, unetWeights, steps: 1500, checkpointDir: '.tmp/tiny/controlnet' });
 * await writeControlNet(modelDir, controlNetInferenceModel(result.parameters), unetWeights);
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../onnx/layers.js';
import { decodeModel } from '../onnx/proto.js';
import { importInto } from '../onnx/import.js';
import { controlNet, unetConfig, type UnetArchitecture } from '../models/unet.js';
import { TrainStep } from '../training/train-step.js';
import { Trainer, bakeParameters } from '../training/trainer.js';
import type { ParameterTensor } from '../training/optimizers.js';
import type { Rng } from '../tensor/random.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { generateScene, type WorldScene } from '../world/scene.js';
import { CLASS_INFO, SUBJECT_CLASSES } from '../world/classes.js';
import {
  IMAGE_SIDE,
  LATENT_SIDE,
  LatentBatches,
  TINY_UNET,
  weightedNoiseLoss,
  type UnetTrainingOptions,
  latentDataset,
  startFrom,
  unetInferenceModel,
  writeUnet,
} from './unet-stage.js';

const SKELETON_CLASSES = SUBJECT_CLASSES.filter((c) => CLASS_INFO[c].humanLike);

/** Scenes for pose control: 60% one skeleton-drawn subject, else 2-3 subjects with at least one. */
export function poseScene(rng: Rng): WorldScene {
  const u = rng.nextFloat();
  const n = u < 0.6 ? 1 : u < 0.85 ? 2 : 3;
  const first = SKELETON_CLASSES[Math.floor(rng.nextFloat() * SKELETON_CLASSES.length)];
  const specs = [{ className: first }, ...Array.from({ length: n - 1 }, () => ({}))];
  return generateScene(rng, { size: IMAGE_SIDE, specs });
}

/**
 * ControlNet -> frozen UNet -> loss. The ControlNet's weights are graph inputs (trainable), its
 * copy of the UNet's down path starts from `unetWeights`; the UNet's weights are baked.
 */
export function controlNetTrainingGraph(
  a: UnetArchitecture,
  batch: number,
  L: number,
  unetWeights: readonly ParameterTensor[],
  /** Every ControlNet weight, to start from instead of the UNet copy (a grown ControlNet, say). */
  initialWeights?: readonly ParameterTensor[],
) {
  const m = new ModelBuilder('controlnet_training', 13, 'input');
  const g = m.g;
  const C = a.latentChannels;
  const sample = g.input('sample', [batch, C, LATENT_SIDE, LATENT_SIDE]);
  const timestep = g.input('timestep', [batch], 'int64');
  const context = g.input('encoder_hidden_states', [batch, L, a.crossAttentionDim]);
  const cond = g.input('controlnet_cond', [batch, 3, IMAGE_SIDE, IMAGE_SIDE]);
  const noise = g.input('noise', [batch, C, LATENT_SIDE, LATENT_SIDE]);
  const weight = g.input('loss_weight', [batch, 1, 1, 1]);
  const scale = g.initializer('conditioning_scale', Float32Array.of(1), [1]);
  const residuals = controlNet(
    m,
    a,
    { sample, timestep, context, cond, scale },
    { imageFactor: IMAGE_SIDE / LATENT_SIDE },
  );
  // start from the UNet: every ControlNet weight the UNet also has takes the UNet's value
  const byName = new Map(unetWeights.map((p) => [p.name, p.data]));
  for (const [name, value] of m.values) {
    const w = byName.get(name);
    if (w && w.length === value.length) value.set(w);
  }
  if (initialWeights) startFrom(m.values, initialWeights, 'ControlNet', () => true);
  const frozen = decodeModel(
    unetInferenceModel(unetWeights, {
      residuals: true,
      architecture: a,
      sequenceLength: L,
      float16: false,
      batch,
    }),
  );
  const bind: Record<string, string> = {
    sample,
    timestep,
    encoder_hidden_states: context,
    mid_block_additional_residual: residuals.mid,
  };
  residuals.down.forEach((r, i) => (bind[`down_block_${i}_additional_residual`] = r));
  const { outputs } = importInto(g, frozen, { bind, prefix: 'unet' });
  return { m, loss: weightedNoiseLoss(g, outputs.out_sample, noise, weight) };
}

export interface ControlNetTrainingOptions extends UnetTrainingOptions {
  /**
   * The trained UNet: frozen inside the training graph, and the ControlNet's starting point
   * unless `initialWeights` (every ControlNet weight) are given.
   */
  unetWeights: readonly ParameterTensor[];
}

export async function trainControlNet(o: ControlNetTrainingOptions): Promise<{
  parameters: ParameterTensor[];
  step: number;
  lastLoss: number;
}> {
  const a = o.architecture ?? TINY_UNET;
  const batch = o.batch ?? 8;
  const lr = o.lr ?? 5e-4;
  const data = await latentDataset({
    modelDir: o.modelDir,
    count: o.datasetSize ?? 4000,
    seed: o.seed ?? 515_151,
    scenes: { name: 'pose', sample: poseScene },
    withControl: true,
    ...(o.checkpointDir ? { cacheDir: join(o.checkpointDir, '..', 'unet-data') } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  const tokenizer = await CLIPTokenizer.fromFolder(join(o.modelDir, 'tokenizer'));
  const textEncoder = await ort.InferenceSession.create(join(o.modelDir, 'text_encoder', 'model.onnx'));
  const { m, loss } = controlNetTrainingGraph(a, batch, data.sequenceLength, o.unetWeights, o.initialWeights);
  const step = await TrainStep.create({ graph: m.g, loss, parameters: m.values });
  const trainer = await Trainer.adamW(
    step,
    new LatentBatches(batch, data, textEncoder, tokenizer, {
      ...(o.captionDropout !== undefined ? { captionDropout: o.captionDropout } : {}),
    }),
    {
      steps: o.steps,
      lr,
      minLr: lr / 10,
      warmupSteps: Math.min(100, Math.floor(o.steps / 10)),
      seed: o.seed ?? 2,
      checkpointDir: o.checkpointDir,
      checkpointEvery: o.checkpointEvery ?? 100,
      resume: o.resume === true,
    },
  );
  const result = await trainer.train(o.steps, { signal: o.signal, onProgress: o.onProgress });
  await step.dispose();
  await textEncoder.release();
  return { parameters: step.parameters, step: result.step, lastLoss: result.lastLoss };
}

/** controlnet/model.onnx with the trained weights baked in (float16 storage). */
export function controlNetInferenceModel(
  params: readonly ParameterTensor[],
  { architecture = TINY_UNET, sequenceLength = 48 } = {},
): Uint8Array {
  const a = architecture;
  const m = new ModelBuilder('controlnet', 1);
  const g = m.g;
  const inputs = {
    sample: g.input('sample', [1, a.latentChannels, LATENT_SIDE, LATENT_SIDE]),
    timestep: g.input('timestep', [1], 'int64'),
    context: g.input('encoder_hidden_states', [1, sequenceLength, a.crossAttentionDim]),
    cond: g.input('controlnet_cond', [1, 3, IMAGE_SIDE, IMAGE_SIDE]),
    scale: g.input('conditioning_scale', [1]),
  };
  const out = controlNet(m, a, inputs, { imageFactor: IMAGE_SIDE / LATENT_SIDE });
  const dynamicAxes: Record<string, Record<number, string>> = {
    sample: { 0: 'batch', 2: 'height', 3: 'width' },
    timestep: { 0: 'timestep_batch' },
    encoder_hidden_states: { 0: 'batch' },
    controlnet_cond: { 0: 'batch', 2: 'image_height', 3: 'image_width' },
  };
  out.down.forEach((r, i) => {
    const name = `down_block_${i}_additional_residual`;
    g.output(r, name);
    dynamicAxes[name] = { 0: 'batch', 2: `height_${i}`, 3: `width_${i}` };
  });
  g.output(out.mid, 'mid_block_additional_residual');
  dynamicAxes.mid_block_additional_residual = { 0: 'batch', 2: 'height_mid', 3: 'width_mid' };
  bakeParameters(g, params);
  g.storeWeightsAsFloat16();
  return g.toBytes({ dynamicAxes, docString: 'MSP Studio tiny-world OpenPose ControlNet' });
}

/**
 * Writes controlnet/ (model.onnx + config.json) into a model folder, and unet/ again from
 * `unetWeights` with the residual inputs (a folder from an older recipe had a plain unet/ and a
 * unet_controlnet/ twin).
 */
export async function writeControlNet(
  dir: string,
  controlnet: Uint8Array,
  unetWeights: readonly ParameterTensor[],
  a: UnetArchitecture = TINY_UNET,
): Promise<void> {
  const config = unetConfig(a, LATENT_SIDE);
  await mkdir(join(dir, 'controlnet'), { recursive: true });
  await writeFile(join(dir, 'controlnet', 'model.onnx'), controlnet);
  await writeFile(
    join(dir, 'controlnet', 'config.json'),
    JSON.stringify({ ...config, _class_name: 'ControlNetModel', conditioning_channels: 3 }, null, 2) + '\n',
  );
  await writeUnet(dir, unetInferenceModel(unetWeights, { residuals: true, architecture: a }), {
    architecture: a,
  });
}
