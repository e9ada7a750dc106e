/**
 * The model contract: a folder in the diffusers ONNX layout, validated before anything runs.
 *
 *   model_index.json                          (optional)
 *   scheduler/scheduler_config.json
 *   tokenizer/vocab.json, merges.txt
 *   text_encoder/model.onnx                   input_ids -> last_hidden_state[, pooler_output]
 *   unet/model.onnx                           sample, timestep, encoder_hidden_states -> out_sample
 *   vae_decoder/model.onnx                    latent_sample -> sample
 *   vae_encoder/model.onnx      (optional)    sample -> latent_sample | latent_parameters
 *   controlnet/model.onnx       (optional)    sample, timestep, encoder_hidden_states, controlnet_cond,
 *                                             conditioning_scale -> down_block_{i}_additional_residual...,
 *                                             mid_block_additional_residual
 *   unet_controlnet/model.onnx  (optional)    the UNet inputs + those residuals -> out_sample
 *                                             (or unet/model.onnx itself takes the residuals)
 *
 * Sizes come from the files and their config.json, never from constants. Every problem is
 * reported as a ModelFolderError naming the file and what is wrong.
 *
 * @example
 * const model = await loadModelFolder('/models/stable-diffusion-v1-5-onnx');
 * model.sizes.vaeScaleFactor; // 8
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readModelFile } from '../onnx/external-data.js';
import { type DType, dtypeFromCode } from '../onnx/dtype.js';
import type { ValueInfoProto } from '../onnx/proto-types.js';
import { parseSchedulerConfig, type SchedulerConfig } from '../schedulers/scheduler.js';
import { unetResidualLayout, type ResidualPlace } from './unet.js';

export class ModelFolderError extends Error {
  override name = 'ModelFolderError';
  constructor(
    /** The file (relative to the model folder) the problem is in. */
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A tensor as declared by a model: dims are numbers when static, names when symbolic, null when unknown. */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: (number | string | null)[];
}

