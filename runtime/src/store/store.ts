import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { AgentsRepository } from "./agents-repository";
import { CredentialsRepository } from "./credentials-repository";
import { IdempotencyRepository } from "./idempotency-repository";
import { JobsRepository } from "./jobs-repository";
import { NoncesRepository } from "./nonces-repository";
import { tableNames } from "./schema";
import { SessionsRepository } from "./sessions-repository";
import { commitTransaction, WriteTransaction } from "./transaction";

/** Every repository over one set of tables (one table prefix = one environment). */
export class Store {
  readonly tables: ReturnType<typeof tableNames>;
  readonly sessions: SessionsRepository;
  readonly agents: AgentsRepository;
  readonly jobs: JobsRepository;
  readonly credentials: CredentialsRepository;
  readonly nonces: NoncesRepository;
  readonly idempotency: IdempotencyRepository;

  constructor(
    readonly doc: DynamoDBDocumentClient,
    readonly tablePrefix: string,
  ) {
    this.tables = tableNames(tablePrefix);
    this.sessions = new SessionsRepository(doc, this.tables.sessions);
    this.agents = new AgentsRepository(doc, this.tables.agents);
    this.jobs = new JobsRepository(doc, this.tables.jobs);
    this.credentials = new CredentialsRepository(doc, this.tables.credentials);
    this.nonces = new NoncesRepository(doc, this.tables.nonces);
    this.idempotency = new IdempotencyRepository(doc, this.tables.idempotency);
  }

  transaction(): WriteTransaction {
    return new WriteTransaction();
  }

  commit(tx: WriteTransaction): Promise<void> {
    return commitTransaction(this.doc, tx);
  }
}
