import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { type ComponentParser, createSigner, createVerifier, httpbis } from "http-message-signatures";
import {
  type BareItem,
  type Dictionary,
  type InnerList,
  type Item,
  isInnerList,
  parseDictionary,
  serializeItem,
  serializeList,
} from "structured-headers";

/**
 * RFC 9421 HTTP Message Signatures for agent requests, HMAC-SHA256 only: the agent client signs with
 * `signRequest`, the API verifies with `verifyRequest`. The signature base (component extraction,
 * identifier and `@signature-params` serialisation, line formatting) is built by `http-message-signatures`
 * on both sides; this module adds what the library leaves to its caller:
 *
 * - the policy: `alg="hmac-sha256"`, `keyid`, `created` and `nonce` present, `@method`, `@path`, `@query`
 *   (when there is a query) and `content-digest` (when there is a body) covered;
 * - Content-Digest (RFC 9530), which the library does not compute or check;
 * - freshness against an injectable clock, replay refusal after the signature verifies, one reason per
 *   refusal (the library's `verifyMessage` reads the wall clock, lets `alg` and `keyid` be absent and
 *   returns only the result of the last signature it looked at, so it is not used here);
 * - the request's derived components: `@method` exactly as received (the library upper-cases it, which
 *   RFC 9421 §2.2.1 forbids) and `@path`/`@query` from the raw request target (the library re-parses the
 *   URL with WHATWG rules, which cannot read a bare path and would normalise dot segments and escapes).
 */

export const signatureAlgorithm = "hmac-sha256";
export const defaultMaxAgeSeconds = 300;
export const defaultSignatureLabel = "sig1";

/** Each label costs a key lookup and an HMAC; a request never needs more than a handful. */
const maxSignaturesPerRequest = 8;
/** Nonces are stored for the replay window; a bound keeps that item small. */
const maxNonceLength = 256;
/**
 * A keyid is checked before any key lookup: 1 to 128 printable ASCII characters without spaces. Key
 * stores have key-size limits of their own (DynamoDB: 2 KB) that a caller must not be able to reach.
 */
export const keyIdPattern = /^[\x21-\x7e]{1,128}$/;

// ---------------------------------------------------------------------------------------------------
// Content-Digest (RFC 9530)
// ---------------------------------------------------------------------------------------------------

const digestAlgorithms = { "sha-256": "sha256", "sha-512": "sha512" } as const;

/** `sha-256=:<base64>:` of the body bytes (a string body is UTF-8). */
export function contentDigest(body: Uint8Array | string): string {
  return `sha-256=:${createHash("sha256").update(body).digest("base64")}:`;
}

/**
 * True when the header names at least one supported digest (sha-256, sha-512) and every supported one
 * matches the body. Other algorithms are ignored rather than trusted; a malformed header is false.
 */
export function verifyContentDigest(header: string, body: Uint8Array | string): boolean {
  let entries: Dictionary;
  try {
    entries = parseDictionary(header);
  } catch {
    return false;
  }
  let checked = 0;
  for (const [name, member] of entries) {
    if (!Object.hasOwn(digestAlgorithms, name)) continue;
    const claimed = isInnerList(member) ? undefined : bytesOf(member[0]);
    if (claimed === undefined) return false;
    const actual = createHash(digestAlgorithms[name as keyof typeof digestAlgorithms])
      .update(body)
      .digest();
    if (claimed.length !== actual.length || !timingSafeEqual(claimed, actual)) return false;
    checked += 1;
  }
  return checked > 0;
}

// ---------------------------------------------------------------------------------------------------
// Signing (agent side)
// ---------------------------------------------------------------------------------------------------

export interface OutgoingRequest {
  method: string;
  /** Absolute http(s) URL, or path + query starting with `/`. */
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
}

export interface SigningOptions {
  /** The agent id. */
  keyId: string;
  /** The decoded agent key bytes (never the base64url text). */
  key: Uint8Array;
  /** Epoch seconds. @default now */
  created?: number;
  /** @default 128 random bits as base64url */
  nonce?: string;
  /** @default "sig1" */
  label?: string;
}

