import { createHmac, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import fc from "fast-check";
import { createSigner, createVerifier, httpbis, type SignatureParameters } from "http-message-signatures";
import serverless from "serverless-http";
import { isInnerList, parseDictionary, serializeDictionary } from "structured-headers";
import { describe, expect, it } from "vitest";
import {
  contentDigest,
  type ReceivedRequest,
  type SignatureFailureCode,
  signatureBase,
  signRequest,
  type VerificationOptions,
  type VerificationResult,
  verifyContentDigest,
  verifyRequest,
} from "../../runtime/src/identity/http-signatures";

const now = 1_700_000_000;
const agentKey = Buffer.alloc(32, 0x5a);
const previousKey = Buffer.alloc(32, 0x3c);
const otherAgentKey = Buffer.alloc(32, 0x77);
const agents: Record<string, Buffer[]> = { "agent-a": [agentKey], "agent-b": [otherAgentKey] };

/** A nonce store like the DynamoDB one: remembers (agent, nonce) and reports replays. */
function nonceStore() {
  const seen = new Set<string>();
  const calls: { keyId: string; nonce: string; expiresAt: number }[] = [];
  return {
    calls,
    checkNonce: async (keyId: string, nonce: string, expiresAt: number) => {
      calls.push({ keyId, nonce, expiresAt });
      const scope = `${keyId}\n${nonce}`;
      if (seen.has(scope)) return false;
      seen.add(scope);
      return true;
    },
  };
}

function verifier(overrides: Partial<VerificationOptions> = {}): VerificationOptions {
  return {
    lookupKey: async (keyId) => agents[keyId],
    now,
    checkNonce: nonceStore().checkNonce,
    ...overrides,
  };
}

/** The server's view of what the agent sent: path + query only, header names lower-cased by node. */
function received(
  method: string,
  target: string,
  headers: Record<string, string>,
  body?: Uint8Array | string,
): ReceivedRequest {
  return {
    method,
    url: target,
    headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])),
    body: body === undefined ? undefined : Buffer.from(body),
  };
}

async function signedJobRequest(
  options: { created?: number; nonce?: string; key?: Buffer; keyId?: string } = {},
) {
  const body = '{"image":"node:20","steps":["npm test"]}';
  const headers = await signRequest(
    {
      method: "POST",
      url: "/agents/agent-a/jobs?limit=10",
      headers: { "content-type": "application/json" },
      body,
    },
    {
      keyId: options.keyId ?? "agent-a",
      key: options.key ?? agentKey,
      created: options.created ?? now,
      nonce: options.nonce,
    },
  );
  return received("POST", "/agents/agent-a/jobs?limit=10", headers, body);
}

/** Signs with the library directly, to build signatures our own signer would never produce. */
async function librarySign(
  request: { method: string; url: string; headers: Record<string, string> },
  config: {
    fields: string[];
    params: string[];
    paramValues?: SignatureParameters;
    key?: Buffer;
    keyId?: string;
    name?: string;
  },
) {
  const signed = await httpbis.signMessage(
    {
      key: createSigner(config.key ?? agentKey, "hmac-sha256", config.keyId ?? "agent-a"),
      name: config.name ?? "sig1",
      fields: config.fields,
      params: config.params,
      paramValues: {
        created: new Date(now * 1000),
        nonce: randomBytes(8).toString("hex"),
        ...config.paramValues,
      },
    },
    request,
  );
  return signed.headers as Record<string, string>;
}

const keyMaterial = [agentKey, previousKey, otherAgentKey].flatMap((key) => [
  key.toString("base64"),
  key.toString("base64url"),
  key.toString("hex"),
]);

function expectRefused(result: VerificationResult, code: SignatureFailureCode) {
  expect(result).toMatchObject({ ok: false, code });
  if (result.ok) return;
  expect(result.reason.length).toBeGreaterThan(0);
  for (const material of keyMaterial) expect(result.reason).not.toContain(material);
}

function withSignatureInput(request: ReceivedRequest, edit: (value: string) => string): ReceivedRequest {
  const headers = { ...request.headers, "signature-input": edit(String(request.headers["signature-input"])) };
  return { ...request, headers };
}

function editInnerList(
  header: string,
  label: string,
  edit: (components: [string, Map<string, unknown>][], params: Map<string, unknown>) => void,
): string {
  const dictionary = parseDictionary(header);
  const member = dictionary.get(label);
  if (member === undefined || !isInnerList(member)) throw new Error(`no inner list for ${label}`);
  edit(member[0] as [string, Map<string, unknown>][], member[1] as Map<string, unknown>);
  return serializeDictionary(dictionary);
}

