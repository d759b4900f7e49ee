import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Logger } from "../logger";
import { AgentsRepository } from "./agents-repository";
import { AuditChain, type AuditSealing } from "./audit-chain";
import { AuditRepository } from "./audit-repository";
import { CredentialsRepository } from "./credentials-repository";
import { IdempotencyRepository } from "./idempotency-repository";
import { JobLogsRepository } from "./job-logs-repository";
import { JobQueuesRepository } from "./job-queues-repository";
import { JobsRepository } from "./jobs-repository";
import { NoncesRepository } from "./nonces-repository";
import { OAuthFlowsRepository } from "./oauth-flows-repository";
import { RateLimitsRepository } from "./rate-limits-repository";
import { RoleBindingsRepository } from "./role-bindings-repository";
import { tableNames } from "./schema";
import { SessionsRepository } from "./sessions-repository";
import { commitTransaction, WriteTransaction } from "./transaction";

export interface StoreOptions {
  /** How audit events are sealed (the audit domain's `auditSealing`). */
  sealing: AuditSealing;
  /** Written into every audit event. @default "local" */
  environment?: string;
  clock?: () => Date;
  /** Receives one JSON line per committed audit event. */
  logger?: Logger;
  /** Attempts of an audit append while other writers move the chain head. */
  auditAttempts?: number;
}

/** Every repository over one set of tables (one table prefix = one environment). */
export class Store {
  readonly tables: ReturnType<typeof tableNames>;
  readonly sessions: SessionsRepository;
  readonly agents: AgentsRepository;
  readonly jobs: JobsRepository;
  readonly jobLogs: JobLogsRepository;
  readonly jobQueues: JobQueuesRepository;
  readonly credentials: CredentialsRepository;
  readonly nonces: NoncesRepository;
  readonly idempotency: IdempotencyRepository;
  readonly oauthFlows: OAuthFlowsRepository;
  readonly roleBindings: RoleBindingsRepository;
  readonly rateLimits: RateLimitsRepository;
  readonly audit: AuditRepository;
  /** Appends the audit events of every committed transaction (same TransactWriteItems). */
  readonly auditChain: AuditChain;

  constructor(
    readonly doc: DynamoDBDocumentClient,
    readonly tablePrefix: string,
    options: StoreOptions,
  ) {
    this.tables = tableNames(tablePrefix);
    this.sessions = new SessionsRepository(doc, this.tables.sessions);
    this.agents = new AgentsRepository(doc, this.tables.agents);
    this.jobs = new JobsRepository(doc, this.tables.jobs);
    this.jobLogs = new JobLogsRepository(doc, this.tables.job_logs);
    this.jobQueues = new JobQueuesRepository(doc, this.tables.job_queues);
    this.credentials = new CredentialsRepository(doc, this.tables.credentials);
    this.nonces = new NoncesRepository(doc, this.tables.nonces);
    this.idempotency = new IdempotencyRepository(doc, this.tables.idempotency);
    this.audit = new AuditRepository(doc, this.tables.audit, this.tables.audit_digests);
    this.auditChain = new AuditChain(doc, this.audit, {
      sealing: options.sealing,
      environment: options.environment ?? "local",
      clock: options.clock,
      logger: options.logger,
      maxAttempts: options.auditAttempts,
    });
    this.oauthFlows = new OAuthFlowsRepository(doc, this.tables.oauth_flows);
    this.roleBindings = new RoleBindingsRepository(doc, this.tables.role_bindings);
    this.rateLimits = new RateLimitsRepository(doc, this.tables.rate_limits);
  }

  transaction(): WriteTransaction {
    return new WriteTransaction();
  }

  commit(tx: WriteTransaction): Promise<void> {
    return commitTransaction(this.doc, tx, this.auditChain);
  }
}
