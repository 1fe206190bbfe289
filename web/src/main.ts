import "./style.css";
import type { AccountInfo } from "@azure/msal-browser";
import { api, ApiError, Failure, Me, RedirectingError, Task } from "./api";
import { grantConsent, initAuth, relaySilentResponse, signIn, signOut } from "./auth";
import { config } from "./config";
import { outboxPanel, seesOutbox } from "./outbox";

const app = document.getElementById("app")!;
const whoBar = document.getElementById("who-bar")!;

/** h builds an element: h("p", {class: "x", "data-testid": "y"}, "text", child). */
function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: (Node | string | null | undefined)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

// ---- landing -------------------------------------------------------------

function renderLanding(error?: string): void {
  whoBar.replaceChildren();
  const signInButton = h("button", { "data-testid": "sign-in", class: "primary" }, "Sign in");
  signInButton.addEventListener("click", () => void signIn());
  app.replaceChildren(
    h("section", { "data-testid": "landing" },
      h("h1", {}, "Tasks, handed off safely"),
      h("p", {}, "This single-page app signs you in with Microsoft Entra ID (MSAL.js, authorization code with PKCE) and calls the ",
        h("strong", {}, "Task API"), " with your token. The Task API then calls two more services, the two ways Entra ID offers:"),
      h("dl", {},
        h("dt", {}, "On-Behalf-Of (OBO)"),
        h("dd", {}, "The Task API exchanges your token for one to the Notification Service that still says it is you: the notification goes to you, and the service can check your permissions (delegated, Notify.Send)."),
        h("dt", {}, "Client credentials"),
        h("dd", {}, "The Task API calls the Audit Service as itself, with no user in the token: an app-only permission (AuditLog.Write) that no user can borrow."),
      ),
      h("pre", { class: "arch" },
`  SPA ──token A──▶ Task API ──OBO: token B──▶ Notification Service
 (MSAL)              │                         delegated, same user
                     └──client credentials: token C──▶ Audit Service
                                               app-only
          Entra ID: every service validates its own audience`),
      error ? h("p", { class: "error", role: "alert", "data-testid": "error" }, error) : null,
      signInButton,
      h("p", { class: "muted" }, `Authority ${config.authority} · Task API ${config.taskApi}`),
    ),
  );
}

// ---- dashboard -------------------------------------------------------------

/** Tasks created in this browser session, with how their side effects went. */
const SESSION_KEY = "handoff.created";
function createdTasks(): Record<string, Task> {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "{}");
  } catch {
    return {};
  }
}
function rememberCreated(t: Task): void {
  const all = createdTasks();
  all[t.id] = t;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(all));
}

/** ETags we know (from create, update or a read); others are read first. */
const etags = new Map<string, string>();

let me: Me;
const can = {
  create: () => me.roles.includes("Admin") || me.roles.includes("Editor"),
  complete: () => me.roles.includes("Admin") || me.roles.includes("Editor"),
  remove: () => me.roles.includes("Admin"),
};

const forbidden: Record<string, string> = {
  list: "You need a role on the Task API (Admin, Editor or Reader) to see tasks.",
  create: "You need the Admin or Editor role to create tasks.",
  complete: "You need the Admin or Editor role to complete tasks.",
  remove: "You need the Admin role to delete tasks.",
  outbox: "You need the Admin role or an operator role (Outbox.Replay) to see the outbox.",
  replay: "You need an operator role (Outbox.Replay) to replay dead letters.",
};

function message(op: string, e: unknown): string | null {
  if (e instanceof RedirectingError) return null;
  if (e instanceof ApiError) {
    if (e.status === 403) return forbidden[op] ?? "You are not allowed to do that.";
    if (e.status === 412) return "This task was changed elsewhere (another tab or person) since this page loaded it.";
    if (e.status === 404) return "That task no longer exists.";
    if (e.status === 401) return "Your sign-in was not accepted; sign in again.";
    return `${e.detail} (HTTP ${e.status})`;
  }
  if (e instanceof TypeError) return "The Task API cannot be reached: is it running (make run)?";
  return e instanceof Error ? e.message : String(e);
}

function showError(op: string, e: unknown): void {
  const text = message(op, e);
  if (text === null) return;
  console.error(op, e);
  showText(text);
}

function showText(text: string): void {
  const box = document.querySelector<HTMLElement>("[data-testid=error]");
  if (box) {
    box.textContent = text;
    box.hidden = false;
  }
}

function clearError(): void {
  const box = document.querySelector<HTMLElement>("[data-testid=error]");
  if (box) {
    box.textContent = "";
    box.hidden = true;
  }
}