export interface ComponentSpec {
  /** Path relative to the model folder, e.g. "unet/model.onnx". */
  file: string;
  path: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export type ComponentName =
  'text_encoder' | 'unet' | 'vae_decoder' | 'vae_encoder' | 'controlnet' | 'unet_controlnet';

export interface ModelSizes {
  latentChannels: number;
  /** Image pixels per latent pixel along one axis (8 for SD). */
  vaeScaleFactor: number;
  /** Latents are multiplied by this after encoding and divided by it before decoding. */
  scalingFactor: number;
  /** Width of the text encoder's hidden states (768 for SD 1.5). */
  hiddenSize: number;
  /** Token sequence length of the text encoder (77 for SD 1.5). */
  sequenceLength: number;
  /** The image size the UNet was trained at, when the configs say (512 for SD 1.5). */
  defaultImageSize: number | undefined;
}

export interface ModelFolder {
  dir: string;
  components: {
    text_encoder: ComponentSpec;
    unet: ComponentSpec;
    vae_decoder: ComponentSpec;
    vae_encoder?: ComponentSpec;
    controlnet?: ComponentSpec;
    /** The UNet that takes ControlNet residuals: unet_controlnet/, or unet/ itself. */
    unet_controlnet?: ComponentSpec;
  };
  tokenizerDir: string;
  schedulerConfig: SchedulerConfig;
  sizes: ModelSizes;
  /** The vae_encoder output to use and whether it holds mean+logvar (2C channels) or a latent sample. */
  vaeEncoderOutput?: { name: string; kind: 'latent_sample' | 'latent_parameters' };
  /** Names of the ControlNet residuals, in order (down blocks, then mid). */
  controlnetResiduals: string[];
  /**
   * When unet/model.onnx itself takes ControlNet residuals: where each one sits, so a run without a
   * ControlNet feeds zeros of the right size (from unet/config.json, else from static dims).
   */
  unetResidualPlaces?: Record<string, ResidualPlace>;
}

const RESIDUAL_RE = /^down_block_(\d+)_additional_residual$/;
const MID_RESIDUAL = 'mid_block_additional_residual';
const FLOAT_TYPES: DType[] = ['float32', 'float16', 'float64'];

/** Loads and validates a model folder. Throws ModelFolderError naming the first problem found. */
export async function loadModelFolder(dir: string): Promise<ModelFolder> {
  const root = resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new ModelFolderError(dir, 'is not a folder');

  // 1. Configuration files.
  const schedulerJson = await readJson(root, 'scheduler/scheduler_config.json', true);
  let schedulerConfig: SchedulerConfig;
  try {
    schedulerConfig = parseSchedulerConfig(schedulerJson, 'scheduler/scheduler_config.json');
  } catch (e) {
    throw new ModelFolderError('scheduler/scheduler_config.json', (e as Error).message);
  }
  for (const f of ['tokenizer/vocab.json', 'tokenizer/merges.txt']) await requireFile(root, f);
  const tokenizerConfig = await readJson(root, 'tokenizer/tokenizer_config.json', false);
  const textConfig = await readJson(root, 'text_encoder/config.json', false);
  const unetConfig = await readJson(root, 'unet/config.json', false);
  const vaeConfig =
    (await readJson(root, 'vae_decoder/config.json', false)) ??
    (await readJson(root, 'vae_encoder/config.json', false));

  // 2. The ONNX components and their declared inputs and outputs.
  const text_encoder = await readComponent(root, 'text_encoder/model.onnx', true);
  const unet = await readComponent(root, 'unet/model.onnx', true);
  const vae_decoder = await readComponent(root, 'vae_decoder/model.onnx', true);
  const vae_encoder = await readComponent(root, 'vae_encoder/model.onnx', false);
  const controlnet = await readComponent(root, 'controlnet/model.onnx', false);
  const unetControlnetFile = await readComponent(root, 'unet_controlnet/model.onnx', false);
  if (!text_encoder || !unet || !vae_decoder) throw new Error('unreachable: required components are checked');

  // 3. Validate names, dtypes and ranks.
  expectInput(text_encoder, 'input_ids', ['int32', 'int64'], [2]);
  expectOutput(text_encoder, 'last_hidden_state', FLOAT_TYPES, [3]);
  expectInput(unet, 'sample', FLOAT_TYPES, [4]);
  expectInput(unet, 'timestep', ['int64', 'int32', ...FLOAT_TYPES], [0, 1]);
  expectInput(unet, 'encoder_hidden_states', FLOAT_TYPES, [3]);
  expectOutput(unet, 'out_sample', FLOAT_TYPES, [4]);
  const unetTakesResiduals = unet.inputs.some((i) => isResidual(i.name));
  rejectUnknownInputs(unet, ['sample', 'timestep', 'encoder_hidden_states'], true);
  const unetResidualPlaces = unetTakesResiduals ? residualPlaces(unet, unetConfig) : undefined;
  expectInput(vae_decoder, 'latent_sample', FLOAT_TYPES, [4]);
  expectOutput(vae_decoder, 'sample', FLOAT_TYPES, [4]);

  let vaeEncoderOutput: ModelFolder['vaeEncoderOutput'];
  if (vae_encoder) {
    expectInput(vae_encoder, 'sample', FLOAT_TYPES, [4]);
    const out = vae_encoder.outputs.find((o) => o.name === 'latent_parameters' || o.name === 'latent_sample');
    if (!out)
      throw new ModelFolderError(vae_encoder.file, "has no output 'latent_sample' or 'latent_parameters'");
    expectOutput(vae_encoder, out.name, FLOAT_TYPES, [4]);
    vaeEncoderOutput = { name: out.name, kind: out.name as 'latent_sample' | 'latent_parameters' };
  }

  let controlnetResiduals: string[] = [];
  let unet_controlnet: ComponentSpec | undefined;
  if (controlnet) {
    for (const name of ['sample', 'controlnet_cond']) expectInput(controlnet, name, FLOAT_TYPES, [4]);
    expectInput(controlnet, 'timestep', ['int64', 'int32', ...FLOAT_TYPES], [0, 1]);
    expectInput(controlnet, 'encoder_hidden_states', FLOAT_TYPES, [3]);
    expectInput(controlnet, 'conditioning_scale', FLOAT_TYPES, [0, 1]);
    controlnetResiduals = residualNames(controlnet.outputs.map((o) => o.name));
    if (controlnetResiduals.length === 0 || !controlnetResiduals.includes(MID_RESIDUAL)) {
      throw new ModelFolderError(
        controlnet.file,
        `must output down_block_{i}_additional_residual and ${MID_RESIDUAL}; it outputs ${controlnet.outputs.map((o) => o.name).join(', ')}`,
      );
    }
    unet_controlnet = unetControlnetFile ?? (unetTakesResiduals ? unet : undefined);
    if (!unet_controlnet) {
      throw new ModelFolderError(
        'unet_controlnet/model.onnx',
        'is missing: controlnet/ needs a UNet that takes its residuals (unet_controlnet/, or residual inputs on unet/)',
      );
    }
  } else if (unetControlnetFile) {
    throw new ModelFolderError(
      'controlnet/model.onnx',
      'is missing although unet_controlnet/model.onnx is present',
    );
  }
  if (unet_controlnet && unet_controlnet !== unet) {
    expectInput(unet_controlnet, 'sample', FLOAT_TYPES, [4]);
    expectInput(unet_controlnet, 'timestep', ['int64', 'int32', ...FLOAT_TYPES], [0, 1]);
    expectInput(unet_controlnet, 'encoder_hidden_states', FLOAT_TYPES, [3]);
    expectOutput(unet_controlnet, 'out_sample', FLOAT_TYPES, [4]);
    rejectUnknownInputs(unet_controlnet, ['sample', 'timestep', 'encoder_hidden_states'], true);
  }
  if (unet_controlnet) {
    const takes = residualNames(unet_controlnet.inputs.map((i) => i.name));
    const missing = controlnetResiduals.filter((r) => !takes.includes(r));
    const extra = takes.filter((r) => !controlnetResiduals.includes(r));
    if (missing.length || extra.length) {
      throw new ModelFolderError(
        unet_controlnet.file,
        `residual inputs do not match controlnet/model.onnx outputs` +
          (missing.length ? `; missing ${missing.join(', ')}` : '') +
          (extra.length ? `; unexpected ${extra.join(', ')}` : ''),
      );
    }
  }

  // 4. Sizes, from the files first and the configs second; sources must agree.
  const sizes = resolveSizes({
    text_encoder,
    unet,
    vae_decoder,
    textConfig,
    unetConfig,
    vaeConfig,
    tokenizerConfig,
  });

  return {
    dir: root,
    components: {
      text_encoder,
      unet,
      vae_decoder,
      ...(vae_encoder ? { vae_encoder } : {}),
      ...(controlnet ? { controlnet } : {}),
      ...(unet_controlnet ? { unet_controlnet } : {}),
    },
    tokenizerDir: join(root, 'tokenizer'),
    schedulerConfig,
    sizes,
    ...(vaeEncoderOutput ? { vaeEncoderOutput } : {}),
    controlnetResiduals,
    ...(unetResidualPlaces ? { unetResidualPlaces } : {}),
  };
}

function isResidual(name: string): boolean {
  return RESIDUAL_RE.test(name) || name === MID_RESIDUAL;
}

/**
 * Where the residual inputs of a UNet sit: from its config (block_out_channels, layers_per_block in
 * the diffusers layout), else from static channel and size dims against a static sample size.
 */
function residualPlaces(
  unet: ComponentSpec,
  config: Record<string, unknown> | undefined,
): Record<string, ResidualPlace> {
  const names = residualNames(unet.inputs.map((i) => i.name));
  const inputSpec = (name: string) => unet.inputs.find((i) => i.name === name);
  const down = names.filter((n) => n !== MID_RESIDUAL);
  if (!names.includes(MID_RESIDUAL) || down.some((n, i) => n !== `down_block_${i}_additional_residual`)) {
    throw new ModelFolderError(
      unet.file,
      `residual inputs must be down_block_0_additional_residual... in order and ${MID_RESIDUAL}; it has ${names.join(', ')}`,
    );
  }
  const blocks = config?.block_out_channels;
  const layers = config?.layers_per_block;
  const isCount = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (
    Array.isArray(blocks) &&
    blocks.length > 0 &&
    blocks.every(isCount) &&
    (layers === undefined || isCount(layers) || (Array.isArray(layers) && layers.every(isCount)))
  ) {
    const layout = unetResidualLayout(blocks as number[], layers as number | number[] | undefined);
    if (layout.down.length !== down.length) {
      throw new ModelFolderError(
        'unet/config.json',
        `describes a UNet with ${layout.down.length} down-block residuals, but unet/model.onnx takes ${down.length}`,
      );
    }
    const places: Record<string, ResidualPlace> = {};
    down.forEach((n, i) => (places[n] = layout.down[i]));
    places[MID_RESIDUAL] = layout.mid;
    for (const [n, place] of Object.entries(places)) {
      const declared = staticDim(inputSpec(n), 1);
      if (declared !== undefined && declared !== place.channels) {
        throw new ModelFolderError(
          'unet/config.json',
          `block_out_channels give '${n}' ${place.channels} channels, but unet/model.onnx declares ${declared}`,
        );
      }
    }
    return places;
  }
  const sampleSide = staticDim(inputSpec('sample'), 2);
  const places: Record<string, ResidualPlace> = {};
  for (const n of names) {
    const channels = staticDim(inputSpec(n), 1);
    const side = staticDim(inputSpec(n), 2);
    let downsampling = 0;
    while (sampleSide !== undefined && side !== undefined && Math.ceil(sampleSide / 2 ** downsampling) > side)
      downsampling++;
    if (
      channels === undefined ||
      sampleSide === undefined ||
      side !== Math.ceil(sampleSide / 2 ** downsampling)
    ) {
      throw new ModelFolderError(
        'unet/config.json',
        `is needed with block_out_channels and layers_per_block: unet/model.onnx takes ControlNet residuals whose sizes are not static ('${n}')`,
      );
    }
    places[n] = { channels, downsampling };
  }
  return places;
}

/** Residual names sorted: down blocks by index, then the mid block. */
function residualNames(names: string[]): string[] {
  const down = names
    .map((n) => RESIDUAL_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[0]);
  return names.includes(MID_RESIDUAL) ? [...down, MID_RESIDUAL] : down;
}

async function requireFile(root: string, file: string): Promise<void> {
  const s = await stat(join(root, file)).catch(() => undefined);
  if (!s?.isFile()) throw new ModelFolderError(file, 'is missing');
}

async function readJson(
  root: string,
  file: string,
  required: boolean,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(join(root, file), 'utf8');
  } catch {
    if (required) throw new ModelFolderError(file, 'is missing');
    return undefined;
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (e) {
    throw new ModelFolderError(file, `is not valid JSON (${(e as Error).message})`);
  }
}

async function readComponent(root: string, file: string, required: true): Promise<ComponentSpec>;
async function readComponent(root: string, file: string, required: false): Promise<ComponentSpec | undefined>;
async function readComponent(
  root: string,
  file: string,
  required: boolean,
): Promise<ComponentSpec | undefined> {
  const path = join(root, file);
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) {
    if (required) throw new ModelFolderError(file, 'is missing');
    return undefined;
  }
  let model;
  try {
    model = await readModelFile(path, { loadExternalData: false });
  } catch (e) {
    throw new ModelFolderError(file, `is not a readable ONNX model (${(e as Error).message})`);
  }
  const initializers = new Set(model.graph.initializer.map((t) => t.name));
  const spec = (v: ValueInfoProto): TensorSpec => {
    const tt = v.type?.tensorType;
    const dtype = tt ? dtypeFromCode(tt.elemType) : undefined;
    if (!tt || !dtype) throw new ModelFolderError(file, `'${v.name}' is not a tensor of a supported type`);
    return {
      name: v.name,
      dtype,
      shape: tt.shape
        ? tt.shape.dim.map((d) =>
            d.dimValue !== undefined && d.dimValue > 0 ? d.dimValue : (d.dimParam ?? null),
          )
        : [],
    };
  };
  return {
    file,
    path,
    // Older exporters list initializers among the inputs; those are weights, not inputs.
    inputs: model.graph.input.filter((v) => !initializers.has(v.name)).map(spec),
    outputs: model.graph.output.map(spec),
  };
}

