import { defineConfig } from "vite";

// The SPA runs at http://localhost:3000: the redirect URI registered for it
// and the origin every app's CORS allows.
export default defineConfig({
  server: { host: "localhost", port: 3000, strictPort: true },
  preview: { host: "localhost", port: 3000, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true },
});