function badges(t: Task): HTMLElement | null {
  if (!t.notification_status && !t.audit_status) return null;
  const wrap = h("div", { class: "badges" });
  if (t.notification_status) {
    wrap.append(h("span", { class: `badge ${t.notification_status}`, "data-testid": "badge-notify", title: t.notification_failure?.detail },
      `Notify: ${t.notification_status}`));
  }
  if (t.audit_status) {
    wrap.append(h("span", { class: `badge ${t.audit_status}`, "data-testid": "badge-audit", title: t.audit_failure?.detail },
      `Audit: ${t.audit_status}`));
  }
  for (const f of [t.notification_failure, t.audit_failure]) {
    if (f) wrap.append(failureNote(f));
  }
  return wrap;
}

function failureNote(f: Failure): HTMLElement {
  const note = h("span", { class: "failure", "data-testid": "failure-reason" }, `${f.reason}: ${f.detail}`);
  if (f.reason === "consent_required" || f.reason === "interaction_required") {
    const b = h("button", { "data-testid": "grant-consent" }, f.reason === "consent_required" ? "Grant consent" : "Sign in again");
    b.addEventListener("click", () => void grantConsent(f.claims));
    note.append(" ", b);
  }
  return note;
}

function taskRow(t: Task): HTMLElement {
  const session = createdTasks()[t.id];
  const li = h("li", { class: t.completed ? "task done" : "task", "data-testid": "task", "data-task-id": t.id },
    h("div", {},
      h("span", { class: "title", "data-testid": "task-title" }, t.title),
      t.completed ? h("span", { class: "badge done", "data-testid": "task-completed" }, "Done") : null,
      h("small", {}, ` by ${t.created_by_name || "someone"}`),
    ),
    t.description ? h("p", { class: "desc" }, t.description) : null,
    session ? badges(session) : null,
  );
  const actions = h("div", { class: "actions" });
  if (can.complete() && !t.completed) {
    const b = h("button", { "data-testid": "complete" }, "Complete");
    b.addEventListener("click", () => void complete(t.id));
    actions.append(b);
  }
  if (can.remove()) {
    const b = h("button", { "data-testid": "delete", class: "danger" }, "Delete");
    b.addEventListener("click", () => void remove(t.id));
    actions.append(b);
  }
  if (actions.childElementCount) li.append(actions);
  return li;
}

async function refreshTasks(): Promise<void> {
  const list = document.querySelector<HTMLElement>("[data-testid=tasks]")!;
  try {
    const tasks = await api.list();
    list.replaceChildren(...tasks.map(taskRow));
    if (tasks.length === 0) list.append(h("li", { class: "muted", "data-testid": "no-tasks" }, "No tasks in your tenant yet."));
  } catch (e) {
    list.replaceChildren();
    showError("list", e);
  }
}

async function etagOf(id: string): Promise<string> {
  const known = etags.get(id);
  if (known) return known;
  const { etag } = await api.get(id);
  if (!etag) throw new Error("The Task API sent no ETag");
  return etag;
}

/** The create not yet answered: submitting the same title and description
 * again (after an error) reuses its Idempotency-Key, so the Task API creates
 * the task at most once; anything else is a new create with a new key. */
let pendingCreate: { title: string; description: string; key: string } | null = null;

async function create(title: string, description: string): Promise<boolean> {
  clearError();
  if (!pendingCreate || pendingCreate.title !== title || pendingCreate.description !== description) {
    pendingCreate = { title, description, key: crypto.randomUUID() };
  }
  try {
    const { data, etag } = await api.create(title, description, pendingCreate.key);
    pendingCreate = null;
    if (etag) etags.set(data.id, etag);
    rememberCreated(data);
    await refreshTasks();
    return true;
  } catch (e) {
    showError("create", e);
    return false;
  }
}

async function complete(id: string): Promise<void> {
  clearError();
  try {
    const { etag } = await api.complete(id, await etagOf(id));
    if (etag) etags.set(id, etag);
  } catch (e) {
    etags.delete(id);
    if (isConflict(e)) await reloadAfterConflict(id, "complete");
    else showError("complete", e);
  }
  await refreshTasks();
}

function isConflict(e: unknown): boolean {
  return e instanceof ApiError && e.status === 412;
}

/**
 * A 412: the task changed since this page read it (another tab completed
 * it, say), so the If-Match was stale. Reload that task, keep its new ETag
 * (a second try then applies to what the user now sees) and say what
 * happened and where the task stands.
 */