function expectInput(c: ComponentSpec, name: string, dtypes: DType[], ranks: number[]): TensorSpec {
  return expectTensor(c, c.inputs, 'input', name, dtypes, ranks);
}

function expectOutput(c: ComponentSpec, name: string, dtypes: DType[], ranks: number[]): TensorSpec {
  return expectTensor(c, c.outputs, 'output', name, dtypes, ranks);
}

function expectTensor(
  c: ComponentSpec,
  list: TensorSpec[],
  kind: 'input' | 'output',
  name: string,
  dtypes: DType[],
  ranks: number[],
): TensorSpec {
  const t = list.find((x) => x.name === name);
  if (!t) {
    throw new ModelFolderError(
      c.file,
      `is missing ${kind} '${name}' (it has ${list.map((x) => `'${x.name}'`).join(', ') || 'none'})`,
    );
  }
  if (!dtypes.includes(t.dtype)) {
    throw new ModelFolderError(
      c.file,
      `${kind} '${name}' has type ${t.dtype}; expected ${dtypes.join(' or ')}`,
    );
  }
  if (!ranks.includes(t.shape.length)) {
    throw new ModelFolderError(
      c.file,
      `${kind} '${name}' has rank ${t.shape.length}; expected ${ranks.join(' or ')}`,
    );
  }
  return t;
}

