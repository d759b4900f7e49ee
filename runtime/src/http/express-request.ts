import type { AgentKeyRole } from "../domain/agents/workload-keys";
import type { Principal, RequestContext } from "../domain/principal";
import type { AgentRecord } from "../store/agents-repository";

declare global {
  namespace Express {
    interface Request {
      /** Set by the request-context middleware on every request. */
      context: RequestContext;
      /** The body's exact bytes (signatures and Content-Digest cover them); empty when there is none. */
      rawBody: Buffer;
      principal?: Principal;
      /** The signing agent's record as read to verify its signature (a snapshot from this request). */
      signedAgent?: AgentRecord;
      /** Which root key version the agent's accepted signature was derived from (secret rotation). */
      signedKeyRole?: AgentKeyRole;
    }
  }
}
