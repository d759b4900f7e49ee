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
  "sessions:self": ["admin", "operator", "auditor", "viewer"],
  "tokens:manage": ["admin"],
  "access:manage": ["admin"],
  "audit:read": ["admin", "auditor"],
  "reports:export": ["admin", "auditor"],
  "secrets:rotate": ["admin"],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof permissions;

export function can(role: Role, permission: Permission): boolean {
  return (permissions[permission] as readonly Role[]).includes(role);
}
