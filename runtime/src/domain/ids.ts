import { ulid } from "ulid";

/**
 * Resource ids: a type prefix and a lower-case ULID (time-ordered, 128 bits). Minted and recognised
 * only here, so the API's path validation, the agent's identity file and the use cases agree.
 */
const ids = { agent: "agt_", job: "job_" } as const;

export type IdKind = keyof typeof ids;

export function newId(kind: IdKind): string {
  return `${ids[kind]}${ulid().toLowerCase()}`;
}

export const idPatterns: Record<IdKind, RegExp> = {
  agent: /^agt_[0-9a-z]{26}$/,
  job: /^job_[0-9a-z]{26}$/,
};

/**
 * Tags that route jobs to agents (`linux`, `arch=arm64`; `env:` is reserved, decision 010): a job runs on an agent holding
 * all of its tags, so both sides accept exactly the same spelling.
 */
export const tagPattern = /^[a-z0-9][a-z0-9._:/=-]*$/;
export const maxTagLength = 64;
export const maxTags = 32;