describe("Content-Digest (RFC 9530)", () => {
  it('computes the RFC 9530 example digest of {"hello": "world"}', () => {
    expect(contentDigest('{"hello": "world"}')).toBe(
      "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
    );
    expect(contentDigest(Buffer.from('{"hello": "world"}'))).toBe(contentDigest('{"hello": "world"}'));
  });

  it("accepts the sha-512 digest of the RFC 9421 test request", () => {
    const header =
      "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
    expect(verifyContentDigest(header, Buffer.from('{"hello": "world"}'))).toBe(true);
  });

  it("ignores unknown algorithms but requires a supported one, and every supported one to match", () => {
    const body = "payload";
    const sha256 = contentDigest(body);
    expect(verifyContentDigest(`md5=:AAAA:, ${sha256}`, body)).toBe(true);
    expect(verifyContentDigest("md5=:AAAA:", body)).toBe(false);
    expect(verifyContentDigest(`${sha256}, sha-512=:AAAA:`, body)).toBe(false);
    expect(verifyContentDigest(sha256, "payloaD")).toBe(false);
  });

  it("refuses malformed headers and non-byte-sequence values", () => {
    expect(verifyContentDigest("sha-256=:not base64", "x")).toBe(false);
    expect(verifyContentDigest('sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="', "x")).toBe(false);
    expect(verifyContentDigest("", "x")).toBe(false);
  });
});

describe("RFC 9421 Appendix B.2.5 (hmac-sha256)", () => {
  const sharedSecret = Buffer.from(
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==",
    "base64",
  );
  const testRequestHeaders = {
    Host: "example.com",
    Date: "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest":
      "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
    "Content-Length": "18",
  };
  const rfcSignatureInput =
    'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"';
  const rfcSignature = "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:";
  const rfcSignatureBase = [
    '"date": Tue, 20 Apr 2021 02:07:55 GMT',
    '"@authority": example.com',
    '"content-type": application/json',
    '"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
  ].join("\n");
  const rfcRequest = received(
    "POST",
    "/foo?param=Value&Pet=dog",
    { ...testRequestHeaders, "Signature-Input": rfcSignatureInput, Signature: rfcSignature },
    '{"hello": "world"}',
  );

  it("reproduces the RFC's signature base and signature from the received request", () => {
    const base = signatureBase(rfcRequest, "sig-b25");

    expect(base).toBe(rfcSignatureBase);
    expect(createHmac("sha256", sharedSecret).update(base).digest("base64")).toBe(
      "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=",
    );
  });

  it("reproduces the RFC's Signature-Input and Signature with the library's signMessage", async () => {
    const signed = await httpbis.signMessage(
      {
        key: createSigner(sharedSecret, "hmac-sha256", "test-shared-secret"),
        name: "sig-b25",
        fields: ["date", "@authority", "content-type"],
        params: ["created", "keyid"],
        paramValues: { created: new Date(1618884473 * 1000) },
      },
      {
        method: "POST",
        url: "https://example.com/foo?param=Value&Pet=dog",
        headers: testRequestHeaders as Record<string, string>,
      },
    );

    expect(signed.headers["Signature-Input"]).toBe(rfcSignatureInput);
    expect(signed.headers.Signature).toBe(rfcSignature);
  });

  it("still refuses the RFC example: it is authentic but lacks alg, nonce and @method", async () => {
    const result = await verifyRequest(rfcRequest, {
      lookupKey: async () => [sharedSecret],
      now: 1618884473,
      checkNonce: async () => true,
    });

    expectRefused(result, "unsupported-alg");
    expect(result).toMatchObject({ keyId: "test-shared-secret" });
  });
});

