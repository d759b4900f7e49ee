import type { APIGatewayProxyEventV2, Context } from "aws-lambda";

/** An API Gateway HTTP API (payload format 2.0) event, as the $default route delivers it. */
export function httpApiEvent(
  method: string,
  pathAndQuery: string,
  options: { headers?: Record<string, string>; body?: string; base64?: boolean; sourceIp?: string } = {},
): APIGatewayProxyEventV2 {
  const [rawPath = "/", rawQueryString = ""] = pathAndQuery.split("?");
  const queryStringParameters = rawQueryString
    ? Object.fromEntries(new URLSearchParams(rawQueryString).entries())
    : undefined;
  const headers = Object.fromEntries(
    Object.entries(options.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString,
    headers: { host: "api.example.com", "user-agent": "test", ...headers },
    queryStringParameters,
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: {
        method,
        path: rawPath,
        protocol: "HTTP/1.1",
        sourceIp: options.sourceIp ?? "198.51.100.7",
        userAgent: "test",
      },
      requestId: "apigw-request",
      routeKey: "$default",
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body:
      options.body === undefined
        ? undefined
        : options.base64
          ? Buffer.from(options.body).toString("base64")
          : options.body,
    isBase64Encoded: options.base64 ?? false,
  };
}

export const lambdaContext = {
  functionName: "api",
  awsRequestId: "lambda-request",
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;
