import type { Role } from "../../identity/permissions";
import { generateToken, hashToken, type TokenKind } from "../../identity/tokens";
import type { CredentialKind, CredentialRecord } from "../../store/credentials-repository";
import type { Store } from "../../store/store";
import { ConflictError } from "../errors";
import { auditActor, epochSeconds, personOf, type RequestContext } from "../principal";

const tokenKinds: Record<CredentialKind, TokenKind> = {
  api: "apiToken",
  registration: "registrationToken",
  signin: "signinLink",
};

/**
 * Mints a bearer credential (API token, registration token, sign-in link): 256 random bits shown once,
 * stored only as its SHA-256, written with its audit event in one transaction.
 */
export async function issueCredential(
  store: Store,
  input: {
    kind: CredentialKind;
    name: string;
    role?: Role;
    /** Registration tokens: the environment their agent will belong to. */
    environment?: string;
    ttlSeconds: number;
    now: Date;
    context: RequestContext;
    audit: { action: string; targetType: string; details?: Record<string, unknown> };
  },
): Promise<{ token: string; record: CredentialRecord; expiresAt: string }> {
  const token = generateToken(tokenKinds[input.kind]);
  const tokenHash = hashToken(token);
  const record: CredentialRecord = {
    token_hash: tokenHash,
    credential_id: tokenHash.slice(0, 12),
    kind: input.kind,
    name: input.name,
    ...(input.role === undefined ? {} : { role: input.role }),
    created_at: input.now.toISOString(),
    created_by: auditActor(input.context).id,
    // A token issued by a person acts for that person in the two-person rule; one minted at the machine
    // (CLI) is its own person.
    ...(input.context.principal?.type === "user" ? { created_by_person: personOf(input.context) } : {}),
    ...(input.environment === undefined ? {} : { environment: input.environment }),
    expires_at: epochSeconds(input.now) + input.ttlSeconds,
  };
  const tx = store.transaction();
  store.credentials.put(tx, record, () => new ConflictError("token collision; retry"));
  tx.audit({
    action: input.audit.action,
    actor: auditActor(input.context),
    target: { type: input.audit.targetType, id: record.credential_id },
    outcome: "success",
    request_id: input.context.requestId,
    details: { ...input.audit.details, expires_at: record.expires_at },
  });
  await store.commit(tx);
  return { token, record, expiresAt: new Date(record.expires_at * 1000).toISOString() };
}