function rejectUnknownInputs(c: ComponentSpec, known: string[], allowResiduals: boolean): void {
  for (const i of c.inputs) {
    if (known.includes(i.name) || (allowResiduals && isResidual(i.name))) continue;
    throw new ModelFolderError(
      c.file,
      `has unsupported input '${i.name}' (a Stable Diffusion 1.x/2.x UNet takes ${known.join(', ')})`,
    );
  }
}

function staticDim(t: TensorSpec | undefined, axis: number): number | undefined {
  const d = t?.shape[axis];
  return typeof d === 'number' ? d : undefined;
}

function configNumber(config: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = config?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function resolveSizes(s: {
  text_encoder: ComponentSpec;
  unet: ComponentSpec;
  vae_decoder: ComponentSpec;
  textConfig?: Record<string, unknown>;
  unetConfig?: Record<string, unknown>;
  vaeConfig?: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
}): ModelSizes {
  const find = (c: ComponentSpec, kind: 'inputs' | 'outputs', name: string) =>
    c[kind].find((t) => t.name === name);
  const agree = (what: string, file: string, values: (number | undefined)[]): number | undefined => {
    const known = values.filter((v): v is number => v !== undefined);
    if (known.some((v) => v !== known[0])) {
      throw new ModelFolderError(file, `${what} disagrees between files and configs (${known.join(' vs ')})`);
    }
    return known[0];
  };

  const latentChannels = agree('latent channels', 'unet/model.onnx', [
    staticDim(find(s.unet, 'inputs', 'sample'), 1),
    staticDim(find(s.vae_decoder, 'inputs', 'latent_sample'), 1),
    configNumber(s.unetConfig, 'in_channels'),
    configNumber(s.vaeConfig, 'latent_channels'),
  ]);
  if (latentChannels === undefined) {
    throw new ModelFolderError(
      'unet/config.json',
      'is needed: the latent channel count is not static in unet/model.onnx',
    );
  }

  const hiddenSize = agree('hidden size', 'unet/model.onnx', [
    staticDim(find(s.text_encoder, 'outputs', 'last_hidden_state'), 2),
    staticDim(find(s.unet, 'inputs', 'encoder_hidden_states'), 2),
    configNumber(s.textConfig, 'hidden_size'),
    configNumber(s.unetConfig, 'cross_attention_dim'),
  ]);
  if (hiddenSize === undefined) {
    throw new ModelFolderError(
      'text_encoder/config.json',
      'is needed: the hidden size is not static in the ONNX files',
    );
  }

  const tokMax = configNumber(s.tokenizerConfig, 'model_max_length');
  const sequenceLength =
    staticDim(find(s.text_encoder, 'inputs', 'input_ids'), 1) ??
    configNumber(s.textConfig, 'max_position_embeddings') ??
    (tokMax !== undefined && tokMax < 100_000 ? tokMax : undefined);
  if (sequenceLength === undefined) {
    throw new ModelFolderError(
      'text_encoder/config.json',
      'is needed: the sequence length is not static in text_encoder/model.onnx',
    );
  }

  const blocks = s.vaeConfig?.block_out_channels;
  let vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : undefined;
  const latentH = staticDim(find(s.vae_decoder, 'inputs', 'latent_sample'), 2);
  const imageH = staticDim(find(s.vae_decoder, 'outputs', 'sample'), 2);
  if (vaeScaleFactor === undefined && latentH && imageH) vaeScaleFactor = imageH / latentH;
  if (vaeScaleFactor === undefined || !Number.isInteger(vaeScaleFactor)) {
    throw new ModelFolderError(
      'vae_decoder/config.json',
      'is needed with block_out_channels and scaling_factor (SD 1.5: [128, 256, 512, 512] and 0.18215): the VAE scale factor cannot be read from the ONNX file',
    );
  }
  if (!s.vaeConfig) {
    throw new ModelFolderError(
      'vae_decoder/config.json',
      'is needed for scaling_factor (SD 1.5: {"scaling_factor": 0.18215, "block_out_channels": [128, 256, 512, 512]})',
    );
  }
  // AutoencoderKL's default scaling_factor applies when a diffusers config omits the key.
  const scalingFactor = configNumber(s.vaeConfig, 'scaling_factor') ?? 0.18215;

  const unetSample = configNumber(s.unetConfig, 'sample_size');
  const defaultImageSize =
    unetSample !== undefined
      ? unetSample * vaeScaleFactor
      : (configNumber(s.vaeConfig, 'sample_size') ?? undefined);

  return { latentChannels, vaeScaleFactor, scalingFactor, hiddenSize, sequenceLength, defaultImageSize };
}
