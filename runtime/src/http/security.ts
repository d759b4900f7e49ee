import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { RequestHandler } from "express";
import { type Options, type Store as RateLimitStore, rateLimit } from "express-rate-limit";
import helmet from "helmet";
import { TooManyRequestsError } from "../domain/errors";
import { epochSeconds } from "../domain/principal";
import type { Runtime } from "../runtime";
import type { RateLimitName } from "./route";

/**
 * Browser-facing protections in one place: security headers (helmet) and per-client rate limits. CSRF
 * tokens are checked where the session cookie is accepted (authenticate.ts), and request bodies are
 * capped at 64 KiB by body.ts.
 */

/**
 * Security headers for every response. The CSP allows the console's own scripts plus inline ones that
 * carry the per-response nonce (`res.locals.cspNonce`: pass it to Remix's `<Scripts nonce>`), inline
 * styles, and nothing from elsewhere; no page may frame ours. Referrer-Policy no-referrer keeps OAuth
 * callback URLs (code, state) out of Referer headers. HSTS only when served over https.
 */
export function securityHeaders(options: { https: boolean }): RequestHandler[] {
  const nonce: RequestHandler = (_req, res, next) => {
    res.locals.cspNonce = randomBytes(16).toString("base64");
    next();
  };
  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: [
          "'self'",
          (_req, res) =>
            `'nonce-${(res as ServerResponse & { locals: { cspNonce: string } }).locals.cspNonce}'`,
        ],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        fontSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        objectSrc: ["'none'"],
        ...(options.https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: options.https ? { maxAge: 365 * 24 * 3600, includeSubDomains: true } : false,
    referrerPolicy: { policy: "no-referrer" },
    xFrameOptions: { action: "deny" },
  });
  return [nonce, headers as RequestHandler];
}

/**
 * express-rate-limit's store over the `rate_limits` table: the count is shared by every Lambda instance
 * (an in-memory store would give each instance its own allowance). Fixed windows; TTL cleans up.
 */
class DynamoDbRateLimitStore implements RateLimitStore {
  readonly localKeys = false;
  private windowMs = 60_000;

  constructor(
    readonly prefix: string,
    private readonly runtime: Runtime,
  ) {}

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  private window(key: string) {
    const now = this.runtime.clock().getTime();
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    const resetTime = new Date(start + this.windowMs);
    return { key: `${this.prefix}#${key}#${start}`, resetTime, expiresAt: epochSeconds(resetTime) + 60 };
  }

  async increment(key: string) {
    const window = this.window(key);
    const totalHits = await this.runtime.store.rateLimits.hit(window.key, window.expiresAt);
    return { totalHits, resetTime: window.resetTime };
  }

  async decrement(key: string) {
    const window = this.window(key);
    await this.runtime.store.rateLimits.hit(window.key, window.expiresAt, -1);
  }

  async resetKey(key: string) {
    await this.runtime.store.rateLimits.reset(this.window(key).key);
  }
}

/** One limiter per named limit, counted per client address (IPv6 by /56, express-rate-limit's default). */
export function rateLimiters(runtime: Runtime): Record<RateLimitName, RequestHandler> {
  const limits: Record<RateLimitName, { limit: number; windowSeconds: number; what: string }> = {
    signin: { ...runtime.env.HYBRID_CICD_RATE_LIMIT_SIGNIN, what: "sign-in attempts" },
    tokens: { ...runtime.env.HYBRID_CICD_RATE_LIMIT_TOKENS, what: "token requests" },
    digests: { ...runtime.env.HYBRID_CICD_RATE_LIMIT_DIGESTS, what: "digest requests" },
  };
  const limiter = (name: RateLimitName): RequestHandler => {
    const { limit, windowSeconds, what } = limits[name];
    return rateLimit({
      windowMs: windowSeconds * 1000,
      limit,
      store: new DynamoDbRateLimitStore(name, runtime),
      standardHeaders: "draft-8",
      legacyHeaders: false,
      handler: (req, _res, next) => {
        const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
        const retryAfter = resetTime
          ? (resetTime.getTime() - runtime.clock().getTime()) / 1000
          : windowSeconds;
        next(new TooManyRequestsError(`too many ${what} from this address; retry later`, retryAfter));
      },
      logger: {
        error: (error, message) => runtime.logger.error({ err: error }, message ?? "rate limiter error"),
        warn: (error, message) => runtime.logger.warn({ err: error }, message ?? "rate limiter warning"),
      },
      // API Gateway is the one proxy in front (app.ts decides `trust proxy`); the check's warning is noise.
      validate: { trustProxy: false },
    });
  };
  return { signin: limiter("signin"), tokens: limiter("tokens"), digests: limiter("digests") };
}
