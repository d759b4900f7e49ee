import { randomUUID } from "node:crypto";
import * as oidc from "openid-client";
import { ConfigurationError, type Env } from "../config/env";
import { secretId, secrets } from "../secrets/catalog";
import type { SecretStore } from "../secrets/secret-store";

/**
 * Sign-in providers and the OAuth 2.0 / OpenID Connect protocol work, with `openid-client`: authorization
 * code + PKCE (S256) + `state`, plus `nonce` and ID Token validation for OpenID Connect. GitHub is plain
 * OAuth 2.0: its user API gives the numeric user id (the stable identity: logins can be renamed and
 * re-registered), the login (shown, never trusted) and the verified primary e-mail.
 */
export const providerIds = ["google", "github", "oidc"] as const;
export type ProviderId = (typeof providerIds)[number];

export interface ProviderSettings {
  readonly id: ProviderId;
  readonly displayName: string;
  readonly protocol: "oidc" | "github";
  /** OIDC issuer (discovery) or the GitHub web base URL. */
  readonly issuer: string;
  readonly clientId: string;
  readonly scopes: string;
  /** GitHub's REST API base URL. */
  readonly apiUrl?: string;
}

/** Who the provider says signed in; only verified e-mail addresses are kept. */
export interface VerifiedIdentity {
  readonly provider: ProviderId;
  /** Stable id at the provider: the OIDC `sub`, or the GitHub numeric user id. */
  readonly subject: string;
  readonly email?: string;
  readonly name?: string;
  /** GitHub: the login at sign-in time, for people to read (bindings use the numeric id). */
  readonly login?: string;
  /** Google: the `hd` claim, the Workspace domain the account belongs to (absent for consumer accounts). */
  readonly hostedDomain?: string;
}

/** The configured providers, from the environment; a half-configured provider stops start-up. */
export function providerSettings(env: Env): ProviderSettings[] {
  const configured: ProviderSettings[] = [];
  if (env.HYBRID_CICD_OAUTH_GOOGLE_CLIENT_ID) {
    configured.push({
      id: "google",
      displayName: "Google",
      protocol: "oidc",
      issuer: env.HYBRID_CICD_OAUTH_GOOGLE_ISSUER,
      clientId: env.HYBRID_CICD_OAUTH_GOOGLE_CLIENT_ID,
      scopes: "openid email profile",
    });
  }
  if (env.HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID) {
    configured.push({
      id: "github",
      displayName: "GitHub",
      protocol: "github",
      issuer: env.HYBRID_CICD_OAUTH_GITHUB_URL.replace(/\/+$/, ""),
      clientId: env.HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID,
      scopes: "read:user user:email",
      apiUrl: env.HYBRID_CICD_OAUTH_GITHUB_API_URL.replace(/\/+$/, ""),
    });
  }
  const issuer = env.HYBRID_CICD_OAUTH_OIDC_ISSUER;
  const clientId = env.HYBRID_CICD_OAUTH_OIDC_CLIENT_ID;
  if ((issuer === undefined) !== (clientId === undefined)) {
    throw new ConfigurationError(
      "invalid configuration: HYBRID_CICD_OAUTH_OIDC_ISSUER and HYBRID_CICD_OAUTH_OIDC_CLIENT_ID go together",
    );
  }
  if (issuer && clientId) {
    const scopes = env.HYBRID_CICD_OAUTH_OIDC_SCOPES;
    if (!scopes.split(/\s+/).includes("openid")) {
      throw new ConfigurationError(
        "invalid configuration: HYBRID_CICD_OAUTH_OIDC_SCOPES must include openid",
      );
    }
    configured.push({
      id: "oidc",
      displayName: env.HYBRID_CICD_OAUTH_OIDC_NAME,
      protocol: "oidc",
      issuer,
      clientId,
      scopes,
    });
  }
  return configured;
}

/** The provider could not be reached or answered with a server error: nothing was signed in. */
export class ProviderUnavailableError extends Error {
  override name = "ProviderUnavailableError";
}

