/// <reference types="vite/client" />
interface ImportMetaEnv {
  readonly VITE_CLIENT_ID?: string;
  readonly VITE_AUTHORITY?: string;
  readonly VITE_KNOWN_AUTHORITY?: string;
  readonly VITE_TASK_API?: string;
  readonly VITE_TASK_SCOPE?: string;
  readonly VITE_REDIRECT_URI?: string;
}
interface ImportMeta {
  readonly env: ImportMetaEnv;
}
