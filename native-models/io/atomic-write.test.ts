import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from './atomic-write.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msp-atomic-test-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates a new file and leaves no temp file behind', async () => {
    const target = join(dir, 'out.png');
    await writeFileAtomic(target, new Uint8Array([1, 2, 3]));
    expect(new Uint8Array(await readFile(target))).toEqual(new Uint8Array([1, 2, 3]));
    expect(await readdir(dir)).toEqual(['out.png']);
  });

  it('replaces an existing file and accepts strings (UTF-8)', async () => {
    const target = join(dir, 'out.json');
    await writeFile(target, 'old contents that are longer than the new ones');
    await writeFileAtomic(target, '{"prompt":"猫"}');
    expect(await readFile(target, 'utf8')).toBe('{"prompt":"猫"}');
    expect(await readdir(dir)).toEqual(['out.json']);
  });

  it('fails without creating anything when the directory does not exist', async () => {
    const missing = join(dir, 'no-such-dir');
    await expect(writeFileAtomic(join(missing, 'out.png'), new Uint8Array([1]))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps the old target and removes the temp file when writing fails', async () => {
    const target = join(dir, 'image.png');
    await writeFile(target, 'original');
    // FileHandle is not exported; reach its prototype through a real handle.
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writeFile: (...args: unknown[]) => Promise<void> };
    await probe.close();
    await rm(join(dir, 'probe'));
    const spy = vi
      .spyOn(proto, 'writeFile')
      .mockRejectedValueOnce(new Error('ENOSPC: no space left on device'));

    await expect(writeFileAtomic(target, new Uint8Array(1000))).rejects.toThrow('no space left');
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await readFile(target, 'utf8')).toBe('original');
    expect(await readdir(dir)).toEqual(['image.png']);
  });

  it('removes the temp file when the rename fails (target is a directory)', async () => {
    const target = join(dir, 'taken');
    await mkdir(target);
    await writeFile(join(target, 'inside.txt'), 'keep me');
    await expect(writeFileAtomic(target, 'data')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['taken']);
    expect(await readFile(join(target, 'inside.txt'), 'utf8')).toBe('keep me');
  });

  it('handles concurrent writers to the same target', async () => {
    const target = join(dir, 'same.txt');
    const values = Array.from({ length: 8 }, (_, i) => `writer ${i} `.repeat(1000));
    await Promise.all(values.map((v) => writeFileAtomic(target, v)));
    expect(values).toContain(await readFile(target, 'utf8'));
    expect(await readdir(dir)).toEqual(['same.txt']);
  });

  it('copes with very long file names', async () => {
    const target = join(dir, `${'n'.repeat(240)}.png`);
    await writeFileAtomic(target, 'x');
    expect(await readFile(target, 'utf8')).toBe('x');
    expect((await readdir(dir)).length).toBe(1);
  });
});
