import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild } from "./inventory";
import type { Transform } from "./transform";

export interface MonitoredFunction {
  readonly name: pulumi.Input<string>;
  readonly timeoutSeconds: number;
  readonly reservedConcurrency: number;
}

export interface ControlPlaneMonitoringArgs extends ControlPlanePartArgs {
  /** Functions by short name (e.g. `api`). */
  functions: Record<string, MonitoredFunction>;
  /** Table physical names by table key. */
  tables: Record<string, pulumi.Input<string>>;
  /** The HTTP API (its id; the stage is `$default`). */
  api?: { id: pulumi.Input<string> };
  /** Dead-letter queue names by function short name. */
  deadLetterQueues?: Record<string, pulumi.Input<string>>;
  /**
   * An existing SNS topic ARN for alarm notifications. Without one, a topic is created (encrypted with
   * `kmsKeyArn` when given); subscribe to `topicArn`.
   */
  topicArn?: pulumi.Input<string>;
  kmsKeyArn?: pulumi.Input<string>;
  /**
   * HTTP API p99 latency (ms) that raises an alarm.
   * @default 3000
   */
  latencyThresholdMs?: number;
  transform?: {
    alarm?: Transform<aws.cloudwatch.MetricAlarmArgs>;
    topic?: Transform<aws.sns.TopicArgs>;
  };
}

/**
 * The CloudWatch alarms of a control plane, all to one SNS topic: per function errors, throttles,
 * duration near its timeout and concurrency near its reservation; per table throttled requests and
 * system errors; for the HTTP API 5xx responses and p99 latency; and any message in a dead-letter queue.
 */
export class ControlPlaneMonitoring extends pulumi.ComponentResource {
  readonly alarms: Record<string, aws.cloudwatch.MetricAlarm> = {};
  readonly topic?: aws.sns.Topic;
  readonly topicArn: pulumi.Output<string>;

