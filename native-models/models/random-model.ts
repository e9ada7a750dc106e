/**
 * A tiny random-weight Stable Diffusion model folder in the exact diffusers ONNX layout,
 * built with the project's graph builder: CLIP-like text encoder, UNet with cross-attention
 * and timestep embedding, VAE encoder and decoder, tokenizer files, scheduler config, and a
 * ControlNet plus a ControlNet-aware UNet in the split convention (see README "Model folder").
 *
 * Its pictures are noise, but every file, name, dtype and rank matches a real SD 1.5 export,
 * so pipelines, validation and the CLI can be exercised in seconds without weights.
 *
 * @example
 * await createRandomModel('/tmp/tiny-sd');            // then: msp generate --model /tmp/tiny-sd ...
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ModelBuilder } from '../onnx/layers.js';
import { vaeDecoder, vaeEncoder, type VaeArchitecture } from './vae.js';
import { textEncoder } from './text-encoder.js';
import {
  controlNet,
  unet,
  unetConfig as unetConfigJson,
  unetResidualShapes,
  type UnetArchitecture,
} from './unet.js';
import type { Graph } from '../onnx/graph.js';
import { buildByteLevelVocab, learnBpeMerges, writeTokenizerFolder } from '../tokenizer/clip-tokenizer.js';
import { randomSegmentationModel } from '../pipelines/sal.js';
import { EXAMPLE_SUBJECTS } from '../msp/example-scenes.js';

export interface RandomModelConfig {
  seed: number;
  /** Text encoder */
  sequenceLength: number;
  hiddenSize: number;
  textLayers: number;
  textHeads: number;
  bpeMerges: number;
  /** UNet */
  latentChannels: number;
  unetBlockOutChannels: number[];
  attentionHeads: number;
  normGroups: number;
  timestepDim: number;
  /** VAE: the downsampling factor is 2^(levels - 1). */
  vaeBlockOutChannels: number[];
  scalingFactor: number;
  /** Default latent size written to unet/config.json (image size = sampleSize * VAE factor). */
  sampleSize: number;
  controlnet: boolean;
}

export const DEFAULT_RANDOM_MODEL_CONFIG: RandomModelConfig = {
  seed: 1234,
  sequenceLength: 16,
  hiddenSize: 32,
  textLayers: 2,
  textHeads: 2,
  bpeMerges: 200,
  latentChannels: 4,
  unetBlockOutChannels: [32, 64],
  attentionHeads: 2,
  normGroups: 8,
  timestepDim: 32,
  vaeBlockOutChannels: [8, 16, 16, 16],
  scalingFactor: 0.18215,
  sampleSize: 8,
  controlnet: true,
};

/** Captions the tiny tokenizer learns its merges from. */
const CAPTION_CORPUS = [
  'a photo of a cat',
  'a cartoon man waving in a park',
  'a cartoon woman in a yellow dress on a beach',
  'a red car next to a house',
  'a boy and a girl at a picnic, comic style',
  'a robot holding a mug in the kitchen',
  'a dog running under a tree at night',
  'two friends sitting on a chair, blurry background',
  'a lamp on a table in a cozy room',
];

const BATCH = 'batch';

