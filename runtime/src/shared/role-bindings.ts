import { ConfigurationError } from "../config/env";
import { type Role, roles } from "../identity/permissions";

/**
 * Role-binding subjects and the HYBRID_CICD_ROLE_BINDINGS syntax, as pure functions: shared by the
 * runtime (domain/access/role-bindings.ts) and the platform, which checks a stack's bindings before
 * `pulumi up` without reaching into the runtime's use cases.
 */

/** Sign-in providers whose subjects can be bound. */
export const providerIds = ["google", "github", "oidc"] as const;
export type ProviderId = (typeof providerIds)[number];

const emailPattern = /^[^\s@:,=]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;
const domainPattern = /^[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;
const githubUserId = /^[1-9][0-9]{0,19}$/;

/** What to say to someone who still writes `github:<login>` (decision 014). */
export const githubLoginRefusal =
  "GitHub identities are bound by numeric user id, not login (logins can be renamed and re-registered): " +
  "write github-id:<id>; the id of a login is the `id` of https://api.github.com/users/<login>";
const opaqueSubject = /^[\x21-\x7e]{1,255}$/;

/** The canonical form of a subject, or undefined when it is not one. */
export function normalizeSubject(text: string): string | undefined {
  const separator = text.indexOf(":");
  if (separator <= 0) return undefined;
  const kind = text.slice(0, separator).toLowerCase();
  const value = text.slice(separator + 1);
  switch (kind) {
    case "email":
      return emailPattern.test(value.toLowerCase()) ? `email:${value.toLowerCase()}` : undefined;
    case "domain":
      return domainPattern.test(value.toLowerCase()) ? `domain:${value.toLowerCase()}` : undefined;
    case "github-id":
      return githubUserId.test(value) ? `github-id:${value}` : undefined;
    case "github":
      return undefined;
    default:
      // OIDC subjects are case-sensitive opaque strings.
      return (providerIds as readonly string[]).includes(kind) && opaqueSubject.test(value)
        ? `${kind}:${value}`
        : undefined;
  }
}

/** Parses HYBRID_CICD_ROLE_BINDINGS (`<subject>=<role>`, comma or space separated). */
export function parseConfiguredBindings(text: string): Map<string, Role> {
  const bindings = new Map<string, Role>();
  for (const entry of text.split(/[,\s]+/).filter(Boolean)) {
    const at = entry.lastIndexOf("=");
    const subject = normalizeSubject(entry.slice(0, Math.max(at, 0)));
    const role = entry.slice(at + 1) as Role;
    if (/^github:/i.test(entry)) {
      throw new ConfigurationError(
        `invalid configuration: HYBRID_CICD_ROLE_BINDINGS entry "${entry}": ${githubLoginRefusal}`,
      );
    }
    if (at <= 0 || !subject || !roles.includes(role)) {
      throw new ConfigurationError(
        `invalid configuration: HYBRID_CICD_ROLE_BINDINGS entry "${entry}" is not <subject>=<role> ` +
          `(subjects: email:<address>, domain:<domain>, github-id:<id>, google:<sub>, oidc:<sub>; roles: ${roles.join(", ")})`,
      );
    }
    if (bindings.has(subject) && bindings.get(subject) !== role) {
      throw new ConfigurationError(`invalid configuration: HYBRID_CICD_ROLE_BINDINGS binds ${subject} twice`);
    }
    bindings.set(subject, role);
  }
  return bindings;
}