describe("signRequest → verifyRequest", () => {
  it("round-trips a signed request with a body and a query", async () => {
    const nonces = nonceStore();
    const request = await signedJobRequest({ nonce: "nonce-1" });

    const result = await verifyRequest(request, verifier({ checkNonce: nonces.checkNonce }));

    expect(result).toEqual({
      ok: true,
      keyId: "agent-a",
      keyIndex: 0,
      created: now,
      nonce: "nonce-1",
      label: "sig1",
    });
    expect(nonces.calls).toEqual([{ keyId: "agent-a", nonce: "nonce-1", expiresAt: now + 300 }]);
  });

  it("returns the caller's headers plus content-digest, signature-input and signature", async () => {
    const headers = await signRequest(
      {
        method: "PUT",
        url: "/jobs/1",
        headers: { "Content-Type": "text/plain", "X-Trace": "t1" },
        body: "hi",
      },
      { keyId: "agent-a", key: agentKey, created: now, nonce: "n" },
    );

    expect(Object.keys(headers).sort()).toEqual(
      ["Content-Type", "X-Trace", "content-digest", "signature", "signature-input"].sort(),
    );
    expect(headers["content-digest"]).toBe(contentDigest("hi"));
    expect(headers["signature-input"]).toBe(
      `sig1=("@method" "@path" "content-digest");created=${now};keyid="agent-a";alg="hmac-sha256";nonce="n"`,
    );
    expect(headers.signature).toMatch(/^sig1=:[A-Za-z0-9+/]{43}=:$/);
  });

  it("covers @query only when there is a query and content-digest only when there is a body", async () => {
    const withQuery = await signRequest(
      { method: "GET", url: "/jobs?state=queued", headers: {} },
      { keyId: "agent-a", key: agentKey },
    );
    const bare = await signRequest(
      { method: "GET", url: "/jobs", headers: {} },
      { keyId: "agent-a", key: agentKey },
    );

    expect(withQuery["signature-input"]).toMatch(/^sig1=\("@method" "@path" "@query"\);/);
    expect(bare["signature-input"]).toMatch(/^sig1=\("@method" "@path"\);/);
    expect(bare["content-digest"]).toBeUndefined();
  });

  it("defaults to the current time and a fresh 128-bit base64url nonce per request", async () => {
    const first = await signRequest(
      { method: "GET", url: "/jobs", headers: {} },
      { keyId: "agent-a", key: agentKey },
    );
    const second = await signRequest(
      { method: "GET", url: "/jobs", headers: {} },
      { keyId: "agent-a", key: agentKey },
    );

    const nonceOf = (headers: Record<string, string>) =>
      /;nonce="([^"]+)"/.exec(headers["signature-input"]!)?.[1];
    expect(nonceOf(first)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(nonceOf(first)).not.toBe(nonceOf(second));
    const created = Number(/;created=(\d+)/.exec(first["signature-input"]!)?.[1]);
    expect(Math.abs(created - Date.now() / 1000)).toBeLessThan(5);
  });

  it("signs the path and query of an absolute URL, as the server receives them behind a stage prefix", async () => {
    const headers = await signRequest(
      { method: "DELETE", url: "https://api.example.com/prod/jobs/42?force=true", headers: {} },
      { keyId: "agent-a", key: agentKey, created: now },
    );

    const result = await verifyRequest(received("DELETE", "/prod/jobs/42?force=true", headers), verifier());

    expect(result).toMatchObject({ ok: true, keyId: "agent-a" });
  });

  it("replaces signature headers already present instead of appending to them", async () => {
    const first = await signRequest(
      { method: "GET", url: "/jobs", headers: {} },
      { keyId: "agent-a", key: agentKey },
    );
    const resigned = await signRequest(
      {
        method: "GET",
        url: "/jobs",
        headers: { Signature: first.signature!, "Signature-Input": first["signature-input"]! },
      },
      { keyId: "agent-a", key: agentKey, label: "retry" },
    );

    expect(Object.keys(resigned).sort()).toEqual(["signature", "signature-input"]);
    expect(resigned["signature-input"]).toMatch(/^retry=/);
  });

  it("rejects inputs that cannot make a valid signature", async () => {
    const request = { method: "GET", url: "/jobs", headers: {} };
    await expect(signRequest(request, { keyId: "agent-a", key: agentKey, label: "Sig" })).rejects.toThrow(
      TypeError,
    );
    await expect(signRequest(request, { keyId: "", key: agentKey })).rejects.toThrow(TypeError);
    await expect(signRequest(request, { keyId: "agent-a", key: new Uint8Array(0) })).rejects.toThrow(
      TypeError,
    );
    await expect(signRequest(request, { keyId: "agent-a", key: agentKey, created: 1.5 })).rejects.toThrow(
      TypeError,
    );
    await expect(signRequest(request, { keyId: "agent-a", key: agentKey, nonce: "" })).rejects.toThrow(
      TypeError,
    );
    await expect(
      signRequest({ ...request, url: "jobs" }, { keyId: "agent-a", key: agentKey }),
    ).rejects.toThrow(TypeError);
    await expect(
      signRequest({ ...request, url: "ftp://example.com/jobs" }, { keyId: "agent-a", key: agentKey }),
    ).rejects.toThrow(TypeError);
  });
});

