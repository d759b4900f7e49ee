import { createHmac } from "node:crypto";

/**
 * Agent keys are derived, never stored: `HMAC-SHA256(root key, "agent:" + agent id + ":" + key epoch)`.
 * Revoking an agent bumps its epoch, which yields an unrelated key; rotating the root key changes every
 * agent's key at once (verifiers accept the previous root's key during the overlap).
 *
 * On the wire (registration response, agent configuration) the key travels as unpadded base64url; the
 * HMAC key for RFC 9421 signatures is the decoded 32 bytes, never the text.
 */
export const agentKeyLength = 32;

/** A root key shorter than the HMAC-SHA256 output would make every derived key weaker than it looks. */
const minimumRootKeyLength = 32;

/** 32 bytes as unpadded base64url are exactly 43 characters from the URL-safe alphabet. */
const agentSecretPattern = /^[A-Za-z0-9_-]{43}$/;

export class InvalidAgentSecretError extends Error {
  override name = "InvalidAgentSecretError";
}

export function deriveAgentKey(rootKey: Uint8Array, agentId: string, keyEpoch: number): Buffer {
  if (rootKey.byteLength < minimumRootKeyLength) {
    throw new RangeError(`the workload identity root key must be at least ${minimumRootKeyLength} bytes`);
  }
  if (agentId.length === 0) throw new RangeError("agent id must not be empty");
  // The epoch is the last, purely numeric part of the message, so "agent:a:b:1" can only be agent "a:b".
  if (!Number.isSafeInteger(keyEpoch) || keyEpoch < 0) {
    throw new RangeError("key epoch must be a non-negative integer");
  }
  return createHmac("sha256", rootKey).update(`agent:${agentId}:${keyEpoch}`, "utf8").digest();
}

export function encodeAgentSecret(key: Uint8Array): string {
  if (key.byteLength !== agentKeyLength) {
    throw new InvalidAgentSecretError(`an agent key is ${agentKeyLength} bytes, got ${key.byteLength}`);
  }
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("base64url");
}

/**
 * Node's base64url decoder skips characters it does not know and accepts padding, so the text is
 * checked against the exact shape first; the message never echoes the secret.
 */
export function decodeAgentSecret(text: string): Buffer {
  if (!agentSecretPattern.test(text)) {
    throw new InvalidAgentSecretError(
      `an agent secret is ${agentKeyLength} bytes as unpadded base64url (43 characters of A-Z a-z 0-9 - _)`,
    );
  }
  const key = Buffer.from(text, "base64url");
  // 43 characters carry 258 bits; the last 2 must be zero or two different texts would name one key.
  if (key.byteLength !== agentKeyLength || key.toString("base64url") !== text) {
    throw new InvalidAgentSecretError("an agent secret must be the canonical base64url encoding of its key");
  }
  return key;
}
