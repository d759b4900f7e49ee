/**
 * Root key rotation with simulated agents: the time from "rotate" (`POST /secrets/.../rotate`) to
 * "finished", and to every agent signing with its new key, with N agents heartbeating at the default
 * interval (30 s) over loopback HTTP, and how many of their requests failed (must be 0). Baseline from
 * the same run: the same rotation with no agents (nothing to wait for). The local rotation timer drives
 * it, as `npm start` does. `BENCH_AGENTS` and `BENCH_HEARTBEAT_SECONDS` change the two figures; the
 * output says which were used.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentKeyRing, type KeyRotationNotice } from "../runtime/src/agent/key-ring";
import { signedFetch } from "../runtime/src/agent/signed-fetch";
import { loadEnv } from "../runtime/src/config/env";
import { systemContext } from "../runtime/src/domain/principal";
import { createApp } from "../runtime/src/http/app";
import { decodeAgentSecret } from "../runtime/src/identity/agent-keys";
import { startDynamoDbLocal } from "../runtime/src/local/dynamodb-local";
import { rotationTask, startMaintenanceTimers } from "../runtime/src/local/maintenance-timers";
import { createLogger } from "../runtime/src/logger";
import { createRuntime } from "../runtime/src/runtime";
import { LocalSecretStore } from "../runtime/src/secrets/local-secret-store";
import { createDynamoClients } from "../runtime/src/store/client";
import { ensureTables } from "../runtime/src/store/tables";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 100);
const HEARTBEAT_SECONDS = process.env.BENCH_HEARTBEAT_SECONDS;
const figures = {
  cpu_percent: 10,
  memory_percent: 20,
  disk_percent: 30,
  jobs_queued: 0,
  jobs_completed: 1,
  uptime_seconds: 60,
};

export interface RotationFigures {
  label: string;
  agents: number;
  rotateToFinishedSeconds: number;
  rotateToAllSwitchedSeconds: number | null;
  agentRequests: number;
  failedAgentRequests: number;
}

export async function runRotationBench(): Promise<RotationFigures[]> {
  const database = await startDynamoDbLocal({});
  const dataDir = await mkdtemp(join(tmpdir(), "hcp-bench-rotation-"));
  const prefix = `bench-rotation-${Date.now()}-`;
  const { dynamodb, doc } = createDynamoClients({ endpoint: database.endpoint, region: "us-east-1" });
  await ensureTables(dynamodb, prefix);
  const env = loadEnv({
    HYBRID_CICD_TABLE_PREFIX: prefix,
    HYBRID_CICD_DATA_DIR: dataDir,
    DYNAMODB_ENDPOINT: database.endpoint,
    ...(HEARTBEAT_SECONDS ? { HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: HEARTBEAT_SECONDS } : {}),
  });
  const runtime = createRuntime({
    env,
    doc,
    secretStore: await LocalSecretStore.open(dataDir),
    logger: createLogger({ level: "silent" }),
  });
  await runtime.workloadKeys.ensureRootKey();
  const server = createServer(createApp(runtime, { secureCookies: false }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const timers = startMaintenanceTimers(runtime, [rotationTask]);
  const interval = runtime.lifecycle.heartbeatIntervalSeconds;
  const admin = (
    await runtime.credentials.createApiToken({ role: "admin", name: "bench" }, systemContext("bench"))
  ).token;
  console.log(
    `rotation bench: ${AGENTS} simulated agents heartbeating every ${interval} s${HEARTBEAT_SECONDS ? " (shortened by BENCH_HEARTBEAT_SECONDS)" : " (the default interval)"} ± 10% jitter, over loopback HTTP; the local rotation timer runs every ${rotationTask.everySeconds(runtime)} s`,
  );

  const rotate = async (): Promise<{ rotationId: string; startedAt: number }> => {
    const startedAt = Date.now();
    const response = await fetch(`${url}/secrets/workload-identity-root-key/rotate`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}` },
    });
    const body = (await response.json()) as { rotation_id: string };
    if (response.status >= 300 && response.status !== 202)
      throw new Error(`rotate answered ${response.status}`);
    return { rotationId: body.rotation_id, startedAt };
  };
  const finishedAt = async (rotationId: string): Promise<number> => {
    for (;;) {
      const response = await fetch(`${url}/secrets/workload-identity-root-key/rotations?limit=5`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      const body = (await response.json()) as { rotations: { rotation_id: string; status: string }[] };
      const rotation = body.rotations.find((candidate) => candidate.rotation_id === rotationId);
      if (rotation && rotation.status !== "in_progress") {
        if (rotation.status !== "finished") throw new Error(`rotation ${rotation.status}`);
        return Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  const results: RotationFigures[] = [];
  try {
    // Baseline: no agents, nothing to wait for.
    const baseline = await rotate();
    const baselineDone = await finishedAt(baseline.rotationId);
    results.push({
      label: "baseline: no agents",
      agents: 0,
      rotateToFinishedSeconds: (baselineDone - baseline.startedAt) / 1000,
      rotateToAllSwitchedSeconds: null,
      agentRequests: 0,
      failedAgentRequests: 0,
    });

    // The agents, registered through the API's use case, each with its own key ring.
    const rings: AgentKeyRing[] = [];
    for (let index = 0; index < AGENTS; index++) {
      const token = await runtime.agents.createRegistrationToken(systemContext("bench"));
      const registered = await runtime.agents.register(
        { registration_token: token.token, name: `bench-${index}`, region: "bench", tags: [] },
        systemContext("bench"),
      );
      rings.push(
        new AgentKeyRing(registered.agent_id, decodeAgentSecret(registered.workload_identity_secret)),
      );
    }
    let requests = 0;
    let failures = 0;
    let stopped = false;
    const loops = rings.map(async (ring) => {
      // Spread the first beats over one interval, as agents started at different times would be.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * interval * 1000));
      while (!stopped) {
        requests++;
        try {
          const response = await signedFetch<{ key_rotation?: KeyRotationNotice }>(
            url,
            ring,
            "POST",
            `/agents/${ring.agentId}/heartbeat`,
            figures,
          );
          if (response.status !== 200) failures++;
          else await ring.learn(response.body.key_rotation);
        } catch {
          failures++;
        }
        await new Promise((resolve) => setTimeout(resolve, interval * 1000 * (0.9 + Math.random() * 0.2)));
      }
    });
    // Steady state first: every agent has heartbeated at least once.
    await new Promise((resolve) => setTimeout(resolve, interval * 1000 + 1000));

    const run = await rotate();
    const done = await finishedAt(run.rotationId);
    const current = await runtime.secretStore.getSecretValue(runtime.workloadKeys.secretId);
    const switched = async () => {
      for (;;) {
        const keys = await Promise.all(
          rings.map((ring) => runtime.workloadKeys.currentAgentKey(ring.agentId, 0)),
        );
        if (
          rings.every(
            (ring, index) => ring.pendingVersion === undefined && Buffer.from(ring.key).equals(keys[index]!),
          )
        )
          return Date.now();
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    const allSwitched = await switched();
    stopped = true;
    await Promise.all(loops);
    results.push({
      label: `${AGENTS} agents`,
      agents: AGENTS,
      rotateToFinishedSeconds: (done - run.startedAt) / 1000,
      rotateToAllSwitchedSeconds: (allSwitched - run.startedAt) / 1000,
      agentRequests: requests,
      failedAgentRequests: failures,
    });
    if (current?.versionId !== run.rotationId)
      throw new Error("the rotation did not make its version current");
  } finally {
    await timers.stop();
    server.close();
    dynamodb.destroy();
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }

  console.log("\nRoot key rotation: rotate → finished (baseline: the same rotation with no agents)");
  console.table(
    results.map((row) => ({
      scenario: row.label,
      "rotate→finished s": row.rotateToFinishedSeconds.toFixed(1),
      "rotate→all agents on new key s": row.rotateToAllSwitchedSeconds?.toFixed(1) ?? "-",
      "agent requests": row.agentRequests,
      "failed agent requests": row.failedAgentRequests,
    })),
  );
  return results;
}
