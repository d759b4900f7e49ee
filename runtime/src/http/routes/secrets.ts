import { z } from "zod";
import { ServiceUnavailableError } from "../../domain/errors";
import { secretKeyByName } from "../../domain/secrets/key-rotation";
import { SecretStoreBusyError } from "../../secrets/local-secret-store";
import { defineRoutes, userWith } from "../route";
import { parseInput } from "../validate";

const nameParams = z.strictObject({ name: z.string().min(1).max(128) });

/** Generated keys take no body; OAuth client secrets take the new values (merged over the current ones). */
const rotateBody = z
  .strictObject({
    client_secrets: z
      .record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/), z.string().min(1).max(4096))
      .optional(),
  })
  .default({});

const historyQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20) });

/** A busy secret store (throttled, or its lock held) changed nothing: 503, retry. */
async function storeAnswer<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof SecretStoreBusyError) throw new ServiceUnavailableError(error.message, 2);
    throw error;
  }
}

/** Secret rotation (README "Secret rotation"): overview, one-click rotate, abort, history. */
export const secretRoutes = defineRoutes([
  {
    method: "GET",
    path: "/secrets",
    access: userWith("secrets:read"),
    handle: async (_req, res, runtime) => {
      res.json({ secrets: await runtime.rotation.list() });
    },
  },
  {
    method: "POST",
    path: "/secrets/:name/rotate",
    access: userWith("secrets:rotate"),
    handle: async (req, res, runtime) => {
      const { name } = parseInput(nameParams, req.params, "path");
      const key = secretKeyByName(name);
      const body = parseInput(rotateBody, req.body ?? {}, "body");
      const started = await storeAnswer(
        runtime.rotation.start(key, { trigger: "api", clientSecrets: body.client_secrets }, req.context),
      );
      // Generated keys without dependants, and OAuth secrets set by the admin, finish at once; the root
      // key waits for agents (the maintenance timer or the rotation function carries it on).
      const rotation = (await storeAnswer(runtime.rotation.advance(key, req.context))) ?? started;
      res.status(rotation.status === "finished" ? 200 : 202).json(rotation);
    },
  },
  {
    method: "POST",
    path: "/secrets/:name/rotation/abort",
    access: userWith("secrets:rotate"),
    handle: async (req, res, runtime) => {
      const { name } = parseInput(nameParams, req.params, "path");
      res.json(await storeAnswer(runtime.rotation.abort(secretKeyByName(name), req.context)));
    },
  },
  {
    method: "GET",
    path: "/secrets/:name/rotations",
    access: userWith("secrets:read"),
    handle: async (req, res, runtime) => {
      const { name } = parseInput(nameParams, req.params, "path");
      const { limit } = parseInput(historyQuery, req.query, "query");
      res.json({ rotations: await runtime.rotation.history(secretKeyByName(name), limit) });
    },
  },
]);
