import type { VerifiedIdentity } from "../../identity/oauth-providers";
import type { Role } from "../../identity/permissions";
import { generateToken, hashToken, looksLike } from "../../identity/tokens";
import type { SessionRecord } from "../../store/sessions-repository";
import type { Store } from "../../store/store";
import { issueCredential } from "../access/issue-credential";
import type { RoleBindings } from "../access/role-bindings";
import { subjectsOf, userIdOf } from "../access/role-bindings";
import type { SecurityEvents } from "../access/security-events";
import { ConflictError, NotFoundError, UnauthenticatedError } from "../errors";
import { auditActor, type Clock, epochSeconds, type Principal, type RequestContext } from "../principal";
import { settings } from "../settings";

export interface SessionView {
  valid: boolean;
  user_id?: string;
  provider?: string;
  expires_at?: string;
}

/** One of a user's active devices, as `GET /auth/sessions` lists it (never the session id itself). */
export interface DeviceView {
  /** Short public id (first 12 hex digits of the id's SHA-256), for `DELETE /auth/sessions/{id}`. */
  id: string;
  provider: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  user_agent?: string;
  ip?: string;
  current: boolean;
}

export interface SessionPolicy {
  /** Signed out after this long without a request. */
  idleSeconds: number;
  /** Signed out this long after sign-in, however active. */
  absoluteSeconds: number;
}

export type UserPrincipal = Extract<Principal, { type: "user" }>;

/** A fresh session: its id goes into the cookie, once, and is never stored. */
export interface MintedSession {
  sessionId: string;
  session: SessionRecord;
}

/** The last-seen time is written at most this often (one write per minute, not one per request). */
const TOUCH_INTERVAL_SECONDS = 60;

const publicId = (session: SessionRecord) => session.session_hash.slice(0, 12);

/**
 * Sessions are minted only here, by the server, after proof: a verified OAuth callback or a one-time
 * sign-in link. A caller can never assert who it is. Each session has an idle and an absolute expiry;
 * its role is re-resolved from the role bindings on every request and the session id rotates when the
 * role changes.
 */
