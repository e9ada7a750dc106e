import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/graph.js';
import { platformGpuProviders, Runtime, SessionError } from './session.js';
import { floatTensor, intTensor, toFloat32 } from './tensors.js';

function negModel(): Uint8Array {
  const g = new Graph();
  g.output(g.op1('Neg', [g.input('x', [2])]), 'y');
  return g.toBytes();
}

describe('Runtime', () => {
  it('runs on the CPU when asked, with no fallback', async () => {
    const runtime = new Runtime({ executionProvider: 'cpu', intraOpNumThreads: 1 });
    const s = await runtime.session(negModel(), 'neg');
    expect(s.executionProvider).toBe('cpu');
    expect(s.fallbackReason).toBeUndefined();
    const out = await s.run({ x: floatTensor(Float32Array.of(1, -2), [2]) });
    expect(Array.from(toFloat32(out.y))).toEqual([-1, 2]);
    await runtime.dispose();
  });

  it('falls back to the CPU when a GPU provider cannot load, and says why', async () => {
    const runtime = new Runtime({ executionProvider: 'cuda', intraOpNumThreads: 1 });
    const s = await runtime.session(negModel(), 'neg');
    // These machines have no CUDA provider library; a machine with one runs on cuda.
    if (s.executionProvider === 'cpu') expect(s.fallbackReason).toMatch(/^cuda unavailable/);
    else expect(s.executionProvider).toBe('cuda');
    await runtime.dispose();
  });

  it('tries the platform GPU provider first in auto mode and always ends with the CPU', () => {
    expect(platformGpuProviders('linux', 'x64')).toEqual(['cuda']);
    expect(platformGpuProviders('win32', 'x64')).toEqual(['dml']);
    expect(platformGpuProviders('darwin', 'arm64')).toEqual(['coreml']);
    expect(platformGpuProviders('linux', 'arm64')).toEqual([]);
    expect(new Runtime().candidateProviders().at(-1)).toBe('cpu');
    expect(new Runtime({ executionProvider: 'cpu' }).candidateProviders()).toEqual(['cpu']);
  });

  it('caches sessions by key until released', async () => {
    const runtime = new Runtime({ executionProvider: 'cpu', intraOpNumThreads: 1 });
    const a = await runtime.session(negModel(), 'neg');
    expect(await runtime.session(negModel(), 'neg')).toBe(a);
    await runtime.release('neg');
    expect(await runtime.session(negModel(), 'neg')).not.toBe(a);
    await runtime.dispose();
  });

  it('rejects an unknown provider and a model onnxruntime cannot load', async () => {
    expect(() => new Runtime({ executionProvider: 'tpu' as never })).toThrow(
      /unknown execution provider "tpu"/,
    );
    const runtime = new Runtime({ executionProvider: 'cpu' });
    await expect(runtime.session(Uint8Array.of(1, 2, 3), 'junk')).rejects.toBeInstanceOf(SessionError);
    // a failed creation is not cached
    await expect(runtime.session(Uint8Array.of(1, 2, 3), 'junk')).rejects.toThrow(
      /junk: onnxruntime cannot load the model/,
    );
  });
});

describe('tensors', () => {
  it('converts floats to the declared dtype and back', () => {
    const data = Float32Array.of(0.5, -1.25, 3);
    expect(Array.from(toFloat32(floatTensor(data, [3], 'float16')))).toEqual([0.5, -1.25, 3]);
    expect(Array.from(toFloat32(floatTensor(data, [3], 'float64')))).toEqual([0.5, -1.25, 3]);
    expect(intTensor([1, 2], [2], 'int64').data).toEqual(BigInt64Array.of(1n, 2n));
    expect(intTensor([1, 2], [2], 'int32').data).toEqual(Int32Array.of(1, 2));
    expect(() => toFloat32(new ort.Tensor('int32', Int32Array.of(1), [1]))).toThrow(
      /expected a float output/,
    );
  });
});