/**
 * Returns the headers to send: the caller's, plus `content-digest` when there is a body (empty bodies
 * included), `signature-input` and `signature`. Signature headers already present are replaced: a
 * leftover valid signature would carry an already-used nonce and get the whole request refused.
 *
 * `@path` and `@query` are taken the way fetch puts them on the wire (WHATWG URL serialisation), so an
 * absolute URL signs its own path and query. Behind a base path (an API Gateway stage), pass the
 * absolute URL, not the path relative to it.
 */
export async function signRequest(
  request: OutgoingRequest,
  options: SigningOptions,
): Promise<Record<string, string>> {
  const label = options.label ?? defaultSignatureLabel;
  const created = options.created ?? Math.floor(Date.now() / 1000);
  const nonce = options.nonce ?? randomBytes(16).toString("base64url");
  assertSigningOptions(options.keyId, options.key, label, created, nonce);

  const url = outgoingUrl(request.url);
  const target: RequestTarget = {
    method: fetchMethod(request.method),
    path: url.pathname,
    query: url.search === "" ? undefined : url.search.slice(1),
    authority: url.host,
  };

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (lower === "signature" || lower === "signature-input") continue;
    if (lower === "content-digest" && request.body !== undefined) continue;
    headers[name] = value;
  }
  if (request.body !== undefined) headers["content-digest"] = contentDigest(request.body);

  const signed = await httpbis.signMessage(
    {
      key: createSigner(Buffer.from(options.key), signatureAlgorithm, options.keyId),
      name: label,
      fields: requiredComponents(target.query !== undefined, request.body !== undefined),
      params: ["created", "keyid", "alg", "nonce"],
      paramValues: { created: new Date(created * 1000), nonce },
      componentParser: componentParserFor(target),
    },
    { method: target.method, url: url.href, headers },
  );

  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) {
    const lower = name.toLowerCase();
    const key = lower === "signature" || lower === "signature-input" ? lower : name;
    result[key] = Array.isArray(value) ? value.join(", ") : value;
  }
  return result;
}

function assertSigningOptions(keyId: string, key: Uint8Array, label: string, created: number, nonce: string) {
  if (!/^[\x20-\x7e]+$/.test(keyId)) throw new TypeError("keyId must be non-empty printable ASCII");
  if (key.byteLength === 0) throw new TypeError("the signing key must not be empty");
  if (!/^[a-z*][a-z0-9_.*-]*$/.test(label)) {
    throw new TypeError("label must be a structured-field key (lower-case letters, digits, _ - . *)");
  }
  if (!Number.isSafeInteger(created) || created <= 0) {
    throw new TypeError("created must be a positive integer (epoch seconds)");
  }
  if (nonce.length > maxNonceLength || !/^[\x20-\x7e]+$/.test(nonce)) {
    throw new TypeError(`nonce must be 1 to ${maxNonceLength} printable ASCII characters`);
  }
}

function outgoingUrl(url: string): URL {
  if (/^[A-Za-z][A-Za-z\d+.-]*:/.test(url)) {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError("only http and https URLs can be signed");
    }
    return parsed;
  }
  if (!url.startsWith("/") && !url.startsWith("?")) {
    throw new TypeError("url must be absolute or a path starting with /");
  }
  // Concatenated, not resolved: resolving "//x" against a base would read it as a host.
  return new URL(`http://localhost${url}`);
}

/** fetch upper-cases these six methods (Fetch standard, "normalize a method") and sends others as given. */
function fetchMethod(method: string): string {
  const upper = method.toUpperCase();
  return ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"].includes(upper) ? upper : method;
}

// ---------------------------------------------------------------------------------------------------
// Verification (API side)
// ---------------------------------------------------------------------------------------------------

export type HeaderValue = string | string[] | undefined;

export interface ReceivedRequest {
  method: string;
  /**
   * The request target as received: path + query (express `req.originalUrl`; under serverless-http
   * with an HTTP API, `rawPath` + `rawQueryString`, which is what it puts in `req.url`).
   */
  url: string;
  /** Node `IncomingHttpHeaders` style; names in any case. */
  headers: Record<string, HeaderValue>;
  /** The raw body bytes, before any parsing. */
  body?: Uint8Array;
}

