/**
 * The one declaration of every secret the control plane keeps. The local store and AWS Secrets Manager
 * hold them under `${HYBRID_CICD_SECRET_PREFIX}${name}`; the platform creates one
 * `aws.secretsmanager.Secret` per entry and grants each function only the ones it uses.
 */
export interface SecretDeclaration {
  readonly name: string;
  readonly description: string;
  /** Rotated by the rotation function on a schedule (days). Absent: rotated by hand (e.g. OAuth secrets). */
  readonly rotationDays?: number;
}

export const secrets = {
  workloadIdentityRootKey: {
    name: "workload-identity-root-key",
    description: "Root key from which every agent's HMAC key is derived (RFC 9421 signatures).",
    rotationDays: 30,
  },
  auditSigningKey: {
    name: "audit-signing-key",
    description: "Ed25519 key that signs audit-chain digests.",
    rotationDays: 90,
  },
  oauthClientSecrets: {
    name: "oauth-client-secrets",
    description: "OAuth client secrets of the configured sign-in providers (JSON object by provider).",
  },
} as const satisfies Record<string, SecretDeclaration>;

export type SecretKey = keyof typeof secrets;

export function secretId(prefix: string, key: SecretKey): string {
  return `${prefix}${secrets[key].name}`;
}
