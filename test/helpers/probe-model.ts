/**
 * A "probe" model folder: the random model with its UNet replaced by one whose noise prediction
 * is a known function, so tests can check what the pipelines feed it:
 *
 *   out_sample = a * sample + b * spatial_mean(sample) + v(encoder_hidden_states)
 *   v = mean over tokens of encoder_hidden_states[:, :, :C], broadcast over the image
 *
 * unet_controlnet adds mean(mid_block_additional_residual) to that, so a test sees whether the
 * ControlNet residuals arrived.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Graph } from '../../native-models/onnx/graph.js';
import { decodeModel } from '../../native-models/onnx/proto.js';
import { makeTempDir, sharedRandomModel } from './random-model.js';

export interface ProbeCoefficients {
  a: number;
  b: number;
}

function probeUnet(c: ProbeCoefficients, residuals?: { name: string; shape: number[] }[]): Uint8Array {
  const g = new Graph({ name: 'probe_unet' });
  const sample = g.input('sample', [1, 4, 8, 8]);
  g.input('timestep', [1], 'int64');
  const ehs = g.input('encoder_hidden_states', [1, 16, 32]);
  const tokens = g.op1('ReduceMean', [ehs, g.ints([1])], { keepdims: 0 });
  const v = g.op1('Unsqueeze', [
    g.op1('Slice', [tokens, g.ints([0]), g.ints([4]), g.ints([1])]),
    g.ints([2, 3]),
  ]);
  const mean = g.op1('ReduceMean', [sample, g.ints([2, 3])], { keepdims: 1 });
  let out = g.op1('Add', [
    g.op1('Add', [g.op1('Mul', [sample, g.scalar(c.a)]), g.op1('Mul', [mean, g.scalar(c.b)])]),
    v,
  ]);
  const dynamicAxes: Record<string, Record<number, string>> = {
    sample: { 0: 'batch', 2: 'height', 3: 'width' },
    timestep: { 0: 'tb' },
    encoder_hidden_states: { 0: 'batch' },
    out_sample: { 0: 'batch', 2: 'height', 3: 'width' },
  };
  for (const r of residuals ?? []) {
    const x = g.input(r.name, r.shape);
    dynamicAxes[r.name] = { 0: 'batch', 2: `h_${r.name}`, 3: `w_${r.name}` };
    if (r.name === 'mid_block_additional_residual') {
      out = g.op1('Add', [out, g.op1('ReduceMean', [x, g.ints([1, 2, 3])], { keepdims: 1 })]);
    }
  }
  g.output(out, 'out_sample');
  return g.toBytes({ dynamicAxes });
}

/** A copy of the random model with probe UNets. */
export async function probeModel(c: ProbeCoefficients): Promise<string> {
  const dir = join(await makeTempDir(), 'probe');
  await cp(await sharedRandomModel(), dir, { recursive: true });
  await writeFile(join(dir, 'unet', 'model.onnx'), probeUnet(c));
  const cnUnet = decodeModel(await readFile(join(dir, 'unet_controlnet', 'model.onnx')));
  const residuals = cnUnet.graph.input
    .filter((i) => i.name.endsWith('_additional_residual'))
    .map((i) => ({
      name: i.name,
      shape: (i.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimValue ?? 1),
    }));
  await writeFile(join(dir, 'unet_controlnet', 'model.onnx'), probeUnet(c, residuals));
  return dir;
}
