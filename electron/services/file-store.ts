/**
 * A content-addressed file store: every file is named by the SHA-256 of its bytes and lives at
 * `<root>/ab/cdef...` (the first two hex digits as a folder). Writes are atomic (temp file, fsync,
 * rename), so a crash leaves either the whole file or none; identical bytes are stored once.
 * Only hashes cross the API: {@link FileStore.pathOf} refuses anything that is not a SHA-256.
 *
 * @example
 * const store = new FileStore(join(dataDir, 'files'));
 * const { hash } = await store.put(pngBytes);
 * const bytes = await store.read(hash);
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../native-models/io/atomic-write.js';

const HASH_RE = /^[0-9a-f]{64}$/;

/** True for a lowercase hex SHA-256. */
export function isFileHash(value: unknown): value is string {
  return typeof value === 'string' && HASH_RE.test(value);
}

/** The lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class FileStore {
  constructor(readonly root: string) {}

  /**
   * The absolute path of a stored file's bytes.
   *
   * @throws Error for anything but a lowercase hex SHA-256 (so no client text becomes a path).
   */
  pathOf(hash: string): string {
    if (!isFileHash(hash)) throw new Error(`not a file hash: ${JSON.stringify(String(hash).slice(0, 80))}`);
    return join(this.root, hash.slice(0, 2), hash.slice(2));
  }

  /** True when the bytes of `hash` are stored. */
  has(hash: string): boolean {
    return isFileHash(hash) && existsSync(this.pathOf(hash));
  }

  /** Stores bytes (once per content) and returns their hash; `created` is false for a duplicate. */
  async put(bytes: Uint8Array): Promise<{ hash: string; size: number; created: boolean }> {
    const hash = sha256Hex(bytes);
    const path = this.pathOf(hash);
    const existing = await stat(path).catch(() => undefined);
    if (existing?.isFile() && existing.size === bytes.byteLength) {
      return { hash, size: bytes.byteLength, created: false };
    }
    await mkdir(join(this.root, hash.slice(0, 2)), { recursive: true });
    await writeFileAtomic(path, bytes);
    return { hash, size: bytes.byteLength, created: true };
  }

  /** The bytes of a stored file. */
  async read(hash: string): Promise<Uint8Array> {
    return new Uint8Array(await readFile(this.pathOf(hash)));
  }

  /** Removes a stored file (no error when it is absent). */
  async remove(hash: string): Promise<void> {
    await unlink(this.pathOf(hash)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /**
   * Removes temp files that a crash between write and rename left behind (`.name.pid.rand.tmp`),
   * and returns how many. Run at startup, before any write.
   */
  async removeStaleTempFiles(): Promise<number> {
    let removed = 0;
    const shards = await readdir(this.root).catch(() => [] as string[]);
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await readdir(join(this.root, shard)).catch(() => [] as string[])) {
        if (name.startsWith('.') && name.endsWith('.tmp')) {
          await unlink(join(this.root, shard, name)).catch(() => undefined);
          removed++;
        }
      }
    }
    return removed;
  }
}
