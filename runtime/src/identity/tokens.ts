import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Bearer secrets: 256 bits of randomness, base64url, with a prefix that says what they are (so a leaked
 * one is recognisable by secret scanners). Only their SHA-256 is stored.
 */
export const tokenPrefixes = {
  apiToken: "hcp_",
  registrationToken: "hcr_",
  signinLink: "hcs_",
  session: "",
} as const;

export type TokenKind = keyof typeof tokenPrefixes;

export function generateToken(kind: TokenKind): string {
  return tokenPrefixes[kind] + randomBytes(32).toString("base64url");
}

/** Hex SHA-256 of a token: the key it is stored under. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Base64url of 32 bytes: 43 characters. */
const body = "[A-Za-z0-9_-]{43}";
const patterns: Record<TokenKind, RegExp> = {
  apiToken: new RegExp(`^hcp_${body}$`),
  registrationToken: new RegExp(`^hcr_${body}$`),
  signinLink: new RegExp(`^hcs_${body}$`),
  session: new RegExp(`^${body}$`),
};

export function looksLike(kind: TokenKind, value: string): boolean {
  return patterns[kind].test(value);
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
