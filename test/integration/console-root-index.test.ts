import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane("root-index");
});

afterAll(async () => {
  await cp?.close();
});

describe("GET / (the URL the start banner prints)", () => {
  it("sends a browser to the console", async () => {
    const response = await fetch(`${cp.url}/`, {
      redirect: "manual",
      headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
    });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/console/");
  });

  it("answers an API client with an index of links that all exist", async () => {
    const response = await fetch(`${cp.url}/`, { headers: { accept: "application/json" } });
    expect(response.status).toBe(200);
    const index = (await response.json()) as { name: string; version: string; links: Record<string, string> };
    expect(index.links).toMatchObject({ console: "/console/", health: "/health", jobs: "/jobs" });
    for (const [name, path] of Object.entries(index.links)) {
      if (name === "console") continue;
      const linked = await fetch(`${cp.url}${path}`);
      expect([200, 401], `${name} ${path}`).toContain(linked.status);
    }
  });
});