describe("interoperability with other RFC 9421 implementations", () => {
  it("accepts a request signed by the library's signMessage from a hand-built request", async () => {
    const body = '{"status":"succeeded"}';
    const headers = await librarySign(
      {
        method: "POST",
        url: "https://api.example.com/jobs/42/result?attempt=2",
        headers: {
          Host: "api.example.com",
          "Content-Type": "application/json",
          "Content-Digest": contentDigest(body),
        },
      },
      {
        name: "agent",
        fields: ["@method", "@authority", "@path", "@query", "content-type", "content-digest"],
        params: ["created", "expires", "keyid", "alg", "nonce"],
        paramValues: { nonce: "from-another-client", expires: new Date((now + 300) * 1000) },
      },
    );

    const result = await verifyRequest(
      { method: "POST", url: "/jobs/42/result?attempt=2", headers, body: Buffer.from(body) },
      verifier(),
    );

    expect(result).toEqual({
      ok: true,
      keyId: "agent-a",
      keyIndex: 0,
      created: now,
      nonce: "from-another-client",
      label: "agent",
    });
  });

  it("produces signatures the library's own verifyMessage accepts", async () => {
    const headers = await signRequest(
      { method: "PATCH", url: "https://api.example.com/agents/agent-a?x=1", headers: {}, body: "{}" },
      { keyId: "agent-a", key: agentKey },
    );

    const verified = await httpbis.verifyMessage(
      {
        keyLookup: async ({ keyid }) =>
          keyid === "agent-a"
            ? { id: "agent-a", algs: ["hmac-sha256"], verify: createVerifier(agentKey, "hmac-sha256") }
            : null,
        requiredFields: ["@method", "@path", "@query", "content-digest"],
        requiredParams: ["created", "nonce", "keyid", "alg"],
      },
      { method: "PATCH", url: "https://api.example.com/agents/agent-a?x=1", headers },
    );

    expect(verified).toBe(true);
  });

  it("verifies what serverless-http hands the app from an API Gateway HTTP API event", async () => {
    const body = Buffer.from('{"log":"line 1\\nline 2"}');
    const headers = await signRequest(
      {
        method: "POST",
        url: "https://abc.execute-api.eu-west-1.amazonaws.com/agents/agent-a/logs?job=j%2F1&seq=3",
        headers: {},
        body,
      },
      { keyId: "agent-a", key: agentKey, created: now },
    );
    let seen: ReceivedRequest | undefined;
    const app = (req: IncomingMessage & { body?: Buffer }, res: ServerResponse) => {
      seen = { method: req.method!, url: req.url!, headers: req.headers, body: req.body };
      res.statusCode = 204;
      res.end();
    };
    const handler = serverless(app);

    await handler(
      {
        version: "2.0",
        routeKey: "$default",
        rawPath: "/agents/agent-a/logs",
        rawQueryString: "job=j%2F1&seq=3",
        headers: { ...headers, host: "abc.execute-api.eu-west-1.amazonaws.com" },
        requestContext: {
          http: { method: "POST", path: "/agents/agent-a/logs", sourceIp: "192.0.2.1" },
          requestId: "r-1",
          stage: "$default",
        },
        body: body.toString("base64"),
        isBase64Encoded: true,
      },
      {},
    );
    const result = await verifyRequest(seen!, verifier());

    expect(seen?.url).toBe("/agents/agent-a/logs?job=j%2F1&seq=3");
    expect(result).toMatchObject({ ok: true, keyId: "agent-a" });
  });
});

