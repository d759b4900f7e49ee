import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import { CachedSecretStore } from "../../secrets/cached-secret-store";
import { type SecretKey, secretId, secrets } from "../../secrets/catalog";
import type { SecretStore, SecretVersion } from "../../secrets/secret-store";
import type { AgentRecord } from "../../store/agents-repository";
import {
  type RotationRecord,
  type RotationTrigger,
  rotationRecordKey,
  type SecretRotationState,
} from "../../store/secret-rotations-repository";
import type { Store } from "../../store/store";
import type { WriteTransaction } from "../../store/transaction";
import { generateRootKey } from "../agents/workload-keys";
import { generateSigningKeySecret, signerFromSecret } from "../audit/audit-signing";
import { ConflictError, DomainError, NotFoundError, ValidationError } from "../errors";
import { auditActor, type Clock, type RequestContext } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings } from "../settings";

export const rotationSteps = ["createSecret", "setSecret", "testSecret", "finishSecret"] as const;
export type RotationStep = (typeof rotationSteps)[number];

export interface RotationSettings {
  /** testSecret passes without every active agent's acknowledgement after this long (laggards reported). */
  ackTimeoutSeconds: number;
  /** After finishSecret, signatures from AWSPREVIOUS-derived keys are accepted for this long. */
  graceSeconds: number;
}

export const defaultRotationSettings: RotationSettings = { ackTimeoutSeconds: 600, graceSeconds: 3600 };

/** How each rotated secret is made and checked. OAuth client secrets come from an admin, never generated. */
interface Material {
  generate?(): string;
  check(value: string): void;
}

export const keyMaterial: Record<SecretKey, Material> = {
  workloadIdentityRootKey: {
    generate: generateRootKey,
    check: (value) => {
      if (Buffer.from(value, "base64url").length !== 32) throw new Error("the root key is not 32 bytes");
    },
  },
  auditSigningKey: { generate: generateSigningKeySecret, check: (value) => void signerFromSecret(value) },
  oauthClientSecrets: {
    check: (value) => {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("the OAuth client secrets are not a JSON object");
      for (const secret of Object.values(parsed))
        if (typeof secret !== "string" || secret.length === 0)
          throw new Error("every OAuth client secret must be a non-empty string");
    },
  },
};

/** A second rotation of a secret while one is under way (409 naming it). */
export class RotationInProgressError extends DomainError {
  override name = "RotationInProgressError";
  readonly status = 409;
  readonly slug = "rotation-in-progress";
  readonly title = "A rotation of this secret is already under way";
  constructor(secret: string, rotationId: string, step: string | undefined) {
    super(`rotation ${rotationId} of ${secret} is under way (last step: ${step ?? "started"})`);
    this.extensions.rotation_id = rotationId;
    this.extensions.step = step ?? "started";
  }
}

/** testSecret: agents have not all acknowledged the pending key and the timeout has not passed. */
export class RotationWaitingError extends DomainError {
  override name = "RotationWaitingError";
  readonly status = 409;
  readonly slug = "rotation-waiting-for-agents";
  readonly title = "The rotation is waiting for agents to acknowledge the new key";
}

export interface AcknowledgementReport {
  acknowledged: number;
  expected: number;
  /** Active agents that have not signed with the pending key. */
  laggards: string[];
  /** Agents that did not heartbeat recently (dead), not waited for; they re-enrol if the grace ends. */
  offline: string[];
}

export interface RotationView {
  rotation_id: string;
  secret: string;
  status: RotationRecord["status"];
  step: string;
  trigger: RotationTrigger;
  started_at: string;
  started_by: string;
  finished_at: string | null;
  steps: RotationRecord["steps"];
}

export interface SecretOverview {
  name: string;
  description: string;
  rotation_days: number | null;
  last_rotated_at: string | null;
  age_days: number | null;
  due_at: string | null;
  current_version_id: string | null;
  previous_accepted_until: string | null;
  rotation: {
    rotation_id: string;
    step: string;
    acknowledged: number | null;
    expected: number | null;
  } | null;
}

const catalogKeys = Object.keys(secrets) as SecretKey[];
const DAY_MS = 86_400_000;

export function secretKeyByName(name: string): SecretKey {
  const key = catalogKeys.find((candidate) => secrets[candidate].name === name);
  if (!key) throw new NotFoundError(`there is no secret named ${name}`);
  return key;
}

interface Lock {
  secret: string;
  record: string;
  rotationId: string;
  versionId: string;
}

