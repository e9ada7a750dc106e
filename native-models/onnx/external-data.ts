/**
 * Reading and writing ONNX model files whose large tensors live in a separate "external data" file
 * (TensorProto.data_location = EXTERNAL, with `location` / `offset` / `length` entries in external_data),
 * as Diffusers/Optimum exports do for models over protobuf's 2 GiB limit (`weights.pb`, `model.onnx_data`).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

import { decodeModel, encodeModel, OnnxFormatError } from './proto.js';
import { renameWithRetry, syncDirectory } from '../io/atomic-write.js';
import type { GraphProto, ModelProto, StringStringEntryProto, TensorProto } from './proto-types.js';
import { DataType } from './proto-types.js';

/** TensorProto.DataLocation.EXTERNAL */
const EXTERNAL = 1;
/** Tensors of at least this many bytes start on a 4096-byte boundary in the data file (page aligned). */
const PAGE = 4096;
/** Smaller tensors start on a 64-byte boundary. */
const SMALL_ALIGN = 64;
/** Largest single read/write handed to the OS (Node rejects more than 2 GiB per call). */
const IO_CHUNK = 1 << 30;

/** Problems with external data: missing files, bad locations, out-of-range offsets or lengths. */
export class ExternalDataError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ExternalDataError';
  }
}

export interface ReadModelOptions {
  /**
   * Load external tensor data into `rawData` (default true). With false, external tensors keep their
   * `dataLocation` / `externalData` and have no data, which is enough to validate huge models quickly.
   */
  loadExternalData?: boolean;
}

export interface WriteModelOptions {
  /**
   * Name of the external data file, relative to the model's folder (e.g. `model.onnx_data` or
   * `weights.pb`). When set, initializers with `rawData` of at least `sizeThreshold` bytes are stored there.
   */
  externalDataFile?: string;
  /** Minimum raw byte size of an initializer that goes to the external data file (default 1024). */
  sizeThreshold?: number;
}

/** Bytes per element of the data types whose external data length can be checked. */
const ELEMENT_BYTES = new Map<number, number>([
  [DataType.FLOAT, 4],
  [DataType.UINT8, 1],
  [DataType.INT8, 1],
  [DataType.UINT16, 2],
  [DataType.INT16, 2],
  [DataType.INT32, 4],
  [DataType.INT64, 8],
  [DataType.BOOL, 1],
  [DataType.FLOAT16, 2],
  [DataType.DOUBLE, 8],
  [DataType.UINT32, 4],
  [DataType.UINT64, 8],
  [DataType.BFLOAT16, 2],
]);

/** Calls `visit` for every tensor in the graph: initializers and attribute tensors, in subgraphs too. */
function forEachTensor(graph: GraphProto, visit: (t: TensorProto) => void): void {
  graph.initializer.forEach(visit);
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.t !== undefined) visit(a.t);
      a.tensors?.forEach(visit);
      if (a.g !== undefined) forEachTensor(a.g, visit);
      for (const g of a.graphs ?? []) forEachTensor(g, visit);
    }
  }
}

/**
 * Resolves an external data location against the model folder, rejecting absolute paths and paths that
 * leave the folder. Returns `{ file }` (absolute path) or `{ problem }` (why the location is unacceptable).
 */
function resolveLocation(modelDir: string, location: string): { file?: string; problem?: string } {
  if (location === '') return { problem: 'is empty' };
  if (location.includes('\0')) return { problem: 'contains a NUL character' };
  if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location)) {
    return { problem: 'is an absolute path; external data must be relative to the model folder' };
  }
  const file = path.resolve(modelDir, location);
  const rel = path.relative(modelDir, file);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    return { problem: 'points outside the model folder' };
  }
  return { file };
}

function entry(t: TensorProto, key: string): string | undefined {
  return t.externalData?.find((e) => e.key === key)?.value;
}

function parseByteCount(
  value: string | undefined,
  what: string,
  fail: (why: string) => never,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) fail(`has invalid ${what} '${value}'`);
  return Number(value);
}

function tensorByteSize(t: TensorProto): number | undefined {
  const bytesPerElement = ELEMENT_BYTES.get(t.dataType);
  if (bytesPerElement === undefined) return undefined;
  return t.dims.reduce((n, d) => n * d, bytesPerElement);
}