/** Writes the random model into `dir`, which must not exist or be empty. Returns the absolute folder. */
export async function createRandomModel(
  dir: string,
  overrides: Partial<RandomModelConfig> = {},
): Promise<string> {
  const config = { ...DEFAULT_RANDOM_MODEL_CONFIG, ...overrides };
  validateConfig(config);
  const target = resolve(dir);
  await assertEmptyOrMissing(target);

  // 1. Build every file in memory first, so a failure writes nothing.
  const merges = learnBpeMerges(CAPTION_CORPUS, config.bpeMerges);
  const { vocab } = buildByteLevelVocab(merges);
  const vocabSize = Object.keys(vocab).length;
  const eosId = vocab['<|endoftext|>'];
  const files = new Map<string, Uint8Array | string>();
  const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
  const factor = 2 ** (config.vaeBlockOutChannels.length - 1);

  files.set('model_index.json', json(modelIndex(config.controlnet)));
  files.set(
    'scheduler/scheduler_config.json',
    json({
      _class_name: 'PNDMScheduler',
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      num_train_timesteps: 1000,
      prediction_type: 'epsilon',
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      clip_sample: false,
      timestep_spacing: 'leading',
    }),
  );
  files.set('text_encoder/model.onnx', buildTextEncoder(config, vocabSize, eosId));
  files.set(
    'text_encoder/config.json',
    json({
      _class_name: 'CLIPTextModel',
      hidden_size: config.hiddenSize,
      num_hidden_layers: config.textLayers,
      num_attention_heads: config.textHeads,
      max_position_embeddings: config.sequenceLength,
      vocab_size: vocabSize,
      eos_token_id: eosId,
    }),
  );
  const unetConfig = unetConfigJson(unetArchitecture(config), config.sampleSize);
  files.set('unet/model.onnx', buildUnet(config, false));
  files.set('unet/config.json', json(unetConfig));
  const vaeConfig = {
    _class_name: 'AutoencoderKL',
    in_channels: 3,
    out_channels: 3,
    latent_channels: config.latentChannels,
    block_out_channels: config.vaeBlockOutChannels,
    scaling_factor: config.scalingFactor,
    sample_size: config.sampleSize * factor,
  };
  files.set('vae_decoder/model.onnx', buildVaeDecoder(config));
  files.set('vae_decoder/config.json', json(vaeConfig));
  files.set('vae_encoder/model.onnx', buildVaeEncoder(config));
  files.set('vae_encoder/config.json', json(vaeConfig));
  if (config.controlnet) {
    files.set('controlnet/model.onnx', buildControlNet(config, factor));
    files.set(
      'controlnet/config.json',
      json({ ...unetConfig, _class_name: 'ControlNetModel', conditioning_channels: 3 }),
    );
    files.set('unet_controlnet/model.onnx', buildUnet(config, true));
    files.set('unet_controlnet/config.json', json(unetConfig));
  }

  // a segmentation model that knows the example scenes' subjects, so SAL runs end to end
  const segmentation = randomSegmentationModel(['background', ...EXAMPLE_SUBJECTS], config.seed + 6);
  files.set('segmentation/model.onnx', segmentation.model);
  files.set('segmentation/classes.json', segmentation.classesJson);

  // 2. Write into a sibling temp folder, then move it into place.
  const staging = `${target}.partial-${process.pid}-${Date.now()}`;
  try {
    for (const [rel, content] of files) {
      const path = join(staging, rel);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
    }
    await writeTokenizerFolder(join(staging, 'tokenizer'), {
      vocab,
      merges,
      modelMaxLength: config.sequenceLength,
      padToken: '<|endoftext|>',
    });
    await rm(target, { recursive: true, force: true }); // only an empty folder can be here (checked above)
    await rename(staging, target);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return target;
}

function validateConfig(c: RandomModelConfig): void {
  const bad = (what: string) => {
    throw new RangeError(`random model config: ${what}`);
  };
  if (c.hiddenSize % c.textHeads !== 0)
    bad(`hiddenSize ${c.hiddenSize} is not divisible by textHeads ${c.textHeads}`);
  for (const ch of c.unetBlockOutChannels) {
    if (ch % c.normGroups !== 0) bad(`UNet channels ${ch} are not divisible by normGroups ${c.normGroups}`);
    if (ch % c.attentionHeads !== 0)
      bad(`UNet channels ${ch} are not divisible by attentionHeads ${c.attentionHeads}`);
  }
  if (c.vaeBlockOutChannels.length < 2) bad('the VAE needs at least two levels');
  if (c.sequenceLength < 3) bad('sequenceLength must be at least 3');
}

async function assertEmptyOrMissing(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`cannot use ${dir}: ${(e as Error).message}`);
  }
  if (entries.length > 0) throw new Error(`${dir} is not empty; choose a new or empty folder`);
}

