import { signRequest } from "../identity/http-signatures";

export interface AgentIdentity {
  agentId: string;
  /** The derived key's bytes (decoded from `workload_identity_secret`). */
  key: Uint8Array;
  /**
   * During a key rotation, a second key signing the same request under its own label (RFC 9421 allows
   * several signatures); the server accepts the request when either verifies.
   */
  alsoSignWith?: Uint8Array;
}

export interface SignedResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * One signed request from an agent to the control plane: RFC 9421 signature over @method, @path,
 * @query (when present) and Content-Digest (when there is a body), with the same code the server verifies.
 */
export async function signedFetch<T = unknown>(
  baseUrl: string,
  identity: AgentIdentity,
  method: string,
  pathAndQuery: string,
  body?: unknown,
  options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<SignedResponse<T>> {
  const url = new URL(pathAndQuery, baseUrl);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined) headers["content-type"] = "application/json";
  const request = { method, url: url.pathname + url.search, headers, body: payload };
  const key = identity.key;
  const second = identity.alsoSignWith;
  let signed = await signRequest(request, { keyId: identity.agentId, key });
  if (second) {
    const extra = await signRequest(request, { keyId: identity.agentId, key: second, label: "sig2" });
    signed = {
      ...signed,
      "signature-input": `${signed["signature-input"]}, ${extra["signature-input"]}`,
      signature: `${signed.signature}, ${extra.signature}`,
    };
  }
  const response = await fetch(url, { method, headers: signed, body: payload, signal: options.signal });
  const text = await response.text();
  let parsed: unknown = text;
  if (text.length > 0 && /json/.test(response.headers.get("content-type") ?? "")) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T };
}
