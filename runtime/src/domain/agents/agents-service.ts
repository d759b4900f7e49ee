import { encodeAgentSecret } from "../../identity/agent-keys";
import { hashToken, looksLike } from "../../identity/tokens";
import type { AgentRecord, ResourceFigures } from "../../store/agents-repository";
import { LISTING_PARTITION } from "../../store/schema";
import type { Store } from "../../store/store";
import { issueCredential } from "../access/issue-credential";
import {
  assertNoEnvironmentTags,
  defaultTargetEnvironments,
  resolveEnvironment,
  type TargetEnvironments,
} from "../environments";
import { ConflictError, NotFoundError, UnauthenticatedError } from "../errors";
import { newId } from "../ids";
import { abandonAttempt, placed } from "../jobs/attempt-endings";
import { auditActor, type Clock, type RequestContext } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings, settings } from "../settings";
import { type AgentHealth, agentHealth } from "./agent-health";
import type { AgentKeyRing, AgentKeyRole, WorkloadKeys } from "./workload-keys";

export interface AgentView {
  agent_id: string;
  name: string;
  region: string;
  tags: string[];
  /** Granted by the registration token; the agent only receives jobs of this environment. */
  environment: string;
  version?: string;
  status: AgentHealth;
  key_epoch: number;
  registered_at: string;
  last_heartbeat_at: string | null;
  last_figures: ResourceFigures | null;
  revoked_at: string | null;
}

export interface RegistrationInput {
  registration_token: string;
  name: string;
  region: string;
  tags: string[];
  version?: string;
}

/** Agents: one-time registration, derived workload identity, heartbeats, health, revocation. */
export class AgentsService {
  constructor(
    private readonly store: Store,
    private readonly keys: WorkloadKeys,
    private readonly clock: Clock,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
    private readonly environments: TargetEnvironments = defaultTargetEnvironments,
  ) {}

  /**
   * A one-time registration token. The admin chooses the environment the agent will belong to (default:
   * the one that needs no approval); the agent cannot choose it.
   */
  async createRegistrationToken(
    context: RequestContext,
    ttlSeconds: number = settings.registrationToken.defaultTtlSeconds,
    requestedEnvironment?: string,
  ) {
    const environment = resolveEnvironment(this.environments, requestedEnvironment);
    const { token, expiresAt } = await issueCredential(this.store, {
      kind: "registration",
      name: "agent registration",
      environment,
      ttlSeconds,
      now: this.clock(),
      context,
      audit: {
        action: "agent.registration_token.create",
        targetType: "registration_token",
        details: { environment },
      },
    });
    return { token, expires_at: expiresAt, environment };
  }

  /**
   * Consumes the registration token and creates the agent in one transaction, then hands the agent its
   * derived key — the only time it is ever shown.
   */
  async register(input: RegistrationInput, context: RequestContext) {
    const refused = () =>
      new UnauthenticatedError("the registration token is invalid, expired or already used");
    if (!looksLike("registrationToken", input.registration_token)) throw refused();
    assertNoEnvironmentTags(input.tags);
    const now = this.clock();
    // The token says which environment; consuming it below (conditional) proves it is still unused.
    const token = await this.store.credentials.get(hashToken(input.registration_token));
    if (token?.kind !== "registration") throw refused();
    const agent: AgentRecord = {
      agent_id: newId("agent"),
      name: input.name,
      region: input.region,
      tags: [...new Set(input.tags)].sort(),
      environment: token.environment ?? this.environments.default,
      version: input.version,
      key_epoch: 0,
      registered_at: now.toISOString(),
      registered_by: hashToken(input.registration_token).slice(0, 12),
      listing: LISTING_PARTITION,
    };
    const key = await this.keys.currentAgentKey(agent.agent_id, agent.key_epoch);
    const tx = this.store.transaction();
    this.store.credentials.consume(
      tx,
      hashToken(input.registration_token),
      "registration",
      now,
      agent.agent_id,
      refused,
    );
    this.store.agents.put(tx, agent, () => new ConflictError("agent id collision; retry"));
    tx.audit({
      action: "agent.register",
      actor: { ...auditActor(context), type: "agent", id: agent.agent_id },
      target: { type: "agent", id: agent.agent_id },
      outcome: "success",
      request_id: context.requestId,
      details: {
        name: agent.name,
        region: agent.region,
        tags: agent.tags,
        environment: agent.environment,
        registration_token: agent.registered_by,
        key_epoch: agent.key_epoch,
      },
    });
    await this.store.commit(tx);
    return {
      agent_id: agent.agent_id,
      environment: agent.environment,
      workload_identity_secret: encodeAgentSecret(key),
      ...this.intervals(),
    };
  }

