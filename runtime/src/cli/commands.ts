import { resolve } from "node:path";
import type { Env } from "../config/env";
import { systemContext } from "../domain/principal";
import type { Role } from "../identity/permissions";
import { openLocalRuntime, readRunningState, startLocalControlPlane } from "../local/control-plane";
import { createLogger } from "../logger";

const LOCAL_ADMIN = "local-admin";

/** `hybrid-cicd start`: runs until SIGINT/SIGTERM, then shuts down the server and the database. */
export async function start(env: Env): Promise<void> {
  const logger = createLogger({ level: env.LOG_LEVEL });
  const controlPlane = await startLocalControlPlane(env, logger);
  const link = await controlPlane.runtime.sessions.createSigninLink(
    {
      userId: LOCAL_ADMIN,
      role: "admin",
    },
    systemContext("start"),
  );
  process.stderr.write(
    [
      "",
      `  Hybrid CI/CD control plane ${env.HYBRID_CICD_ENVIRONMENT} is running`,
      `  API:      ${controlPlane.url}/`,
      `  Console:  ${controlPlane.url}/console`,
      `  Sign in (one use, 10 minutes): ${controlPlane.url}/auth/signin-link?token=${link.token}`,
      `  Data:     ${resolve(env.HYBRID_CICD_DATA_DIR)}`,
      "  Stop with Ctrl-C.",
      "",
    ].join("\n"),
  );
  await new Promise<void>((resolveStop) => {
    const shutdown = (signal: NodeJS.Signals) => {
      logger.info({ signal }, "shutting down");
      controlPlane.stop().then(resolveStop, (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        resolveStop();
      });
    };
    process.once("SIGINT", shutdown);
    process.once("SIGTERM", shutdown);
  });
}

async function withRuntime<T>(
  env: Env,
  action: (runtime: Awaited<ReturnType<typeof openLocalRuntime>>["runtime"]) => Promise<T>,
) {
  const logger = createLogger({ level: "warn", name: "hybrid-cicd-cli" });
  const local = await openLocalRuntime(env, logger, { reuseRunning: true });
  try {
    return await action(local.runtime);
  } finally {
    await local.close();
  }
}

/** `hybrid-cicd token create`: works whether or not the control plane is running on the data dir. */
export async function createToken(
  env: Env,
  options: { role: Role; name: string; ttl: number },
): Promise<void> {
  const created = await withRuntime(env, (runtime) =>
    runtime.credentials.createApiToken(
      {
        role: options.role,
        name: options.name,
        ttlSeconds: options.ttl,
      },
      systemContext("cli"),
    ),
  );
  process.stderr.write(
    `API token "${options.name}" (${options.role}), expires ${created.expires_at}. Shown once:\n`,
  );
  process.stdout.write(`${created.token}\n`);
}

/** `hybrid-cicd signin-link`: one-time URL for the browser on this machine. */
export async function createSigninLink(env: Env): Promise<void> {
  const running = await readRunningState(resolve(env.HYBRID_CICD_DATA_DIR));
  const base = running?.url ?? env.HYBRID_CICD_PUBLIC_URL ?? `http://${env.HOST}:${env.PORT}`;
  const link = await withRuntime(env, (runtime) =>
    runtime.sessions.createSigninLink({ userId: LOCAL_ADMIN, role: "admin" }, systemContext("cli")),
  );
  process.stderr.write(`One-time sign-in link (expires ${link.expires_at}):\n`);
  process.stdout.write(`${base}/auth/signin-link?token=${link.token}\n`);
}
