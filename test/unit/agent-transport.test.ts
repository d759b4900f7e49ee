import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { Agent, withoutIdentityPath } from "../../runtime/src/agent/agent";
import { ControlPlaneClient } from "../../runtime/src/agent/client";
import { cleartextRefusal } from "../../runtime/src/cli/agent";
import { runCli } from "../support/cli";

// What the reference agent sends, and to whom (issue 10, "Identity and input").
describe("the control-plane URL", () => {
  it("refuses plain http:// to any host that is not this machine, unless --insecure", () => {
    const remoteHost = fc.oneof(
      fc.domain().filter((host) => host !== "localhost" && !host.endsWith(".localhost")),
      fc.ipV4().filter((ip) => !ip.startsWith("127.")),
      fc.ipV6().filter((ip) => ip !== "::1" && ip !== "0:0:0:0:0:0:0:1"),
    );
    fc.assert(
      fc.property(remoteHost, fc.integer({ min: 1, max: 65535 }), (host, port) => {
        const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
        const parsed = new URL(url);
        fc.pre(parsed.hostname !== "[::1]" && !parsed.hostname.startsWith("127."));
        expect(cleartextRefusal(url, false)).toMatch(/in clear.*--insecure/);
        expect(cleartextRefusal(url, true)).toBeUndefined();
        expect(cleartextRefusal(url.replace("http:", "https:"), false)).toBeUndefined();
      }),
    );
  });

  it("accepts http:// to loopback", () => {
    for (const url of [
      "http://127.0.0.1:8000",
      "http://127.8.9.10",
      "http://localhost:1",
      "http://[::1]:80",
      "http://api.localhost",
    ]) {
      expect(cleartextRefusal(url, false), url).toBeUndefined();
    }
  });

  it("stops `agent register` with exit code 2 before anything is sent", async () => {
    const result = await runCli([
      "agent",
      "register",
      "--url",
      "http://ci.example.com:8000",
      "--token",
      "hcr_never-sent",
      "--region",
      "eu-west-1",
      "--identity",
      "/nonexistent/never-written.json",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing http:\/\/ci\.example\.com:8000.*--insecure/);
  }, 30_000);
});

describe("a job's environment", () => {
  const identityPath = "/home/builder/.config/hybrid-cicd/agent.json";
  const base = {
    HOME: "/home/builder",
    PATH: "/usr/local/bin:/usr/bin",
    LANG: "C.UTF-8",
    AGENT_IDENTITY: identityPath,
    SOME_ARGS: `--identity=${identityPath} --verbose`,
  };

  it("names no path of the identity file, and gets its own HOME when the file lies under HOME", () => {
    const env = withoutIdentityPath(base, identityPath, "/work/job-1");
    expect(env).toEqual({
      HOME: "/work/job-1",
      XDG_CONFIG_HOME: "/work/job-1/.config",
      PATH: "/usr/local/bin:/usr/bin",
      LANG: "C.UTF-8",
    });
    expect(Object.values(env).join("\n")).not.toContain(identityPath);
  });

  it("keeps HOME when the identity file lies elsewhere", () => {
    const env = withoutIdentityPath(
      { ...base, AGENT_IDENTITY: "/etc/hybrid-cicd/agent.json" },
      "/etc/hybrid-cicd/agent.json",
      "/work/job-2",
    );
    expect(env).toEqual({
      HOME: "/home/builder",
      PATH: base.PATH,
      LANG: base.LANG,
      SOME_ARGS: base.SOME_ARGS,
    });
  });
});

describe("the agent's claims", () => {
  it("repeat their Idempotency-Key until the server answers, then take a new one", async () => {
    const keys: string[] = [];
    const answers = [503, 200, 204];
    const server = createServer((req, res) => {
      keys.push(String(req.headers["idempotency-key"]));
      const status = answers.shift() ?? 204;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(status === 200 ? JSON.stringify({ job: { job_id: "job_x" }, attempt: 1 }) : "");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const identity = { agentId: `agt_${"0".repeat(26)}`, key: new Uint8Array(32) };
      const agent = new Agent({
        client: new ControlPlaneClient({
          baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          identity,
        }),
        identity: {} as never,
        workDir: "/nonexistent",
        once: true,
        logger: pino({ level: "silent" }),
        figures: {} as never,
        jobEnvironment: {},
      });
      const claim = () => (agent as unknown as { claim(): Promise<unknown> }).claim();

      await expect(claim()).rejects.toThrow(/claim answered 503/); // the reply is lost: was it claimed?
      expect(await claim()).toMatchObject({ job: { job_id: "job_x" } }); // same key: the job it won
      expect(await claim()).toBeUndefined(); // a new claim, a new key

      expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(keys[1]).toBe(keys[0]);
      expect(keys[2]).not.toBe(keys[1]);
    } finally {
      server.close();
    }
  });
});
