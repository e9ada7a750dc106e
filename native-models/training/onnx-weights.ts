/**
 * Reading a trained model's weights back from its ONNX file, e.g. to grow, refine or fine-tune it.
 *
 * @example
 * const unetWeights = await readOnnxWeights('native-models/weights/tiny-sd/unet/model.onnx');
 */
import { readFile } from 'node:fs/promises';
import { decodeModel } from '../onnx/proto.js';
import { tensorDataOf } from '../onnx/graph.js';
import { fromFloat16 } from '../onnx/dtype.js';
import type { ParameterTensor } from './optimizers.js';

/** Float32 weights of an ONNX model by name (float16-stored weights are read back through their `__fp16` copies). */
export async function readOnnxWeights(path: string): Promise<ParameterTensor[]> {
  const model = decodeModel(await readFile(path));
  const out: ParameterTensor[] = [];
  for (const t of model.graph.initializer) {
    const { data, dtype, shape } = tensorDataOf(t);
    if (dtype === 'float16' && t.name.endsWith('__fp16')) {
      out.push({ name: t.name.slice(0, -'__fp16'.length), shape, data: fromFloat16(data as Uint16Array) });
    } else if (dtype === 'float32') {
      out.push({ name: t.name, shape, data: Float32Array.from(data as Float32Array) });
    }
  }
  return out;
}
