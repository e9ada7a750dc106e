import { afterAll, describe, expect, it } from 'vitest';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelFolder, ModelFolderError } from './model-folder.js';
import { decodeModel, encodeModel } from '../onnx/proto.js';
import type { ModelProto } from '../onnx/proto-types.js';
import { unetResidualLayout } from './unet.js';
import {
  cleanupTempDirs,
  foldedRandomModel,
  makeTempDir,
  sharedRandomModel,
} from '../../test/helpers/random-model.js';

afterAll(cleanupTempDirs);

/** A private copy of the random model to break. */
async function copyModel(): Promise<string> {
  const dir = join(await makeTempDir(), 'model');
  await cp(await sharedRandomModel(), dir, { recursive: true });
  return dir;
}

async function editModel(dir: string, component: string, edit: (m: ModelProto) => void): Promise<void> {
  const path = join(dir, component, 'model.onnx');
  const model = decodeModel(await readFile(path));
  edit(model);
  await writeFile(path, encodeModel(model));
}

async function expectProblem(dir: string, file: string, message: RegExp): Promise<void> {
  const error = await loadModelFolder(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelFolderError);
  expect((error as ModelFolderError).file).toBe(file);
  expect((error as Error).message).toMatch(message);
}

describe('loadModelFolder', () => {
  it('reports a missing component file by name', async () => {
    const dir = await copyModel();
    await rm(join(dir, 'unet', 'model.onnx'));
    await expectProblem(dir, 'unet/model.onnx', /is missing/);
  });

  it('reports a missing tokenizer or scheduler file by name', async () => {
    const dir = await copyModel();
    await rm(join(dir, 'tokenizer', 'merges.txt'));
    await expectProblem(dir, 'tokenizer/merges.txt', /is missing/);
    const dir2 = await copyModel();
    await writeFile(join(dir2, 'scheduler', 'scheduler_config.json'), '{"beta_start": "soon"');
    await expectProblem(dir2, 'scheduler/scheduler_config.json', /not valid JSON/);
  });

  it('reports a renamed input and lists what the model has', async () => {
    const dir = await copyModel();
    await editModel(dir, 'unet', (m) => {
      m.graph.input.find((i) => i.name === 'timestep')!.name = 'timesteps';
      for (const n of m.graph.node) n.input = n.input.map((x) => (x === 'timestep' ? 'timesteps' : x));
    });
    await expectProblem(
      dir,
      'unet/model.onnx',
      /missing input 'timestep' \(it has 'sample', 'timesteps', 'encoder_hidden_states'\)/,
    );
  });

  it('reports a wrong rank and a wrong dtype', async () => {
    const dir = await copyModel();
    await editModel(dir, 'vae_decoder', (m) => {
      m.graph.input[0].type!.tensorType!.shape!.dim.pop();
    });
    await expectProblem(dir, 'vae_decoder/model.onnx', /input 'latent_sample' has rank 3; expected 4/);
    const dir2 = await copyModel();
    await editModel(dir2, 'text_encoder', (m) => {
      m.graph.input[0].type!.tensorType!.elemType = 1;
    });
    await expectProblem(
      dir2,
      'text_encoder/model.onnx',
      /input 'input_ids' has type float32; expected int32 or int64/,
    );
  });

  it('reports a corrupt ONNX file', async () => {
    const dir = await copyModel();
    const path = join(dir, 'text_encoder', 'model.onnx');
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length >> 1));
    await expectProblem(dir, 'text_encoder/model.onnx', /is not a readable ONNX model/);
  });

  it('reports sizes that disagree between the files', async () => {
    const dir = await copyModel();
    const path = join(dir, 'unet', 'config.json');
    const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...config, cross_attention_dim: 768 }));
    await expectProblem(
      dir,
      'unet/model.onnx',
      /hidden size disagrees between files and configs \(32 vs 32 vs 32 vs 768\)/,
    );
  });

  it('needs a UNet that takes the residuals when a ControlNet is present', async () => {
    const dir = await copyModel();
    await rm(join(dir, 'unet_controlnet'), { recursive: true });
    await expectProblem(dir, 'unet_controlnet/model.onnx', /needs a UNet that takes its residuals/);
  });

  it('accepts residual inputs on unet/ itself and places each residual from unet/config.json', async () => {
    const model = await loadModelFolder(await foldedRandomModel());
    expect(model.components.unet_controlnet).toBe(model.components.unet);
    // the random model: block_out_channels [32, 64], one resnet per level
    const { down, mid } = unetResidualLayout([32, 64], 1);
    expect(down.map((p) => [p.channels, p.downsampling])).toEqual([
      [32, 0],
      [32, 0],
      [32, 1],
      [64, 1],
    ]);
    expect(model.unetResidualPlaces).toEqual({
      ...Object.fromEntries(down.map((p, i) => [`down_block_${i}_additional_residual`, p])),
      mid_block_additional_residual: mid,
    });
    expect((await loadModelFolder(await sharedRandomModel())).unetResidualPlaces).toBeUndefined();
  });

  it('needs unet/config.json to size the residuals of a unet/ with dynamic residual inputs', async () => {
    const dir = await foldedRandomModel();
    await rm(join(dir, 'unet', 'config.json'));
    await expectProblem(dir, 'unet/config.json', /residuals whose sizes are not static/);
    const dir2 = await foldedRandomModel();
    const path = join(dir2, 'unet', 'config.json');
    const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...config, layers_per_block: 2 }));
    await expectProblem(
      dir2,
      'unet/config.json',
      /with 6 down-block residuals, but unet\/model.onnx takes 4/,
    );
    await writeFile(path, JSON.stringify({ ...config, block_out_channels: [32, 48] }));
    await expectProblem(dir2, 'unet/config.json', /give 'down_block_3_additional_residual' 48 channels/);
  });

  it('places the residuals from static sizes when unet/config.json is absent', async () => {
    const dir = await foldedRandomModel();
    await rm(join(dir, 'unet', 'config.json'));
    // the random model's 8x8 latent: conv_in and level 0 at 8, level 0's downsampler and level 1 at 4
    const sides: Record<string, number> = { sample: 8, mid_block_additional_residual: 4 };
    [8, 8, 4, 4].forEach((side, i) => (sides[`down_block_${i}_additional_residual`] = side));
    await editModel(dir, 'unet', (m) => {
      for (const input of m.graph.input) {
        const side = sides[input.name];
        const dims = input.type!.tensorType!.shape!.dim;
        if (side !== undefined) dims[2] = dims[3] = { dimValue: side };
      }
    });
    const model = await loadModelFolder(dir);
    expect(model.unetResidualPlaces).toEqual({
      ...Object.fromEntries(
        unetResidualLayout([32, 64], 1).down.map((p, i) => [`down_block_${i}_additional_residual`, p]),
      ),
      mid_block_additional_residual: { channels: 64, downsampling: 1 },
    });
  });

  it('rejects an SDXL-style UNet input it cannot feed', async () => {
    const dir = await copyModel();
    await editModel(dir, 'unet', (m) => {
      m.graph.input.push({
        name: 'text_embeds',
        type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 1280 }] } } },
      });
    });
    await expectProblem(dir, 'unet/model.onnx', /unsupported input 'text_embeds'/);
  });

  it('reports a folder that does not exist', async () => {
    await expect(loadModelFolder('/no/such/folder')).rejects.toThrow(/\/no\/such\/folder: is not a folder/);
  });
});
