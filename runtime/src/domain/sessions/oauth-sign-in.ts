import { randomBytes } from "node:crypto";
import {
  type OAuthClients,
  type ProviderId,
  ProviderRefusedError,
  ProviderUnavailableError,
} from "../../identity/oauth-providers";
import { hashToken } from "../../identity/tokens";
import type { Store } from "../../store/store";
import { DomainError, NotFoundError, ServiceUnavailableError } from "../errors";
import { type Clock, epochSeconds, type RequestContext } from "../principal";
import type { MintedSession, SessionsService } from "./sessions-service";

/** How long a user may take at the provider between `/auth/login` and `/auth/callback`. */
export const OAUTH_FLOW_TTL_SECONDS = 10 * 60;

const DEFAULT_RETURN_TO = "/console/";

/** The sign-in did not complete; nothing was signed in. Shown to the browser as an error page. */
export class SignInFailedError extends DomainError {
  override name = "SignInFailedError";
  readonly status = 400;
  readonly slug = "sign-in-failed";
  readonly title = "The sign-in did not complete";
}

/** Only a local path: never an absolute or scheme-relative URL (no open redirect). */
export function safeReturnTo(value: string | undefined): string {
  if (value === undefined || !value.startsWith("/") || value.startsWith("//") || /[\\\s]/.test(value)) {
    return DEFAULT_RETURN_TO;
  }
  return value.slice(0, 512);
}

/**
 * The OAuth sign-in use case: start a flow (state, PKCE, nonce kept server-side, bound to the browser by
 * a cookie), then finish it exactly once: the flow is taken (deleted) before the code is redeemed, so a
 * replayed callback finds nothing, and only then is a session minted.
 */
export class OAuthSignIn {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly clients: OAuthClients,
    private readonly sessions: SessionsService,
  ) {}

  /** The configured providers, for the console's sign-in page. */
  providers(): { id: ProviderId; name: string; login_url: string }[] {
    return this.clients.providers.map((provider) => ({
      id: provider.id,
      name: provider.displayName,
      login_url: `/auth/login/${provider.id}`,
    }));
  }

  private provider(id: string): ProviderId {
    const settings = this.clients.get(id);
    if (!settings) throw new NotFoundError(`no sign-in provider named ${id} is configured`);
    return settings.id;
  }

  /** Starts a sign-in: where to send the browser, and the value its flow cookie must carry back. */
  async begin(
    providerId: string,
    redirectUri: string,
    returnTo: string | undefined,
    context: RequestContext,
  ): Promise<{ url: string; binding: string }> {
    const provider = this.provider(providerId);
    let request: Awaited<ReturnType<OAuthClients["authorizationRequest"]>>;
    try {
      request = await this.clients.authorizationRequest(provider, redirectUri);
    } catch (error) {
      await this.sessions.recordFailedSignIn(provider, (error as Error).message, context);
      throw this.translate(error);
    }
    const binding = randomBytes(32).toString("base64url");
    const now = this.clock();
    await this.store.oauthFlows.put({
      state_hash: hashToken(request.state),
      provider,
      code_verifier: request.codeVerifier,
      ...(request.nonce ? { nonce: request.nonce } : {}),
      redirect_uri: redirectUri,
      binding_hash: hashToken(binding),
      return_to: safeReturnTo(returnTo),
      created_at: now.toISOString(),
      expires_at: epochSeconds(now) + OAUTH_FLOW_TTL_SECONDS,
    });
    return { url: request.url.href, binding };
  }

  /** Finishes a sign-in from the provider's redirect; any failure is recorded and nothing is signed in. */
  async complete(
    providerId: string,
    query: URLSearchParams,
    binding: string | undefined,
    context: RequestContext,
  ): Promise<MintedSession & { returnTo: string }> {
    const provider = this.provider(providerId);
    const fail = async (reason: string, error: Error = new SignInFailedError(reason)): Promise<never> => {
      await this.sessions.recordFailedSignIn(provider, reason, context);
      throw error;
    };
    const state = query.get("state");
    if (!state || state.length > 512) return fail("the provider's answer carries no state");
    const flow = await this.store.oauthFlows.take(hashToken(state));
    if (!flow) return fail("unknown or already used sign-in (state); start again");
    if (flow.provider !== provider) return fail("the sign-in was started with another provider");
    if (flow.expires_at <= epochSeconds(this.clock())) return fail("the sign-in took too long; start again");
    if (!binding || hashToken(binding) !== flow.binding_hash) {
      return fail("the sign-in was started in another browser (or its cookie is gone); start again");
    }
    let identity: Awaited<ReturnType<OAuthClients["complete"]>>;
    try {
      identity = await this.clients.complete(provider, query, {
        state,
        codeVerifier: flow.code_verifier,
        nonce: flow.nonce,
        redirectUri: flow.redirect_uri,
      });
    } catch (error) {
      return fail((error as Error).message, this.translate(error));
    }
    const minted = await this.sessions.signInWithIdentity(identity, context);
    return { ...minted, returnTo: flow.return_to };
  }

  private translate(error: unknown): Error {
    if (error instanceof ProviderUnavailableError) {
      return new ServiceUnavailableError(`sign-in is unavailable right now: ${error.message}`, 30);
    }
    if (error instanceof ProviderRefusedError) return new SignInFailedError(error.message);
    return error as Error;
  }
}
