/**
 * Crash-safe file replacement: readers see either the old file or the complete new file, never a partial one.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Longest part of the target's name reused in the temp name, to stay well under NAME_MAX (255). */
const MAX_TEMP_STEM = 100;

/**
 * Writes `data` to `path` atomically:
 *
 * 1. writes to a uniquely named temp file in the same directory (created exclusively, so it never
 *    overwrites anything),
 * 2. fsyncs it,
 * 3. renames it over `path` (atomic on POSIX and, for same-volume renames, on Windows/NTFS),
 * 4. best-effort fsyncs the directory so the rename itself survives a crash (skipped on Windows).
 *
 * On any failure the temp file is removed, `path` keeps its previous contents (or stays absent) and the
 * original error is rethrown. The directory must already exist. The new file gets default permissions
 * (0o666 minus umask); the previous file's mode is not carried over. Strings are written as UTF-8.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const stem = basename(path).slice(0, MAX_TEMP_STEM);
  const tempPath = join(dir, `.${stem}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);

  let handle: FileHandle | undefined;
  let tempExists = false;
  try {
    handle = await open(tempPath, 'wx');
    tempExists = true;
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await renameWithRetry(tempPath, path);
    tempExists = false;
  } catch (err) {
    if (handle !== undefined) await handle.close().catch(ignore);
    if (tempExists) await unlink(tempPath).catch(ignore);
    throw err;
  }
  await syncDirectory(dir);
}

function ignore(): void {
  // Cleanup is best-effort; the original error is what the caller needs to see.
}

/**
 * On Windows, a rename onto a file that another process (virus scanner, indexer, viewer) briefly holds open
 * fails with EPERM/EACCES/EBUSY; retry a few times with a short backoff. Elsewhere, rename once.
 */
export async function renameWithRetry(from: string, to: string): Promise<void> {
  const retryable = new Set(['EPERM', 'EACCES', 'EBUSY']);
  const attempts = process.platform === 'win32' ? 6 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= attempts || code === undefined || !retryable.has(code)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
    }
  }
}

/** Best effort: makes a rename in `dir` durable (not possible on Windows or some file systems). */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync on Windows
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the data itself is already durable.
  } finally {
    await handle?.close().catch(ignore);
  }
}
