import type { AgentIdentity } from "../../runtime/src/agent/signed-fetch";
import type { AuditDraft, WriteTransaction } from "../../runtime/src/store/transaction";
import type { JsonResponse, TestControlPlane } from "./control-plane";

/** Queues a job as `token`'s user and returns its id (fails the test on anything but 201). */
export async function queueJob(
  cp: TestControlPlane,
  token: string,
  body: Record<string, unknown>,
): Promise<string> {
  const response = await cp.request("POST", "/jobs", { token, body: { git_ref: "main", ...body } });
  if (response.status !== 201)
    throw new Error(`queueing failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.job_id;
}

export function claim(cp: TestControlPlane, agent: AgentIdentity): Promise<JsonResponse> {
  return cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/jobs/claim`, {});
}

export function appendLog(
  cp: TestControlPlane,
  agent: AgentIdentity,
  jobId: string,
  body: { attempt: number; offset: number; data: string },
): Promise<JsonResponse> {
  return cp.agentRequest(agent, "POST", `/jobs/${jobId}/logs`, body);
}

export function complete(
  cp: TestControlPlane,
  agent: AgentIdentity,
  jobId: string,
  body: { attempt: number; status: string; exit_code?: number | null; error_message?: string },
): Promise<JsonResponse> {
  return cp.agentRequest(agent, "POST", `/jobs/${jobId}/complete`, body);
}

export const figures = {
  cpu_percent: 10,
  memory_percent: 20,
  disk_percent: 30,
  jobs_queued: 0,
  jobs_completed: 0,
  uptime_seconds: 5,
};

export function heartbeat(
  cp: TestControlPlane,
  agent: AgentIdentity,
  jobs: { job_id: string; attempt: number }[] = [],
): Promise<JsonResponse> {
  return cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/heartbeat`, { ...figures, jobs });
}

/** Records the audit drafts of every transaction the store commits (what the audit trail will seal). */
export function recordAuditDrafts(cp: TestControlPlane): { drafts: AuditDraft[]; stop(): void } {
  const drafts: AuditDraft[] = [];
  const store = cp.runtime.store;
  const original = store.commit.bind(store);
  store.commit = async (tx: WriteTransaction) => {
    await original(tx);
    drafts.push(...tx.auditDrafts);
  };
  return {
    drafts,
    stop: () => {
      store.commit = original;
    },
  };
}

/** Polls `probe` until it returns a value (not undefined) or the time is up. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
