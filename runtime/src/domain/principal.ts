import type { Role } from "../identity/permissions";

/** Who is making a request, once authenticated. */
export type Principal =
  | {
      type: "user";
      id: string;
      role: Role;
      provider: string;
      /** How the user proved who they are. */
      via: "session" | "api_token";
      /** Non-secret id of the session or token (hash prefix), for audit correlation. */
      credential_id: string;
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
