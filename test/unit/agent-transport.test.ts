import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { withoutIdentityPath } from "../../runtime/src/agent/agent";
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
