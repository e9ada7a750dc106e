import { sharedData } from '../../test/helpers/shared-data.js';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ExternalDataError, readModelFile, writeModelFile } from './external-data.js';
import { decodeModel, encodeModel, OnnxFormatError } from './proto.js';
import type { ModelProto, TensorProto } from './proto-types.js';
import { DataType } from './proto-types.js';

const N = 64;

function seededFloats(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 32 - 0.5;
  });
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

const W = seededFloats(N * N, 1);
const B = seededFloats(N, 2);

/** Y = MatMul(X, W) + B with X: [batch, 64], W: [64, 64] and B: [64] as initializers; opset 21, IR 10. */
function matMulAddModel(): ModelProto {
  const floatType = (dims: ({ dimValue: number } | { dimParam: string })[]) => ({
    tensorType: { elemType: DataType.FLOAT, shape: { dim: dims } },
  });
  return {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 'msp-studio-tests',
    producerVersion: '0',
    domain: '',
    modelVersion: 1,
    docString: '',
    metadataProps: [],
    graph: {
      name: 'matmul_add',
      node: [
        { input: ['X', 'W'], output: ['XW'], name: 'matmul', opType: 'MatMul', domain: '', attribute: [] },
        { input: ['XW', 'B'], output: ['Y'], name: 'add', opType: 'Add', domain: '', attribute: [] },
      ],
      initializer: [
        { name: 'W', dims: [N, N], dataType: DataType.FLOAT, rawData: bytesOf(W) },
        { name: 'B', dims: [N], dataType: DataType.FLOAT, rawData: bytesOf(B) },
      ],
      input: [{ name: 'X', type: floatType([{ dimParam: 'batch' }, { dimValue: N }]) }],
      output: [{ name: 'Y', type: floatType([{ dimParam: 'batch' }, { dimValue: N }]) }],
      valueInfo: [],
    },
  };
}

/** Reference result in float64 from the float32 inputs. */
function reference(x: Float32Array, rows: number): Float64Array {
  const y = new Float64Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < N; c++) {
      let sum = B[c];
      for (let k = 0; k < N; k++) sum += x[r * N + k] * W[k * N + c];
      y[r * N + c] = sum;
    }
  }
  return y;
}

async function expectComputesMatMulAdd(source: string | Uint8Array): Promise<void> {
  const rows = 3;
  const x = seededFloats(rows * N, 3);
  const session =
    typeof source === 'string'
      ? await ort.InferenceSession.create(source)
      : await ort.InferenceSession.create(source);
  try {
    const { Y } = await session.run({ X: new ort.Tensor('float32', x, [rows, N]) });
    expect(Y.dims).toEqual([rows, N]);
    const got = Y.data as Float32Array;
    const want = reference(x, rows);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    expect(worst).toBeLessThan(1e-4);
  } finally {
    await session.release();
  }
}

function initializer(model: ModelProto, name: string): TensorProto {
  const t = model.graph.initializer.find((i) => i.name === name);
  if (t === undefined) throw new Error(`no initializer ${name}`);
  return t;
}

function externalEntries(t: TensorProto): Record<string, string> {
  return Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
}

