import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  agentKeyLength,
  decodeAgentSecret,
  deriveAgentKey,
  encodeAgentSecret,
  InvalidAgentSecretError,
} from "../../runtime/src/identity/agent-keys";

const rootKey = Buffer.from("0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0", "hex");

describe("deriveAgentKey", () => {
  it("is HMAC-SHA256(root key, agent:<id>:<epoch>), 32 bytes", () => {
    const expected = createHmac("sha256", rootKey).update("agent:01J9ZAGENT:3").digest();

    const key = deriveAgentKey(rootKey, "01J9ZAGENT", 3);

    expect(key).toEqual(expected);
    expect(key).toHaveLength(agentKeyLength);
  });

  it("matches the direct computation for arbitrary agents and epochs", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 64 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.nat(),
        (root, agentId, epoch) => {
          const expected = createHmac("sha256", root).update(`agent:${agentId}:${epoch}`, "utf8").digest();
          expect(deriveAgentKey(root, agentId, epoch)).toEqual(expected);
        },
      ),
    );
  });

  it("gives an unrelated key when the epoch is bumped, the agent differs or the root rotates", () => {
    const key = deriveAgentKey(rootKey, "agent-a", 0);
    const rotatedRoot = Buffer.from(rootKey).fill(7, 0, 1);

    expect(deriveAgentKey(rootKey, "agent-a", 1)).not.toEqual(key);
    expect(deriveAgentKey(rootKey, "agent-b", 0)).not.toEqual(key);
    expect(deriveAgentKey(rotatedRoot, "agent-a", 0)).not.toEqual(key);
    expect(deriveAgentKey(rootKey, "agent-a", 0)).toEqual(key);
  });

  it("refuses a short root key, an empty agent id and epochs that are not non-negative integers", () => {
    expect(() => deriveAgentKey(rootKey.subarray(0, 31), "agent-a", 0)).toThrow(RangeError);
    expect(() => deriveAgentKey(rootKey, "", 0)).toThrow(RangeError);
    expect(() => deriveAgentKey(rootKey, "agent-a", -1)).toThrow(RangeError);
    expect(() => deriveAgentKey(rootKey, "agent-a", 1.5)).toThrow(RangeError);
    expect(() => deriveAgentKey(rootKey, "agent-a", Number.NaN)).toThrow(RangeError);
  });
});

describe("encodeAgentSecret / decodeAgentSecret", () => {
  it("encodes as 43 characters of unpadded base64url", () => {
    const key = deriveAgentKey(rootKey, "agent-a", 0);

    const secret = encodeAgentSecret(key);

    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(secret).toBe(key.toString("base64url"));
  });

  it("round-trips every 32-byte key", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        const secret = encodeAgentSecret(key);

        expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(decodeAgentSecret(secret)).toEqual(Buffer.from(key));
      }),
      { numRuns: 500 },
    );
  });

  it("encodes a key that is a view into a larger buffer by its own bytes only", () => {
    const backing = Buffer.alloc(64, 0xee);
    backing.fill(0x11, 16, 48);

    expect(decodeAgentSecret(encodeAgentSecret(backing.subarray(16, 48)))).toEqual(Buffer.alloc(32, 0x11));
  });

  it("refuses to encode a key that is not 32 bytes", () => {
    expect(() => encodeAgentSecret(new Uint8Array(31))).toThrow(InvalidAgentSecretError);
    expect(() => encodeAgentSecret(new Uint8Array(33))).toThrow(InvalidAgentSecretError);
  });

  it("refuses secrets that decode to any other length", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 96 }).filter((bytes) => bytes.length !== 32),
        (bytes) => {
          expect(() => decodeAgentSecret(Buffer.from(bytes).toString("base64url"))).toThrow(
            InvalidAgentSecretError,
          );
        },
      ),
    );
  });

  it("refuses padding, the standard alphabet, whitespace and other characters", () => {
    const key = Buffer.alloc(32, 0xfb);
    const secret = encodeAgentSecret(key);
    const invalid = [
      `${secret}=`,
      key.toString("base64"),
      `${secret.slice(0, 42)}+`,
      `${secret.slice(0, 42)}/`,
      `${secret.slice(0, 21)} ${secret.slice(22)}`,
      `${secret}\n`,
      ` ${secret}`,
      `${secret.slice(0, 42)}*`,
      `${secret.slice(0, 42)}é`,
      "",
    ];

    for (const text of invalid)
      expect(() => decodeAgentSecret(text), JSON.stringify(text)).toThrow(InvalidAgentSecretError);
  });

  it("refuses a non-canonical last character, so one key has exactly one secret", () => {
    const secret = encodeAgentSecret(Buffer.alloc(32, 0));
    const aliased = `${secret.slice(0, 42)}B`;

    expect(Buffer.from(aliased, "base64url")).toEqual(Buffer.alloc(32, 0));
    expect(() => decodeAgentSecret(aliased)).toThrow(InvalidAgentSecretError);
  });

  it("never echoes the rejected text in the error", () => {
    const leaked = `${encodeAgentSecret(Buffer.alloc(32, 0x42))}=`;

    expect(() => decodeAgentSecret(leaked)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(leaked.slice(0, 40)) }),
    );
  });
});