  /** The agent's configuration. A secret-bearing read: recorded before it is answered (fails closed). */
  async config(agentId: string, context: RequestContext, signedWith?: AgentKeyRole) {
    const agent = await this.requireActive(agentId);
    const keyRotation = await this.keys.rotationNotice(agent.agent_id, agent.key_epoch, signedWith);
    const tx = this.store.transaction();
    tx.audit({
      action: "agent.config.read",
      actor: auditActor(context),
      target: { type: "agent", id: agent.agent_id },
      outcome: "success",
      request_id: context.requestId,
      details: { key_epoch: agent.key_epoch },
    });
    await this.store.commit(tx);
    return {
      agent_id: agent.agent_id,
      name: agent.name,
      region: agent.region,
      tags: agent.tags,
      environment: agentEnvironment(agent, this.environments),
      key_epoch: agent.key_epoch,
      deployment_targets: [agentEnvironment(agent, this.environments)],
      schedule_interval_seconds: this.lifecycle.claimIntervalSeconds,
      ...this.intervals(),
      ...(keyRotation ? { key_rotation: keyRotation } : {}),
    };
  }

  /**
   * Stores a heartbeat. Heartbeats are telemetry, not audit events; a change of health they cause
   * (e.g. unhealthy → healthy, or the first heartbeat of a dead agent) is, and is written with it.
   */
  /**
   * `known`: the agent record this request already read to verify its signature, saving a read; the
   * health change is written on a condition over it, so a stale snapshot cannot record a wrong change.
   */
  async heartbeat(
    agentId: string,
    figures: ResourceFigures,
    context?: RequestContext,
    known?: AgentRecord,
    signedWith?: AgentKeyRole,
  ) {
    const now = this.clock();
    const previous = known?.agent_id === agentId ? known : await this.store.agents.get(agentId);
    if (!previous || previous.revoked_at)
      throw new UnauthenticatedError("the agent is unknown or revoked", "Signature");
    const from = agentHealth(previous, now, this.lifecycle);
    const to = agentHealth(
      { ...previous, last_heartbeat_at: now.toISOString(), last_figures: figures },
      now,
      this.lifecycle,
    );
    const recorded =
      from !== to && (await this.recordHealthChange(previous, figures, now, { from, to }, context));
    if (!recorded && !(await this.store.agents.recordHeartbeat(agentId, figures, now))) {
      throw new UnauthenticatedError("the agent is unknown or revoked", "Signature");
    }
    // Secret rotation: this agent's pending key, or word that it was promoted (only to this agent).
    const keyRotation = await this.keys.rotationNotice(agentId, previous.key_epoch, signedWith);
    return {
      status: to,
      next_check_interval: this.lifecycle.heartbeatIntervalSeconds,
      ...this.intervals(),
      ...(keyRotation ? { key_rotation: keyRotation } : {}),
    };
  }

  /** The heartbeat and its health change in one transaction; false when another heartbeat got there first. */
  private async recordHealthChange(
    previous: AgentRecord,
    figures: ResourceFigures,
    now: Date,
    change: { from: AgentHealth; to: AgentHealth },
    context?: RequestContext,
  ): Promise<boolean> {
    const overtaken = new Error("another heartbeat was recorded first");
    const tx = this.store.transaction();
    this.store.agents.recordHeartbeatIn(tx, previous, figures, now, () => overtaken);
    tx.audit({
      action: "agent.health.change",
      actor: { type: "agent", id: previous.agent_id, ip: context?.ip },
      target: { type: "agent", id: previous.agent_id },
      outcome: "success",
      request_id: context?.requestId,
      details: {
        from: change.from,
        to: change.to,
        previous_heartbeat_at: previous.last_heartbeat_at ?? null,
        cpu_percent: figures.cpu_percent,
        memory_percent: figures.memory_percent,
        disk_percent: figures.disk_percent,
      },
    });
    try {
      await this.store.commit(tx);
      return true;
    } catch (error) {
      if (error === overtaken) return false;
      throw error;
    }
  }

