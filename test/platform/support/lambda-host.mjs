// A minimal Lambda host for tests: loads one handler module in this fresh process (as the Lambda
// Node.js runtime does) and invokes it once per JSON line on stdin, answering one JSON line each.
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const [modulePath, handlerName = "handler"] = process.argv.slice(2);
const loaded = await import(pathToFileURL(modulePath).href);
const handler = loaded[handlerName];
if (typeof handler !== "function") throw new Error(`${modulePath} exports no function ${handlerName}`);

const context = {
  functionName: "test-function",
  awsRequestId: "test-request",
  getRemainingTimeInMillis: () => 30_000,
};
const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

reply({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { id, event } = JSON.parse(line);
  try {
    reply({ id, result: (await handler(event, context)) ?? null });
  } catch (error) {
    reply({ id, error: { name: error?.name, message: error?.message } });
  }
}