async function reloadAfterConflict(id: string, op: "complete" | "remove"): Promise<void> {
  const why = message(op, new ApiError(412, "Precondition Failed"));
  try {
    const { data, etag } = await api.get(id);
    if (etag) etags.set(id, etag);
    const now = data.completed
      ? "It is reloaded: it is already completed."
      : `It is reloaded: check it and ${op === "complete" ? "complete" : "delete"} it again if you still want to.`;
    showText(`${why} ${now}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) showText(`${why} It has been deleted.`);
    else showError(op, e);
  }
}

async function remove(id: string): Promise<void> {
  clearError();
  try {
    await api.remove(id, await etagOf(id));
    etags.delete(id);
  } catch (e) {
    etags.delete(id);
    if (isConflict(e)) await reloadAfterConflict(id, "remove");
    else showError("remove", e);
  }
  await refreshTasks();
}

/**
 * The create form's draft, kept in sessionStorage as it is typed: a create
 * that needs the user to sign in again (the refresh token was refused)
 * leaves for Entra mid-submit, and the page that comes back is a new one.
 * Cleared once the task is created.
 */
const DRAFT_KEY = "handoff.draft";
interface Draft {
  title: string;
  description: string;
}
function loadDraft(): Draft | null {
  try {
    const d = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || "null");
    return d && typeof d.title === "string" && typeof d.description === "string" ? d : null;
  } catch {
    return null;
  }
}
function saveDraft(d: Draft): void {
  if (d.title || d.description) sessionStorage.setItem(DRAFT_KEY, JSON.stringify(d));
  else sessionStorage.removeItem(DRAFT_KEY);
}

function createForm(): HTMLElement {
  const title = h("input", { name: "title", required: true, maxlength: "200", placeholder: "What needs doing?", "data-testid": "new-title" }) as HTMLInputElement;
  const desc = h("input", { name: "description", maxlength: "2000", placeholder: "Details (optional)", "data-testid": "new-description" }) as HTMLInputElement;
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "create" }, "Create task") as HTMLButtonElement;
  const form = h("form", { "data-testid": "create-form", class: "create" }, title, desc, submit) as HTMLFormElement;
  const draft = loadDraft();
  if (draft) {
    title.value = draft.title;
    desc.value = draft.description;
    form.append(h("p", { class: "muted", "data-testid": "draft-restored" }, "Your unsaved task was kept: press Create task to finish it."));
  }
  form.addEventListener("input", () => saveDraft({ title: title.value, description: desc.value }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    if (await create(title.value, desc.value)) {
      form.reset();
      sessionStorage.removeItem(DRAFT_KEY);
      form.querySelector("[data-testid=draft-restored]")?.remove();
    }
    submit.disabled = false;
  });
  return form;
}

async function renderDashboard(account: AccountInfo): Promise<void> {
  try {
    me = await api.me();
  } catch (e) {
    const text = message("me", e);
    if (text !== null) renderLanding(`Signed in as ${account.username}, but the Task API refused: ${text}`);
    return;
  }
  const out = h("button", { "data-testid": "sign-out" }, "Sign out");
  out.addEventListener("click", () => {
    sessionStorage.removeItem(DRAFT_KEY); // the next user of this tab sees no one else's draft
    void signOut();
  });
  whoBar.replaceChildren(h("span", {}, `${me.name} `), out);

  const roles = me.roles.length ? me.roles.join(", ") : "none";
  app.replaceChildren(
    h("section", { "data-testid": "dashboard" },
      h("section", { class: "card", "data-testid": "me" },
        h("h2", {}, "Who you are"),
        h("dl", { class: "facts" },
          h("dt", {}, "Name"), h("dd", { "data-testid": "me-name" }, me.name),
          h("dt", {}, "Username"), h("dd", { "data-testid": "me-username" }, me.preferred_username),
          h("dt", {}, "Tenant"), h("dd", { "data-testid": "me-tenant" }, me.tid),
          h("dt", {}, "Roles"), h("dd", { "data-testid": "me-roles" }, roles),
        ),
      ),
      h("p", { class: "error", role: "alert", "data-testid": "error", hidden: true }),
      h("section", { class: "card" },
        h("h2", {}, "Your tenant's tasks"),
        can.create() ? createForm() : h("p", { class: "muted", "data-testid": "read-only" }, "You can read tasks; creating them needs the Admin or Editor role."),
        h("ul", { class: "tasks", "data-testid": "tasks" }),
      ),
      seesOutbox(me) ? outboxPanel(me, showError) : null,
    ),
  );
  await refreshTasks();

  // A test seam (off unless localStorage.handoffDebug is "1"): call the API
  // as the signed-in user past the UI's role checks; the Task API decides.
  if (localStorage.getItem("handoffDebug") === "1") {
    const replay = (eventId: string) => api.replay(eventId).then(() => 200, (e) => (e instanceof ApiError ? e.status : 0));
    (window as unknown as Record<string, unknown>).handoffDebug = { create, replay };
  }
}

async function boot(): Promise<void> {
  if (await relaySilentResponse()) return;
  let account: AccountInfo | null;
  try {
    account = await initAuth();
  } catch (e) {
    renderLanding(`Sign-in failed: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  if (!account) {
    renderLanding();
    return;
  }
  await renderDashboard(account);
}

void boot();
