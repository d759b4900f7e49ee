import { crc32, inflateRawSync } from "node:zlib";

/** One entry of a zip file, as its central directory describes it, with its extracted bytes. */
export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly dosTime: number;
  readonly dosDate: number;
  /** Unix mode from the external attributes (made by Unix). */
  readonly mode: number;
  readonly madeBy: number;
  readonly extraFieldLength: number;
  readonly contents: Buffer;
}

/**
 * Reads a zip file (no ZIP64, no encryption: what a Lambda artifact is) and checks each entry's CRC, so
 * tests see exactly what Lambda will unpack.
 */
export function readZip(zip: Buffer): ZipEntry[] {
  const endOffset = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endOffset < 0) throw new Error("no end of central directory record");
  const count = zip.readUInt16LE(endOffset + 10);
  let offset = zip.readUInt32LE(endOffset + 16);
  const entries: ZipEntry[] = [];
  for (let index = 0; index < count; index++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error(`bad central directory entry ${index}`);
    const madeBy = zip.readUInt16LE(offset + 4);
    const method = zip.readUInt16LE(offset + 10);
    const dosTime = zip.readUInt16LE(offset + 12);
    const dosDate = zip.readUInt16LE(offset + 14);
    const crc = zip.readUInt32LE(offset + 16);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraFieldLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const externalAttributes = zip.readUInt32LE(offset + 38);
    const localOffset = zip.readUInt32LE(offset + 42);
    const name = zip.toString("utf8", offset + 46, offset + 46 + nameLength);
    const localNameLength = zip.readUInt16LE(localOffset + 26);
    const localExtraLength = zip.readUInt16LE(localOffset + 28);
    const dataStart = localOffset + 30 + localNameLength + localExtraLength;
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    const contents = method === 8 ? inflateRawSync(data) : method === 0 ? Buffer.from(data) : undefined;
    if (!contents) throw new Error(`${name}: unsupported compression method ${method}`);
    if (crc32(contents) !== crc) throw new Error(`${name}: CRC mismatch`);
    entries.push({
      name,
      method,
      dosTime,
      dosDate,
      mode: externalAttributes >>> 16,
      madeBy,
      extraFieldLength,
      contents,
    });
    offset += 46 + nameLength + extraFieldLength + commentLength;
  }
  return entries;
}