/**
 * One rotation engine for every secret the control plane owns, in the Secrets Manager protocol:
 * createSecret (a new version labelled AWSPENDING) → setSecret (dependants learn it: agents receive
 * their pending derived key in their own config/heartbeat replies) → testSecret (the material is sound,
 * and every active agent has signed with its pending key, or the timeout has passed: laggards are
 * reported) → finishSecret (AWSCURRENT moves; AWSPREVIOUS stays accepted for the grace window).
 *
 * Callers: the rotation Lambda (one step per event), `POST /secrets/{name}/rotate`, the CLI and the
 * local scheduler (start, then `advance` on every maintenance tick). One rotation per secret at a time:
 * a conditional lock item names it. Each step is idempotent: the secret store change first (keyed by
 * the rotation's version id), then the step, its lock move and its audit event in one transaction.
 */
export class SecretRotation {
  private readonly acknowledged = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly secretStore: SecretStore,
    private readonly secretPrefix: string,
    private readonly clock: Clock,
    private readonly settings: RotationSettings = defaultRotationSettings,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
    /** Called after this engine changed a rotation's state (readers in this process drop caches). */
    private readonly onChange: () => void = () => undefined,
  ) {}

  secretId(key: SecretKey): string {
    return secretId(this.secretPrefix, key);
  }

  /** `GET /secrets`: policy, age and the rotation under way, never a value. */
  async list(): Promise<SecretOverview[]> {
    return Promise.all(catalogKeys.map((key) => this.overview(key)));
  }

  async overview(key: SecretKey): Promise<SecretOverview> {
    const name = this.secretId(key);
    const [state, current] = await Promise.all([
      this.store.secretRotations.state(name),
      this.secretStore.getSecretValue(name, "AWSCURRENT"),
    ]);
    const lastRotated = state?.last_rotated_at ?? current?.createdAt;
    const rotationDays = (secrets[key] as { rotationDays?: number }).rotationDays;
    const now = this.clock().getTime();
    let rotation: SecretOverview["rotation"] = null;
    if (state?.active_rotation) {
      const report =
        key === "workloadIdentityRootKey" && state.active_set_at
          ? await this.acknowledgements(name, state.active_rotation)
          : undefined;
      rotation = {
        rotation_id: state.active_rotation,
        step: state.active_step ?? "started",
        acknowledged: report?.acknowledged ?? null,
        expected: report?.expected ?? null,
      };
    }
    return {
      name: secrets[key].name,
      description: secrets[key].description,
      rotation_days: rotationDays ?? null,
      last_rotated_at: lastRotated ?? null,
      age_days: lastRotated ? Math.floor((now - Date.parse(lastRotated)) / DAY_MS) : null,
      due_at:
        lastRotated && rotationDays
          ? new Date(Date.parse(lastRotated) + rotationDays * DAY_MS).toISOString()
          : null,
      current_version_id: current?.versionId ?? null,
      previous_accepted_until: state?.previous_accepted_until ?? null,
      rotation,
    };
  }

  async history(key: SecretKey, limit = 20): Promise<RotationView[]> {
    const records = await this.store.secretRotations.history(this.secretId(key), limit);
    return records.map(view);
  }

  /**
   * Starts a rotation: takes the lock (409 naming the rotation under way) and runs createSecret. OAuth
   * client secrets carry the admin's new values (merged over the current ones); keys are generated.
   */
  async start(
    key: SecretKey,
    input: { trigger: RotationTrigger; token?: string; clientSecrets?: Record<string, string> },
    context: RequestContext,
  ): Promise<RotationView> {
    if (key === "oauthClientSecrets" && !input.clientSecrets)
      throw new ValidationError("rotating the OAuth client secrets needs the new client secrets");
    if (key !== "oauthClientSecrets" && input.clientSecrets)
      throw new ValidationError(`${secrets[key].name} is generated; it takes no value`);
    const rotationId = input.token ?? randomUUID();
    if (this.secretStore.startRotation) return this.startRemotely(key, rotationId, input.trigger, context);
    const lock = await this.begin(key, rotationId, input.trigger, context);
    await this.runStep(key, lock, "createSecret", context, input.clientSecrets);
    return this.rotationView(lock);
  }

  /**
   * Where a rotation function does the steps (Secrets Manager): after checking that none is under way,
   * Secrets Manager is asked to rotate with this token; its first step takes the lock. The API may only
   * read the secrets there (decision 104), so it never runs a step itself.
   */
  private async startRemotely(
    key: SecretKey,
    rotationId: string,
    trigger: RotationTrigger,
    context: RequestContext,
  ): Promise<RotationView> {
    const name = this.secretId(key);
    if (!(secrets[key] as { rotationDays?: number }).rotationDays)
      throw new ConflictError(
        `${secrets[key].name} has no rotation function; on AWS set it with \`pulumi config set --secret hybrid-cicd:oauthClientSecrets\``,
      );
    const lock = await this.activeLock(name);
    if (lock) {
      const state = await this.store.secretRotations.state(name);
      throw new RotationInProgressError(secrets[key].name, lock.rotationId, state?.active_step);
    }
    await this.secretStore.startRotation!(name, rotationId);
    const tx = this.store.transaction();
    this.audit(tx, key, "request", context, { rotation_id: rotationId, trigger });
    await this.commit(tx);
    const at = this.clock().toISOString();
    return {
      rotation_id: rotationId,
      secret: name,
      status: "in_progress",
      step: "requested",
      trigger,
      started_at: at,
      started_by: auditActor(context).id,
      finished_at: null,
      steps: [{ step: "requested", at, outcome: "Secrets Manager invokes the rotation function" }],
    };
  }

  /** Runs the remaining steps of the rotation under way as far as they go now (the local driver). */
  async advance(key: SecretKey, context: RequestContext): Promise<RotationView | undefined> {
    // The rotation function drives rotations where there is one.
    if (this.secretStore.startRotation) return undefined;
    const name = this.secretId(key);
    const lock = await this.activeLock(name);
    if (!lock) return undefined;
    const state = await this.store.secretRotations.state(name);
    const done = state?.active_step;
    const from =
      done === undefined || done === "started" ? 0 : rotationSteps.indexOf(done as RotationStep) + 1;
    for (const step of rotationSteps.slice(Math.max(0, from))) {
      try {
        await this.runStep(key, lock, step, context);
      } catch (error) {
        if (error instanceof RotationWaitingError) break;
        throw error;
      }
    }
    return this.rotationView(lock);
  }

  /**
   * One step, as the Secrets Manager rotation Lambda receives it. A createSecret for a token no rotation
   * holds starts one (a scheduled rotation); any step of a finished rotation answers "already finished".
   */
  async step(
    input: { key: SecretKey; token: string; step: RotationStep },
    context: RequestContext,
  ): Promise<{ step: RotationStep; outcome: string; details?: Record<string, unknown> }> {
    const name = this.secretId(input.key);
    let lock = await this.activeLock(name);
    if (lock?.rotationId !== input.token) {
      const past = (await this.store.secretRotations.history(name, 50)).find(
        (record) => record.rotation_id === input.token,
      );
      if (past) {
        // An abort from a role that could not remove the label (the API on AWS) leaves it to us.
        if (past.status === "aborted") {
          this.fresh(name);
          const pending = await this.secretStore.getSecretValue(name, "AWSPENDING");
          if (pending?.versionId === input.token)
            await this.secretStore.removeSecretVersionStage(name, "AWSPENDING");
        }
        return { step: input.step, outcome: `already ${past.status}` };
      }
      if (lock) throw new RotationInProgressError(secrets[input.key].name, lock.rotationId, undefined);
      if (input.step !== "createSecret")
        throw new ConflictError(`rotation ${input.token} was never started; run createSecret first`);
      lock = await this.begin(input.key, input.token, "secrets-manager", context);
    }
    return this.runStep(input.key, lock, input.step, context);
  }

  /**
   * Abandons the rotation under way before finishSecret: AWSPENDING is removed and agents stop being
   * offered it (they drop it), which is safe because nobody signs only with it yet.
   */
  async abort(key: SecretKey, context: RequestContext): Promise<RotationView> {
    const name = this.secretId(key);
    const lock = await this.activeLock(name);
    if (!lock) throw new ConflictError(`no rotation of ${secrets[key].name} is under way`);
    this.fresh(name);
    const target = await this.secretStore.getSecretVersion(name, lock.versionId);
    if (target?.stages.includes("AWSCURRENT")) {
      throw new ConflictError(
        `rotation ${lock.rotationId} already made its version current; it can only be finished`,
      );
    }
    let pendingRemoved = true;
    if (target?.stages.includes("AWSPENDING")) {
      try {
        await this.secretStore.removeSecretVersionStage(name, "AWSPENDING");
      } catch {
        // E.g. an API role that may only read the secret (AWS): the lock is released below, so nobody is
        // offered the version any more, and the rotation function removes the label on its next step.
        pendingRemoved = false;
      }
    }
    const now = this.clock().toISOString();
    const tx = this.store.transaction();
    this.store.secretRotations.end(
      tx,
      lock,
      {
        status: "aborted",
        entry: { step: "abort", at: now, outcome: "aborted", details: { pending_removed: pendingRemoved } },
      },
      () => new ConflictError(`rotation ${lock.rotationId} ended meanwhile`),
    );
    this.audit(tx, key, "abort", context, { rotation_id: lock.rotationId, pending_removed: pendingRemoved });
    await this.commit(tx);
    return this.rotationView(lock);
  }

  /**
   * The local scheduler: starts a rotation for every secret past its policy's age and advances every
   * rotation under way. Returns what it did.
   */
  async runDue(context: RequestContext): Promise<{ started: number; advanced: number; finished: number }> {
    let started = 0;
    let advanced = 0;
    let finished = 0;
    const now = this.clock().getTime();
    for (const key of catalogKeys) {
      const rotationDays = (secrets[key] as { rotationDays?: number }).rotationDays;
      const overview = await this.overview(key);
      if (!overview.rotation && rotationDays && overview.last_rotated_at) {
        if (now - Date.parse(overview.last_rotated_at) >= rotationDays * DAY_MS) {
          try {
            await this.start(key, { trigger: "schedule" }, context);
            started++;
          } catch (error) {
            if (!(error instanceof RotationInProgressError)) throw error;
          }
        }
      }
      const result = await this.advance(key, context);
      if (result) {
        advanced++;
        if (result.status === "finished") finished++;
      }
    }
    return { started, advanced, finished };
  }

  /**
   * An agent signed with its key derived from the pending root key: its acknowledgement, recorded once
   * (and audited). A failure here never fails the agent's request; the next one acknowledges again.
   */
  async acknowledge(agentId: string, rotationId: string, context: RequestContext): Promise<void> {
    const memo = `${rotationId}/${agentId}`;
    if (this.acknowledged.has(memo)) return;
    const name = this.secretId("workloadIdentityRootKey");
    const already = new Error("already acknowledged");
    const tx = this.store.transaction();
    this.store.secretRotations.acknowledge(
      tx,
      {
        secret: name,
        agent_id: agentId,
        rotation_id: rotationId,
        acknowledged_at: this.clock().toISOString(),
      },
      () => already,
    );
    tx.audit({
      action: "secret.rotate.acknowledge",
      actor: { type: "agent", id: agentId, ip: context.ip },
      target: { type: "secret", id: secrets.workloadIdentityRootKey.name },
      outcome: "success",
      request_id: context.requestId,
      details: { rotation_id: rotationId },
    });
    try {
      await this.commit(tx);
    } catch (error) {
      if (error !== already) throw error;
    }
    this.acknowledged.add(memo);
  }

  /** Which agents signed with the pending key of `rotationId`, and which are awaited. */
  async acknowledgements(name: string, rotationId: string): Promise<AcknowledgementReport> {
    const [acks, agents] = await Promise.all([
      this.store.secretRotations.acknowledgements(name, rotationId),
      this.allAgents(),
    ]);
    const acked = new Set(acks.map((ack) => ack.agent_id));
    const now = this.clock().getTime();
    const laggards: string[] = [];
    const offline: string[] = [];
    let expected = 0;
    let acknowledged = 0;
    for (const agent of agents) {
      if (agent.revoked_at) continue;
      const seen = agent.last_heartbeat_at
        ? Date.parse(agent.last_heartbeat_at)
        : Date.parse(agent.registered_at);
      const active = now - seen < this.lifecycle.deadAfterSeconds * 1000;
      if (acked.has(agent.agent_id)) {
        acknowledged++;
        if (active) expected++;
      } else if (active) {
        expected++;
        laggards.push(agent.agent_id);
      } else {
        offline.push(agent.agent_id);
      }
    }
    return { acknowledged, expected, laggards, offline };
  }

  // --- steps ----------------------------------------------------------------------------------------

  private async runStep(
    key: SecretKey,
    lock: Lock,
    step: RotationStep,
    context: RequestContext,
    clientSecrets?: Record<string, string>,
  ): Promise<{ step: RotationStep; outcome: string; details?: Record<string, unknown> }> {
    const name = lock.secret;
    this.fresh(name);
    const versions = await this.secretStore.listVersions(name);
    const current = versions.find((version) => version.stages.includes("AWSCURRENT"));
    const target = versions.find((version) => version.versionId === lock.versionId);
    const material = keyMaterial[key];
    const now = this.clock();
    let outcome: string;
    let details: Record<string, unknown> | undefined;
    let setAt: string | undefined;

    switch (step) {
      case "createSecret": {
        if (target?.stages.includes("AWSCURRENT")) {
          outcome = "already current";
        } else if (target) {
          // Created before a crash, or its label removed by an abort that did not finish: label it again.
          if (!target.stages.includes("AWSPENDING"))
            await this.secretStore.updateSecretVersionStage(name, "AWSPENDING", lock.versionId);
          outcome = "already created";
        } else {
          // A secret declared without any value yet (OAuth client secrets before the first one is set).
          if (versions.length === 0) await this.secretStore.createSecret(name, secrets[key].description);
          const value = clientSecrets
            ? JSON.stringify({ ...parseObject(current), ...clientSecrets })
            : material.generate?.();
          if (value === undefined) throw new ValidationError(`${secrets[key].name} needs a value to rotate`);
          await this.secretStore.putSecretValue(name, lock.versionId, value, ["AWSPENDING"]);
          outcome = "created";
        }
        break;
      }
      case "setSecret": {
        this.requirePending(target, lock);
        if (key === "workloadIdentityRootKey" && current) {
          const state = await this.store.secretRotations.state(name);
          setAt = state?.active_set_at ?? now.toISOString();
          outcome = "agents receive their pending key";
        } else {
          outcome = current ? "no dependants to tell" : "no dependants of a first key";
        }
        break;
      }
      case "testSecret": {
        const pending = this.requirePending(target, lock);
        try {
          material.check(pending.value);
        } catch (error) {
          throw new ValidationError(`the pending version is not usable: ${(error as Error).message}`);
        }
        outcome = "tested";
        const state = await this.store.secretRotations.state(name);
        if (key === "workloadIdentityRootKey" && current && state?.active_set_at) {
          const report = await this.acknowledgements(name, lock.rotationId);
          const waited = now.getTime() - Date.parse(state.active_set_at);
          const timedOut = waited >= this.settings.ackTimeoutSeconds * 1000;
          if (report.laggards.length > 0 && !timedOut) {
            throw new RotationWaitingError(
              `${report.acknowledged} of ${report.expected} active agents acknowledged the pending key; waiting up to ${this.settings.ackTimeoutSeconds} s`,
            );
          }
          outcome =
            report.laggards.length > 0 ? "timed out waiting for agents" : "every active agent acknowledged";
          details = { ...report };
        } else if (key === "workloadIdentityRootKey" && current) {
          throw new ConflictError("run setSecret before testSecret: agents have not been offered the key");
        }
        break;
      }
      case "finishSecret": {
        if (!target)
          throw new ConflictError(`version ${lock.versionId} does not exist; run createSecret first`);
        const state = await this.store.secretRotations.state(name);
        if (state?.active_step !== "testSecret" && !target.stages.includes("AWSCURRENT"))
          throw new ConflictError("run testSecret before finishSecret");
        const previous = current && current.versionId !== lock.versionId ? current.versionId : undefined;
        if (current?.versionId !== lock.versionId)
          await this.secretStore.updateSecretVersionStage(name, "AWSCURRENT", lock.versionId);
        const pendingHolder = (await this.secretStore.listVersions(name)).find((version) =>
          version.stages.includes("AWSPENDING"),
        );
        if (pendingHolder?.versionId === lock.versionId)
          await this.secretStore.removeSecretVersionStage(name, "AWSPENDING");
        const previousId =
          previous ??
          (await this.secretStore.getSecretValue(name, "AWSPREVIOUS"))?.versionId ??
          state?.previous_version_id;
        const stateChange: Partial<SecretRotationState> = {
          last_rotated_at: now.toISOString(),
          current_version_id: lock.versionId,
          previous_version_id: previousId,
          previous_accepted_until: previousId
            ? new Date(now.getTime() + this.settings.graceSeconds * 1000).toISOString()
            : undefined,
        };
        const tx = this.store.transaction();
        this.store.secretRotations.end(
          tx,
          lock,
          {
            status: "finished",
            entry: { step, at: now.toISOString(), outcome: "current" },
            state: stateChange,
          },
          () => new ConflictError(`rotation ${lock.rotationId} ended meanwhile`),
        );
        this.audit(tx, key, "finish", context, {
          rotation_id: lock.rotationId,
          version_id: lock.versionId,
          previous_version_id: previousId ?? null,
          previous_accepted_until: stateChange.previous_accepted_until ?? null,
        });
        await this.commit(tx);
        return { step, outcome: "current" };
      }
    }

    const tx = this.store.transaction();
    this.store.secretRotations.recordStep(
      tx,
      lock,
      { step, at: now.toISOString(), outcome, ...(details ? { details } : {}) },
      () => new ConflictError(`rotation ${lock.rotationId} is no longer under way`),
      setAt,
    );
    this.audit(tx, key, step.replace("Secret", ""), context, {
      rotation_id: lock.rotationId,
      version_id: lock.versionId,
      result: outcome,
      ...details,
    });
    await this.commit(tx);
    return { step, outcome, ...(details ? { details } : {}) };
  }

  private async commit(tx: WriteTransaction): Promise<void> {
    try {
      await this.store.commit(tx);
    } finally {
      this.onChange();
    }
  }

  private requirePending(target: SecretVersion | undefined, lock: Lock): SecretVersion {
    if (!target) throw new ConflictError(`version ${lock.versionId} does not exist; run createSecret first`);
    if (!target.stages.includes("AWSPENDING") && !target.stages.includes("AWSCURRENT"))
      throw new ConflictError(`version ${lock.versionId} is not AWSPENDING; run createSecret again`);
    return target;
  }

  private async begin(
    key: SecretKey,
    rotationId: string,
    trigger: RotationTrigger,
    context: RequestContext,
  ): Promise<Lock> {
    const name = this.secretId(key);
    const startedAt = this.clock().toISOString();
    const record: RotationRecord = {
      secret: name,
      record: rotationRecordKey(startedAt, rotationId),
      rotation_id: rotationId,
      // Secrets Manager's ClientRequestToken is the new version's id; ours too.
      version_id: rotationId,
      status: "in_progress",
      step: "started",
      trigger,
      started_at: startedAt,
      started_by: auditActor(context).id,
      steps: [{ step: "started", at: startedAt, outcome: trigger }],
    };
    let held: Error | undefined;
    const tx = this.store.transaction();
    this.store.secretRotations.begin(tx, record, () => {
      held = new Error("held");
      return held;
    });
    this.audit(tx, key, "start", context, { rotation_id: rotationId, trigger });
    try {
      await this.commit(tx);
    } catch (error) {
      if (error !== held) throw error;
      const state = await this.store.secretRotations.state(name);
      throw new RotationInProgressError(
        secrets[key].name,
        state?.active_rotation ?? "unknown",
        state?.active_step,
      );
    }
    return { secret: name, record: record.record, rotationId, versionId: rotationId };
  }

  private async activeLock(name: string): Promise<Lock | undefined> {
    const state = await this.store.secretRotations.state(name);
    if (!state?.active_rotation || !state.active_record) return undefined;
    return {
      secret: name,
      record: state.active_record,
      rotationId: state.active_rotation,
      versionId: state.active_version ?? state.active_rotation,
    };
  }

  private async rotationView(lock: Lock): Promise<RotationView> {
    const record = await this.store.secretRotations.rotation(lock.secret, lock.record);
    if (!record) throw new NotFoundError(`rotation ${lock.rotationId} does not exist`);
    return view(record);
  }

  private async allAgents(): Promise<AgentRecord[]> {
    const agents: AgentRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.agents.list({ limit: 100, cursor });
      agents.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return agents;
  }

  /** The engine decides on what the store holds now, not on a cached read. */
  private fresh(name: string): void {
    if (this.secretStore instanceof CachedSecretStore) this.secretStore.invalidate(name);
  }

  private audit(
    tx: WriteTransaction,
    key: SecretKey,
    verb: string,
    context: RequestContext,
    details: Record<string, unknown>,
  ): void {
    tx.audit({
      action: `secret.rotate.${verb}`,
      actor: auditActor(context),
      target: { type: "secret", id: secrets[key].name },
      outcome: "success",
      request_id: context.requestId,
      details,
    });
  }
}

function view(record: RotationRecord): RotationView {
  return {
    rotation_id: record.rotation_id,
    secret: record.secret,
    status: record.status,
    step: record.step,
    trigger: record.trigger,
    started_at: record.started_at,
    started_by: record.started_by,
    finished_at: record.finished_at ?? null,
    steps: record.steps,
  };
}

function parseObject(version: SecretVersion | undefined): Record<string, unknown> {
  if (!version) return {};
  try {
    const parsed: unknown = JSON.parse(version.value);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}
