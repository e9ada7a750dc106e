/**
 * A store-only ZIP writer (no compression: the entries of a comic book archive are PNGs, which are
 * compressed already). Writes local file headers, the data, the central directory and the end record
 * as in PKWARE's APPNOTE 4.3, with CRC-32 checksums; no ZIP64, so the archive and every entry must
 * stay under 4 GiB and 65535 entries.
 *
 * @example
 * const cbz = zipStore([
 *   { name: '001.png', data: page1 },
 *   { name: 'ComicInfo.xml', data: new TextEncoder().encode(xml) },
 * ]);
 */
import { crc32 } from '../../native-models/image/crc32.js';

export interface ZipEntry {
  /** The path inside the archive, `/`-separated (e.g. `001.png`). */
  name: string;
  data: Uint8Array;
  /** Modification time recorded for the entry (default: now). */
  modified?: Date;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** Version 2.0: what a stored entry needs to be extracted. */
const VERSION = 20;
/** General purpose flag bit 11: names are UTF-8. */
const UTF8_NAMES = 0x0800;
const MAX_32 = 0xffffffff;

/** A ZIP that cannot be written as asked (too big, a bad entry name). */
export class ZipError extends Error {
  override name = 'ZipError';
}

/**
 * The bytes of a ZIP archive holding `entries` uncompressed, in the given order.
 *
 * @throws ZipError for an empty or absolute name, `..` in a name, a repeated name, or an archive that
 *   would need ZIP64.
 */
export function zipStore(entries: readonly ZipEntry[]): Uint8Array {
  if (entries.length > 0xffff) throw new ZipError(`a ZIP holds at most 65535 entries, got ${entries.length}`);
  const encoder = new TextEncoder();
  const seen = new Set<string>();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;

  for (const entry of entries) {
    // 1. Check the name: relative, no parent references, unique.
    const name = entry.name;
    if (name === '' || name.startsWith('/') || name.includes('\\') || name.split('/').includes('..')) {
      throw new ZipError(`${JSON.stringify(name)} is not a valid entry name (use a relative path with /)`);
    }
    if (seen.has(name)) throw new ZipError(`the entry ${name} is listed twice`);
    seen.add(name);
    const nameBytes = encoder.encode(name);
    if (nameBytes.length > 0xffff) throw new ZipError(`the entry name ${name.slice(0, 40)}... is too long`);
    if (entry.data.byteLength > MAX_32) throw new ZipError(`${name} is larger than 4 GiB`);

    // 2. The local header, then the data.
    const crc = crc32(entry.data);
    const { time, date } = dosDateTime(entry.modified ?? new Date());
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, LOCAL_HEADER, true);
    local.setUint16(4, VERSION, true);
    local.setUint16(6, UTF8_NAMES, true);
    local.setUint16(8, 0, true); // method: stored
    local.setUint16(10, time, true);
    local.setUint16(12, date, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, entry.data.byteLength, true); // compressed size
    local.setUint32(22, entry.data.byteLength, true); // uncompressed size
    local.setUint16(26, nameBytes.length, true);
    local.setUint16(28, 0, true); // extra field length
    locals.push(new Uint8Array(local.buffer), nameBytes, entry.data);

    // 3. Its central directory record, pointing back at the local header.
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, CENTRAL_HEADER, true);
    central.setUint16(4, VERSION, true); // made by: MS-DOS compatible, 2.0
    central.setUint16(6, VERSION, true);
    central.setUint16(8, UTF8_NAMES, true);
    central.setUint16(10, 0, true);
    central.setUint16(12, time, true);
    central.setUint16(14, date, true);
    central.setUint32(16, crc, true);
    central.setUint32(20, entry.data.byteLength, true);
    central.setUint32(24, entry.data.byteLength, true);
    central.setUint16(28, nameBytes.length, true);
    // extra, comment, disk number, internal and external attributes: all zero
    central.setUint32(42, offset, true);
    centrals.push(new Uint8Array(central.buffer), nameBytes);

    offset += 30 + nameBytes.length + entry.data.byteLength;
    if (offset > MAX_32)
      throw new ZipError('the archive would be larger than 4 GiB (ZIP64 is not supported)');
  }

  // 4. The end of central directory record.
  const centralSize = centrals.reduce((n, b) => n + b.byteLength, 0);
  if (offset + centralSize > MAX_32) throw new ZipError('the archive would be larger than 4 GiB');
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, END_OF_CENTRAL_DIRECTORY, true);
  end.setUint16(8, entries.length, true); // entries on this disk
  end.setUint16(10, entries.length, true); // entries in total
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  return concat([...locals, ...centrals, new Uint8Array(end.buffer)]);
}

/** MS-DOS time and date fields (local time, 2-second resolution, years 1980-2107). */
function dosDateTime(at: Date): { time: number; date: number } {
  const year = Math.min(2107, Math.max(1980, at.getFullYear()));
  return {
    time: (at.getHours() << 11) | (at.getMinutes() << 5) | Math.floor(at.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((at.getMonth() + 1) << 5) | at.getDate(),
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
