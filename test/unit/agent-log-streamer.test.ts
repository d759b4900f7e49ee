import { describe, expect, it } from "vitest";
import { TransientFailureError } from "../../runtime/src/agent/client";
import { completeUtf8Length, LogStreamer, type UploadOutcome } from "../../runtime/src/agent/log-streamer";

/** A control plane's log endpoint in memory, with the same offset rules. */
class FakeLog {
  data = Buffer.alloc(0);
  calls: { offset: number; data: string }[] = [];
  next: (UploadOutcome | Error | undefined)[] = [];
  cancel = false;
  upload = async (offset: number, data: string): Promise<UploadOutcome> => {
    this.calls.push({ offset, data });
    const scripted = this.next.shift();
    if (scripted instanceof Error) throw scripted;
    if (scripted) return scripted;
    if (offset !== this.data.length) return { kind: "resync", size: this.data.length };
    this.data = Buffer.concat([this.data, Buffer.from(data, "utf8")]);
    return { kind: "stored", size: this.data.length, truncated: false, cancelRequested: this.cancel };
  };
}

function streamer(log: FakeLog, options: Partial<ConstructorParameters<typeof LogStreamer>[0]> = {}) {
  return new LogStreamer({
    upload: log.upload,
    startOffset: 0,
    maxChunkBytes: 1024,
    flushIntervalMs: 5,
    random: () => 0,
    ...options,
  });
}