/** The provider's answer did not verify (state, PKCE, nonce, signature, refused code, denied consent). */
export class ProviderRefusedError extends Error {
  override name = "ProviderRefusedError";
}

export interface AuthorizationRequest {
  url: URL;
  state: string;
  codeVerifier: string;
  /** OpenID Connect only. */
  nonce?: string;
}

export interface FlowChecks {
  state: string;
  codeVerifier: string;
  nonce?: string;
  redirectUri: string;
}

const TIMEOUT_SECONDS = 10;
const CONFIGURATION_TTL_MS = 10 * 60 * 1000;

/** Plain http is allowed only for a loopback authorization server (tests, local identity providers). */
function isLoopbackHttp(url: string): boolean {
  const parsed = new URL(url);
  return (
    parsed.protocol === "http:" &&
    (parsed.hostname === "localhost" || parsed.hostname === "[::1]" || /^127\./.test(parsed.hostname))
  );
}

function isNetworkFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (["AbortError", "TimeoutError"].includes(error.name)) return true;
  if (error instanceof TypeError && /fetch failed/i.test(error.message)) return true;
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error && isNetworkFailure(cause);
}

/** Maps whatever openid-client (or fetch) threw to unavailable (retry later) or refused (start over). */
function classify(error: unknown, provider: string): Error {
  if (error instanceof ProviderUnavailableError || error instanceof ProviderRefusedError) return error;
  if (isNetworkFailure(error)) {
    return new ProviderUnavailableError(`${provider} could not be reached`);
  }
  const status = (error as { status?: number }).status;
  if (typeof status === "number" && status >= 500) {
    return new ProviderUnavailableError(`${provider} answered with HTTP ${status}`);
  }
  if (error instanceof oidc.AuthorizationResponseError) {
    return new ProviderRefusedError(`${provider} refused the sign-in: ${error.error}`);
  }
  if (error instanceof oidc.ResponseBodyError) {
    return new ProviderRefusedError(`${provider} refused the authorization code: ${error.error}`);
  }
  if (error instanceof oidc.ClientError || error instanceof oidc.WWWAuthenticateChallengeError) {
    // oauth4webapi names the claim that failed a comparison (nonce, aud, iss, ...) in the cause chain.
    let claim: unknown;
    for (
      let cause: unknown = error;
      cause && claim === undefined;
      cause = (cause as { cause?: unknown }).cause
    ) {
      claim = (cause as { claim?: unknown }).claim;
    }
    const which = typeof claim === "string" ? ` (${claim})` : "";
    return new ProviderRefusedError(`${provider}'s response did not verify: ${error.message}${which}`);
  }
  return new ProviderUnavailableError(`${provider} sign-in failed unexpectedly`);
}

/**
 * One openid-client Configuration per provider, discovered lazily (a provider that is down does not stop
 * start-up) and kept for ten minutes; a failed discovery is retried on the next sign-in.
 */
export class OAuthClients {
  private readonly configurations = new Map<ProviderId, { at: number; value: Promise<oidc.Configuration> }>();

  constructor(
    readonly providers: readonly ProviderSettings[],
    private readonly clientSecret: (provider: ProviderId) => Promise<string | undefined>,
    private readonly now: () => number = Date.now,
  ) {}

  get(provider: string): ProviderSettings | undefined {
    return this.providers.find((candidate) => candidate.id === provider);
  }

  private settings(provider: ProviderId): ProviderSettings {
    const settings = this.get(provider);
    if (!settings) throw new ProviderRefusedError(`no sign-in provider named ${provider} is configured`);
    return settings;
  }

  private configuration(settings: ProviderSettings): Promise<oidc.Configuration> {
    const cached = this.configurations.get(settings.id);
    if (cached && this.now() - cached.at < CONFIGURATION_TTL_MS) return cached.value;
    const value = this.configure(settings);
    this.configurations.set(settings.id, { at: this.now(), value });
    value.catch(() => {
      if (this.configurations.get(settings.id)?.value === value) this.configurations.delete(settings.id);
    });
    return value;
  }

