import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { SystemFigures } from "../../runtime/src/agent/system-figures";

describe("the machine's figures", () => {
  it("are percentages of this machine's real CPU, memory and disk", async () => {
    const figures = new SystemFigures(tmpdir());
    const busyUntil = Date.now() + 200;
    while (Date.now() < busyUntil) Math.sqrt(Math.random());

    const sample = await figures.sample();

    for (const value of [sample.cpu_percent, sample.memory_percent, sample.disk_percent]) {
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(100);
    }
    // Something is always in use on a running machine.
    expect(sample.memory_percent).toBeGreaterThan(0);
    expect(sample.disk_percent).toBeGreaterThan(0);
    expect(sample.cpu_percent).toBeGreaterThan(0);
  });

  it("fails loudly for a work directory that does not exist", async () => {
    await expect(new SystemFigures("/nonexistent/hybrid-cicd").sample()).rejects.toThrow();
  });
});
