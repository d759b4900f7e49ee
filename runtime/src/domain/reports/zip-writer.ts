import { createHash } from "node:crypto";
import { type Readable, Transform } from "node:stream";
import yazl from "yazl";

export interface ZipEntry {
  path: string;
  /** A buffer, or a stream read only when the zip reaches this entry (so it may be large). */
  content: Buffer | string | (() => Readable);
}

export interface WrittenEntry {
  path: string;
  sha256: string;
  bytes: number;
}

/**
 * A zip written as a stream: entries in order, each hashed (SHA-256) as it passes, then `finish` is
 * called with every entry's hash and may add the last entries (the manifest and its signature).
 * Memory stays bounded by the buffers given, not by the streams.
 */
export function streamZip(
  entries: ZipEntry[],
  finish: (written: WrittenEntry[]) => Promise<ZipEntry[]> | ZipEntry[] = () => [],
): Readable {
  const zip = new yazl.ZipFile();
  const mtime = new Date();
  const written: Promise<WrittenEntry>[] = [];
  const add = (entry: ZipEntry) => {
    if (typeof entry.content === "function") {
      const hash = createHash("sha256");
      let bytes = 0;
      const source = entry.content;
      written.push(
        new Promise((resolve, reject) => {
          const tap = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              hash.update(chunk);
              bytes += chunk.length;
              callback(null, chunk);
            },
            flush(callback) {
              resolve({ path: entry.path, sha256: hash.digest("hex"), bytes });
              callback();
            },
          });
          zip.addReadStreamLazy(entry.path, { mtime }, (callback) => {
            const stream = source();
            stream.once("error", (error) => {
              reject(error);
              tap.destroy(error);
            });
            callback(null, stream.pipe(tap));
          });
        }),
      );
    } else {
      const buffer = Buffer.isBuffer(entry.content) ? entry.content : Buffer.from(entry.content, "utf8");
      zip.addBuffer(buffer, entry.path, { mtime });
      written.push(
        Promise.resolve({
          path: entry.path,
          sha256: createHash("sha256").update(buffer).digest("hex"),
          bytes: buffer.length,
        }),
      );
    }
  };
  for (const entry of entries) add(entry);
  Promise.all(written)
    .then(finish)
    .then((last) => {
      for (const entry of last) add(entry);
      zip.end();
    })
    .catch((error: unknown) => (zip.outputStream as Readable).destroy(error as Error));
  return zip.outputStream as Readable;
}
