import { ConfigurationError } from "../../config/env";
import { providerIds, type VerifiedIdentity } from "../../identity/oauth-providers";
import { type Role, roles } from "../../identity/permissions";
import type { RoleBindingRecord } from "../../store/role-bindings-repository";
import { LISTING_PARTITION } from "../../store/schema";
import type { Store } from "../../store/store";
import { ConflictError, NotFoundError, ValidationError } from "../errors";
import { auditActor, type Clock, type RequestContext } from "../principal";

/**
 * Role bindings: a verified identity → a role. Subjects, most specific first:
 *   a user id           `github-id:583231` (GitHub's numeric user id, decision 014), `google:1134...`
 *                       (OIDC `sub`), `oidc:<sub>`
 *   `email:<address>`   a verified e-mail address (Google, OIDC `email_verified`, GitHub primary verified)
 *   `domain:<domain>`   every verified e-mail address of a domain; for Google accounts only the
 *                       Workspace domain the ID Token's `hd` claim names
 * `github:<login>` is refused: a login can be renamed and then registered by someone else.
 * The most specific matching binding wins. Bindings from configuration (HYBRID_CICD_ROLE_BINDINGS) are
 * fixed; bindings made through the API are stored, audited, and cannot remove the last admin.
 */
export interface RoleBindingView {
  subject: string;
  role: Role;
  source: "configuration" | "api";
  created_at?: string;
  created_by?: string;
  updated_at?: string;
  updated_by?: string;
}

const emailPattern = /^[^\s@:,=]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;
const domainPattern = /^[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;
const githubUserId = /^[1-9][0-9]{0,19}$/;

/** What to say to someone who still writes `github:<login>`. */
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

/** The user id of a verified identity, e.g. `github-id:583231` or `google:1134...`. */
export const userIdOf = (identity: VerifiedIdentity): string =>
  identity.provider === "github"
    ? `github-id:${identity.subject}`
    : `${identity.provider}:${identity.subject}`;

/**
 * The subjects a verified identity matches, most specific first. A Google account matches `domain:` only
 * for the Workspace domain in its `hd` claim: a consumer Google account can carry a verified address at
 * any domain, which does not make it that organisation's account.
 */
export function subjectsOf(identity: VerifiedIdentity): string[] {
  const subjects = [userIdOf(identity)];
  if (identity.email) {
    subjects.push(`email:${identity.email}`);
    const domain = identity.email.slice(identity.email.lastIndexOf("@") + 1);
    if (identity.provider !== "google") subjects.push(`domain:${domain}`);
    else if (identity.hostedDomain === domain) subjects.push(`domain:${domain}`);
  }
  return subjects.map((subject) => normalizeSubject(subject) ?? subject);
}

/** Parses `subject=role,subject=role` (whitespace and newlines allowed as separators too). */
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

export class RoleBindings {
  private readonly configuredAdmins: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly configured: ReadonlyMap<string, Role>,
  ) {
    this.configuredAdmins = [...configured.values()].filter((role) => role === "admin").length;
  }

  /** The role of the most specific matching subject, or null when none matches. */
  async resolve(subjects: readonly string[]): Promise<Role | null> {
    const stored = new Map(
      (
        await this.store.roleBindings.getMany(subjects.filter((subject) => !this.configured.has(subject)))
      ).map((record) => [record.subject, record.role]),
    );
    for (const subject of subjects) {
      const role = this.configured.get(subject) ?? stored.get(subject);
      if (role) return role;
    }
    return null;
  }

  async list(): Promise<RoleBindingView[]> {
    const configured: RoleBindingView[] = [...this.configured].map(([subject, role]) => ({
      subject,
      role,
      source: "configuration",
    }));
    const stored: RoleBindingView[] = (await this.store.roleBindings.list())
      .filter((record) => !this.configured.has(record.subject))
      .map(({ subject, role, created_at, created_by, updated_at, updated_by }) => ({
        subject,
        role,
        source: "api",
        created_at,
        created_by,
        updated_at,
        updated_by,
      }));
    return [...configured, ...stored].sort((a, b) => a.subject.localeCompare(b.subject));
  }

  private subject(text: string): string {
    const subject = normalizeSubject(text);
    if (!subject) {
      throw new ValidationError("subject is not valid", [
        {
          field: "subject",
          message: /^github:/i.test(text)
            ? githubLoginRefusal
            : "email:<address>, domain:<domain>, github-id:<id>, google:<sub> or oidc:<sub>",
        },
      ]);
    }
    if (this.configured.has(subject)) {
      throw new ConflictError(
        `${subject} is bound by configuration (HYBRID_CICD_ROLE_BINDINGS); change it there`,
      );
    }
    return subject;
  }

  private lastAdmin = () =>
    new ConflictError("this is the last admin binding: bind another admin before removing or demoting it");
  private changed = () => new ConflictError("the binding changed meanwhile; read it again and retry");

  /** Creates or changes a binding (idempotent: the same role again changes nothing). */
  async put(subjectText: string, role: Role, context: RequestContext): Promise<RoleBindingView> {
    const subject = this.subject(subjectText);
    const [previous] = await this.store.roleBindings.getMany([subject]);
    if (previous?.role === role) return { ...previous, source: "api" };
    const now = this.clock().toISOString();
    const actor = auditActor(context);
    const record: RoleBindingRecord = {
      subject,
      role,
      listing: LISTING_PARTITION,
      created_at: previous?.created_at ?? now,
      created_by: previous?.created_by ?? actor.id,
      updated_at: now,
      updated_by: actor.id,
    };
    const tx = this.store.transaction();
    this.store.roleBindings.put(tx, record, previous?.role, this.changed);
    if (role === "admin") this.store.roleBindings.countAdmins(tx, 1, false, this.lastAdmin);
    if (previous?.role === "admin") {
      this.store.roleBindings.countAdmins(tx, -1, this.configuredAdmins === 0, this.lastAdmin);
    }
    tx.audit({
      action: "binding.put",
      actor,
      target: { type: "role_binding", id: subject },
      outcome: "success",
      request_id: context.requestId,
      details: { role, previous_role: previous?.role ?? null },
    });
    await this.store.commit(tx);
    const { listing: _listing, ...view } = record;
    return { ...view, source: "api" };
  }

  async remove(subjectText: string, context: RequestContext): Promise<void> {
    const subject = this.subject(subjectText);
    const [previous] = await this.store.roleBindings.getMany([subject]);
    if (!previous) throw new NotFoundError(`no binding for ${subject}`);
    const tx = this.store.transaction();
    this.store.roleBindings.delete(tx, subject, previous.role, this.changed);
    if (previous.role === "admin") {
      this.store.roleBindings.countAdmins(tx, -1, this.configuredAdmins === 0, this.lastAdmin);
    }
    tx.audit({
      action: "binding.delete",
      actor: auditActor(context),
      target: { type: "role_binding", id: subject },
      outcome: "success",
      request_id: context.requestId,
      details: { previous_role: previous.role },
    });
    await this.store.commit(tx);
  }
}
