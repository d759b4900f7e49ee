import type { AuditDraft } from "../../store/transaction";
import type { AuditActor } from "./audit-event";

/**
 * Denied requests (401, 403), failed sign-ins among them, counted per key and written as one audit event per
 * key and window (decision 004). Recording is synchronous and never waits for the chain, so a flood
 * of refused requests costs the API nothing but a map update, and the chain at most `maxKeys` (+1)
 * events per window and process.
 */

export interface DeniedRequest {
  status: number;
  method: string;
  /** The route pattern (`/agents/:agent_id/config`), never the raw path: ids would defeat counting. */
  route: string;
  /** The problem detail sent to the client (safe to show, never a secret). */
  reason: string;
  actor: AuditActor;
  requestId: string;
  /** A credential the client presented (bearer token, session id); only its keyed HMAC is written. */
  credential?: string;
  /** The agent id a refused signature claimed (not a secret). */
  claimedAgent?: string;
}

export interface DeniedRequestsOptions {
  windowSeconds: number;
  maxKeys: number;
  now: () => Date;
  /** Writes the window's events (in the chain), resolving once they are committed. */
  write: (drafts: AuditDraft[]) => Promise<void>;
  /** Keyed HMAC of a credential. */
  correlate: (value: string) => Promise<string>;
  onError?: (error: unknown) => void;
}

interface Tally {
  key: string;
  action: string;
  status: number;
  method: string;
  route: string;
  actor: AuditActor;
  count: number;
  firstAt: string;
  lastAt: string;
  reasons: Map<string, number>;
  requestIds: string[];
  credentials: Set<string>;
  claimedAgents: Set<string>;
}

const SAMPLES = 5;
const OVERFLOW_KEY = "overflow";

/** The action of every aggregated refusal; the route, status and reasons are in the event. */
export const DENIED_ACTION = "request.denied";

export class DeniedRequests {
  private tallies = new Map<string, Tally>();
  private windowStarted: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly options: DeniedRequestsOptions) {}

  /** Counts one refusal. O(1); never throws, never waits. */
  record(request: DeniedRequest): void {
    const now = this.options.now();
    const at = now.toISOString();
    const action = DENIED_ACTION;
    let key = [
      action,
      request.status,
      request.actor.type,
      request.actor.id,
      request.actor.ip ?? "",
      request.method,
      request.route,
    ].join("|");
    let tally = this.tallies.get(key);
    if (!tally && this.tallies.size >= this.options.maxKeys) {
      key = OVERFLOW_KEY;
      tally = this.tallies.get(key);
      request = { ...request, route: "*", method: "*", actor: { type: "anonymous", id: "*" } };
    }
    if (!tally) {
      tally = {
        key,
        action,
        status: request.status,
        method: request.method,
        route: request.route,
        actor: request.actor,
        count: 0,
        firstAt: at,
        lastAt: at,
        reasons: new Map(),
        requestIds: [],
        credentials: new Set(),
        claimedAgents: new Set(),
      };
      this.tallies.set(key, tally);
    }
    tally.count++;
    tally.lastAt = at;
    if (tally.reasons.has(request.reason) || tally.reasons.size < SAMPLES) {
      tally.reasons.set(request.reason, (tally.reasons.get(request.reason) ?? 0) + 1);
    }
    if (tally.requestIds.length < SAMPLES) tally.requestIds.push(request.requestId);
    if (request.credential && tally.credentials.size < SAMPLES) tally.credentials.add(request.credential);
    if (request.claimedAgent && tally.claimedAgents.size < SAMPLES)
      tally.claimedAgents.add(request.claimedAgent);

    this.windowStarted ??= now.getTime();
    if (now.getTime() - this.windowStarted >= this.options.windowSeconds * 1000) {
      // A process that was frozen (Lambda) catches up on the first refusal after thawing.
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.windowSeconds * 1000);
      this.timer.unref();
    }
  }

  /** Refusals counted and not yet written. */
  get pending(): number {
    let total = 0;
    for (const tally of this.tallies.values()) total += tally.count;
    return total;
  }

  /** Writes what has been counted (the timer does this every window). */
  flush(): Promise<void> {
    const run = () => this.writeWindow();
    this.flushing = this.flushing.then(run, run);
    return this.flushing;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    await this.flush();
  }

  private async writeWindow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.windowStarted = undefined;
    const tallies = [...this.tallies.values()];
    this.tallies = new Map();
    if (tallies.length === 0) return;
    try {
      const drafts = await Promise.all(tallies.map((tally) => this.draft(tally)));
      for (let start = 0; start < drafts.length; start += 25) {
        await this.options.write(drafts.slice(start, start + 25));
      }
    } catch (error) {
      // Keep the counts for the next window rather than lose them (a busy chain recovers).
      for (const tally of tallies) this.restore(tally);
      this.options.onError?.(error);
      if (!this.timer) {
        this.timer = setTimeout(() => void this.flush(), this.options.windowSeconds * 1000);
        this.timer.unref();
      }
    }
  }

  private restore(tally: Tally): void {
    const current = this.tallies.get(tally.key);
    if (!current) {
      this.tallies.set(tally.key, tally);
      return;
    }
    current.count += tally.count;
    if (tally.firstAt < current.firstAt) current.firstAt = tally.firstAt;
    for (const [reason, count] of tally.reasons)
      current.reasons.set(reason, (current.reasons.get(reason) ?? 0) + count);
  }

  private async draft(tally: Tally): Promise<AuditDraft> {
    const credentials = await Promise.all(
      [...tally.credentials].map((value) => this.options.correlate(value)),
    );
    return {
      action: tally.action,
      actor: tally.actor,
      target: { type: "route", id: `${tally.method} ${tally.route}` },
      outcome: "denied",
      request_id: tally.requestIds[0],
      details: {
        status: tally.status,
        count: tally.count,
        first_at: tally.firstAt,
        last_at: tally.lastAt,
        window_seconds: this.options.windowSeconds,
        reasons: Object.fromEntries(tally.reasons),
        request_ids: tally.requestIds,
        ...(credentials.length > 0 ? { credential_hmacs: credentials } : {}),
        ...(tally.claimedAgents.size > 0 ? { claimed_agents: [...tally.claimedAgents] } : {}),
      },
    };
  }
}
