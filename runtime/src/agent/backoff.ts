/**
 * Waiting between retries and polls. Retries use "full jitter" (a uniform delay below an exponentially
 * growing ceiling), so a fleet of agents that lost the control plane together does not come back in
 * lockstep; a server's Retry-After always wins. Periodic calls get ±10 % jitter around the server-set
 * interval for the same reason.
 */
export interface BackoffPolicy {
  /** Ceiling of the first retry. @default 500 */
  baseMs?: number;
  /** Largest ceiling. @default 30_000 */
  capMs?: number;
}

export function backoffDelay(failures: number, policy: BackoffPolicy = {}, random = Math.random): number {
  const base = policy.baseMs ?? 500;
  const cap = policy.capMs ?? 30_000;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, Math.min(failures, 30)));
  return Math.floor(random() * ceiling);
}

/** Retry-After (RFC 9110 §10.2.3) as milliseconds: delay-seconds or an HTTP date; undefined if absent or invalid. */
export function retryAfterMs(
  header: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** An interval in seconds as milliseconds, spread ±`spread` (a fraction) at random. */
export function jittered(seconds: number, random = Math.random, spread = 0.1): number {
  return Math.round(seconds * 1000 * (1 - spread + 2 * spread * random()));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
