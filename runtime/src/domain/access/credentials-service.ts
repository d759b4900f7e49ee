import type { Role } from "../../identity/permissions";
import { hashToken, looksLike } from "../../identity/tokens";
import type { Store } from "../../store/store";
import { NotFoundError, UnauthenticatedError, ValidationError } from "../errors";
import { auditActor, type Clock, epochSeconds, type Principal, type RequestContext } from "../principal";
import { settings } from "../settings";
import { issueCredential } from "./issue-credential";

/** API tokens: created by an admin (or the CLI), shown once, hashed at rest, revocable. */
export class CredentialsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async createApiToken(input: { role: Role; name: string; ttlSeconds?: number }, context: RequestContext) {
    const ttl = input.ttlSeconds ?? settings.apiToken.defaultTtlSeconds;
    if (ttl <= 0 || ttl > settings.apiToken.maxTtlSeconds) {
      throw new ValidationError("ttl is out of range", [
        { field: "ttl", message: `between 1 second and ${settings.apiToken.maxTtlSeconds} seconds` },
      ]);
    }
    const { token, record, expiresAt } = await issueCredential(this.store, {
      kind: "api",
      name: input.name,
      role: input.role,
      ttlSeconds: ttl,
      now: this.clock(),
      context,
      audit: {
        action: "token.create",
        targetType: "api_token",
        details: { name: input.name, role: input.role },
      },
    });
    return { token, token_id: record.credential_id, expires_at: expiresAt };
  }

  /** The user behind a bearer API token, or a 401 saying why not. */
  async authenticateApiToken(
    token: string,
    context?: RequestContext,
  ): Promise<Extract<Principal, { type: "user" }>> {
    if (!looksLike("apiToken", token))
      throw new UnauthenticatedError("the bearer token is not a valid API token");
    const record = await this.store.credentials.get(hashToken(token));
    const now = this.clock();
    if (record?.kind !== "api" || !record.role) throw new UnauthenticatedError("the API token is not known");
    if (record.revoked_at) throw new UnauthenticatedError("the API token has been revoked");
    if (record.expires_at <= epochSeconds(now)) throw new UnauthenticatedError("the API token has expired");
    // Token use is recorded on the token (last used, from where; listed by `GET /access/tokens`), at most
    // once a minute per address: one write per request would double the cost of every API call.
    const lastUsed = record.last_used_at ? Date.parse(record.last_used_at) : 0;
    if (now.getTime() - lastUsed >= 60_000 || record.last_used_ip !== context?.ip) {
      await this.store.credentials.touch(record.token_hash, now, context?.ip);
    }
    return {
      type: "user",
      id: `token:${record.name}`,
      role: record.role,
      provider: "api-token",
      via: "api_token",
      credential_id: record.credential_id,
      ...(record.created_by_person === undefined ? {} : { person: record.created_by_person }),
    };
  }

  /** API tokens without their secrets, newest first. */
  async listApiTokens(limit: number, cursor?: string) {
    const now = epochSeconds(this.clock());
    const page = await this.store.credentials.list("api", limit, cursor);
    return {
      tokens: page.items.map((record) => ({
        token_id: record.credential_id,
        name: record.name,
        role: record.role,
        status: record.revoked_at ? "revoked" : record.expires_at <= now ? "expired" : "active",
        created_at: record.created_at,
        created_by: record.created_by,
        expires_at: new Date(record.expires_at * 1000).toISOString(),
        last_used_at: record.last_used_at ?? null,
        last_used_ip: record.last_used_ip ?? null,
        revoked_at: record.revoked_at ?? null,
        revoked_by: record.revoked_by ?? null,
      })),
      next_cursor: page.nextCursor,
    };
  }

  /** Revokes an API token by the id listings show; a revoked token is refused from the next request on. */
  async revokeApiToken(tokenId: string, context: RequestContext): Promise<void> {
    const notFound = () => new NotFoundError("no such active API token");
    const tokenHash = /^[0-9a-f]{12}$/.test(tokenId)
      ? await this.store.credentials.findHashById(tokenId)
      : undefined;
    if (!tokenHash) throw notFound();
    const tx = this.store.transaction();
    this.store.credentials.revoke(tx, tokenHash, "api", this.clock(), auditActor(context).id, notFound);
    tx.audit({
      action: "token.revoke",
      actor: auditActor(context),
      target: { type: "api_token", id: tokenId },
      outcome: "success",
      request_id: context.requestId,
    });
    await this.store.commit(tx);
  }
}
