import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Built into web/dist, which the leannodes binary embeds and serves at `/`. Hashed assets under
// /assets/ are cached for a year; index.html is never cached (the API layer sets the headers).
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, assetsDir: "assets", sourcemap: false },
  test: { environment: "jsdom", include: ["src/**/*.test.{ts,tsx}"] },
});
