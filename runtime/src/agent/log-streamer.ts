import { backoffDelay, sleep } from "./backoff";
import { TransientFailureError } from "./client";

/** What the control plane said to one upload. */
export type UploadOutcome =
  | { kind: "stored"; size: number; truncated: boolean; cancelRequested: boolean }
  /** 416 (gap) or 409 log-overlap: continue from the server's size. */
  | { kind: "resync"; size: number }
  /** 413: the chunk was over the server's cap. */
  | { kind: "too-large"; maxBytes?: number }
  /** The job is no longer this attempt's (superseded, ended, someone else's). */
  | { kind: "stop"; reason: string };

/** Uploads `data` at `offset`; throws TransientFailureError for a failure worth retrying. */
export type Uploader = (offset: number, data: string) => Promise<UploadOutcome>;

export interface LogStreamerOptions {
  upload: Uploader;
  /** Where this attempt's log starts (the claim's `log_offset`). */
  startOffset: number;
  /** Largest chunk, in bytes of UTF-8 (the server's `log_chunk_max_bytes`). */
  maxChunkBytes: number;
  /** How long output may wait before it is sent (unless a full chunk is ready). @default 500 */
  flushIntervalMs?: number;
  /** Output held while uploads lag behind; beyond it output is dropped (and the drop noted). @default 16 MiB */
  maxBufferedBytes?: number;
  onCancelRequested?: () => void;
  onStop?: (reason: string) => void;
  onWarning?: (message: string) => void;
  random?: () => number;
}

export interface LogStreamerSummary {
  /** The log's size on the server after the last upload. */
  size: number;
  uploadedBytes: number;
  droppedBytes: number;
  truncated: boolean;
  /** Output still waiting when `close` gave up (the server was unreachable). */
  unsentBytes: number;
}

/**
 * Streams a job's output to the control plane in byte-offset-addressed chunks, one upload at a time,
 * without ever blocking the job: output is buffered, sent every `flushIntervalMs` (or as soon as a full
 * chunk is ready), retried with backoff, resynchronised on 416/409 and, if the upload falls hopelessly
 * behind, dropped with a note in the log rather than slowing the job down.
 */
