import { defineConfig } from "vite";

// The build must be reproducible byte for byte (scripts/check compares a fresh build with
// the committed dist/): no source maps, content-hashed names, nothing time-dependent.
export default defineConfig({
  base: "/ui/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: process.env.TIERKV_UI_OUT_DIR ?? "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` against a gateway on :8080 (`cargo run -- dev`).
    proxy: {
      "/admin": "http://127.0.0.1:8080",
      "/v1": "http://127.0.0.1:8080",
    },
  },
});
