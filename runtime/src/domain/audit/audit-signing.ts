import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { secretId } from "../../secrets/catalog";
import type { SecretStore } from "../../secrets/secret-store";
import { ServiceUnavailableError } from "../errors";
import { settings } from "../settings";
import {
  type AuditDigest,
  canonicalJson,
  type DigestPayload,
  digestHash,
  digestPayload,
} from "./audit-event";

const CACHE_MILLISECONDS = 30_000;

/** A public key as `GET /audit/public-key` publishes it and exports embed it. */
export interface AuditPublicKey {
  key_id: string;
  algorithm: "Ed25519";
  /** The raw 32-byte key, base64url (RFC 8032). */
  public_key: string;
  /** The same key as SPKI PEM, for `openssl pkey -pubin`. */
  public_key_pem: string;
  /** The secret store labels of the version holding it, e.g. AWSCURRENT. */
  stages?: string[];
}

export interface AuditSigner {
  readonly keyId: string;
  readonly privateKey: KeyObject;
}

/** A new signing key as the secret store keeps it: PKCS #8 DER, base64url. */
export function generateSigningKeySecret(): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  return privateKey.export({ format: "der", type: "pkcs8" }).toString("base64url");
}

export function signerFromSecret(value: string): AuditSigner {
  const privateKey = createPrivateKey({ key: Buffer.from(value, "base64url"), format: "der", type: "pkcs8" });
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error("the audit signing key is not Ed25519");
  return { privateKey, keyId: keyIdOf(createPublicKey(privateKey)) };
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: "jwk" });
  if (jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new Error("not an Ed25519 public key");
  return Buffer.from(jwk.x, "base64url");
}

export function keyIdOf(publicKey: KeyObject): string {
  return `ed25519:${createHash("sha256").update(rawPublicKey(publicKey)).digest("hex").slice(0, 16)}`;
}

export function describePublicKey(publicKey: KeyObject, stages?: string[]): AuditPublicKey {
  return {
    key_id: keyIdOf(publicKey),
    algorithm: "Ed25519",
    public_key: rawPublicKey(publicKey).toString("base64url"),
    public_key_pem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    ...(stages ? { stages } : {}),
  };
}

export function signDigest(payload: DigestPayload, signer: AuditSigner): AuditDigest {
  const signature = sign(null, Buffer.from(canonicalJson(payload), "utf8"), signer.privateKey);
  return { ...payload, digest_hash: digestHash(payload), digest_signature: signature.toString("base64url") };
}

/** An Ed25519 signature of a record's JCS form, base64url (the export's end record). */
export function signRecord(record: unknown, signer: AuditSigner): string {
  return sign(null, Buffer.from(canonicalJson(record), "utf8"), signer.privateKey).toString("base64url");
}

export function verifyRecordSignature(record: unknown, signature: string, publicKey: KeyObject): boolean {
  try {
    const message = Buffer.from(canonicalJson(record), "utf8");
    return verify(null, message, publicKey, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

export function verifyDigestSignature(digest: AuditDigest, publicKey: KeyObject): boolean {
  try {
    const message = Buffer.from(canonicalJson(digestPayload(digest)), "utf8");
    return verify(null, message, publicKey, Buffer.from(digest.digest_signature, "base64url"));
  } catch {
    return false;
  }
}

/**
 * Public keys by key id from what a person may hand the verifier: the JSON of `GET /audit/public-key`
 * (or an export header's `public_keys`), one or more SPKI PEM blocks, or a raw base64url key.
 */
export function parsePublicKeys(text: string): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  const add = (key: KeyObject) => keys.set(keyIdOf(key), key);
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    const parsed: unknown = JSON.parse(trimmed);
    const entries = Array.isArray(parsed)
      ? parsed
      : Array.isArray((parsed as { keys?: unknown }).keys)
        ? (parsed as { keys: unknown[] }).keys
        : [parsed];
    for (const entry of entries) {
      const raw = (entry as { public_key?: unknown }).public_key;
      if (typeof raw !== "string") throw new Error("a key entry has no public_key");
      add(publicKeyFromRaw(raw));
    }
  } else if (trimmed.includes("-----BEGIN PUBLIC KEY-----")) {
    for (const block of trimmed.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []) {
      add(createPublicKey(block));
    }
  } else {
    add(publicKeyFromRaw(trimmed));
  }
  if (keys.size === 0) throw new Error("no public key found");
  for (const key of keys.values()) {
    if (key.asymmetricKeyType !== "ed25519") throw new Error("only Ed25519 public keys are accepted");
  }
  return keys;
}

export function publicKeyFromRaw(raw: string): KeyObject {
  const bytes = Buffer.from(raw, "base64url");
  if (bytes.length !== 32) throw new Error("a raw Ed25519 public key has 32 bytes");
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: bytes.toString("base64url") },
    format: "jwk",
  });
}

