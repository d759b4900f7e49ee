import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Configuration, default as ProviderType } from "oidc-provider";

/**
 * A real OAuth 2.0 / OpenID Connect authorization server (`oidc-provider`) on loopback, for end-to-end
 * sign-in tests. It serves both faces the runtime talks to:
 *   - OpenID Connect with discovery (Google and generic OIDC): `issuer`;
 *   - GitHub: its authorize/token endpoints live at GitHub's paths (`/login/oauth/authorize`,
 *     `/login/oauth/access_token`) and a GitHub-shaped user API at `${issuer}/api` (`/user`,
 *     `/user/emails`) answers for the access tokens this server issued.
 * Logging in and consenting are automatic: the account is whichever the test chose with `signInAs`.
 */
export interface TestAccount {
  id: string;
  email?: string;
  emailVerified?: boolean;
  name?: string;
  /** The GitHub login the user API reports (GitHub face). */
  githubLogin?: string;
  /** The GitHub numeric user id the user API reports. @default 1 */
  githubId?: number;
  /** Google's `hd` claim (a Workspace account's domain), in the ID Token. */
  hostedDomain?: string;
}

export interface TestClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
}

export interface TestAuthorizationServer {
  issuer: string;
  /** GitHub-shaped REST API base URL. */
  githubApiUrl: string;
  /** Registers the clients (their redirect URIs are known only once the control plane listens). */
  start(clients: TestClient[]): Promise<void>;
  signInAs(accountId: string): void;
  close(): Promise<void>;
}

/** oidc-provider's storage, in memory (its own in-memory adapter prints a production warning). */
type Stored = Record<string, unknown> & {
  grantId?: string;
  userCode?: string;
  uid?: string;
  consumed?: number;
};
function memoryAdapter() {
  const items = new Map<string, { payload: Stored; expiresAt?: number }>();
  const live = (key: string) => {
    const item = items.get(key);
    if (!item) return undefined;
    if (item.expiresAt !== undefined && item.expiresAt <= Date.now()) {
      items.delete(key);
      return undefined;
    }
    return item.payload;
  };
  return class MemoryAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Stored, expiresIn?: number) {
      items.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) {
      return live(this.key(id));
    }
    async findByUid(uid: string) {
      for (const key of items.keys()) {
        if (key.startsWith(`${this.model}:`) && live(key)?.uid === uid) return live(key);
      }
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const key of items.keys()) {
        if (key.startsWith(`${this.model}:`) && live(key)?.userCode === userCode) return live(key);
      }
      return undefined;
    }
    async consume(id: string) {
      const payload = live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      items.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [key, item] of items) if (item.payload.grantId === grantId) items.delete(key);
    }
  };
}

let providerModule: Promise<typeof import("oidc-provider")> | undefined;

/** oidc-provider warns about Node 20 on import (it recommends 22); it works on 20 (see TOOLCHAIN.md). */
function loadProvider() {
  providerModule ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (!String(args[0]).includes("Unsupported runtime")) warn(...args);
    };
    try {
      return await import("oidc-provider");
    } finally {
      console.warn = warn;
    }
  })();
  return providerModule;
}

