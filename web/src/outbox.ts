// The outbox panel: the audit events the Task API still owes the Audit
// Service (pending, and dead letters), for Admins and operators; a Replay
// button per dead letter for operators only (the Outbox.Replay or
// Outbox.Replay.All role), since only they may replay.
import { api, ApiError, Me, OutboxEvent } from "./api";

export const OPERATOR_ROLES = ["Outbox.Replay", "Outbox.Replay.All"];

/** Who sees the outbox: the roles GET /api/outbox lets in. */
export function seesOutbox(me: Me): boolean {
  return me.roles.includes("Admin") || canReplay(me);
}

export function canReplay(me: Me): boolean {
  return OPERATOR_ROLES.some((r) => me.roles.includes(r));
}

function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string | null)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c != null) e.append(c);
  return e;
}

/** A count of one page: "100+" when more pages follow. */
function count(page: { items: unknown[]; next?: string }): string {
  return page.next ? `${page.items.length}+` : String(page.items.length);
}

/** The panel; it loads itself, and again after each replay. */
export function outboxPanel(me: Me, onError: (op: string, e: unknown) => void): HTMLElement {
  const panel = el("section", { class: "card", "data-testid": "outbox" });
  const load = async (note?: string): Promise<void> => {
    try {
      const [pending, dead] = await Promise.all([api.outbox("pending"), api.outbox("dead")]);
      panel.replaceChildren(...render(me, pending, dead, load, onError));
      if (note) panel.append(el("p", { class: "muted", "data-testid": "replay-result" }, note));
    } catch (e) {
      onError("outbox", e);
    }
  };
  panel.append(el("h2", {}, "Audit outbox"), el("p", { class: "muted" }, "Loading…"));
  void load();
  return panel;
}

function render(me: Me, pending: { items: OutboxEvent[]; next?: string }, dead: { items: OutboxEvent[]; next?: string },
  reload: (note?: string) => Promise<void>, onError: (op: string, e: unknown) => void): HTMLElement[] {
  const out = [
    el("h2", {}, "Audit outbox"),
    el("p", { "data-testid": "outbox-counts" },
      "Pending: ", el("strong", { "data-testid": "outbox-pending" }, count(pending)),
      " · Dead letters: ", el("strong", { "data-testid": "outbox-dead" }, count(dead))),
  ];
  if (!canReplay(me)) {
    out.push(el("p", { class: "muted", "data-testid": "replay-needs-role" },
      "Replaying dead letters needs the Outbox.Replay (or Outbox.Replay.All) role."));
  }
  const list = el("ul", { class: "tasks", "data-testid": "dead-letters" });
  for (const ev of dead.items) {
    const li = el("li", { class: "task", "data-testid": "dead-letter", "data-event-id": ev.event_id, "data-resource-id": ev.resource_id },
      el("div", {}, el("span", { class: "title" }, ev.action), el("small", {}, ` ${ev.resource_id} · ${ev.attempts} attempts`)),
      ev.last_error ? el("p", { class: "desc failure" }, ev.last_error) : null);
    if (canReplay(me)) {
      const b = el("button", { "data-testid": "replay" }, "Replay") as HTMLButtonElement;
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          const r = await api.replay(ev.event_id);
          await reload(`Replayed ${ev.action} ${ev.resource_id}: ${r.replayed ? r.state : `already ${r.state}`}.`);
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) await reload("That event had already been delivered.");
          else onError("replay", e);
          b.disabled = false;
        }
      });
      li.append(el("div", { class: "actions" }, b));
    }
    list.append(li);
  }
  out.push(list);
  return out;
}
