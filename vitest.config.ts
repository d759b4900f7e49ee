import { defineConfig } from "vitest/config";

/**
 * One vitest run, four projects: unit (pure code), integration (real DynamoDB Local over the wire,
 * one JVM per run), platform (Pulumi unit-testing mocks per stack file) and e2e (headless Chromium).
 */
const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", LOG_LEVEL: "silent" };

export default defineConfig({
  test: {
    env,
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], env } },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/support/dynamodb-global-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          env,
        },
      },
      {
        test: {
          name: "platform",
          include: ["test/platform/**/*.test.ts"],
          globalSetup: [
            "test/support/dynamodb-global-setup.ts",
            "test/platform/support/build-global-setup.ts",
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          env,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/support/dynamodb-global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          env,
        },
      },
    ],
  },
});
