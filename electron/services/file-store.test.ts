import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import * as fsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileStore, isFileHash, sha256Hex } from './file-store.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof fsPromises>();
  return { ...actual, rename: vi.fn(actual.rename) };
});

let dir: string;
let store: FileStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msp-files-'));
  store = new FileStore(join(dir, 'files'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (text: string) => new TextEncoder().encode(text);

describe('FileStore', () => {
  it('stores bytes under files/ab/cdef... named by their SHA-256', async () => {
    const data = bytes('a panel');
    const { hash, size, created } = await store.put(data);
    expect(hash).toBe(sha256Hex(data));
    expect(size).toBe(7);
    expect(created).toBe(true);
    expect(store.pathOf(hash)).toBe(join(dir, 'files', hash.slice(0, 2), hash.slice(2)));
    expect(await store.read(hash)).toEqual(data);
    expect(store.has(hash)).toBe(true);
  });

  it('stores identical bytes once', async () => {
    const first = await store.put(bytes('same'));
    const second = await store.put(bytes('same'));
    expect(second).toEqual({ ...first, created: false });
    expect(await readdir(join(dir, 'files', first.hash.slice(0, 2)))).toEqual([first.hash.slice(2)]);
  });

  it('refuses anything but a hash as a file name', () => {
    for (const bad of ['../../etc/passwd', 'A'.repeat(64), 'a'.repeat(63), `${'a'.repeat(62)}/x`, '']) {
      expect(isFileHash(bad)).toBe(false);
      expect(() => store.pathOf(bad)).toThrow(/not a file hash/);
      expect(store.has(bad)).toBe(false);
    }
  });

  it('a crash between write and rename leaves no file under the hash and no temp file', async () => {
    vi.mocked(fsPromises.rename).mockRejectedValueOnce(
      Object.assign(new Error('power cut'), { code: 'EIO' }),
    );
    const data = bytes('half written');
    await expect(store.put(data)).rejects.toThrow('power cut');
    const hash = sha256Hex(data);
    expect(store.has(hash)).toBe(false);
    expect(await readdir(join(dir, 'files', hash.slice(0, 2)))).toEqual([]);
    // The next attempt writes the whole file.
    await store.put(data);
    expect(await store.read(hash)).toEqual(data);
  });

  it('removes temp files that a killed process left behind', async () => {
    const shard = join(dir, 'files', 'ab');
    await mkdir(shard, { recursive: true });
    await writeFile(join(shard, `.${'c'.repeat(62)}.123.abcdef.tmp`), 'partial');
    expect(await store.removeStaleTempFiles()).toBe(1);
    expect(await readdir(shard)).toEqual([]);
  });

  it('removes files', async () => {
    const { hash } = await store.put(bytes('gone'));
    await store.remove(hash);
    expect(existsSync(store.pathOf(hash))).toBe(false);
    await store.remove(hash); // absent: no error
  });
});