export interface VerificationOptions {
  /** Acceptable keys for an agent (current first, then previous during rotation); undefined = unknown. */
  lookupKey: (keyId: string) => Promise<readonly Uint8Array[] | undefined>;
  /** Epoch seconds. @default now */
  now?: number;
  /** Maximum age of `created`, and maximum clock skew into the future. @default 300 */
  maxAgeSeconds?: number;
  /**
   * Records a nonce for the agent until `expiresAt` (epoch seconds, when the signature would be stale
   * anyway); true when it had not been seen, false for a replay.
   */
  checkNonce: (keyId: string, nonce: string, expiresAt: number) => Promise<boolean>;
}

export type SignatureFailureCode =
  | "missing-signature"
  | "malformed-signature-input"
  | "malformed-signature"
  | "too-many-signatures"
  | "unsupported-alg"
  | "missing-keyid"
  | "missing-created"
  | "missing-nonce"
  | "component-not-covered"
  | "content-digest-mismatch"
  | "unresolvable-component"
  | "stale"
  | "future"
  | "expired"
  | "unknown-key"
  | "bad-signature"
  | "replayed-nonce";

export type VerificationResult =
  | { ok: true; keyId: string; keyIndex: number; created: number; nonce: string; label: string }
  | { ok: false; code: SignatureFailureCode; reason: string; keyId?: string };

type Failure = Extract<VerificationResult, { ok: false }>;

interface ParsedSignature {
  label: string;
  input: InnerList;
  signature: Buffer;
  keyId: string;
  created: number;
  nonce: string;
  expires: number | undefined;
}

interface VerifiedSignature extends ParsedSignature {
  keyIndex: number;
}

/** Later stages win when several signatures fail: the reason that got furthest is the useful one. */
const stages: readonly SignatureFailureCode[] = [
  "missing-signature",
  "too-many-signatures",
  "malformed-signature-input",
  "malformed-signature",
  "unsupported-alg",
  "missing-keyid",
  "missing-created",
  "missing-nonce",
  "component-not-covered",
  "content-digest-mismatch",
  "unresolvable-component",
  "stale",
  "future",
  "expired",
  "unknown-key",
  "bad-signature",
  "replayed-nonce",
];

/**
 * Verifies an agent request. Every label is considered (none is special); a label counts when it
 * satisfies the policy and its signature verifies with one of the agent's keys. The request is accepted
 * when at least one label counts, and the first one that does (in header order) names the agent.
 *
 * Nonces are checked only after a signature verifies, so forged requests cannot burn them; and the
 * nonce of every counting label is recorded, because Signature and Signature-Input are not themselves
 * signed: otherwise a request carrying two valid signatures could be replayed with the second alone.
 *
 * Refusals carry a code and a reason fit for a 401 problem+json detail: they name the rule that failed,
 * never key material. Errors thrown by `lookupKey` or `checkNonce` propagate (they are outages, not 401s).
 */
export async function verifyRequest(
  request: ReceivedRequest,
  options: VerificationOptions,
): Promise<VerificationResult> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const maxAge = options.maxAgeSeconds ?? defaultMaxAgeSeconds;
  const headers = lowerCaseHeaders(request.headers);

  const parsed = parseSignatureHeaders(headers);
  if ("ok" in parsed) return parsed;

  const target = receivedTarget(request.method, request.url, headers);
  const body = request.body ?? new Uint8Array(0);
  const keyCache = new Map<string, Promise<readonly Uint8Array[] | undefined>>();
  const lookupKey = (keyId: string) => {
    let keys = keyCache.get(keyId);
    if (keys === undefined) {
      keys = options.lookupKey(keyId);
      keyCache.set(keyId, keys);
    }
    return keys;
  };

  const verified: VerifiedSignature[] = [];
  let furthest: Failure | undefined;
  for (const [label, input] of parsed.inputs) {
    const outcome = await verifyLabel(label, input, parsed.signatures, {
      target,
      headers,
      body,
      now,
      maxAge,
      lookupKey,
    });
    if ("ok" in outcome) {
      if (furthest === undefined || stages.indexOf(outcome.code) > stages.indexOf(furthest.code)) {
        furthest = outcome;
      }
    } else {
      verified.push(outcome);
    }
  }

  const accepted = verified[0];
  if (accepted === undefined) return furthest ?? fail("missing-signature", "no signature to verify");

  const recorded = new Set<string>();
  for (const signature of verified) {
    const scope = JSON.stringify([signature.keyId, signature.nonce]);
    if (recorded.has(scope)) continue;
    recorded.add(scope);
    const fresh = await options.checkNonce(signature.keyId, signature.nonce, signature.created + maxAge);
    if (!fresh) {
      return fail("replayed-nonce", "the nonce has already been used", signature.keyId, signature.label);
    }
  }

  return {
    ok: true,
    keyId: accepted.keyId,
    keyIndex: accepted.keyIndex,
    created: accepted.created,
    nonce: accepted.nonce,
    label: accepted.label,
  };
}