function modelIndex(controlnet: boolean): Record<string, unknown> {
  const index: Record<string, unknown> = {
    _class_name: 'OnnxStableDiffusionPipeline',
    _diffusers_version: '0.30.0',
    _msp_note: 'tiny random-weight model generated by msp create-random-model; its images are noise',
    scheduler: ['diffusers', 'PNDMScheduler'],
    text_encoder: ['diffusers', 'OnnxRuntimeModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'OnnxRuntimeModel'],
    vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
    vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
    feature_extractor: [null, null],
    safety_checker: [null, null],
  };
  if (controlnet) {
    index.controlnet = ['diffusers', 'OnnxRuntimeModel'];
    index.unet_controlnet = ['diffusers', 'OnnxRuntimeModel'];
  }
  return index;
}

function exportModel(g: Graph, dynamicAxes: Record<string, Record<number, string>>): Uint8Array {
  return g.toBytes({ dynamicAxes, docString: 'MSP Studio random-weight test model' });
}

// ---------------------------------------------------------------------------------------------
// text_encoder: input_ids int32 [B, L] -> last_hidden_state [B, L, H], pooler_output [B, H]

function buildTextEncoder(c: RandomModelConfig, vocabSize: number, eosId: number): Uint8Array {
  const m = new ModelBuilder('text_encoder', c.seed + 1);
  const g = m.g;
  const ids = g.input('input_ids', [1, c.sequenceLength], 'int32');
  const { lastHiddenState, pooled } = textEncoder(
    m,
    {
      vocabSize,
      hiddenSize: c.hiddenSize,
      layers: c.textLayers,
      heads: c.textHeads,
      maxPositions: c.sequenceLength,
      tokenEmbeddingStd: 0.5,
      positionEmbeddingStd: 0.1,
    },
    ids,
  );
  g.output(lastHiddenState, 'last_hidden_state');
  g.output(pooled, 'pooler_output');
  g.metadata.set('eos_token_id', String(eosId));
  return exportModel(g, {
    input_ids: { 0: BATCH },
    last_hidden_state: { 0: BATCH },
    pooler_output: { 0: BATCH },
  });
}

// ---------------------------------------------------------------------------------------------
// unet: sample [B, C, h, w], timestep int64 [B], encoder_hidden_states [B, L, H] -> out_sample
// unet_controlnet: the same weights plus down_block_{i}_additional_residual and mid_block_additional_residual

function unetArchitecture(c: RandomModelConfig): UnetArchitecture {
  return {
    latentChannels: c.latentChannels,
    blockOutChannels: c.unetBlockOutChannels,
    heads: c.attentionHeads,
    normGroups: c.normGroups,
    crossAttentionDim: c.hiddenSize,
    timestepDim: c.timestepDim,
  };
}

function unetInputs(m: ModelBuilder, c: RandomModelConfig) {
  const g = m.g;
  const sample = g.input('sample', [1, c.latentChannels, c.sampleSize, c.sampleSize]);
  const timestep = g.input('timestep', [1], 'int64');
  const context = g.input('encoder_hidden_states', [1, c.sequenceLength, c.hiddenSize]);
  return { sample, timestep, context };
}

function buildUnet(c: RandomModelConfig, withResiduals: boolean): Uint8Array {
  // Same seed for both variants: with zero residuals unet_controlnet computes exactly what unet does.
  const m = new ModelBuilder(withResiduals ? 'unet_controlnet' : 'unet', c.seed + 2);
  const a = unetArchitecture(c);
  const inputs = unetInputs(m, c);
  const dynamicAxes: Record<string, Record<number, string>> = {
    sample: { 0: BATCH, 2: 'height', 3: 'width' },
    timestep: { 0: 'timestep_batch' },
    encoder_hidden_states: { 0: BATCH },
    out_sample: { 0: BATCH, 2: 'height', 3: 'width' },
  };
  let residuals: { down: string[]; mid: string } | undefined;
  if (withResiduals) {
    const shapes = unetResidualShapes(a, 1, c.sampleSize);
    residuals = {
      down: shapes.down.map((shape, i) => {
        const name = `down_block_${i}_additional_residual`;
        dynamicAxes[name] = { 0: BATCH, 2: `height_${i}`, 3: `width_${i}` };
        return m.g.input(name, shape);
      }),
      mid: m.g.input('mid_block_additional_residual', shapes.mid),
    };
    dynamicAxes.mid_block_additional_residual = { 0: BATCH, 2: 'height_mid', 3: 'width_mid' };
  }
  m.g.output(unet(m, a, inputs, residuals), 'out_sample');
  return exportModel(m.g, dynamicAxes);
}

// controlnet: sample, timestep, encoder_hidden_states, controlnet_cond [B, 3, H, W], conditioning_scale [1]
//   -> down_block_{i}_additional_residual, mid_block_additional_residual
function buildControlNet(c: RandomModelConfig, factor: number): Uint8Array {
  const m = new ModelBuilder('controlnet', c.seed + 5);
  const g = m.g;
  const inputs = unetInputs(m, c);
  const cond = g.input('controlnet_cond', [1, 3, c.sampleSize * factor, c.sampleSize * factor]);
  const scale = g.input('conditioning_scale', [1]);
  // non-zero output convolutions, so the random ControlNet visibly changes the UNet's prediction
  const out = controlNet(
    m,
    unetArchitecture(c),
    { ...inputs, cond, scale },
    { imageFactor: factor, zeroConvStd: 0.1 },
  );
  const dynamicAxes: Record<string, Record<number, string>> = {
    sample: { 0: BATCH, 2: 'height', 3: 'width' },
    timestep: { 0: 'timestep_batch' },
    encoder_hidden_states: { 0: BATCH },
    controlnet_cond: { 0: BATCH, 2: 'image_height', 3: 'image_width' },
  };
  out.down.forEach((r, i) => {
    const name = `down_block_${i}_additional_residual`;
    g.output(r, name);
    dynamicAxes[name] = { 0: BATCH, 2: `height_${i}`, 3: `width_${i}` };
  });
  g.output(out.mid, 'mid_block_additional_residual');
  dynamicAxes.mid_block_additional_residual = { 0: BATCH, 2: 'height_mid', 3: 'width_mid' };
  return exportModel(g, dynamicAxes);
}

// ---------------------------------------------------------------------------------------------
// vae_decoder: latent_sample [B, C, h, w] -> sample [B, 3, h*f, w*f]
// vae_encoder: sample [B, 3, H, W] -> latent_parameters [B, 2C, H/f, W/f] (mean, logvar)

function vaeArchitecture(c: RandomModelConfig): VaeArchitecture {
  return { latentChannels: c.latentChannels, blockOutChannels: c.vaeBlockOutChannels, normGroups: 4 };
}

function buildVaeDecoder(c: RandomModelConfig): Uint8Array {
  const m = new ModelBuilder('vae_decoder', c.seed + 3);
  const latent = m.g.input('latent_sample', [1, c.latentChannels, c.sampleSize, c.sampleSize]);
  m.g.output(vaeDecoder(m, vaeArchitecture(c), latent), 'sample');
  return exportModel(m.g, {
    latent_sample: { 0: BATCH, 2: 'latent_height', 3: 'latent_width' },
    sample: { 0: BATCH, 2: 'height', 3: 'width' },
  });
}

function buildVaeEncoder(c: RandomModelConfig): Uint8Array {
  const m = new ModelBuilder('vae_encoder', c.seed + 4);
  const factor = 2 ** (c.vaeBlockOutChannels.length - 1);
  const image = m.g.input('sample', [1, 3, c.sampleSize * factor, c.sampleSize * factor]);
  m.g.output(vaeEncoder(m, vaeArchitecture(c), image), 'latent_parameters');
  return exportModel(m.g, {
    sample: { 0: BATCH, 2: 'height', 3: 'width' },
    latent_parameters: { 0: BATCH, 2: 'latent_height', 3: 'latent_width' },
  });
}