async function readFully(fh: FileHandle, target: Uint8Array, position: number): Promise<boolean> {
  for (let done = 0; done < target.length;) {
    const length = Math.min(IO_CHUNK, target.length - done);
    const { bytesRead } = await fh.read(target, done, length, position + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

/** Reads each external tensor's bytes into `rawData`, opening each data file once. */
async function loadExternalData(modelPath: string, model: ModelProto): Promise<void> {
  const modelDir = path.dirname(path.resolve(modelPath));
  const byFile = new Map<string, { location: string; tensors: TensorProto[] }>();
  forEachTensor(model.graph, (t) => {
    if (t.dataLocation !== EXTERNAL) return;
    const location = entry(t, 'location');
    const fail = (why: string): never => {
      throw new ExternalDataError(
        `${modelPath}: tensor '${t.name}' external data location '${location}' ${why}`,
      );
    };
    if (location === undefined) {
      throw new ExternalDataError(
        `${modelPath}: tensor '${t.name}' is marked external but has no 'location' entry`,
      );
    }
    const { file, problem } = resolveLocation(modelDir, location);
    if (file === undefined) return fail(problem ?? 'is invalid');
    let group = byFile.get(file);
    if (group === undefined) byFile.set(file, (group = { location, tensors: [] }));
    group.tensors.push(t);
  });

  for (const [file, { location, tensors }] of byFile) {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      const names = tensors.map((t) => `'${t.name}'`);
      const which =
        names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
      const code = (err as NodeJS.ErrnoException).code;
      const what =
        code === 'ENOENT' ? 'which does not exist' : `which cannot be opened (${code ?? String(err)})`;
      throw new ExternalDataError(
        `${modelPath}: tensor ${which} references external data file '${location}' (${file}), ${what}`,
        { cause: err },
      );
    }
    try {
      const fileSize = (await fh.stat()).size;
      // Read in file order so the OS sees mostly sequential access.
      const sorted = tensors
        .map((t) => {
          const fail = (why: string): never => {
            throw new ExternalDataError(
              `${modelPath}: tensor '${t.name}' in external data file '${location}' ${why}`,
            );
          };
          const offset = parseByteCount(entry(t, 'offset'), 'offset', fail) ?? 0;
          if (offset > fileSize) fail(`has offset ${offset} but the file has only ${fileSize} bytes`);
          const length = parseByteCount(entry(t, 'length'), 'length', fail) ?? fileSize - offset;
          if (offset + length > fileSize) {
            fail(`needs bytes ${offset}..${offset + length} but the file has only ${fileSize} bytes`);
          }
          const expected = tensorByteSize(t);
          if (expected !== undefined && expected !== length) {
            fail(
              `has ${length} bytes but dims [${t.dims.join(', ')}] of data type ${t.dataType} need ${expected}`,
            );
          }
          return { t, offset, length };
        })
        .sort((a, b) => a.offset - b.offset);
      for (const { t, offset, length } of sorted) {
        const data = new Uint8Array(length);
        if (!(await readFully(fh, data, offset))) {
          throw new ExternalDataError(
            `${modelPath}: external data file '${location}' ended while reading '${t.name}'`,
          );
        }
        t.rawData = data;
        delete t.externalData;
        delete t.dataLocation;
      }
    } finally {
      await fh.close();
    }
  }
}

/**
 * Reads and decodes an ONNX model file. External tensor data (`dataLocation` = 1) is read into `rawData`
 * and the external markers removed, unless `loadExternalData` is false. External files are resolved
 * relative to the model's folder; absolute locations and locations outside the folder are rejected.
 * Throws OnnxFormatError for a corrupt model and ExternalDataError for missing or inconsistent data files.
 *
 * @example
 * const model = await readModelFile('unet/model.onnx'); // also loads unet/weights.pb
 * const quick = await readModelFile('unet/model.onnx', { loadExternalData: false });
 */
export async function readModelFile(modelPath: string, options: ReadModelOptions = {}): Promise<ModelProto> {
  const file = await readFile(modelPath);
  let model: ModelProto;
  try {
    model = decodeModel(new Uint8Array(file.buffer, file.byteOffset, file.byteLength));
  } catch (err) {
    if (err instanceof OnnxFormatError) {
      throw new OnnxFormatError(`${modelPath}: ${err.message}`, err.offset, { cause: err });
    }
    throw err;
  }
  if (options.loadExternalData ?? true) await loadExternalData(modelPath, model);
  return model;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Returns `t` without external-data markers (a copy only if it had any). */
function withoutExternalMarkers(t: TensorProto): TensorProto {
  if (t.dataLocation === undefined && t.externalData === undefined) return t;
  const copy = { ...t };
  delete copy.dataLocation;
  delete copy.externalData;
  return copy;
}

/** Returns a copy of `graph` (and its subgraphs) with every initializer replaced by `map(initializer)`. */
function mapInitializers(graph: GraphProto, map: (t: TensorProto) => TensorProto): GraphProto {
  return {
    ...graph,
    initializer: graph.initializer.map(map),
    node: graph.node.map((node) => {
      if (!node.attribute.some((a) => a.g !== undefined || a.graphs !== undefined)) return node;
      return {
        ...node,
        attribute: node.attribute.map((a) => {
          const copy = { ...a };
          if (a.g !== undefined) copy.g = mapInitializers(a.g, map);
          if (a.graphs !== undefined) copy.graphs = a.graphs.map((g) => mapInitializers(g, map));
          return copy;
        }),
      };
    }),
  };
}

interface Placement {
  offset: number;
  bytes: Uint8Array;
}

/**
 * Moves initializers with at least `threshold` raw bytes to `location`; returns the rewritten model (the
 * input is not modified) and where each tensor's bytes go in the data file.
 */
function externalize(
  model: ModelProto,
  modelDir: string,
  location: string,
  threshold: number,
): { model: ModelProto; placements: Placement[] } {
  const target = path.resolve(modelDir, location);
  const placements: Placement[] = [];
  let size = 0;
  const graph = mapInitializers(model.graph, (t) => {
    const raw = t.rawData;
    if (raw === undefined) {
      // Already external (not loaded): keep the reference, unless it would be overwritten.
      const current = entry(t, 'location');
      if (
        t.dataLocation === EXTERNAL &&
        current !== undefined &&
        path.resolve(modelDir, current) === target
      ) {
        throw new ExternalDataError(
          `tensor '${t.name}' still references '${location}', which is about to be rewritten; ` +
            'read the model with loadExternalData first or choose another externalDataFile',
        );
      }
      return t;
    }
    if (raw.length < threshold) return withoutExternalMarkers(t);
    const offset = alignUp(size, raw.length >= PAGE ? PAGE : SMALL_ALIGN);
    size = offset + raw.length;
    placements.push({ offset, bytes: raw });
    const externalData: StringStringEntryProto[] = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    const copy: TensorProto = { ...t, externalData, dataLocation: EXTERNAL };
    delete copy.rawData;
    return copy;
  });
  return { model: { ...model, graph }, placements };
}

async function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const length = Math.min(IO_CHUNK, data.length - done);
    const { bytesWritten } = await fh.write(data, done, length, position + done);
    done += bytesWritten;
  }
}

/**
 * First half of an atomic write: `write` fills a new temp file next to `target`, which is then fsynced.
 * Returns the temp path for {@link commitTemp}; on failure the temp file is removed.
 */
async function writeTemp(target: string, write: (fh: FileHandle) => Promise<void>): Promise<string> {
  const stem = path.basename(target).slice(0, 100);
  const temp = path.join(path.dirname(target), `.${stem}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(temp, 'wx');
  try {
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  return temp;
}

/** Second half of an atomic write: renames the temp files over their targets, in order. */
async function commitTemps(pairs: { temp: string; target: string }[]): Promise<void> {
  try {
    for (const { temp, target } of pairs) await renameWithRetry(temp, target);
  } catch (err) {
    await Promise.all(pairs.map(({ temp }) => unlink(temp).catch(() => undefined)));
    throw err;
  }
  for (const dir of new Set(pairs.map(({ target }) => path.dirname(target)))) await syncDirectory(dir);
}

/**
 * Encodes `model` and writes it to `modelPath` atomically (temp file + rename). With `externalDataFile`,
 * initializers whose `rawData` has at least `sizeThreshold` bytes (default 1024) are written to that file
 * in the model's folder (tensors of 4 KiB or more at 4096-byte aligned offsets) and referenced from the
 * model with location/offset/length entries; the data file is written atomically too, before the model.
 * `model` itself is not modified. Initializers that are already external and not loaded are kept as they are.
 *
 * @example
 * await writeModelFile('out/unet.onnx', model, { externalDataFile: 'unet.onnx_data' });
 * const session = await ort.InferenceSession.create('out/unet.onnx');
 */
export async function writeModelFile(
  modelPath: string,
  model: ModelProto,
  options: WriteModelOptions = {},
): Promise<void> {
  const { externalDataFile, sizeThreshold = 1024 } = options;
  if (externalDataFile !== undefined) {
    const modelDir = path.dirname(path.resolve(modelPath));
    const { file, problem } = resolveLocation(modelDir, externalDataFile);
    if (file === undefined) {
      throw new ExternalDataError(
        `${modelPath}: external data file '${externalDataFile}' ${problem ?? 'is invalid'}`,
      );
    }
    if (file === path.resolve(modelPath)) {
      throw new ExternalDataError(`${modelPath}: the external data file must differ from the model file`);
    }
    if (!(sizeThreshold >= 0)) throw new RangeError(`sizeThreshold must be >= 0, got ${sizeThreshold}`);
    const { model: rewritten, placements } = externalize(
      model,
      modelDir,
      externalDataFile.split(path.sep).join('/'),
      sizeThreshold,
    );
    const bytes = encodeModel(rewritten); // fail on unencodable models before touching any file
    // Both files are fully written before either is renamed into place, so a failure while writing leaves
    // the previous model and data file as they were.
    const dataTemp = await writeTemp(file, async (fh) => {
      let end = 0;
      for (const { offset, bytes: data } of placements) {
        if (offset > end) await writeAll(fh, new Uint8Array(offset - end), end); // explicit zero padding
        await writeAll(fh, data, offset);
        end = offset + data.length;
      }
    });
    let modelTemp: string;
    try {
      modelTemp = await writeTemp(modelPath, (fh) => writeAll(fh, bytes, 0));
    } catch (err) {
      await unlink(dataTemp).catch(() => undefined);
      throw err;
    }
    await commitTemps([
      { temp: dataTemp, target: file },
      { temp: modelTemp, target: modelPath },
    ]);
    return;
  }
  const inline = mapInitializers(model.graph, (t) => (t.rawData ? withoutExternalMarkers(t) : t));
  const bytes = encodeModel({ ...model, graph: inline });
  await commitTemps([
    { temp: await writeTemp(modelPath, (fh) => writeAll(fh, bytes, 0)), target: modelPath },
  ]);
}