/**
 * The signature base the server computes for one label of a received request: what the agent's HMAC
 * must cover. For diagnosing interoperability, never for deciding anything.
 */
export function signatureBase(request: ReceivedRequest, label: string): string {
  const headers = lowerCaseHeaders(request.headers);
  const parsed = parseSignatureHeaders(headers);
  if ("ok" in parsed) throw new Error(parsed.reason);
  const input = parsed.inputs.get(label);
  if (input === undefined || !isInnerList(input)) throw new Error(`no Signature-Input for "${label}"`);
  return buildSignatureBase(input, receivedTarget(request.method, request.url, headers), headers);
}

interface LabelContext {
  target: RequestTarget;
  headers: Record<string, string | string[]>;
  body: Uint8Array;
  now: number;
  maxAge: number;
  lookupKey: (keyId: string) => Promise<readonly Uint8Array[] | undefined>;
}

async function verifyLabel(
  label: string,
  input: Item | InnerList,
  signatures: Dictionary,
  context: LabelContext,
): Promise<VerifiedSignature | Failure> {
  const signature = parseLabel(label, input, signatures);
  if ("ok" in signature) return signature;
  const { keyId } = signature;
  const refuse = (code: SignatureFailureCode, reason: string) => fail(code, reason, keyId, label);

  // Bare identifiers only: "@method";req or "content-digest";key="sha-256" would cover something else.
  const covered = (component: string) =>
    signature.input[0].some(([name, params]) => name === component && params.size === 0);
  const hasQuery = context.target.query !== undefined && context.target.query !== "";
  const missing = requiredComponents(hasQuery, context.body.byteLength > 0).find(
    (component) => !covered(component),
  );
  if (missing !== undefined) {
    return refuse("component-not-covered", `required component "${missing}" is not covered`);
  }

  const digestProblem = checkBodyDigest(context.headers, context.body);
  if (digestProblem !== undefined) return refuse("content-digest-mismatch", digestProblem);

  let base: string;
  try {
    base = buildSignatureBase(signature.input, context.target, context.headers);
  } catch (error) {
    return refuse("unresolvable-component", `a covered component cannot be derived: ${messageOf(error)}`);
  }

  if (context.now - signature.created > context.maxAge) {
    return refuse("stale", `the signature was created more than ${context.maxAge} s ago`);
  }
  if (signature.created - context.now > context.maxAge) {
    return refuse("future", `the signature was created more than ${context.maxAge} s in the future`);
  }
  if (signature.expires !== undefined && context.now > signature.expires) {
    return refuse("expired", "the signature has expired");
  }

  const keys = await context.lookupKey(keyId);
  if (keys === undefined || keys.length === 0) return refuse("unknown-key", "unknown keyid");

  const data = Buffer.from(base, "utf8");
  for (const [keyIndex, key] of keys.entries()) {
    // createVerifier compares in constant time (timingSafeEqual after a length check).
    if (await createVerifier(Buffer.from(key), signatureAlgorithm)(data, signature.signature)) {
      return { ...signature, keyIndex };
    }
  }
  return refuse("bad-signature", "the signature does not verify");
}

