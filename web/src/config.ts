// Configuration from Vite's env (VITE_*, read at build time), with defaults
// for the local Entra ID emulator and devstack (`make run`).
const env = import.meta.env;

function pick(v: string | undefined, fallback: string): string {
  return v && v.trim() !== "" ? v.trim() : fallback;
}

export const config = {
  /** The SPA's app registration (the emulator's "handoff SPA"). */
  clientId: pick(env.VITE_CLIENT_ID, "a0000000-0000-4000-8000-000000000004"),
  /** Multi-tenant: any organization's users sign in. */
  authority: pick(env.VITE_AUTHORITY, "https://127.0.0.1:7070/organizations"),
  /**
   * Hosts MSAL trusts without instance discovery (comma-separated); set but
   * empty: none (Entra ID's own hosts need none).
   */
  knownAuthorities: (env.VITE_KNOWN_AUTHORITY ?? "127.0.0.1:7070")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
  /** The Task API's base URL (its routes are under /api). */
  taskApi: pick(env.VITE_TASK_API, "http://127.0.0.1:7071").replace(/\/+$/, ""),
  /** The delegated scope the Task API expects (token A). */
  taskScope: pick(env.VITE_TASK_SCOPE, "api://a0000000-0000-4000-8000-000000000001/access_as_user"),
  /** Where Entra sends the browser back: this SPA's origin. */
  redirectUri: pick(env.VITE_REDIRECT_URI, "http://localhost:3000"),
};
