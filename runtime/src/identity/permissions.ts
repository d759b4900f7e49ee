/**
 * The one role → permission matrix. The API's middleware, the console's guards and the tests that walk
 * every cell import it; permission names are never spelled anywhere else.
 */
export const roles = ["admin", "operator", "auditor", "viewer"] as const;
export type Role = (typeof roles)[number];

export const permissions = {
  "jobs:read": ["admin", "operator", "auditor", "viewer"],
  "jobs:create": ["admin", "operator"],
  "jobs:cancel": ["admin", "operator"],
  "jobs:approve": ["admin", "operator"],
  "agents:read": ["admin", "operator", "auditor", "viewer"],
  "agents:register-token": ["admin"],
  "agents:revoke": ["admin"],
  /** My own sessions (active devices) and who I am. */
  "sessions:self": ["admin", "operator", "auditor", "viewer"],
  /** Create and revoke API tokens. */
  "tokens:manage": ["admin"],
  /** Who has access: role bindings, API tokens (without secrets), a user's sessions, this matrix. */
  "access:read": ["admin", "auditor"],
  /** Change role bindings; force a user's sign-out everywhere. */
  "access:manage": ["admin"],
  "audit:read": ["admin", "auditor"],
  /** Sign a digest of the chain head on demand (the schedule makes one every interval anyway). */
  "audit:seal": ["admin"],
  "reports:export": ["admin", "auditor"],
  "secrets:rotate": ["admin"],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof permissions;

export const permissionNames = Object.keys(permissions) as Permission[];

/** A signed-in user without a role binding (`null`) holds no permission. */
export function can(role: Role | null, permission: Permission): boolean {
  return role !== null && (permissions[permission] as readonly Role[]).includes(role);
}

/** Every permission a role holds, in declaration order (for `GET /auth/me` and the console). */
export function permissionsOf(role: Role | null): Permission[] {
  return permissionNames.filter((permission) => can(role, permission));
}
