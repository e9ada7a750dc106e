/**
 * CRC-32 as used by PNG chunks (and zlib/gzip/zip): reflected polynomial 0xEDB88320,
 * initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF. Table-driven, one byte per step.
 *
 * Node 20 has no `zlib.crc32`, hence this small implementation.
 */

const CRC_TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) {
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * Feeds `bytes` into a running CRC register. Start with `0xffffffff`, finish with
 * {@link crc32Finish}. Lets callers checksum several buffers (chunk type + chunk data) without copying.
 */
export function crc32Update(register: number, bytes: Uint8Array): number {
  let c = register >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  }
  return c >>> 0;
}

/** Final XOR of a running CRC register; returns an unsigned 32-bit value. */
export function crc32Finish(register: number): number {
  return (register ^ 0xffffffff) >>> 0;
}

/** CRC-32 of the concatenation of `parts`, as an unsigned 32-bit integer. */
export function crc32(...parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const part of parts) c = crc32Update(c, part);
  return crc32Finish(c);
}
