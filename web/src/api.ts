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

/** An API error with the problem detail's text and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ data: T; etag: string | null }> {
  let retried = false;
  for (;;) {
    const token = await taskApiToken(retried);
    const res = await fetch(config.taskApi + path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401 && !retried) {
      // Expired or revoked: refresh once (a new token from the refresh
      // token, or a redirect to Entra when that needs the user).
      retried = true;
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
  create: (title: string, description: string) => call<Task>("POST", "/api/tasks", { title, description }),
  complete: (id: string, etag: string) =>
    call<Task>("PATCH", `/api/tasks/${encodeURIComponent(id)}`, { completed: true }, { "If-Match": etag }),
  remove: (id: string, etag: string) =>
    call<void>("DELETE", `/api/tasks/${encodeURIComponent(id)}`, undefined, { "If-Match": etag }),
};

export { RedirectingError };
