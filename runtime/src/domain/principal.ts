import type { Role } from "../identity/permissions";

/** Who is making a request, once authenticated. */
export type Principal =
  | {
      type: "user";
      id: string;
      /** null: signed in, but no role binding matches; such a user holds no permission. */
      role: Role | null;
      provider: string;
      /** How the user proved who they are. */
      via: "session" | "api_token";
      /** Non-secret id of the session or token (hash prefix), for audit correlation. */
      credential_id: string;
      /**
       * The person behind the credential, for the two-person rule: the user of a session, the person who
       * issued an API token (a token and a session of one admin are one person). Default: `id`.
       */
      person?: string;
    }
  | { type: "agent"; id: string }
  /** The operator at the machine: the CLI, acting with access to the data dir or the AWS account. */
  | { type: "system"; id: string };

/** What a use case knows about the request beyond its input. */
export interface RequestContext {
  readonly requestId: string;
  readonly ip?: string;
  readonly userAgent?: string;
  readonly principal?: Principal;
}

export type Clock = () => Date;

export const epochSeconds = (date: Date): number => Math.floor(date.getTime() / 1000);

/**
 * The audit actor for a request: who, with which credential (`session:<id>`, `api_token:<id>`), on
 * whose behalf (an API token's issuer), from where, with what.
 */
export function auditActor(context: RequestContext): {
  type: "user" | "agent" | "system" | "anonymous";
  id: string;
  credential?: string;
  on_behalf_of?: string;
  ip?: string;
  user_agent?: string;
} {
  const principal = context.principal;
  const user = principal?.type === "user" ? principal : undefined;
  const person = user ? personOf(context) : undefined;
  return {
    type: principal?.type ?? "anonymous",
    id: principal?.id ?? "anonymous",
    ...(user ? { credential: `${user.via}:${user.credential_id}` } : {}),
    ...(person !== undefined && person !== user?.id ? { on_behalf_of: person } : {}),
    ip: context.ip,
    user_agent: context.userAgent?.slice(0, 256),
  };
}

/** The person acting (the two-person rule compares people, not credentials). */
export function personOf(context: RequestContext): string {
  const principal = context.principal;
  if (!principal) return "anonymous";
  return principal.type === "user" ? (principal.person ?? principal.id) : `${principal.type}:${principal.id}`;
}

/** A context for work started at the machine (CLI, start-up), not by a request. */
export function systemContext(id: string, requestId = `system-${Date.now()}`): RequestContext {
  return { requestId, principal: { type: "system", id } };
}
