import type { Principal, RequestContext } from "../domain/principal";

declare global {
  namespace Express {
    interface Request {
      /** Set by the request-context middleware on every request. */
      context: RequestContext;
      /** The body's exact bytes (signatures and Content-Digest cover them); empty when there is none. */
      rawBody: Buffer;
      principal?: Principal;
    }
  }
}