describe("verifyRequest refusals", () => {
  it("refuses a request without signature headers", async () => {
    const bare = received("GET", "/jobs", {});
    const request = await signedJobRequest();
    const { signature: _signature, ...inputOnly } = request.headers;
    const { "signature-input": _input, ...signatureOnly } = request.headers;

    expectRefused(await verifyRequest(bare, verifier()), "missing-signature");
    expectRefused(await verifyRequest({ ...request, headers: inputOnly }, verifier()), "missing-signature");
    expectRefused(
      await verifyRequest({ ...request, headers: signatureOnly }, verifier()),
      "missing-signature",
    );
  });

  it("refuses a malformed Signature-Input", async () => {
    const request = await signedJobRequest();
    const cases = [
      "sig1=(",
      "sig1=1",
      'sig1=("@method" "@method" "@path");created=1;keyid="agent-a";alg="hmac-sha256";nonce="n"',
      'sig1=("@method" 1);created=1;keyid="agent-a";alg="hmac-sha256";nonce="n"',
      'sig1=("@method" "@signature-params");created=1;keyid="agent-a";alg="hmac-sha256";nonce="n"',
    ];

    for (const input of cases) {
      const result = await verifyRequest(
        withSignatureInput(request, () => input),
        verifier(),
      );
      expectRefused(result, "malformed-signature-input");
    }
  });

  it("refuses a malformed Signature or one missing for the label", async () => {
    const request = await signedJobRequest();

    const garbage = await verifyRequest(
      { ...request, headers: { ...request.headers, signature: "sig1=:%%:" } },
      verifier(),
    );
    const otherLabel = await verifyRequest(
      {
        ...request,
        headers: { ...request.headers, signature: String(request.headers.signature).replace("sig1", "sig2") },
      },
      verifier(),
    );
    const notBytes = await verifyRequest(
      { ...request, headers: { ...request.headers, signature: 'sig1="abc"' } },
      verifier(),
    );

    expectRefused(garbage, "malformed-signature");
    expectRefused(otherLabel, "malformed-signature");
    expectRefused(notBytes, "malformed-signature");
  });

  it("refuses more signatures than it is willing to check", async () => {
    const request = await signedJobRequest();
    const input = String(request.headers["signature-input"]).replace(/^sig1=/, "");
    const many = Array.from({ length: 9 }, (_, index) => `s${index}=${input}`).join(", ");

    const result = await verifyRequest(
      withSignatureInput(request, () => many),
      verifier(),
    );

    expectRefused(result, "too-many-signatures");
  });

  it("refuses an alg other than the string hmac-sha256, or none", async () => {
    const target = { method: "GET", url: "https://api.example.com/jobs", headers: {} };
    const fields = ["@method", "@path"];
    const withoutAlg = await librarySign(target, { fields, params: ["created", "keyid", "nonce"] });
    const otherAlg = await librarySign(target, {
      fields,
      params: ["created", "keyid", "alg", "nonce"],
      paramValues: { alg: "rsa-pss-sha512" },
    });
    const tokenAlg = withSignatureInput(await signedJobRequest(), (value) =>
      value.replace('alg="hmac-sha256"', "alg=hmac-sha256"),
    );

    expectRefused(await verifyRequest(received("GET", "/jobs", withoutAlg), verifier()), "unsupported-alg");
    expectRefused(await verifyRequest(received("GET", "/jobs", otherAlg), verifier()), "unsupported-alg");
    expectRefused(await verifyRequest(tokenAlg, verifier()), "unsupported-alg");
  });

  it("refuses a signature without keyid, created or nonce", async () => {
    const target = { method: "GET", url: "https://api.example.com/jobs", headers: {} };
    const fields = ["@method", "@path"];
    const cases: [string[], SignatureFailureCode][] = [
      [["created", "alg", "nonce"], "missing-keyid"],
      [["keyid", "alg", "nonce"], "missing-created"],
      [["created", "keyid", "alg"], "missing-nonce"],
    ];

    for (const [params, code] of cases) {
      const headers = await librarySign(target, { fields, params, paramValues: { alg: "hmac-sha256" } });
      expectRefused(await verifyRequest(received("GET", "/jobs", headers), verifier()), code);
    }
  });

  it("refuses a signature that does not cover @method, @path, @query or content-digest when required", async () => {
    const body = '{"a":1}';
    const url = "https://api.example.com/jobs?state=queued";
    const headers = { "Content-Digest": contentDigest(body) };
    const params = ["created", "keyid", "alg", "nonce"];
    const cases: [string[], string][] = [
      [["@path", "@query", "content-digest"], "@method"],
      [["@method", "@query", "content-digest"], "@path"],
      [["@method", "@path", "content-digest"], "@query"],
      [["@method", "@path", "@query"], "content-digest"],
      [["@method", "@target-uri", "content-digest"], "@path"],
    ];

    for (const [fields, missing] of cases) {
      const signed = await librarySign({ method: "POST", url, headers }, { fields, params });
      const result = await verifyRequest(received("POST", "/jobs?state=queued", signed, body), verifier());
      expectRefused(result, "component-not-covered");
      expect(result).toMatchObject({ reason: expect.stringContaining(`"${missing}"`) });
    }
  });

  it("refuses a request whose query was added after signing a query-less URL", async () => {
    const headers = await signRequest(
      { method: "GET", url: "/jobs", headers: {} },
      { keyId: "agent-a", key: agentKey, created: now },
    );

    const result = await verifyRequest(received("GET", "/jobs?state=all", headers), verifier());

    expectRefused(result, "component-not-covered");
  });

  it("refuses a tampered body even when the signature still verifies", async () => {
    const request = await signedJobRequest();

    const result = await verifyRequest(
      { ...request, body: Buffer.from('{"image":"evil","steps":["curl x|sh"]}') },
      verifier(),
    );

    expectRefused(result, "content-digest-mismatch");
  });

  it("refuses a body whose Content-Digest header was removed", async () => {
    const request = await signedJobRequest();
    const { "content-digest": _digest, ...headers } = request.headers;

    expectRefused(await verifyRequest({ ...request, headers }, verifier()), "content-digest-mismatch");
  });

  it("refuses a body added to a request signed without one", async () => {
    const headers = await signRequest(
      { method: "POST", url: "/jobs", headers: {} },
      { keyId: "agent-a", key: agentKey, created: now },
    );

    const result = await verifyRequest(received("POST", "/jobs", headers, "{}"), verifier());

    expectRefused(result, "component-not-covered");
  });

  it("refuses covered components the server cannot derive", async () => {
    const url = "https://api.example.com/jobs";
    const params = ["created", "keyid", "alg", "nonce"];
    const absentHeader = await librarySign(
      { method: "GET", url, headers: { "X-Job": "1" } },
      { fields: ["@method", "@path", "x-job"], params },
    );
    const targetUri = await librarySign(
      { method: "GET", url, headers: {} },
      { fields: ["@method", "@path", "@target-uri"], params },
    );

    const { "x-job": _job, ...withoutHeader } = received("GET", "/jobs", absentHeader).headers;
    expectRefused(
      await verifyRequest({ method: "GET", url: "/jobs", headers: withoutHeader }, verifier()),
      "unresolvable-component",
    );
    expectRefused(
      await verifyRequest(received("GET", "/jobs", targetUri), verifier()),
      "unresolvable-component",
    );
  });

  it("refuses a signature created more than 300 s ago, and accepts one exactly 300 s old", async () => {
    const stale = await signedJobRequest({ created: now - 301 });
    const edge = await signedJobRequest({ created: now - 300 });

    expectRefused(await verifyRequest(stale, verifier()), "stale");
    expect(await verifyRequest(edge, verifier())).toMatchObject({ ok: true });
  });

  it("refuses a signature created more than 300 s in the future, and accepts one 300 s ahead", async () => {
    const future = await signedJobRequest({ created: now + 301 });
    const edge = await signedJobRequest({ created: now + 300 });

    expectRefused(await verifyRequest(future, verifier()), "future");
    expect(await verifyRequest(edge, verifier())).toMatchObject({ ok: true });
  });

  it("honours a shorter maxAgeSeconds", async () => {
    const request = await signedJobRequest({ created: now - 61 });

    expectRefused(await verifyRequest(request, verifier({ maxAgeSeconds: 60 })), "stale");
  });

  it("refuses a signature whose own expires has passed", async () => {
    const headers = await librarySign(
      { method: "GET", url: "https://api.example.com/jobs", headers: {} },
      {
        fields: ["@method", "@path"],
        params: ["created", "expires", "keyid", "alg", "nonce"],
        paramValues: { created: new Date((now - 120) * 1000), expires: new Date((now - 60) * 1000) },
      },
    );

    expectRefused(await verifyRequest(received("GET", "/jobs", headers), verifier()), "expired");
  });

  it("refuses an unknown keyid and names it", async () => {
    const request = await signedJobRequest({ keyId: "agent-gone" });

    const result = await verifyRequest(request, verifier());

    expectRefused(result, "unknown-key");
    expect(result).toMatchObject({ keyId: "agent-gone" });
  });

  it("refuses a signature made with the wrong key", async () => {
    const request = await signedJobRequest({ key: Buffer.alloc(32, 1) });

    expectRefused(await verifyRequest(request, verifier()), "bad-signature");
  });

  it("refuses a signature made with one agent's key under another agent's keyid", async () => {
    const request = await signedJobRequest({ keyId: "agent-b", key: agentKey });

    const result = await verifyRequest(request, verifier());

    expectRefused(result, "bad-signature");
    expect(result).toMatchObject({ keyId: "agent-b" });
  });

  it("refuses a signed path replayed with dot segments the router would see differently", async () => {
    const headers = await signRequest(
      { method: "GET", url: "/agents/agent-a", headers: {} },
      { keyId: "agent-a", key: agentKey, created: now },
    );

    const result = await verifyRequest(received("GET", "/agents/agent-b/../agent-a", headers), verifier());

    expectRefused(result, "bad-signature");
  });

  it("refuses a replayed nonce on the second call", async () => {
    const nonces = nonceStore();
    const request = await signedJobRequest();

    const first = await verifyRequest(request, verifier({ checkNonce: nonces.checkNonce }));
    const second = await verifyRequest(request, verifier({ checkNonce: nonces.checkNonce }));

    expect(first).toMatchObject({ ok: true });
    expectRefused(second, "replayed-nonce");
    expect(second).toMatchObject({ keyId: "agent-a" });
  });

  it("does not burn a nonce for a signature that fails to verify", async () => {
    const nonces = nonceStore();
    const forged = await signedJobRequest({ nonce: "victim-nonce", key: Buffer.alloc(32, 9) });
    const genuine = await signedJobRequest({ nonce: "victim-nonce" });

    const forgedResult = await verifyRequest(forged, verifier({ checkNonce: nonces.checkNonce }));
    const genuineResult = await verifyRequest(genuine, verifier({ checkNonce: nonces.checkNonce }));

    expectRefused(forgedResult, "bad-signature");
    expect(genuineResult).toMatchObject({ ok: true, nonce: "victim-nonce" });
    expect(nonces.calls).toHaveLength(1);
  });

  it("propagates a failing key lookup instead of turning an outage into a 401", async () => {
    const request = await signedJobRequest();

    const attempt = verifyRequest(
      request,
      verifier({ lookupKey: async () => Promise.reject(new Error("throttled")) }),
    );

    await expect(attempt).rejects.toThrow("throttled");
  });
});