export async function startAuthorizationServer(accounts: TestAccount[]): Promise<TestAuthorizationServer> {
  const byId = new Map(accounts.map((account) => [account.id, account]));
  let current = accounts[0]?.id;
  let provider: ProviderType | undefined;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!provider) {
      res.statusCode = 503;
      res.end("not started");
      return;
    }
    provider.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { default: Provider } = await loadProvider();

  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const ttl = (seconds: number) => () => seconds;

  return {
    issuer,
    githubApiUrl: `${issuer}/api`,
    signInAs(accountId) {
      if (!byId.has(accountId)) throw new Error(`no test account ${accountId}`);
      current = accountId;
    },
    async start(clients) {
      const configuration: Configuration = {
        adapter: memoryAdapter() as never,
        clients: clients.map((client) => ({
          ...client,
          grant_types: ["authorization_code"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_post",
        })),
        jwks: { keys: [{ ...signingKey, kid: "test-signing-key", use: "sig", alg: "RS256" }] as never },
        cookies: { keys: [randomBytes(32).toString("base64url")] },
        routes: { authorization: "/login/oauth/authorize", token: "/login/oauth/access_token" },
        scopes: ["openid", "offline_access", "read:user", "user:email"],
        claims: { openid: ["sub", "hd"], email: ["email", "email_verified"], profile: ["name"] },
        // Scope claims in the ID Token too, as Google puts `hd` and `email` there.
        conformIdTokenClaims: false,
        features: { devInteractions: { enabled: false } },
        pkce: { required: () => true },
        ttl: {
          AccessToken: ttl(600),
          AuthorizationCode: ttl(60),
          IdToken: ttl(600),
          Interaction: ttl(600),
          Session: ttl(3600),
          Grant: ttl(3600),
          ClientCredentials: ttl(600),
          DeviceCode: ttl(600),
          BackchannelAuthenticationRequest: ttl(600),
          PreAuthorizedCode: ttl(600),
          RefreshToken: ttl(600),
        },
        async findAccount(_ctx, id) {
          const account = byId.get(id);
          if (!account) return undefined;
          return {
            accountId: id,
            async claims() {
              return {
                sub: id,
                ...(account.hostedDomain ? { hd: account.hostedDomain } : {}),
                ...(account.email
                  ? { email: account.email, email_verified: account.emailVerified ?? true }
                  : {}),
                ...(account.name ? { name: account.name } : {}),
              };
            },
          };
        },
        renderError(ctx, out) {
          ctx.type = "json";
          ctx.body = out;
        },
      };
      const created = new Provider(issuer, configuration);
      created.use(async (ctx, next) => {
        // Automatic interactions: log in as the chosen account, consent to what was asked.
        if (ctx.method === "GET" && ctx.path.startsWith("/interaction/")) {
          const details = await created.interactionDetails(ctx.req, ctx.res);
          ctx.respond = false;
          if (details.prompt.name === "login") {
            await created.interactionFinished(
              ctx.req,
              ctx.res,
              { login: { accountId: current! } },
              { mergeWithLastSubmission: false },
            );
            return;
          }
          const grant = details.grantId
            ? await created.Grant.find(details.grantId)
            : new created.Grant({
                accountId: details.session!.accountId,
                clientId: details.params.client_id as string,
              });
          const missing = details.prompt.details as {
            missingOIDCScope?: string[];
            missingOIDCClaims?: string[];
          };
          if (missing.missingOIDCScope) grant!.addOIDCScope(missing.missingOIDCScope.join(" "));
          if (missing.missingOIDCClaims) grant!.addOIDCClaims(missing.missingOIDCClaims);
          const grantId = await grant!.save();
          await created.interactionFinished(
            ctx.req,
            ctx.res,
            { consent: details.grantId ? {} : { grantId } },
            { mergeWithLastSubmission: true },
          );
          return;
        }
        // GitHub's user API, for tokens issued here.
        if (ctx.method === "GET" && (ctx.path === "/api/user" || ctx.path === "/api/user/emails")) {
          const value = /^Bearer (.+)$/i.exec(ctx.get("authorization"))?.[1];
          const token = value ? await created.AccessToken.find(value) : undefined;
          const account = token ? byId.get(token.accountId) : undefined;
          if (!account?.githubLogin) {
            ctx.status = 401;
            ctx.body = { message: "Bad credentials" };
            return;
          }
          ctx.body =
            ctx.path === "/api/user"
              ? { login: account.githubLogin, id: account.githubId ?? 1, name: account.name ?? null }
              : [
                  {
                    email: `${account.githubLogin}@users.noreply.github.com`,
                    primary: false,
                    verified: true,
                  },
                  ...(account.email
                    ? [{ email: account.email, primary: true, verified: account.emailVerified ?? true }]
                    : []),
                ];
          return;
        }
        await next();
      });
      provider = created;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * A browser, as far as sign-in needs one: a cookie jar (by name and path; every server here is on
 * 127.0.0.1, and browsers do not separate cookies by port) and redirects followed by hand.
 */
export class TestBrowser {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();

  cookie(name: string): string | undefined {
    return [...this.cookies.values()].find((cookie) => cookie.name === name)?.value;
  }

  private cookieHeader(url: URL): string {
    return [...this.cookies.values()]
      .filter((cookie) => url.pathname.startsWith(cookie.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((cookie) => `${cookie.name}=${cookie.value}`)
      .join("; ");
  }

  private remember(url: URL, response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(/;\s*/);
      const at = pair!.indexOf("=");
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      let path = url.pathname.replace(/\/[^/]*$/, "") || "/";
      let expired = value === "";
      for (const attribute of attributes) {
        const [key, attributeValue = ""] = attribute.split("=");
        if (key!.toLowerCase() === "path") path = attributeValue;
        if (key!.toLowerCase() === "max-age" && Number(attributeValue) <= 0) expired = true;
        if (key!.toLowerCase() === "expires" && Date.parse(attributeValue) <= Date.now()) expired = true;
      }
      const key = `${name}|${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  /** One request, no redirect followed. */
  async get(target: string | URL, headers: Record<string, string> = {}): Promise<Response> {
    const url = new URL(target);
    const cookie = this.cookieHeader(url);
    const response = await fetch(url, {
      redirect: "manual",
      headers: { accept: "text/html", ...(cookie ? { cookie } : {}), ...headers },
    });
    this.remember(url, response);
    return response;
  }

  /** Follows redirects until `stop(url)` says so (or a non-redirect answer); returns the URL stopped at. */
  async follow(start: string | URL, stop: (url: URL) => boolean): Promise<{ url: URL; response?: Response }> {
    let url = new URL(start);
    for (let hop = 0; hop < 20; hop++) {
      if (stop(url)) return { url };
      const response = await this.get(url);
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || !location) return { url, response };
      await response.arrayBuffer();
      url = new URL(location, url);
    }
    throw new Error("too many redirects");
  }
}