  private async configure(settings: ProviderSettings): Promise<oidc.Configuration> {
    const secret = await this.clientSecret(settings.id);
    if (!secret) {
      throw new ProviderUnavailableError(
        `no client secret for ${settings.id} in the secret store (oauth-client-secrets)`,
      );
    }
    const insecure = isLoopbackHttp(settings.issuer);
    let configuration: oidc.Configuration;
    if (settings.protocol === "github") {
      configuration = new oidc.Configuration(
        {
          issuer: settings.issuer,
          authorization_endpoint: `${settings.issuer}/login/oauth/authorize`,
          token_endpoint: `${settings.issuer}/login/oauth/access_token`,
        },
        settings.clientId,
        secret,
        oidc.ClientSecretPost(secret),
      );
      if (insecure) oidc.allowInsecureRequests(configuration);
    } else {
      try {
        configuration = await oidc.discovery(
          new URL(settings.issuer),
          settings.clientId,
          secret,
          oidc.ClientSecretPost(secret),
          { timeout: TIMEOUT_SECONDS, execute: insecure ? [oidc.allowInsecureRequests] : [] },
        );
      } catch (error) {
        const classified = classify(error, settings.displayName);
        // A discovery document that does not verify is the provider's (or the configuration's) fault,
        // not the user's: report it as unavailable.
        throw classified instanceof ProviderRefusedError
          ? new ProviderUnavailableError(`${settings.displayName} discovery failed: ${classified.message}`)
          : classified;
      }
    }
    configuration.timeout = TIMEOUT_SECONDS;
    return configuration;
  }

  /** The URL to send the browser to, with fresh state, PKCE verifier and (OIDC) nonce. */
  async authorizationRequest(provider: ProviderId, redirectUri: string): Promise<AuthorizationRequest> {
    const settings = this.settings(provider);
    const configuration = await this.configuration(settings);
    const state = oidc.randomState();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const parameters: Record<string, string> = {
      redirect_uri: redirectUri,
      scope: settings.scopes,
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
    };
    let nonce: string | undefined;
    if (settings.protocol === "oidc") {
      nonce = oidc.randomNonce();
      parameters.nonce = nonce;
    } else {
      // GitHub: never offer sign-up in the middle of a sign-in to a control plane.
      parameters.allow_signup = "false";
    }
    return { url: oidc.buildAuthorizationUrl(configuration, parameters), state, codeVerifier, nonce };
  }