let root: string;
let caseNo = 0;
/** A fresh folder per test. */
async function freshDir(): Promise<string> {
  const dir = path.join(root, `case${++caseNo}`);
  await mkdir(dir);
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'msp-external-data-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeModelFile', () => {
  it('stores large initializers in model.onnx_data; onnxruntime loads the model from its path', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    const model = matMulAddModel();
    await writeModelFile(modelPath, model, { externalDataFile: 'model.onnx_data' });

    expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'model.onnx_data']); // no temp files left
    const written = decodeModel(await readFile(modelPath));
    const w = initializer(written, 'W');
    expect(w.dataLocation).toBe(1);
    expect(w.rawData).toBeUndefined();
    expect(externalEntries(w)).toEqual({
      location: 'model.onnx_data',
      offset: '0',
      length: String(N * N * 4),
    });
    const b = initializer(written, 'B'); // 256 bytes: below the 1024-byte default threshold
    expect(b.dataLocation).toBeUndefined();
    expect(b.rawData).toEqual(bytesOf(B));
    expect(await readFile(path.join(dir, 'model.onnx_data'))).toEqual(Buffer.from(bytesOf(W)));

    // The caller's model is untouched.
    expect(model).toEqual(matMulAddModel());

    await expectComputesMatMulAdd(modelPath);
  });

  it('honours sizeThreshold and aligns offsets (weights.pb)', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'unet.onnx');
    const model = matMulAddModel();
    // Put B first so W (16 KiB) has to be moved to the next 4096-byte boundary.
    model.graph.initializer.reverse();
    await writeModelFile(modelPath, model, { externalDataFile: 'weights.pb', sizeThreshold: 0 });

    const written = decodeModel(await readFile(modelPath));
    expect(externalEntries(initializer(written, 'B'))).toEqual({
      location: 'weights.pb',
      offset: '0',
      length: '256',
    });
    expect(externalEntries(initializer(written, 'W'))).toEqual({
      location: 'weights.pb',
      offset: '4096',
      length: String(N * N * 4),
    });
    const data = await readFile(path.join(dir, 'weights.pb'));
    expect(data.length).toBe(4096 + N * N * 4);
    expect(data.subarray(256, 4096).every((v) => v === 0)).toBe(true);
    await expectComputesMatMulAdd(modelPath);
  });

  it('writes a self-contained model without externalDataFile', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel());
    expect(await readdir(dir)).toEqual(['model.onnx']);
    expect(decodeModel(await readFile(modelPath))).toEqual(matMulAddModel());
    await expectComputesMatMulAdd(modelPath);
  });

  it('replaces files atomically and leaves the old file intact when encoding fails', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel(), { externalDataFile: 'model.onnx_data' });
    const before = await readFile(modelPath);
    const dataBefore = await readFile(path.join(dir, 'model.onnx_data'));

    const broken = matMulAddModel();
    broken.graph.initializer[0].dims = [N, 0.5];
    await expect(writeModelFile(modelPath, broken, { externalDataFile: 'model.onnx_data' })).rejects.toThrow(
      /cannot encode 0.5 as an int64/,
    );
    expect(await readFile(modelPath)).toEqual(before);
    expect(await readFile(path.join(dir, 'model.onnx_data'))).toEqual(dataBefore);
    expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'model.onnx_data']);

    // Overwriting with a different model works and keeps the folder clean.
    const other = matMulAddModel();
    other.producerName = 'second';
    await writeModelFile(modelPath, other, { externalDataFile: 'model.onnx_data' });
    expect((await readModelFile(modelPath)).producerName).toBe('second');
    expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'model.onnx_data']);
  });

  it('rejects external data files outside the model folder', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    for (const bad of ['../escape.bin', path.join(dir, 'abs.bin'), '']) {
      await expect(writeModelFile(modelPath, matMulAddModel(), { externalDataFile: bad })).rejects.toThrow(
        ExternalDataError,
      );
    }
    await expect(
      writeModelFile(modelPath, matMulAddModel(), { externalDataFile: 'model.onnx' }),
    ).rejects.toThrow(/must differ from the model file/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses to overwrite a data file that unloaded external tensors still reference', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel(), { externalDataFile: 'model.onnx_data' });
    const lazy = await readModelFile(modelPath, { loadExternalData: false });
    await expect(writeModelFile(modelPath, lazy, { externalDataFile: 'model.onnx_data' })).rejects.toThrow(
      /still references 'model.onnx_data'/,
    );
    // Writing the lazily read model elsewhere in the same folder keeps its references valid.
    const copyPath = path.join(dir, 'copy.onnx');
    await writeModelFile(copyPath, lazy, { externalDataFile: 'copy.onnx_data' });
    await expectComputesMatMulAdd(copyPath);
  });
});