function parseSignatureHeaders(
  headers: Record<string, string | string[]>,
): { inputs: Dictionary; signatures: Dictionary } | Failure {
  const inputHeader = fieldValue(headers, "signature-input");
  const signatureHeader = fieldValue(headers, "signature");
  if (!inputHeader && !signatureHeader) {
    return fail("missing-signature", "the Signature and Signature-Input headers are missing");
  }
  if (!inputHeader) return fail("missing-signature", "the Signature-Input header is missing");
  if (!signatureHeader) return fail("missing-signature", "the Signature header is missing");

  let inputs: Dictionary;
  try {
    inputs = parseDictionary(inputHeader);
  } catch {
    return fail("malformed-signature-input", "Signature-Input is not a structured-field dictionary");
  }
  let signatures: Dictionary;
  try {
    signatures = parseDictionary(signatureHeader);
  } catch {
    return fail("malformed-signature", "Signature is not a structured-field dictionary");
  }
  if (inputs.size === 0) return fail("missing-signature", "Signature-Input names no signature");
  if (inputs.size > maxSignaturesPerRequest) {
    return fail("too-many-signatures", `at most ${maxSignaturesPerRequest} signatures are considered`);
  }
  return { inputs, signatures };
}

function parseLabel(
  label: string,
  input: Item | InnerList,
  signatures: Dictionary,
): ParsedSignature | Failure {
  const refuse = (code: SignatureFailureCode, reason: string, keyId?: string) =>
    fail(code, reason, keyId, label);

  if (!isInnerList(input) || !input[0].every(([name]) => typeof name === "string")) {
    return refuse("malformed-signature-input", "the covered components are not a list of strings");
  }
  const identifiers = input[0].map((item) => serializeItem(item));
  if (new Set(identifiers).size !== identifiers.length) {
    return refuse("malformed-signature-input", "a component is covered twice");
  }
  if (input[0].some(([name]) => name === "@signature-params")) {
    return refuse("malformed-signature-input", '"@signature-params" cannot be a covered component');
  }

  const member = signatures.get(label);
  const signature = member === undefined || isInnerList(member) ? undefined : bytesOf(member[0]);
  if (signature === undefined)
    return refuse("malformed-signature", "no byte-sequence Signature for this label");

  const params = input[1];
  const keyId = params.get("keyid");
  const claimedKeyId = typeof keyId === "string" && keyId !== "" ? keyId : undefined;
  // Only a keyid of the right shape is echoed back in refusals and handed to lookups.
  const namedKeyId = claimedKeyId !== undefined && keyIdPattern.test(claimedKeyId) ? claimedKeyId : undefined;
  if (params.get("alg") !== signatureAlgorithm) {
    return refuse("unsupported-alg", `alg must be the string "${signatureAlgorithm}"`, namedKeyId);
  }
  if (claimedKeyId === undefined) {
    return refuse("missing-keyid", "the keyid parameter is missing or not a non-empty string");
  }
  if (!keyIdPattern.test(claimedKeyId)) {
    return refuse("missing-keyid", "the keyid parameter is not 1 to 128 printable ASCII characters");
  }
  const created = params.get("created");
  if (!Number.isSafeInteger(created)) {
    return refuse("missing-created", "the created parameter is missing or not an integer", claimedKeyId);
  }
  const nonce = params.get("nonce");
  if (typeof nonce !== "string" || nonce === "" || nonce.length > maxNonceLength) {
    return refuse(
      "missing-nonce",
      `the nonce parameter is missing, not a string or longer than ${maxNonceLength}`,
      claimedKeyId,
    );
  }
  const expires = params.get("expires");
  if (expires !== undefined && !Number.isSafeInteger(expires)) {
    return refuse("malformed-signature-input", "the expires parameter is not an integer", claimedKeyId);
  }

  return {
    label,
    input,
    signature,
    keyId: claimedKeyId,
    created: created as number,
    nonce,
    expires: expires as number | undefined,
  };
}

function checkBodyDigest(headers: Record<string, string | string[]>, body: Uint8Array): string | undefined {
  const header = fieldValue(headers, "content-digest");
  if (header === undefined) return body.byteLength > 0 ? "the Content-Digest header is missing" : undefined;
  return verifyContentDigest(header, body) ? undefined : "Content-Digest does not match the body";
}

