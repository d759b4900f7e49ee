import * as z from "zod";
import { AuditProofs } from "../../domain/audit/merkle-proofs";
import { defineRoutes, userWith } from "../route";
import { parseInput } from "../validate";

const seqParam = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

const proofPath = z.object({ seq: seqParam });
const proofQuery = z.strictObject({ digest_seq: seqParam.optional() });
const consistencyQuery = z.strictObject({ from: seqParam, to: seqParam.optional() });

/** Merkle proofs against signed digests (decision 020): one sampled event, or append-only history. */
export const auditProofRoutes = defineRoutes([
  {
    method: "GET",
    path: "/audit/events/:seq/proof",
    access: userWith("audit:read"),
    handle: async (req, res, runtime) => {
      const { seq } = parseInput(proofPath, req.params, "path");
      const { digest_seq } = parseInput(proofQuery, req.query, "query");
      res.setHeader("Cache-Control", "no-store");
      res.json(await new AuditProofs(runtime.store, runtime.audit).event(seq, digest_seq));
    },
  },
  {
    method: "GET",
    path: "/audit/digests/consistency",
    access: userWith("audit:read"),
    handle: async (req, res, runtime) => {
      const { from, to } = parseInput(consistencyQuery, req.query, "query");
      res.setHeader("Cache-Control", "no-store");
      res.json(await new AuditProofs(runtime.store, runtime.audit).consistency(from, to));
    },
  },
]);
