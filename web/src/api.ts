import { config } from "./config";
import { RedirectingError, taskApiToken } from "./auth";

export interface Me {
  oid: string;
  tid: string;
  name: string;
  preferred_username: string;
  roles: string[];
  scopes: string[];
}

export interface Failure {
  reason: string;
  detail: string;
  status?: number;
  scopes?: string[];
  claims?: string;
  challenge?: string;
}

export interface Task {
  id: string;
  tenant_id: string;
  title: string;
  description: string;
  completed: boolean;
  created_by_name: string;
  created_at: string;
  notification_status?: "sent" | "failed";
  notification_failure?: Failure;
  audit_status?: "logged" | "queued";
  audit_failure?: Failure;
}

/** An audit event the Task API still owes the Audit Service (its outbox). */
export interface OutboxEvent {
  event_id: string;
  tenant_id: string;
  action: string;
  resource_id: string;
  actor: string;
  created_at: string;
  state: "pending" | "dead";
  attempts: number;
  next_attempt: string;
  last_error?: string;
}

/** The answer to a replay of one dead letter: where the event is now. */
export interface ReplayResult {
  event_id: string;
  replayed: boolean;
  state: "delivered" | "pending" | "dead";
  delivery_failure?: Failure;
  audit_status?: "logged" | "queued";
}

/** An API error with the problem detail's text and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** Transient answers a request that is safe to repeat is retried on: the
 * host answers 502 while the handler restarts, 503 while storage is down,
 * 409 while the same create is still in flight. */
const TRANSIENT = new Set([409, 502, 503, 504]);
/** Attempts of a request safe to repeat (an Idempotency-Key makes a create one). */
const MAX_ATTEMPTS = 3;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ data: T; etag: string | null }> {
  // Every attempt sends the same headers: a create's retries repeat its
  // Idempotency-Key, so the Task API creates the task once.
  const repeatable = method === "GET" || "Idempotency-Key" in headers;
  let retried = false;
  for (let attempt = 1; ; attempt++) {
    const token = await taskApiToken(retried);
    let res: Response;
    try {
      res = await fetch(config.taskApi + path, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
          ...headers,
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      // No answer (network, the host restarting): it may or may not have run.
      if (repeatable && attempt < MAX_ATTEMPTS) {
        await sleep(1000 * attempt);
        continue;
      }
      throw e;
    }
    if (res.status === 401 && !retried) {
      // Expired or revoked: refresh once (a new token from the refresh
      // token, or a redirect to Entra when that needs the user).
      retried = true;
      continue;
    }
    if (repeatable && TRANSIENT.has(res.status) && attempt < MAX_ATTEMPTS) {
      const after = Number(res.headers.get("Retry-After"));
      await sleep(after > 0 && after <= 10 ? after * 1000 : 1000 * attempt);
      continue;
    }
    if (!res.ok) {
      let detail = res.statusText;
      try {
        const p = await res.json();
        detail = p.detail || p.title || detail;
      } catch {
        /* not problem+json */
      }
      throw new ApiError(res.status, detail);
    }
    const data = res.status === 204 ? (undefined as T) : ((await res.json()) as T);
    return { data, etag: res.headers.get("ETag") };
  }
}

export const api = {
  me: () => call<Me>("GET", "/api/me").then((r) => r.data),
  list: () => call<{ items: Task[]; next?: string }>("GET", "/api/tasks").then((r) => r.data.items),
  get: (id: string) => call<Task>("GET", `/api/tasks/${encodeURIComponent(id)}`),
  /** key is the create's Idempotency-Key: fresh per task, the same when the same create is sent again. */
  create: (title: string, description: string, key: string) =>
    call<Task>("POST", "/api/tasks", { title, description }, { "Idempotency-Key": key }),
  complete: (id: string, etag: string) =>
    call<Task>("PATCH", `/api/tasks/${encodeURIComponent(id)}`, { completed: true }, { "If-Match": etag }),
  remove: (id: string, etag: string) =>
    call<void>("DELETE", `/api/tasks/${encodeURIComponent(id)}`, undefined, { "If-Match": etag }),
  /** One page (up to 100) of the tenant's outbox events in a state; next says more follow. */
  outbox: (state: "pending" | "dead") =>
    call<{ items: OutboxEvent[]; next?: string }>("GET", `/api/outbox?state=${state}&limit=100`).then((r) => r.data),
  replay: (eventId: string) =>
    call<ReplayResult>("POST", `/api/outbox/${encodeURIComponent(eventId)}/replay`).then((r) => r.data),
};

export { RedirectingError };
