import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../native-models/image/crc32.js';
import { readZip } from '../../test/helpers/archives.js';
import { ZipError, zipStore } from './zip-writer.js';

const text = (s: string) => new TextEncoder().encode(s);

describe('zipStore', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msp-zip-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes entries that read back byte for byte with correct CRC-32s', () => {
    const big = new Uint8Array(70_000).map((_, i) => (i * 31) % 251);
    const zip = zipStore([
      { name: '001.png', data: big },
      { name: 'ComicInfo.xml', data: text('<ComicInfo/>') },
      { name: 'empty.txt', data: new Uint8Array(0) },
      { name: 'ünïcode/ページ.txt', data: text('hi') },
    ]);
    const entries = readZip(zip);
    expect(entries.map((e) => e.name)).toEqual([
      '001.png',
      'ComicInfo.xml',
      'empty.txt',
      'ünïcode/ページ.txt',
    ]);
    expect(Buffer.from(entries[0].data).equals(Buffer.from(big))).toBe(true);
    expect(new TextDecoder().decode(entries[1].data)).toBe('<ComicInfo/>');
    for (const e of entries) expect(e.crc).toBe(crc32(e.data));
    expect(crc32(text('123456789'))).toBe(0xcbf43926); // the standard check value
  });

  it.skipIf(!existsSync('/usr/bin/unzip'))('is read and CRC-checked by unzip', async () => {
    const path = join(dir, 'book.cbz');
    await writeFile(
      path,
      zipStore([
        { name: '001.png', data: text('page one') },
        { name: '002.png', data: text('page two') },
      ]),
    );
    const listing = execFileSync('unzip', ['-l', path], { encoding: 'utf8' });
    expect(listing).toMatch(/001\.png/);
    expect(listing).toMatch(/2 files/);
    expect(execFileSync('unzip', ['-t', path], { encoding: 'utf8' })).toMatch(/No errors detected/);
    execFileSync('unzip', ['-o', '-q', path, '-d', join(dir, 'out')]);
    expect(await readFile(join(dir, 'out', '002.png'), 'utf8')).toBe('page two');
  });

  it('refuses names that would escape the folder or repeat', () => {
    const data = new Uint8Array(1);
    expect(() => zipStore([{ name: '../evil.png', data }])).toThrow(ZipError);
    expect(() => zipStore([{ name: '/abs.png', data }])).toThrow(/not a valid entry name/);
    expect(() => zipStore([{ name: '', data }])).toThrow(/not a valid entry name/);
    expect(() =>
      zipStore([
        { name: 'a.png', data },
        { name: 'a.png', data },
      ]),
    ).toThrow(/a\.png is listed twice/);
  });

  it('writes an empty archive as just the end record', () => {
    expect(zipStore([])).toHaveLength(22);
    expect(readZip(zipStore([]))).toEqual([]);
  });
});