describe("the log streamer", () => {
  it("sends output in order, gathering small writes into one chunk", async () => {
    const log = new FakeLog();
    const logs = streamer(log, { flushIntervalMs: 50 });
    logs.write("hello ");
    logs.write(Buffer.from("world\n"));
    const summary = await logs.close();
    expect(log.data.toString()).toBe("hello world\n");
    expect(log.calls).toEqual([{ offset: 0, data: "hello world\n" }]);
    expect(summary).toMatchObject({ size: 12, uploadedBytes: 12, droppedBytes: 0, unsentBytes: 0 });
  });

  it("splits large output into chunks at consecutive offsets", async () => {
    const log = new FakeLog();
    const logs = streamer(log);
    const text = "0123456789".repeat(300);
    logs.write(text);
    await logs.close();
    expect(log.data.toString()).toBe(text);
    expect(log.calls.map((call) => call.offset)).toEqual([0, 1024, 2048]);
    expect(log.calls.every((call) => Buffer.byteLength(call.data) <= 1024)).toBe(true);
  });

  it("never cuts a UTF-8 character in two, even when its bytes arrive separately", async () => {
    const log = new FakeLog();
    const logs = streamer(log);
    const text = `${"a".repeat(1023)}é and 😀 too`;
    const bytes = Buffer.from(text);
    for (let index = 0; index < bytes.length; index += 7) logs.write(bytes.subarray(index, index + 7));
    await logs.close();
    expect(log.data.toString()).toBe(text);
    expect(log.calls.some((call) => call.data.includes("\uFFFD"))).toBe(false);
  });

  it("retries a failed upload with the same chunk at the same offset", async () => {
    const log = new FakeLog();
    log.next = [new TransientFailureError("503"), new Error("socket hang up")];
    const warnings: string[] = [];
    const logs = streamer(log, { onWarning: (message) => warnings.push(message) });
    logs.write("once\n");
    await logs.close();
    expect(log.calls).toEqual([
      { offset: 0, data: "once\n" },
      { offset: 0, data: "once\n" },
      { offset: 0, data: "once\n" },
    ]);
    expect(log.data.toString()).toBe("once\n");
    expect(warnings).toHaveLength(2);
  });

  it("continues from the server's size after a 416", async () => {
    const log = new FakeLog();
    log.data = Buffer.from("attempt 1\n");
    const logs = streamer(log, { startOffset: 0 });
    logs.write("attempt 2\n");
    await logs.close();
    expect(log.calls.map((call) => call.offset)).toEqual([0, 10]);
    expect(log.data.toString()).toBe("attempt 1\nattempt 2\n");
  });

  it("sends its chunk where the log ends after a 409 overlap (someone else's bytes)", async () => {
    const log = new FakeLog();
    log.data = Buffer.from("abcd");
    log.next = [{ kind: "resync", size: 4 }];
    const logs = streamer(log);
    logs.write("efgh");
    await logs.close();
    expect(log.calls).toEqual([
      { offset: 0, data: "efgh" },
      { offset: 4, data: "efgh" },
    ]);
    expect(log.data.toString()).toBe("abcdefgh");
  });

  it("halves its chunks when the server says one is too large", async () => {
    const log = new FakeLog();
    log.next = [{ kind: "too-large", maxBytes: 2048 }];
    const logs = streamer(log, { maxChunkBytes: 4096 });
    logs.write("z".repeat(4096));
    await logs.close();
    expect(log.calls[0]!.data).toHaveLength(4096);
    expect(log.calls.slice(1).map((call) => call.data.length)).toEqual([1024, 1024, 1024, 1024]);
    expect(log.data.length).toBe(4096);
  });

  it("never blocks the job: beyond its buffer it drops output and says so in the log", async () => {
    const log = new FakeLog();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const upload = async (offset: number, data: string) => {
      await gate;
      return log.upload(offset, data);
    };
    const logs = streamer(log, { upload, maxBufferedBytes: 100, flushIntervalMs: 1 });
    logs.write("a".repeat(100));
    await new Promise((resolve) => setTimeout(resolve, 20));
    logs.write("b".repeat(100));
    logs.write("c".repeat(50));
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    logs.write("after\n");
    const summary = await logs.close();
    expect(summary.droppedBytes).toBe(150);
    expect(log.data.toString()).toBe(
      `${"a".repeat(100)}\n[hybrid-cicd agent: 150 bytes of output dropped: the log upload fell behind]\nafter\n`,
    );
  });

  it("stops at once when the job is no longer the agent's", async () => {
    const log = new FakeLog();
    log.next = [{ kind: "stop", reason: "attempt 1 has been superseded" }];
    const stops: string[] = [];
    const logs = streamer(log, { onStop: (reason) => stops.push(reason) });
    logs.write("zombie output");
    await logs.close();
    logs.write("more");
    await logs.close();
    expect(stops).toEqual(["attempt 1 has been superseded"]);
    expect(log.calls).toHaveLength(1);
  });

  it("stops sending once the server has truncated the log", async () => {
    const log = new FakeLog();
    log.next = [{ kind: "stored", size: 10, truncated: true, cancelRequested: false }];
    const logs = streamer(log);
    logs.write("x".repeat(20));
    await logs.close();
    logs.write("ignored");
    const summary = await logs.close();
    expect(summary).toMatchObject({ truncated: true, size: 10 });
    expect(log.calls).toHaveLength(1);
  });

  it("passes on a cancellation carried by an upload reply", async () => {
    const log = new FakeLog();
    log.cancel = true;
    let cancelled = 0;
    const logs = streamer(log, { onCancelRequested: () => cancelled++ });
    logs.write("working\n");
    await logs.close();
    expect(cancelled).toBe(1);
  });

  it("gives up after its deadline when the control plane stays away, reporting what is unsent", async () => {
    const logs = streamer(new FakeLog(), {
      upload: async () => {
        throw new TransientFailureError("ECONNREFUSED", 10);
      },
    });
    logs.write("lost\n");
    const summary = await logs.close(100);
    expect(summary.unsentBytes).toBe(5);
  });
});

describe("completeUtf8Length", () => {
  it("drops only a character cut off at the end", () => {
    const euro = Buffer.from("€"); // 3 bytes
    expect(completeUtf8Length(Buffer.from("abc"))).toBe(3);
    expect(completeUtf8Length(Buffer.concat([Buffer.from("a"), euro]))).toBe(4);
    expect(completeUtf8Length(Buffer.concat([Buffer.from("a"), euro.subarray(0, 2)]))).toBe(1);
    expect(completeUtf8Length(Buffer.from("😀").subarray(0, 3))).toBe(0);
    expect(completeUtf8Length(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80]))).toBe(5);
  });
});
