import type { Principal, RequestContext } from "@hybrid-cicd/runtime/domain/principal";
import type { Runtime } from "@hybrid-cicd/runtime/runtime";

export type UserPrincipal = Extract<Principal, { type: "user" }>;

/** What the server adapter (server/console-app.ts) hands every loader and action. */
export interface ConsoleContext {
  runtime: Runtime;
  /** null: nobody is signed in. */
  user: UserPrincipal | null;
  /** The session id (never sent to the page; the CSRF token derives from it). */
  sessionId?: string;
  /** The session's stored hash, to mark "this device" among my sessions. */
  sessionHash?: string;
  /** For the use cases: request id, address, user agent, principal (audit actor). */
  request: RequestContext;
  /** The per-response CSP nonce for inline scripts. */
  cspNonce: string;
}

declare module "@remix-run/node" {
  interface AppLoadContext extends ConsoleContext {}
}
declare module "@remix-run/server-runtime" {
  interface AppLoadContext extends ConsoleContext {}
}