describe('readModelFile', () => {
  it('loads external data into rawData with identical bytes', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel(), { externalDataFile: 'weights.pb', sizeThreshold: 0 });

    const loaded = await readModelFile(modelPath);
    expect(loaded).toEqual(matMulAddModel());
    for (const t of loaded.graph.initializer) {
      expect(t.dataLocation).toBeUndefined();
      expect(t.externalData).toBeUndefined();
    }
    expect(initializer(loaded, 'W').rawData).toEqual(bytesOf(W));
    expect(initializer(loaded, 'B').rawData).toEqual(bytesOf(B));
    // The loaded model is self-contained again.
    await expectComputesMatMulAdd(encodeModel(loaded));
  });

  it('leaves external tensors alone with loadExternalData: false', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel(), { externalDataFile: 'model.onnx_data' });
    await unlink(path.join(dir, 'model.onnx_data')); // not even needed
    const lazy = await readModelFile(modelPath, { loadExternalData: false });
    const w = initializer(lazy, 'W');
    expect(w.dataLocation).toBe(1);
    expect(w.rawData).toBeUndefined();
    expect(externalEntries(w).location).toBe('model.onnx_data');
  });

  it('names the model, tensor and data file when the data file is missing', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel(), { externalDataFile: 'model.onnx_data' });
    await unlink(path.join(dir, 'model.onnx_data'));
    const err = await readModelFile(modelPath).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalDataError);
    expect((err as Error).message).toContain(modelPath);
    expect((err as Error).message).toContain("'W'");
    expect((err as Error).message).toContain("'model.onnx_data'");
    expect((err as Error).message).toContain('does not exist');
  });

  /** Writes a model whose tensor W points at `entries` (without checking them). */
  async function writeWithExternal(dir: string, entries: Record<string, string>): Promise<string> {
    const model = matMulAddModel();
    const w = initializer(model, 'W');
    delete w.rawData;
    w.dataLocation = 1;
    w.externalData = Object.entries(entries).map(([key, value]) => ({ key, value }));
    const modelPath = path.join(dir, 'model.onnx');
    await writeFile(modelPath, encodeModel(model));
    return modelPath;
  }

  it('rejects absolute locations and locations escaping the model folder', async () => {
    const dir = await freshDir();
    await writeFile(path.join(root, 'outside.bin'), bytesOf(W));
    const cases: [string, RegExp][] = [
      [
        path.join(root, 'outside.bin'),
        /tensor 'W' external data location '.*outside\.bin' is an absolute path/,
      ],
      [
        '../outside.bin',
        /tensor 'W' external data location '\.\.\/outside\.bin' points outside the model folder/,
      ],
      ['sub/../../outside.bin', /points outside the model folder/],
    ];
    for (const [location, message] of cases) {
      const modelPath = await writeWithExternal(dir, { location });
      await expect(readModelFile(modelPath)).rejects.toThrow(message);
    }
    // Subfolders inside the model folder are fine.
    await mkdir(path.join(dir, 'weights'));
    await writeFile(path.join(dir, 'weights', 'w.bin'), bytesOf(W));
    const ok = await readModelFile(await writeWithExternal(dir, { location: 'weights/w.bin' }));
    expect(initializer(ok, 'W').rawData).toEqual(bytesOf(W));
  });

  it('reads offset/length ranges, defaulting length to the rest of the file, and checks them', async () => {
    const dir = await freshDir();
    const padded = new Uint8Array(100 + W.byteLength);
    padded.set(bytesOf(W), 100);
    await writeFile(path.join(dir, 'data.bin'), padded);

    const viaRest = await readModelFile(
      await writeWithExternal(dir, { location: 'data.bin', offset: '100' }),
    );
    expect(initializer(viaRest, 'W').rawData).toEqual(bytesOf(W));

    const tooFar = await writeWithExternal(dir, {
      location: 'data.bin',
      offset: '200',
      length: String(W.byteLength),
    });
    await expect(readModelFile(tooFar)).rejects.toThrow(
      /tensor 'W' in external data file 'data.bin' needs bytes/,
    );

    const wrongSize = await writeWithExternal(dir, { location: 'data.bin', offset: '0', length: '16' });
    await expect(readModelFile(wrongSize)).rejects.toThrow(/has 16 bytes but dims \[64, 64\] .* need 16384/);

    const pastEnd = await writeWithExternal(dir, { location: 'data.bin', offset: '999999' });
    await expect(readModelFile(pastEnd)).rejects.toThrow(
      /has offset 999999 but the file has only 16484 bytes/,
    );

    const badOffset = await writeWithExternal(dir, { location: 'data.bin', offset: '-4' });
    await expect(readModelFile(badOffset)).rejects.toThrow(/invalid offset '-4'/);
  });

  it('reports corrupt model files as OnnxFormatError naming the file', async () => {
    const dir = await freshDir();
    const modelPath = path.join(dir, 'model.onnx');
    await writeModelFile(modelPath, matMulAddModel());
    const bytes = await readFile(modelPath);
    await writeFile(modelPath, bytes.subarray(0, bytes.length >> 1));
    const err = await readModelFile(modelPath).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnnxFormatError);
    expect((err as Error).message).toMatch(
      new RegExp(`^${modelPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: corrupt ONNX`),
    );
  });
});

const SUPER_RES = sharedData('onnx-thirdparty', 'pytorch_super_resolution.onnx');
if (!existsSync(SUPER_RES))
  console.warn(`external-data.test.ts: ${SUPER_RES} not found; skipping real-model test`);

describe('real model', () => {
  it.skipIf(!existsSync(SUPER_RES))(
    'pytorch_super_resolution.onnx written with external data gives the same outputs',
    async () => {
      const dir = await freshDir();
      const model = await readModelFile(SUPER_RES);
      const modelPath = path.join(dir, 'super_res.onnx');
      await writeModelFile(modelPath, model, { externalDataFile: 'super_res.onnx_data' });
      const externalCount = decodeModel(await readFile(modelPath)).graph.initializer.filter(
        (t) => t.dataLocation === 1,
      ).length;
      expect(externalCount).toBeGreaterThan(0);
      expect((await stat(modelPath)).size).toBeLessThan(10_000);

      const x = seededFloats(224 * 224, 9).map((v) => v + 0.5);
      const feeds = { input: new ort.Tensor('float32', x, [1, 1, 224, 224]) };
      const run = async (p: string): Promise<Float32Array> => {
        const session = await ort.InferenceSession.create(p);
        try {
          return (await session.run(feeds)).output.data as Float32Array;
        } finally {
          await session.release();
        }
      };
      const expected = await run(SUPER_RES);
      const actual = await run(modelPath);
      expect(actual.length).toBe(expected.length);
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
      expect(worst).toBeLessThanOrEqual(1e-6);

      const reread = await readModelFile(modelPath);
      for (const t of model.graph.initializer) {
        expect(initializer(reread, t.name).rawData, t.name).toEqual(t.rawData);
      }
    },
  );
});