  constructor(name: string, args: ControlPlaneMonitoringArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneMonitoring", name, {}, opts);
    const { names, tags } = partContext(name, args);

    if (args.topicArn === undefined) {
      this.topic = createChild(
        aws.sns.Topic,
        `${name}-alarms`,
        { name: names.physical("alarms"), kmsMasterKeyId: args.kmsKeyArn, tags },
        { parent: this },
        args.transform?.topic,
        args.inventory,
      );
    }
    this.topicArn = this.topic ? this.topic.arn : pulumi.output(args.topicArn as pulumi.Input<string>);

    const alarm = (id: string, description: string, alarmArgs: Partial<aws.cloudwatch.MetricAlarmArgs>) => {
      this.alarms[id] = createChild(
        aws.cloudwatch.MetricAlarm,
        `${name}-${id}`,
        {
          name: names.physical(id),
          alarmDescription: description,
          evaluationPeriods: 1,
          datapointsToAlarm: 1,
          treatMissingData: "notBreaching",
          alarmActions: [this.topicArn],
          okActions: [this.topicArn],
          tags,
          ...alarmArgs,
        },
        { parent: this },
        args.transform?.alarm,
        args.inventory,
      );
    };
    const lambdaMetric = (functionName: pulumi.Input<string>, metricName: string, statistic: string) => ({
      namespace: "AWS/Lambda",
      metricName,
      dimensions: { FunctionName: functionName },
      statistic,
      period: 300,
    });

    for (const [short, fn] of Object.entries(args.functions)) {
      alarm(`${short}-errors`, `The ${short} function failed invocations`, {
        ...lambdaMetric(fn.name, "Errors", "Sum"),
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
      });
      alarm(`${short}-throttles`, `The ${short} function was throttled (reserved concurrency reached)`, {
        ...lambdaMetric(fn.name, "Throttles", "Sum"),
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
      });
      alarm(
        `${short}-duration`,
        `The ${short} function ran for over 80% of its ${fn.timeoutSeconds} s timeout`,
        {
          ...lambdaMetric(fn.name, "Duration", "Maximum"),
          comparisonOperator: "GreaterThanThreshold",
          threshold: Math.round(fn.timeoutSeconds * 1000 * 0.8),
        },
      );
      // Near a small reservation every run looks like saturation; the throttles alarm covers those.
      if (fn.reservedConcurrency < minimumReservationForConcurrencyAlarm) continue;
      alarm(
        `${short}-concurrency`,
        `The ${short} function used over 80% of its ${fn.reservedConcurrency} reserved instances`,
        {
          ...lambdaMetric(fn.name, "ConcurrentExecutions", "Maximum"),
          period: 60,
          evaluationPeriods: 5,
          datapointsToAlarm: 3,
          comparisonOperator: "GreaterThanOrEqualToThreshold",
          threshold: Math.max(1, Math.ceil(fn.reservedConcurrency * 0.8)),
        },
      );
    }

    for (const [key, tableName] of Object.entries(args.tables)) {
      alarm(`${key}-table-throttles`, `Requests to the ${key} table were throttled`, {
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
        metricQueries: [
          {
            id: "throttled",
            expression: "reads + writes",
            label: "Throttled requests",
            returnData: true,
          },
          tableMetricQuery("reads", tableName, "ReadThrottleEvents"),
          tableMetricQuery("writes", tableName, "WriteThrottleEvents"),
        ],
      });
      alarm(`${key}-table-system-errors`, `DynamoDB returned server errors for the ${key} table`, {
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
        metricQueries: [
          {
            id: "errors",
            expression: systemErrorOperations.map((_, index) => `e${index}`).join(" + "),
            label: "System errors",
            returnData: true,
          },
          ...systemErrorOperations.map((operation, index) =>
            tableMetricQuery(`e${index}`, tableName, "SystemErrors", { Operation: operation }),
          ),
        ],
      });
    }

    if (args.api) {
      const apiMetric = (metricName: string) => ({
        namespace: "AWS/ApiGateway",
        metricName,
        dimensions: { ApiId: args.api?.id as pulumi.Input<string>, Stage: "$default" },
        period: 300,
      });
      alarm("api-5xx", "The HTTP API answered with server errors", {
        ...apiMetric("5xx"),
        statistic: "Sum",
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 5,
      });
      alarm("api-latency", "The HTTP API's p99 latency is high", {
        ...apiMetric("Latency"),
        extendedStatistic: "p99",
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        comparisonOperator: "GreaterThanThreshold",
        threshold: args.latencyThresholdMs ?? 3000,
      });
    }

    for (const [short, queueName] of Object.entries(args.deadLetterQueues ?? {})) {
      alarm(`${short}-dead-letters`, `Failed ${short} invocations are waiting in the dead-letter queue`, {
        namespace: "AWS/SQS",
        metricName: "ApproximateNumberOfMessagesVisible",
        dimensions: { QueueName: queueName },
        statistic: "Maximum",
        period: 300,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
      });
    }
    this.registerOutputs({ topicArn: this.topicArn });
  }
}

/** Functions reserving fewer instances get no concurrency alarm. */
export const minimumReservationForConcurrencyAlarm = 5;

/**
 * DynamoDB reports SystemErrors per operation, and CloudWatch bills a metric-math alarm per metric in
 * it: these are the operations the runtime's reads and writes go through.
 */
const systemErrorOperations = ["GetItem", "Query", "PutItem", "UpdateItem", "TransactWriteItems"];

function tableMetricQuery(
  id: string,
  tableName: pulumi.Input<string>,
  metricName: string,
  dimensions: Record<string, string> = {},
): aws.types.input.cloudwatch.MetricAlarmMetricQuery {
  return {
    id,
    returnData: false,
    metric: {
      namespace: "AWS/DynamoDB",
      metricName,
      dimensions: { TableName: tableName, ...dimensions },
      stat: "Sum",
      period: 300,
    },
  };
}
