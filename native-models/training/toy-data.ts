/**
 * A toy denoising task for engine tests and benchmarks: colored rectangles on a dark
 * background, noised to a random timestep of SD's scaled-linear schedule; the target is the
 * noise (epsilon prediction). Everything is drawn from the trainer's RNG, so runs resume exactly.
 */
import * as ort from 'onnxruntime-node';
import type { Rng } from '../tensor/random.js';
import { alphasCumprodFor, DEFAULT_SCHEDULER_CONFIG } from '../schedulers/scheduler.js';
import type { Batch, DataLoader } from './trainer.js';

const ALPHAS_CUMPROD = alphasCumprodFor(DEFAULT_SCHEDULER_CONFIG);

/** One clean image in [-1, 1], CHW. */
export function drawRectangle(rng: Rng, size: number, channels = 3): Float32Array {
  const img = new Float32Array(channels * size * size).fill(-0.8);
  const w = 3 + Math.floor(rng.nextFloat() * (size / 2));
  const h = 3 + Math.floor(rng.nextFloat() * (size / 2));
  const x0 = Math.floor(rng.nextFloat() * (size - w));
  const y0 = Math.floor(rng.nextFloat() * (size - h));
  for (let c = 0; c < channels; c++) {
    const value = rng.nextFloat() * 1.6 - 0.6;
    for (let y = y0; y < y0 + h; y++)
      for (let x = x0; x < x0 + w; x++) img[c * size * size + y * size + x] = value;
  }
  return img;
}

/** Batches { sample: x_t, timestep: t, target: noise }. */
export class ToyDenoisingData implements DataLoader {
  constructor(
    readonly batchSize: number,
    readonly size: number,
    readonly channels = 3,
  ) {}

  next(rng: Rng): Batch {
    const { batchSize: b, size, channels } = this;
    const per = channels * size * size;
    const sample = new Float32Array(b * per);
    const target = new Float32Array(b * per);
    const timestep = new BigInt64Array(b);
    for (let i = 0; i < b; i++) {
      const x0 = drawRectangle(rng, size, channels);
      const t = Math.floor(rng.nextFloat() * ALPHAS_CUMPROD.length);
      const a = Math.sqrt(ALPHAS_CUMPROD[t]);
      const s = Math.sqrt(1 - ALPHAS_CUMPROD[t]);
      const noise = rng.randn(per);
      for (let k = 0; k < per; k++) sample[i * per + k] = a * x0[k] + s * noise[k];
      target.set(noise, i * per);
      timestep[i] = BigInt(t);
    }
    const shape = [b, channels, size, size];
    return {
      sample: new ort.Tensor('float32', sample, shape),
      timestep: new ort.Tensor('int64', timestep, [b]),
      target: new ort.Tensor('float32', target, shape),
    };
  }
}
