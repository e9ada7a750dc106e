/**
 * Conversions between the pipelines' Float32Array buffers and onnxruntime tensors of the
 * dtype a model declares (float32, float16 or float64 for floats; int32 or int64 for ids).
 */
import * as ort from 'onnxruntime-node';
import { fromFloat16, toFloat16, type DType } from '../onnx/dtype.js';

/** A float tensor for a model input declared as `dtype`. */
export function floatTensor(
  data: Float32Array,
  shape: readonly number[],
  dtype: DType = 'float32',
): ort.Tensor {
  switch (dtype) {
    case 'float32':
      return new ort.Tensor('float32', data, shape);
    case 'float16':
      return new ort.Tensor('float16', toFloat16(data), shape);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(data), shape);
    default:
      throw new TypeError(`expected a float input type, got ${dtype}`);
  }
}

/** An integer tensor (token ids, timesteps) for a model input declared as `dtype`. */
export function intTensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType): ort.Tensor {
  switch (dtype) {
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(values), shape);
    case 'int64':
      return new ort.Tensor(
        'int64',
        BigInt64Array.from(Array.from(values), (v) => BigInt(Math.round(v))),
        shape,
      );
    case 'float32':
    case 'float16':
    case 'float64':
      return floatTensor(Float32Array.from(values), shape, dtype);
    default:
      throw new TypeError(`unsupported input type ${dtype}`);
  }
}

/** The values of a float output as a Float32Array (converting float16/float64). */
export function toFloat32(t: ort.Tensor): Float32Array {
  switch (t.type) {
    case 'float32':
      return t.data as Float32Array;
    case 'float16':
      return fromFloat16(t.data as Uint16Array);
    case 'float64':
      return Float32Array.from(t.data as Float64Array);
    default:
      throw new TypeError(`expected a float output, got ${t.type}`);
  }
}
