import { vitePlugin as remix } from "@remix-run/dev";
import { defineConfig } from "vite";

declare module "@remix-run/node" {
  interface Future {
    v3_singleFetch: true;
  }
}

/**
 * The console is served under /console by the local control plane and by the console Lambda (the HTTP
 * API routes `/console/*` to it), so both the router and the asset URLs live under that base.
 */
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