describe("verifyRequest acceptance rules", () => {
  it("ignores the case of header names", async () => {
    const request = await signedJobRequest();
    const shouted = Object.fromEntries(
      Object.entries(request.headers).map(([name, value]) => [
        name.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase()),
        value,
      ]),
    );

    expect(Object.keys(shouted)).toContain("Signature-Input");
    expect(await verifyRequest({ ...request, headers: shouted }, verifier())).toMatchObject({ ok: true });
  });

  it("combines repeated header lines as one field", async () => {
    const request = await signedJobRequest();
    const foreign = 'proxy=("@method");created=1;keyid="gw";alg="ed25519"';

    const result = await verifyRequest(
      {
        ...request,
        headers: {
          ...request.headers,
          "signature-input": [foreign, String(request.headers["signature-input"])],
          signature: ["proxy=:AAAA:", String(request.headers.signature)],
        },
      },
      verifier(),
    );

    expect(result).toMatchObject({ ok: true, label: "sig1" });
  });

  it("accepts the previous key during rotation and says which key verified", async () => {
    const request = await signedJobRequest({ key: previousKey });

    const result = await verifyRequest(request, verifier({ lookupKey: async () => [agentKey, previousKey] }));

    expect(result).toMatchObject({ ok: true, keyId: "agent-a", keyIndex: 1 });
  });

  it("accepts any label and picks the signature that satisfies the policy", async () => {
    const request = await signedJobRequest();
    const foreignInput = 'gateway=("@method" "@path");created=1;keyid="gw";alg="ecdsa-p256-sha256"';
    const headers = {
      ...request.headers,
      "signature-input": `${foreignInput}, ${String(request.headers["signature-input"]).replace("sig1=", "agent-7=")}`,
      signature: `gateway=:AAAA:, ${String(request.headers.signature).replace("sig1=", "agent-7=")}`,
    };

    const result = await verifyRequest({ ...request, headers }, verifier());

    expect(result).toMatchObject({ ok: true, label: "agent-7" });
  });

  it("reports the failure that got furthest when no signature qualifies", async () => {
    const request = await signedJobRequest({ key: Buffer.alloc(32, 2) });
    const foreignInput = 'gateway=("@method" "@path");created=1;keyid="gw";alg="ecdsa-p256-sha256"';
    const headers = {
      ...request.headers,
      "signature-input": `${foreignInput}, ${String(request.headers["signature-input"])}`,
      signature: `gateway=:AAAA:, ${String(request.headers.signature)}`,
    };

    expectRefused(await verifyRequest({ ...request, headers }, verifier()), "bad-signature");
  });

  it("records the nonce of every valid signature, so the second one cannot be replayed alone", async () => {
    const nonces = nonceStore();
    const first = await signedJobRequest({ nonce: "first" });
    const second = await signedJobRequest({ nonce: "second" });
    const both = {
      ...first,
      headers: {
        ...first.headers,
        "signature-input": `${String(first.headers["signature-input"])}, ${String(second.headers["signature-input"]).replace("sig1=", "sig2=")}`,
        signature: `${String(first.headers.signature)}, ${String(second.headers.signature).replace("sig1=", "sig2=")}`,
      },
    };

    const accepted = await verifyRequest(both, verifier({ checkNonce: nonces.checkNonce }));
    const replayedAlone = await verifyRequest(second, verifier({ checkNonce: nonces.checkNonce }));

    expect(accepted).toMatchObject({ ok: true, nonce: "first", label: "sig1" });
    expect(nonces.calls.map((call) => call.nonce)).toEqual(["first", "second", "second"]);
    expectRefused(replayedAlone, "replayed-nonce");
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

const methodArbitrary = fc.oneof(
  fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
  fc.stringMatching(/^[A-Z]{3,10}$/),
);
const pathArbitrary = fc.array(fc.webSegment(), { maxLength: 5 }).map((segments) => `/${segments.join("/")}`);
const queryArbitrary = fc.option(fc.webQueryParameters(), { nil: undefined });
const bodyArbitrary = fc.option(fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.string({ maxLength: 200 })), {
  nil: undefined,
});
const headersArbitrary = fc.dictionary(
  fc.stringMatching(/^x-[a-z0-9-]{1,16}$/),
  fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,40}[\x21-\x7e])?$/),
  { maxKeys: 5 },
);
const requestArbitrary = fc.record({
  method: methodArbitrary,
  path: pathArbitrary,
  query: queryArbitrary,
  absolute: fc.boolean(),
  body: bodyArbitrary,
  headers: headersArbitrary,
  created: fc.integer({ min: now - 300, max: now + 300 }),
  label: fc.stringMatching(/^[a-z][a-z0-9-]{0,9}$/),
});
type GeneratedRequest = typeof requestArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Signs as the agent would and returns what the server receives (the wire target is fetch's). */
async function signAndReceive(generated: GeneratedRequest): Promise<ReceivedRequest> {
  const target = generated.path + (generated.query === undefined ? "" : `?${generated.query}`);
  const url = generated.absolute ? `https://api.example.com${target}` : target;
  const headers = await signRequest(
    { method: generated.method, url, headers: generated.headers, body: generated.body },
    { keyId: "agent-a", key: agentKey, created: generated.created, label: generated.label },
  );
  const wire = new URL(`https://api.example.com${target}`);
  return received(generated.method, wire.pathname + wire.search, headers, generated.body);
}

type Mutation =
  | { kind: "body"; index: number; bits: number }
  | { kind: "method"; method: string }
  | { kind: "path" }
  | { kind: "query" }
  | { kind: "created"; delta: number }
  | { kind: "nonce" }
  | { kind: "keyid"; keyId: string }
  | { kind: "signature"; index: number; bits: number }
  | { kind: "drop-component"; index: number };

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("body" as const), index: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("method" as const), method: methodArbitrary }),
  fc.record({ kind: fc.constant("path" as const) }),
  fc.record({ kind: fc.constant("query" as const) }),
  fc.record({
    kind: fc.constant("created" as const),
    delta: fc.integer({ min: -120, max: 120 }).filter((delta) => delta !== 0),
  }),
  fc.record({ kind: fc.constant("nonce" as const) }),
  fc.record({ kind: fc.constant("keyid" as const), keyId: fc.constantFrom("agent-b", "agent-unknown") }),
  fc.record({
    kind: fc.constant("signature" as const),
    index: fc.nat(),
    bits: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("drop-component" as const), index: fc.nat() }),
);

