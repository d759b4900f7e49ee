import { vitePlugin as remix } from "@remix-run/dev";
import { defineConfig } from "vite";

/** The baseline for `npm run bench -- console`: a bare Remix page built with the console's configuration. */
export default defineConfig({
  base: "/console/",
  build: { target: "es2022" },
  plugins: [
    remix({
      basename: "/console",
      appDirectory: "app",
      buildDirectory: "build",
      serverModuleFormat: "esm",
      future: {
        v3_fetcherPersist: true,
        v3_relativeSplatPath: true,
        v3_throwAbortReason: true,
        v3_singleFetch: true,
        v3_lazyRouteDiscovery: true,
      },
    }),
  ],
});
