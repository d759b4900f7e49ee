import { type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import express from "express";

/**
 * The heartbeat bench's baseline: a bare express route doing the one DynamoDB write a heartbeat makes,
 * with no signature check, validation, audit or error handling — the limit for this database.
 */
export function bareHeartbeatApp(doc: DynamoDBDocumentClient, agentsTable: string): express.Express {
  const app = express();
  app.post("/bare/:agent_id/heartbeat", express.json(), async (req, res) => {
    await doc.send(
      new UpdateCommand({
        TableName: agentsTable,
        Key: { agent_id: req.params.agent_id },
        UpdateExpression: "SET last_heartbeat_at = :now, last_figures = :figures",
        ConditionExpression: "attribute_exists(agent_id)",
        ExpressionAttributeValues: { ":now": new Date().toISOString(), ":figures": req.body },
      }),
    );
    res.json({ status: "healthy", next_check_interval: 30 });
  });
  return app;
}