export class SessionsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly policy: SessionPolicy,
    private readonly bindings: RoleBindings,
    private readonly securityEvents: SecurityEvents,
  ) {}

  private newRecord(
    fields: Pick<SessionRecord, "user_id" | "provider" | "role" | "subjects" | "email" | "name">,
    context: RequestContext,
  ): MintedSession {
    const now = this.clock();
    const sessionId = generateToken("session");
    const session: SessionRecord = {
      session_hash: hashToken(sessionId),
      ...fields,
      created_at: now.toISOString(),
      last_seen_at: now.toISOString(),
      expires_at: epochSeconds(now) + this.policy.absoluteSeconds,
      idle_expires_at: epochSeconds(now) + Math.min(this.policy.idleSeconds, this.policy.absoluteSeconds),
      user_agent: context.userAgent?.slice(0, 256),
      ip: context.ip,
    };
    // DynamoDB rejects undefined attributes' absence fine, but keep records free of them.
    for (const key of Object.keys(session) as (keyof SessionRecord)[]) {
      if (session[key] === undefined) delete session[key];
    }
    return { sessionId, session };
  }

  /** A one-time, short-lived sign-in link token (the CLI prints it as a URL). */
  async createSigninLink(input: { userId: string; role: Role }, context: RequestContext) {
    const { token, expiresAt } = await issueCredential(this.store, {
      kind: "signin",
      name: input.userId,
      role: input.role,
      ttlSeconds: settings.signinLink.ttlSeconds,
      now: this.clock(),
      context,
      audit: {
        action: "signin_link.create",
        targetType: "signin_link",
        details: { user_id: input.userId, role: input.role },
      },
    });
    return { token, expires_at: expiresAt };
  }

  /** Uses a sign-in link once: the link is consumed and the session created in one transaction. */
  async signInWithLink(token: string, context: RequestContext): Promise<MintedSession> {
    const refused = () => new UnauthenticatedError("the sign-in link is invalid, expired or already used");
    const link = looksLike("signinLink", token)
      ? await this.store.credentials.get(hashToken(token))
      : undefined;
    if (link?.kind !== "signin" || !link.role) {
      await this.recordFailedSignIn("signin-link", "unknown sign-in link", context);
      throw refused();
    }
    const minted = this.newRecord({ user_id: link.name, provider: "signin-link", role: link.role }, context);
    const tx = this.store.transaction();
    this.store.credentials.consume(
      tx,
      link.token_hash,
      "signin",
      this.clock(),
      publicId(minted.session),
      refused,
    );
    this.store.sessions.put(tx, minted.session, () => new ConflictError("session collision; retry"));
    tx.audit({
      action: "session.create",
      actor: { type: "user", id: link.name, ip: context.ip, user_agent: minted.session.user_agent },
      target: { type: "session", id: publicId(minted.session) },
      outcome: "success",
      request_id: context.requestId,
      details: { provider: "signin-link", role: link.role, via: "signin_link", link: link.credential_id },
    });
    try {
      await this.store.commit(tx);
    } catch (error) {
      if (error instanceof UnauthenticatedError) {
        await this.recordFailedSignIn("signin-link", "sign-in link expired or already used", context);
      }
      throw error;
    }
    return minted;
  }

  /**
   * Mints the session for an identity a provider has just verified. A user whose identity matches no
   * role binding is still signed in (so they can see who they are and sign out) but holds no permission.
   */
  async signInWithIdentity(
    identity: VerifiedIdentity,
    context: RequestContext,
  ): Promise<MintedSession & { role: Role | null }> {
    const subjects = subjectsOf(identity);
    const role = await this.bindings.resolve(subjects);
    const userId = userIdOf(identity);
    const minted = this.newRecord(
      {
        user_id: userId,
        provider: identity.provider,
        role: role ?? undefined,
        subjects,
        email: identity.email,
        name: identity.name,
      },
      context,
    );
    const tx = this.store.transaction();
    this.store.sessions.put(tx, minted.session, () => new ConflictError("session collision; retry"));
    tx.audit({
      action: "session.create",
      actor: { type: "user", id: userId, ip: context.ip, user_agent: minted.session.user_agent },
      target: { type: "session", id: publicId(minted.session) },
      outcome: "success",
      request_id: context.requestId,
      details: {
        provider: identity.provider,
        role,
        via: "oauth",
        bound: role !== null,
        // The GitHub login this id had at sign-in: the audit trail maps one to the other.
        ...(identity.login ? { login: identity.login } : {}),
      },
    });
    await this.store.commit(tx);
    return { ...minted, role };
  }

  /** A refused sign-in, for the audit trail (the compliance report's "failed logins"). */
  async recordFailedSignIn(provider: string, reason: string, context: RequestContext): Promise<void> {
    await this.securityEvents.record({
      action: "session.create",
      actor: { ...auditActor(context), type: "anonymous", id: "anonymous" },
      target: { type: "session", id: "none" },
      outcome: "denied",
      request_id: context.requestId,
      details: { provider, reason },
    });
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

  /**
   * The user behind a session cookie. Slides the idle expiry, and re-resolves the role from the bindings:
   * when it changed (granted, changed or taken away) the session id is rotated — the old id stops working
   * and `rotatedSessionId` must replace the cookie.
   */
  async authenticate(
    sessionId: string,
    context: RequestContext,
  ): Promise<{ principal: UserPrincipal; session: SessionRecord; rotatedSessionId?: string }> {
    if (!looksLike("session", sessionId)) throw new UnauthenticatedError("the session is not valid");
    let session = await this.store.sessions.get(hashToken(sessionId));
    const now = this.clock();
    if (!this.isLive(session, now)) {
      throw new UnauthenticatedError("the session has expired or was signed out");
    }
    let rotatedSessionId: string | undefined;
    if (session.subjects) {
      const role = (await this.bindings.resolve(session.subjects)) ?? undefined;
      if (role !== session.role) {
        const rotated = await this.rotate(session, role, context);
        rotatedSessionId = rotated.sessionId;
        session = rotated.session;
      }
    }
    const touchEvery = Math.min(TOUCH_INTERVAL_SECONDS, Math.floor(this.policy.idleSeconds / 4));
    const unseenFor = epochSeconds(now) - epochSeconds(new Date(session.last_seen_at));
    if (rotatedSessionId === undefined && unseenFor >= touchEvery) {
      const idle = Math.min(session.expires_at, epochSeconds(now) + this.policy.idleSeconds);
      await this.store.sessions.touch(session.session_hash, now, idle);
    }
    return {
      principal: {
        type: "user",
        id: session.user_id,
        role: session.role ?? null,
        provider: session.provider,
        via: "session",
        credential_id: publicId(session),
      },
      session,
      rotatedSessionId,
    };
  }

  /** Replaces a session by one with a new id and the new role, in one transaction with its audit event. */
  private async rotate(
    old: SessionRecord,
    role: Role | undefined,
    context: RequestContext,
  ): Promise<MintedSession> {
    const now = this.clock();
    const sessionId = generateToken("session");
    const session: SessionRecord = {
      ...old,
      session_hash: hashToken(sessionId),
      last_seen_at: now.toISOString(),
      idle_expires_at: Math.min(old.expires_at, epochSeconds(now) + this.policy.idleSeconds),
    };
    if (role === undefined) delete session.role;
    else session.role = role;
    const tx = this.store.transaction();
    this.store.sessions.deleteExisting(
      tx,
      old.session_hash,
      () => new UnauthenticatedError("the session was rotated or signed out meanwhile; sign in again"),
    );
    this.store.sessions.put(tx, session, () => new ConflictError("session collision; retry"));
    tx.audit({
      action: "session.rotate",
      actor: { type: "user", id: old.user_id, ip: context.ip, user_agent: context.userAgent?.slice(0, 256) },
      target: { type: "session", id: publicId(old) },
      outcome: "success",
      request_id: context.requestId,
      details: {
        reason: "privilege_change",
        new_session: publicId(session),
        previous_role: old.role ?? null,
        role: role ?? null,
      },
    });
    await this.store.commit(tx);
    return { sessionId, session };
  }

  /** A user's live sessions, newest first. */
  async devices(userId: string, currentSessionHash?: string): Promise<DeviceView[]> {
    const now = this.clock();
    return (await this.store.sessions.listByUser(userId))
      .filter((session) => this.isLive(session, now))
      .map((session) => ({
        id: publicId(session),
        provider: session.provider,
        created_at: session.created_at,
        last_seen_at: session.last_seen_at,
        expires_at: new Date(Math.min(session.expires_at, session.idle_expires_at) * 1000).toISOString(),
        user_agent: session.user_agent,
        ip: session.ip,
        current: session.session_hash === currentSessionHash,
      }));
  }

  /** Ends a session; ending an unknown or already ended session is not an error (logout is idempotent). */
  async logout(sessionId: string, context: RequestContext): Promise<void> {
    if (!looksLike("session", sessionId)) return;
    const session = await this.store.sessions.get(hashToken(sessionId));
    if (!session) return;
    await this.end([session], context, "logout", {
      ...auditActor(context),
      type: "user",
      id: session.user_id,
    });
  }

  /** Ends one of the user's own sessions by its public id (`DELETE /auth/sessions/{id}`). */
  async endDevice(userId: string, id: string, context: RequestContext): Promise<void> {
    const session = (await this.store.sessions.listByUser(userId)).find(
      (candidate) => publicId(candidate) === id,
    );
    if (!session) throw new NotFoundError("no such session among yours");
    await this.end([session], context, "device_signed_out");
  }

  /** Sign out everywhere: every session of the user. */
  async logoutEverywhere(userId: string, context: RequestContext): Promise<number> {
    const sessions = await this.store.sessions.listByUser(userId);
    await this.end(sessions, context, "logout_everywhere");
    return sessions.length;
  }

  /** An admin ends every session of another user (force sign-out). */
  async forceSignOut(userId: string, context: RequestContext): Promise<number> {
    const sessions = await this.store.sessions.listByUser(userId);
    await this.end(sessions, context, "forced_sign_out");
    return sessions.length;
  }

  private async end(
    sessions: SessionRecord[],
    context: RequestContext,
    reason: string,
    actor = auditActor(context),
  ): Promise<void> {
    // A transaction holds at most 100 items; each session is a delete plus its audit record.
    for (let start = 0; start < sessions.length; start += 25) {
      const tx = this.store.transaction();
      for (const session of sessions.slice(start, start + 25)) {
        this.store.sessions.delete(tx, session.session_hash);
        tx.audit({
          action: "session.delete",
          actor,
          target: { type: "session", id: publicId(session) },
          outcome: "success",
          request_id: context.requestId,
          details: { reason, user_id: session.user_id },
        });
      }
      await this.store.commit(tx);
    }
  }
}
