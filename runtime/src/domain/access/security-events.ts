import type { Logger } from "../../logger";
import type { Store } from "../../store/store";
import type { AuditDraft } from "../../store/transaction";

/**
 * Security-relevant events that change no state: failed sign-ins (refused OAuth callbacks, used or
 * unknown sign-in links), refused CSRF tokens. Each is written as a JSON log line (`security_event`) and
 * committed as an audit-only transaction, which the audit trail turns into a chained event like any
 * other. A failure to record never turns a refusal into something else: it is logged and swallowed.
 */
export interface SecurityEvents {
  record(draft: AuditDraft): Promise<void>;
}

export function createSecurityEvents(store: Store, logger: Logger): SecurityEvents {
  return {
    async record(draft) {
      logger.warn(
        {
          security_event: draft.action,
          outcome: draft.outcome,
          request_id: draft.request_id,
          actor: { type: draft.actor.type, id: draft.actor.id, ip: draft.actor.ip },
          target: draft.target,
          details: draft.details,
        },
        "security event",
      );
      try {
        const tx = store.transaction();
        tx.audit(draft);
        await store.commit(tx);
      } catch (error) {
        logger.error({ request_id: draft.request_id, err: error }, "security event not recorded");
      }
    },
  };
}