/**
 * The Ed25519 key that signs digests, from the secret store (`auditSigningKey`). Every kept version
 * stays usable for verification, so digests signed before a rotation still verify after it.
 */
export class AuditSigningKeys {
  private cache?: { at: number; signer: AuditSigner; correlationKey: Buffer };
  private publicKeyCache?: { at: number; keys?: AuditPublicKey[]; reading?: Promise<AuditPublicKey[]> };

  constructor(
    private readonly secretStore: SecretStore,
    private readonly secretPrefix: string,
    private readonly now: () => number = Date.now,
    /** Locally the key is created on first use; on AWS only the rotation function writes key material. */
    private readonly createMissingKey = true,
  ) {}

  get secretId(): string {
    return secretId(this.secretPrefix, "auditSigningKey");
  }

  /** Creates the key on first start (idempotent, safe under concurrency). */
  async ensureKey(): Promise<void> {
    await this.secretStore.ensureSecret(
      this.secretId,
      generateSigningKeySecret,
      "Ed25519 key that signs audit-chain digests",
    );
  }

  private async current(): Promise<{ signer: AuditSigner; correlationKey: Buffer }> {
    if (this.cache && this.now() - this.cache.at < CACHE_MILLISECONDS) return this.cache;
    let version = await this.secretStore.getSecretValue(this.secretId, "AWSCURRENT");
    if (!version && this.createMissingKey) {
      await this.ensureKey();
      version = await this.secretStore.getSecretValue(this.secretId, "AWSCURRENT");
    }
    if (!version) {
      throw new ServiceUnavailableError(
        "the audit signing key is not available yet (its first rotation creates it)",
      );
    }
    const material = Buffer.from(version.value, "base64url");
    this.cache = {
      at: this.now(),
      signer: signerFromSecret(version.value),
      // A key of its own, derived so the signing key is never used for anything but signatures.
      correlationKey: Buffer.from(hkdfSync("sha256", material, "hybrid-cicd", "audit-correlation-hmac", 32)),
    };
    return this.cache;
  }

  async signer(): Promise<AuditSigner> {
    return (await this.current()).signer;
  }

  /** A keyed HMAC of a value worth correlating (a presented credential, an address): never the value. */
  async correlate(value: string): Promise<string> {
    const { correlationKey } = await this.current();
    return createHmac("sha256", correlationKey).update(value, "utf8").digest("hex").slice(0, 24);
  }

  /**
   * Every kept version's public key, current first. Kept in memory for a short while (and one read in
   * flight at a time): `GET /audit/public-key` is public, and anonymous callers must not be able to
   * multiply secret store reads. A cached list without the current signing key is read again.
   */
  async publicKeys(): Promise<AuditPublicKey[]> {
    const { signer } = await this.current();
    const cached = this.publicKeyCache;
    if (
      cached &&
      this.now() - cached.at < settings.audit.publicKeyCacheSeconds * 1000 &&
      (cached.keys === undefined || cached.keys.some((key) => key.key_id === signer.keyId))
    ) {
      return cached.keys ?? cached.reading!;
    }
    const reading = this.readPublicKeys();
    this.publicKeyCache = { at: this.now(), reading };
    try {
      const keys = await reading;
      if (this.publicKeyCache?.reading === reading) this.publicKeyCache = { at: this.now(), keys };
      return keys;
    } catch (error) {
      if (this.publicKeyCache?.reading === reading) this.publicKeyCache = undefined;
      throw error;
    }
  }

  private async readPublicKeys(): Promise<AuditPublicKey[]> {
    const versions = await this.secretStore.listVersions(this.secretId);
    const described = versions.map((version) =>
      describePublicKey(createPublicKey(signerFromSecret(version.value).privateKey), [...version.stages]),
    );
    const rank = (key: AuditPublicKey) =>
      key.stages?.includes("AWSCURRENT") ? 0 : key.stages?.includes("AWSPREVIOUS") ? 1 : 2;
    return described.sort((a, b) => rank(a) - rank(b));
  }

  async verificationKeys(): Promise<Map<string, KeyObject>> {
    return new Map((await this.publicKeys()).map((key) => [key.key_id, publicKeyFromRaw(key.public_key)]));
  }
}