// ---------------------------------------------------------------------------------------------------
// Shared: components and the signature base
// ---------------------------------------------------------------------------------------------------

interface RequestTarget {
  method: string;
  /** Raw path, before any percent-decoding or dot-segment removal. */
  path: string;
  /** Raw query without the "?"; undefined when the target has no "?". */
  query: string | undefined;
  /** Lower-cased host[:port]; undefined when unknown. */
  authority: string | undefined;
}

function requiredComponents(hasQuery: boolean, hasBody: boolean): string[] {
  return ["@method", "@path", ...(hasQuery ? ["@query"] : []), ...(hasBody ? ["content-digest"] : [])];
}

function receivedTarget(
  method: string,
  url: string,
  headers: Record<string, string | string[]>,
): RequestTarget {
  // An absolute-form target (a request sent to a proxy) still signs only its path and query.
  const origin = /^[A-Za-z][A-Za-z\d+.-]*:\/\/[^/?]*/.exec(url);
  const rest = origin === null ? url : url.slice(origin[0].length);
  const question = rest.indexOf("?");
  const host = fieldValue(headers, "host");
  return {
    method,
    path: question === -1 ? rest : rest.slice(0, question),
    query: question === -1 ? undefined : rest.slice(question + 1),
    authority: host === undefined ? undefined : host.trim().toLowerCase(),
  };
}

/**
 * RFC 9421 §2.2 derived components from the target as given. Headers and component parameters such as
 * `;sf`, `;bs` and `;key` are left to the library; `@query-param` too (it reads the query from the URL
 * handed to it). `@scheme` and `@target-uri` are refused: behind API Gateway the server cannot know the
 * URL the agent used, and a guess would only make honest signatures fail at random.
 */
function componentParserFor(target: RequestTarget): ComponentParser {
  return (name, params) => {
    if (!name.startsWith("@") || name === "@query-param") return null;
    if (params.size > 0) throw new Error(`parameters on "${name}" are not supported in requests`);
    switch (name) {
      case "@method":
        return [target.method];
      case "@path":
        return [target.path === "" ? "/" : target.path];
      case "@query":
        return [`?${target.query ?? ""}`];
      case "@request-target":
        return [target.query === undefined ? target.path : `${target.path}?${target.query}`];
      case "@authority":
        if (target.authority === undefined) throw new Error('"@authority" needs a Host header');
        return [target.authority];
      case "@scheme":
      case "@target-uri":
        throw new Error(`"${name}" is not supported: cover "@path" and "@query" instead`);
      default:
        return null;
    }
  };
}

function buildSignatureBase(
  input: InnerList,
  target: RequestTarget,
  headers: Record<string, string | string[]>,
): string {
  const componentParser = componentParserFor(target);
  const query = target.query === undefined ? "" : `?${target.query}`;
  const base = httpbis.createSignatureBase(
    { fields: input[0].map((item) => serializeItem(item)), componentParser },
    // Only `@query-param` reads this URL; the host is a placeholder.
    { method: target.method, url: `http://localhost/${query}`, headers },
  );
  // As the library's verifyMessage does: @signature-params is the re-serialised inner list.
  base.push(['"@signature-params"', [serializeList([input])]]);
  return httpbis.formatSignatureBase(base);
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

function lowerCaseHeaders(headers: Record<string, HeaderValue>): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const existing = result[lower];
    result[lower] = existing === undefined ? value : [existing, value].flat();
  }
  return result;
}

/** Several field lines combine with ", " (RFC 9110 §5.3). */
function fieldValue(headers: Record<string, string | string[]>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

function bytesOf(value: BareItem): Buffer | undefined {
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

function fail(code: SignatureFailureCode, reason: string, keyId?: string, label?: string): Failure {
  const detail = label === undefined ? reason : `signature "${label}": ${reason}`;
  return keyId === undefined
    ? { ok: false, code, reason: detail }
    : { ok: false, code, reason: detail, keyId };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : "unknown error";
}