  /**
   * Verifies the authorization response (state, issuer), redeems the code with the PKCE verifier,
   * validates the ID Token (signature, audience, nonce) and returns the verified identity. Provider tokens
   * are used here and dropped: nothing the provider issued is stored.
   */
  async complete(
    provider: ProviderId,
    query: URLSearchParams,
    checks: FlowChecks,
  ): Promise<VerifiedIdentity> {
    const settings = this.settings(provider);
    const configuration = await this.configuration(settings);
    const currentUrl = new URL(checks.redirectUri);
    currentUrl.search = query.toString();
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, currentUrl, {
        expectedState: checks.state,
        pkceCodeVerifier: checks.codeVerifier,
        ...(settings.protocol === "oidc" ? { expectedNonce: checks.nonce, idTokenExpected: true } : {}),
      });
      return settings.protocol === "oidc"
        ? await this.oidcIdentity(settings, configuration, tokens)
        : await this.githubIdentity(settings, tokens.access_token);
    } catch (error) {
      throw classify(error, settings.displayName);
    }
  }

  private async oidcIdentity(
    settings: ProviderSettings,
    configuration: oidc.Configuration,
    tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>,
  ): Promise<VerifiedIdentity> {
    const claims = tokens.claims();
    if (!claims) throw new ProviderRefusedError(`${settings.displayName} returned no ID Token`);
    let profile: Record<string, unknown> = { ...claims };
    if (claims.email === undefined && configuration.serverMetadata().userinfo_endpoint) {
      // Some issuers put profile claims only in the UserInfo response; its `sub` must match the ID Token's.
      profile = await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub);
    }
    const verified = profile.email_verified === true || profile.email_verified === "true";
    // `hd` is Google's: only read from the ID Token, and only for Google.
    const hd =
      settings.id === "google" && typeof claims.hd === "string" ? claims.hd.toLowerCase() : undefined;
    return {
      provider: settings.id,
      subject: claims.sub,
      email: verified && typeof profile.email === "string" ? profile.email.toLowerCase() : undefined,
      name: typeof profile.name === "string" ? profile.name.slice(0, 128) : undefined,
      ...(hd ? { hostedDomain: hd } : {}),
    };
  }

  private async githubIdentity(settings: ProviderSettings, accessToken: string): Promise<VerifiedIdentity> {
    const api = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${settings.apiUrl}${path}`, {
        headers: {
          authorization: `Bearer ${accessToken}`,
          accept: "application/vnd.github+json",
          "x-github-api-version": "2022-11-28",
          "user-agent": "hybrid-cicd",
        },
        signal: AbortSignal.timeout(TIMEOUT_SECONDS * 1000),
      });
      if (response.status >= 500)
        throw new ProviderUnavailableError(`GitHub API answered ${response.status}`);
      if (!response.ok) throw new ProviderRefusedError(`GitHub API refused the token (${response.status})`);
      return (await response.json()) as T;
    };
    const user = await api<{ id?: unknown; login?: unknown; name?: unknown }>("/user");
    if (typeof user.id !== "number" || !Number.isSafeInteger(user.id) || user.id <= 0) {
      throw new ProviderRefusedError("GitHub returned no valid user id");
    }
    if (typeof user.login !== "string" || !/^[A-Za-z0-9-]{1,39}$/.test(user.login)) {
      throw new ProviderRefusedError("GitHub returned no valid login");
    }
    const emails = await api<{ email?: unknown; primary?: unknown; verified?: unknown }[]>("/user/emails");
    const primary = Array.isArray(emails)
      ? emails.find((entry) => entry.primary === true && entry.verified === true)
      : undefined;
    return {
      provider: settings.id,
      subject: String(user.id),
      login: user.login.toLowerCase(),
      email: typeof primary?.email === "string" ? primary.email.toLowerCase() : undefined,
      name: typeof user.name === "string" ? user.name.slice(0, 128) : user.login,
    };
  }
}

/**
 * Reads a provider's client secret from the secret store's `oauth-client-secrets` JSON object
 * (`{"google": "...", "github": "...", "oidc": "..."}`); undefined when it is not there.
 */
export function clientSecretsFrom(
  read: () => Promise<{ value: string } | undefined>,
): (provider: ProviderId) => Promise<string | undefined> {
  return async (provider) => {
    const version = await read();
    if (!version) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(version.value);
    } catch {
      throw new ProviderUnavailableError("the oauth-client-secrets secret is not a JSON object");
    }
    const value = (parsed as Record<string, unknown> | null)?.[provider];
    return typeof value === "string" && value.length > 0 ? value : undefined;
  };
}

/**
 * Sets one provider's client secret in the secret store (a new AWSCURRENT version of
 * `oauth-client-secrets`, the other providers' secrets kept). Used by `hybrid-cicd oauth-secret set`.
 */
export async function storeClientSecret(
  secretStore: SecretStore,
  secretPrefix: string,
  provider: ProviderId,
  clientSecret: string,
): Promise<void> {
  const id = secretId(secretPrefix, "oauthClientSecrets");
  const initial = JSON.stringify({ [provider]: clientSecret });
  const current = await secretStore.ensureSecret(id, () => initial, secrets.oauthClientSecrets.description);
  if (current.value === initial) return;
  let values: Record<string, unknown> = {};
  try {
    values = JSON.parse(current.value) as Record<string, unknown>;
  } catch {
    // A value that is not JSON is replaced.
  }
  await secretStore.putSecretValue(
    id,
    randomUUID(),
    JSON.stringify({ ...values, [provider]: clientSecret }),
    ["AWSCURRENT"],
  );
}