export class LogStreamer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private offset: number;
  private maxChunkBytes: number;
  private uploaded = 0;
  private dropped = 0;
  private droppedUnreported = 0;
  private truncated = false;
  private stopped = false;
  private closing = false;
  private pump?: Promise<void>;
  private wake?: () => void;
  private readonly abort = new AbortController();

  constructor(private readonly options: LogStreamerOptions) {
    this.offset = options.startOffset;
    this.maxChunkBytes = options.maxChunkBytes;
  }

  /** Takes output; returns at once. */
  write(chunk: Buffer | string): void {
    if (this.stopped || this.truncated) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    if (bytes.length === 0) return;
    const limit = this.options.maxBufferedBytes ?? 16 * 1024 * 1024;
    if (this.pendingBytes + bytes.length > limit) {
      this.dropped += bytes.length;
      this.droppedUnreported += bytes.length;
      return;
    }
    if (this.droppedUnreported > 0) {
      const note = Buffer.from(
        `\n[hybrid-cicd agent: ${this.droppedUnreported} bytes of output dropped: the log upload fell behind]\n`,
      );
      this.droppedUnreported = 0;
      this.pending.push(note);
      this.pendingBytes += note.length;
    }
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.pump ??= this.run();
    if (this.pendingBytes >= this.maxChunkBytes) this.wake?.();
  }

  /** Sends what is left; gives up (returning what could not be sent) after `deadlineMs`. */
  async close(deadlineMs = 60_000): Promise<LogStreamerSummary> {
    this.closing = true;
    this.wake?.();
    const timer = setTimeout(() => this.abort.abort(), deadlineMs);
    try {
      while (this.pump) await this.pump;
    } finally {
      clearTimeout(timer);
    }
    return this.summary();
  }

  /** Stops at once and forgets the rest (the job is no longer this agent's). */
  discard(): LogStreamerSummary {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    return this.summary();
  }

  private summary(): LogStreamerSummary {
    return {
      size: this.offset,
      uploadedBytes: this.uploaded,
      droppedBytes: this.dropped,
      truncated: this.truncated,
      unsentBytes: this.pendingBytes,
    };
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped && !this.truncated && this.pendingBytes > 0 && !this.abort.signal.aborted) {
        if (!this.closing && this.pendingBytes < this.maxChunkBytes) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.options.flushIntervalMs ?? 500);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wake = undefined;
        }
        await this.sendOne();
      }
    } finally {
      this.pump = undefined;
      // Output that arrived while the last upload was finishing gets a pump of its own.
      if (!this.stopped && !this.truncated && this.pendingBytes > 0 && !this.abort.signal.aborted) {
        this.pump = this.run();
      }
    }
  }

  /** One chunk, retried until stored, resynchronised, or the streamer is stopped. */
  private async sendOne(): Promise<void> {
    const { text, rawBytes } = this.nextChunk();
    if (rawBytes === 0) return;
    for (let failures = 0; !this.stopped && !this.abort.signal.aborted; failures++) {
      let outcome: UploadOutcome;
      try {
        outcome = await this.options.upload(this.offset, text);
      } catch (error) {
        const wait = error instanceof TransientFailureError ? error.retryAfterMs : undefined;
        this.options.onWarning?.(`log upload failed, retrying: ${(error as Error).message}`);
        await sleep(
          wait ?? backoffDelay(failures, { baseMs: 250, capMs: 10_000 }, this.options.random),
          this.abort.signal,
        );
        continue;
      }
      switch (outcome.kind) {
        case "stored":
          this.consume(rawBytes);
          this.uploaded += Buffer.byteLength(text, "utf8");
          this.offset = outcome.size;
          if (outcome.truncated) {
            this.truncated = true;
            this.dropped += this.pendingBytes;
            this.consume(this.pendingBytes);
          }
          if (outcome.cancelRequested) this.options.onCancelRequested?.();
          return;
        case "resync":
          // A repeat of a stored chunk is acknowledged as such, so these bytes were not stored: the
          // offset we had was wrong (a gap, or another writer's bytes). Send them where the log ends.
          this.options.onWarning?.(
            `log offset ${this.offset} resynchronised to the server's ${outcome.size}`,
          );
          this.offset = outcome.size;
          continue;
        case "too-large":
          this.maxChunkBytes = Math.max(
            1024,
            Math.min(outcome.maxBytes ?? this.maxChunkBytes, this.maxChunkBytes) >> 1,
          );
          return;
        case "stop":
          this.stopped = true;
          this.options.onStop?.(outcome.reason);
          return;
      }
    }
  }

  /**
   * Up to maxChunkBytes of pending output as text. A multi-byte character cut at the end stays for the
   * next chunk (unless the output is over); invalid bytes become U+FFFD, so the text is re-measured.
   */
  private nextChunk(): { text: string; rawBytes: number } {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [all];
    let take = Math.min(all.length, this.maxChunkBytes);
    if (take < all.length || !this.closing) take = completeUtf8Length(all.subarray(0, take));
    // Only the start of a character is pending: wait for the rest of it.
    if (take === 0) return { text: "", rawBytes: 0 };
    let text = all.subarray(0, take).toString("utf8");
    while (Buffer.byteLength(text, "utf8") > this.maxChunkBytes && take > 1) {
      take = completeUtf8Length(all.subarray(0, take >> 1)) || take >> 1;
      text = all.subarray(0, take).toString("utf8");
    }
    return { text, rawBytes: take };
  }

  private consume(bytes: number): void {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const rest = all.subarray(bytes);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
  }
}

/** The length of `bytes` without a multi-byte UTF-8 character that is cut off at the end. */
export function completeUtf8Length(bytes: Uint8Array): number {
  const end = bytes.length;
  let lead = end - 1;
  while (lead >= 0 && end - lead <= 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0 || end - lead > 4) return end;
  const first = bytes[lead]!;
  const needed = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return end - lead >= needed ? end : lead;
}