function mutate(request: ReceivedRequest, label: string, mutation: Mutation): ReceivedRequest {
  const [path, query] = splitOnce(request.url, "?");
  const editInput = (edit: Parameters<typeof editInnerList>[2]) =>
    withSignatureInput(request, (value) => editInnerList(value, label, edit));
  switch (mutation.kind) {
    case "body": {
      const body = Buffer.from(request.body ?? []);
      if (body.length === 0) return { ...request, body: Buffer.from([mutation.bits]) };
      body[mutation.index % body.length]! ^= mutation.bits;
      return { ...request, body };
    }
    case "method":
      return {
        ...request,
        method: mutation.method === request.method ? `${request.method}X` : mutation.method,
      };
    case "path":
      return { ...request, url: `/v2${path}${query === undefined ? "" : `?${query}`}` };
    case "query": {
      if (query === undefined || query === "") return { ...request, url: `${path}?injected=1` };
      const [first, ...rest] = query.split("&");
      return { ...request, url: `${path}?${[`${first}0`, ...rest].join("&")}` };
    }
    case "created":
      return editInput((_, params) => params.set("created", Number(params.get("created")) + mutation.delta));
    case "nonce":
      return editInput((_, params) => params.set("nonce", `${String(params.get("nonce"))}x`));
    case "keyid":
      return editInput((_, params) => params.set("keyid", mutation.keyId));
    case "signature": {
      const signatures = parseDictionary(String(request.headers.signature));
      const member = signatures.get(label)!;
      const bytes = Buffer.from(member[0] as ArrayBuffer);
      bytes[mutation.index % bytes.length]! ^= mutation.bits;
      signatures.set(label, [
        bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
        new Map(),
      ]);
      return { ...request, headers: { ...request.headers, signature: serializeDictionary(signatures) } };
    }
    case "drop-component":
      return editInput((components) => {
        components.splice(mutation.index % components.length, 1);
      });
  }
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const index = text.indexOf(separator);
  return index === -1 ? [text, undefined] : [text.slice(0, index), text.slice(index + 1)];
}

describe("properties", () => {
  it("verifies every request it signs, whatever the method, path, query, body and headers", async () => {
    await fc.assert(
      fc.asyncProperty(requestArbitrary, fc.boolean(), async (generated, shout) => {
        const request = await signAndReceive(generated);
        const headers = shout
          ? Object.fromEntries(
              Object.entries(request.headers).map(([name, value]) => [name.toUpperCase(), value]),
            )
          : request.headers;

        const result = await verifyRequest({ ...request, headers }, verifier());

        expect(result).toMatchObject({
          ok: true,
          keyId: "agent-a",
          created: generated.created,
          label: generated.label,
        });
      }),
      { numRuns: 300 },
    );
  });

  it("accepts no single mutation of a signed request", async () => {
    await fc.assert(
      fc.asyncProperty(requestArbitrary, mutationArbitrary, async (generated, mutation) => {
        const request = await signAndReceive(generated);
        expect(await verifyRequest(request, verifier())).toMatchObject({ ok: true });

        const result = await verifyRequest(mutate(request, generated.label, mutation), verifier());

        expect(result.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
