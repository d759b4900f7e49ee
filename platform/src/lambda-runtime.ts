/**
 * The Lambda Node.js runtime every function runs on, and the esbuild target that follows it. Node.js 20
 * reached end of life in April 2026 and Lambda deprecated `nodejs20.x`; `nodejs22.x` is supported
 * until April 2027 (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
 * The `lambda-supported-runtime` rule refuses any other Node.js runtime (docs/decisions/107-…).
 */
export const lambdaRuntime = "nodejs22.x";
export const lambdaNodeTarget = "node22";
