import { randomUUID } from "node:crypto";
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import express from "express";

/**
 * The heartbeat bench's baselines: bare express routes with no signature check, validation, audit or
 * error handling, each doing only the DynamoDB work its name says.
 *
 * - `/bare/:agent_id/put`: one PutItem of the heartbeat's figures (the baseline: one round trip
 *   to this database is the limit for a heartbeat);
 * - `/bare/:agent_id/same-calls`: the calls the landed heartbeat makes, in its order: a consistent read
 *   of the agent, a conditional put of the nonce, a conditional update of the agent.
 */
export function bareHeartbeatApp(
  doc: DynamoDBDocumentClient,
  tables: { agents: string; nonces: string },
): express.Express {
  const app = express();
  app.post("/bare/:agent_id/put", express.json(), async (req, res) => {
    await doc.send(
      new PutCommand({
        TableName: tables.agents,
        Item: {
          agent_id: `bare-${req.params.agent_id}`,
          last_heartbeat_at: new Date().toISOString(),
          last_figures: req.body,
        },
      }),
    );
    res.json({ status: "healthy", next_check_interval: 30 });
  });
  app.post("/bare/:agent_id/same-calls", express.json(), async (req, res) => {
    const agentId = req.params.agent_id;
    await doc.send(
      new GetCommand({ TableName: tables.agents, Key: { agent_id: agentId }, ConsistentRead: true }),
    );
    await doc.send(
      new PutCommand({
        TableName: tables.nonces,
        Item: { nonce_key: `${agentId}#${randomUUID()}`, expires_at: Math.floor(Date.now() / 1000) + 600 },
        ConditionExpression: "attribute_not_exists(nonce_key)",
      }),
    );
    await doc.send(
      new UpdateCommand({
        TableName: tables.agents,
        Key: { agent_id: agentId },
        UpdateExpression: "SET last_heartbeat_at = :now, last_figures = :figures",
        ConditionExpression: "attribute_exists(agent_id) AND attribute_not_exists(revoked_at)",
        ExpressionAttributeValues: { ":now": new Date().toISOString(), ":figures": req.body },
        ReturnValues: "ALL_NEW",
      }),
    );
    res.json({ status: "healthy", next_check_interval: 30 });
  });
  return app;
}
