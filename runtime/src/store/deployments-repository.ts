import { type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";

/** The deployment records `pulumi up` writes (decision 105); the runtime only reads them. */
export class DeploymentsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The newest record of an environment; undefined when none was written (e.g. locally). */
  async latest(environment: string): Promise<Record<string, unknown> | undefined> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "#environment = :environment",
        ExpressionAttributeNames: { "#environment": "environment" },
        ExpressionAttributeValues: { ":environment": environment },
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    return result.Items?.[0];
  }
}