  /** What the server tells agents about timing: they add jitter, they never choose. */
  private intervals() {
    return {
      heartbeat_interval_seconds: this.lifecycle.heartbeatIntervalSeconds,
      job_heartbeat_interval_seconds: this.lifecycle.jobHeartbeatIntervalSeconds,
      claim_interval_seconds: this.lifecycle.claimIntervalSeconds,
      lease_seconds: this.lifecycle.leaseSeconds,
      cancel_grace_seconds: this.lifecycle.cancelGraceSeconds,
      log_chunk_max_bytes: this.lifecycle.logChunkMaxBytes,
    };
  }

  async get(agentId: string): Promise<AgentView> {
    const agent = await this.store.agents.get(agentId);
    if (!agent) throw new NotFoundError(`agent ${agentId} does not exist`);
    return this.view(agent);
  }

  /** One page of agents; a status filter keeps reading pages until the page is full or the list ends. */
  async list(options: { region?: string; status?: AgentHealth; limit: number; cursor?: string }) {
    const agents: AgentView[] = [];
    let cursor = options.cursor;
    let nextCursor: string | null = null;
    do {
      const page = await this.store.agents.list({ region: options.region, limit: options.limit, cursor });
      for (const agent of page.items) {
        const view = this.view(agent);
        if (options.status === undefined || view.status === options.status) agents.push(view);
      }
      nextCursor = page.nextCursor;
      cursor = page.nextCursor ?? undefined;
    } while (options.status !== undefined && agents.length < options.limit && nextCursor !== null);
    return { agents: agents.slice(0, options.limit), next_cursor: nextCursor };
  }

  /**
   * Revokes an agent: its key stops working at once, and the jobs it holds end now rather than when
   * their leases run out — failed "agent revoked", or queued again where the job asked for
   * `retry.agent_lost` (each its own audited transaction; anything missed is the sweeper's at lease end).
   */
  async revoke(agentId: string, context: RequestContext): Promise<AgentView & { jobs_ended: number }> {
    if (!(await this.store.agents.get(agentId))) throw new NotFoundError(`agent ${agentId} does not exist`);
    const tx = this.store.transaction();
    this.store.agents.revoke(
      tx,
      agentId,
      auditActor(context).id,
      this.clock(),
      () => new ConflictError(`agent ${agentId} is already revoked`),
    );
    tx.audit({
      action: "agent.revoke",
      actor: auditActor(context),
      target: { type: "agent", id: agentId },
      outcome: "success",
      request_id: context.requestId,
    });
    await this.store.commit(tx);
    let ended = 0;
    for (const jobId of await this.store.jobs.heldBy(agentId)) {
      const job = await this.store.jobs.get(jobId);
      if (!job || job.held_by !== agentId) continue;
      const outcome = await abandonAttempt(
        this.store,
        placed(job, this.environments),
        { kind: "agent_revoked", agent_id: agentId },
        {
          now: this.clock(),
          lifecycle: this.lifecycle,
          actor: auditActor(context),
          requestId: context.requestId,
        },
      );
      if (outcome !== "skipped") ended++;
    }
    return { ...(await this.get(agentId)), jobs_ended: ended };
  }

  /** The keys a signature with `keyid` = agentId may verify with; undefined when unknown or revoked. */
  async signatureKeys(
    agentId: string,
  ): Promise<{ keys?: Buffer[]; ring?: AgentKeyRing; revoked: boolean; agent?: AgentRecord }> {
    const agent = await this.store.agents.get(agentId);
    if (!agent) return { revoked: false };
    if (agent.revoked_at) return { revoked: true };
    const ring = await this.keys.keyRing(agent.agent_id, agent.key_epoch);
    return { keys: ring.keys, ring, revoked: false, agent };
  }

  private async requireActive(agentId: string): Promise<AgentRecord> {
    const agent = await this.store.agents.get(agentId);
    if (!agent || agent.revoked_at)
      throw new UnauthenticatedError("the agent is unknown or revoked", "Signature");
    return agent;
  }

  private view(agent: AgentRecord): AgentView {
    return {
      agent_id: agent.agent_id,
      name: agent.name,
      region: agent.region,
      tags: agent.tags,
      environment: agentEnvironment(agent, this.environments),
      version: agent.version,
      status: agentHealth(agent, this.clock(), this.lifecycle),
      key_epoch: agent.key_epoch,
      registered_at: agent.registered_at,
      last_heartbeat_at: agent.last_heartbeat_at ?? null,
      last_figures: agent.last_figures ?? null,
      revoked_at: agent.revoked_at ?? null,
    };
  }
}

/** Agents registered before environments existed belong to the default one. */
export function agentEnvironment(agent: AgentRecord, environments: TargetEnvironments): string {
  return agent.environment ?? environments.default;
}
