import type { Role } from "../../identity/permissions";
import { generateToken, hashToken, looksLike } from "../../identity/tokens";
import type { CredentialRecord } from "../../store/credentials-repository";
import type { SessionRecord } from "../../store/sessions-repository";
import type { Store } from "../../store/store";
import { ConflictError, UnauthenticatedError } from "../errors";
import { auditActor, type Clock, epochSeconds, type Principal, type RequestContext } from "../principal";
import { settings } from "../settings";

export interface SessionView {
  valid: boolean;
  user_id?: string;
  provider?: string;
  expires_at?: string;
}

/**
 * Sessions are minted only here, by the server, after proof: a one-time sign-in link (local mode) —
 * and, with the identity work, a verified OAuth callback. A caller can never assert who it is.
 */
export class SessionsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** A one-time, short-lived sign-in link token (the CLI prints it as a URL). */
  async createSigninLink(input: { userId: string; role: Role }, context: RequestContext) {
    const now = this.clock();
    const token = generateToken("signinLink");
    const record: CredentialRecord = {
      token_hash: hashToken(token),
      credential_id: hashToken(token).slice(0, 12),
      kind: "signin",
      name: input.userId,
      role: input.role,
      created_at: now.toISOString(),
      created_by: auditActor(context).id,
      expires_at: epochSeconds(now) + settings.signinLink.ttlSeconds,
    };
    const tx = this.store.transaction();
    this.store.credentials.put(tx, record, () => new ConflictError("token collision; retry"));
    tx.audit({
      action: "signin_link.create",
      actor: auditActor(context),
      target: { type: "signin_link", id: record.credential_id },
      outcome: "success",
      request_id: context.requestId,
      details: { user_id: input.userId, role: input.role },
    });
    await this.store.commit(tx);
    return { token, expires_at: new Date(record.expires_at * 1000).toISOString() };
  }

  /** Uses a sign-in link once: the link is consumed and the session created in one transaction. */
  async signInWithLink(
    token: string,
    context: RequestContext,
  ): Promise<{ sessionId: string; session: SessionRecord }> {
    const refused = () => new UnauthenticatedError("the sign-in link is invalid, expired or already used");
    if (!looksLike("signinLink", token)) throw refused();
    const link = await this.store.credentials.get(hashToken(token));
    if (!link || link.kind !== "signin" || !link.role) throw refused();
    const now = this.clock();
    const sessionId = generateToken("session");
    const session: SessionRecord = {
      session_hash: hashToken(sessionId),
      user_id: link.name,
      provider: "signin-link",
      role: link.role,
      created_at: now.toISOString(),
      last_seen_at: now.toISOString(),
      expires_at: epochSeconds(now) + settings.session.absoluteSeconds,
      idle_expires_at: epochSeconds(now) + settings.session.idleSeconds,
      user_agent: context.userAgent?.slice(0, 256),
      ip: context.ip,
    };
    const tx = this.store.transaction();
    this.store.credentials.consume(
      tx,
      link.token_hash,
      "signin",
      now,
      session.session_hash.slice(0, 12),
      refused,
    );
    this.store.sessions.put(tx, session, () => new ConflictError("session collision; retry"));
    tx.audit({
      action: "session.create",
      actor: { type: "user", id: session.user_id, ip: context.ip, user_agent: session.user_agent },
      target: { type: "session", id: session.session_hash.slice(0, 12) },
      outcome: "success",
      request_id: context.requestId,
      details: {
        provider: session.provider,
        role: session.role,
        via: "signin_link",
        link: link.credential_id,
      },
    });
    await this.store.commit(tx);
    return { sessionId, session };
  }

  private isLive(session: SessionRecord | undefined, now: Date): session is SessionRecord {
    const epoch = epochSeconds(now);
    return session !== undefined && session.expires_at > epoch && session.idle_expires_at > epoch;
  }

  async validate(sessionId: string): Promise<SessionView> {
    if (!looksLike("session", sessionId)) return { valid: false };
    const session = await this.store.sessions.get(hashToken(sessionId));
    if (!this.isLive(session, this.clock())) return { valid: false };
    return {
      valid: true,
      user_id: session.user_id,
      provider: session.provider,
      expires_at: new Date(Math.min(session.expires_at, session.idle_expires_at) * 1000).toISOString(),
    };
  }

  /** The user behind a session cookie; slides the idle expiry. */
  async authenticate(sessionId: string): Promise<Extract<Principal, { type: "user" }>> {
    if (!looksLike("session", sessionId)) throw new UnauthenticatedError("the session is not valid");
    const session = await this.store.sessions.get(hashToken(sessionId));
    const now = this.clock();
    if (!this.isLive(session, now))
      throw new UnauthenticatedError("the session has expired or was signed out");
    const idle = Math.min(session.expires_at, epochSeconds(now) + settings.session.idleSeconds);
    await this.store.sessions.touch(session.session_hash, now, idle);
    return {
      type: "user",
      id: session.user_id,
      role: session.role,
      provider: session.provider,
      via: "session",
      credential_id: session.session_hash.slice(0, 12),
    };
  }

  /** Ends a session; ending an unknown or already ended session is not an error (logout is idempotent). */
  async logout(sessionId: string, context: RequestContext): Promise<void> {
    if (!looksLike("session", sessionId)) return;
    const session = await this.store.sessions.get(hashToken(sessionId));
    if (!session) return;
    const tx = this.store.transaction();
    this.store.sessions.delete(tx, session.session_hash);
    tx.audit({
      action: "session.delete",
      actor: { ...auditActor(context), type: "user", id: session.user_id },
      target: { type: "session", id: session.session_hash.slice(0, 12) },
      outcome: "success",
      request_id: context.requestId,
      details: { reason: "logout" },
    });
    await this.store.commit(tx);
  }
}
