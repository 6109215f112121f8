# One CloudWatch dashboard per stage: what an operator looks at first. Each panel is described
# in the README ("Dashboards"); the alarms (alarms.tf) watch the same metrics.

locals {
  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Orders by status (per minute)"
        region = local.region
        view   = "timeSeries"
        period = 60
        metrics = [
          ["Giftify", "OrdersAccepted", "stage", local.metric_stage, "function", "api", { stat = "Sum", label = "accepted" }],
          ["Giftify", "OrdersFulfilled", "stage", local.metric_stage, "function", "fulfillment", { stat = "Sum", label = "fulfilled" }],
          ["Giftify", "OrdersPartiallyFulfilled", "stage", local.metric_stage, "function", "fulfillment", { stat = "Sum", label = "partially fulfilled" }],
          ["Giftify", "OrdersRefunded", "stage", local.metric_stage, "function", "fulfillment", { stat = "Sum", label = "refunded (nothing in stock)" }],
          ["Giftify", "OrdersCancelled", "stage", local.metric_stage, "function", "api", { stat = "Sum", label = "cancelled" }],
          ["Giftify", "OrdersRefundedStuck", "stage", local.metric_stage, "function", "reconciler", { stat = "Sum", label = "refunded past the deadline" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Create → final latency (ms)"
        region = local.region
        view   = "timeSeries"
        period = 60
        metrics = [
          ["Giftify", "CreateToFinalLatency", "stage", local.metric_stage, "function", "fulfillment", { stat = "p50", label = "p50" }],
          ["Giftify", "CreateToFinalLatency", "stage", local.metric_stage, "function", "fulfillment", { stat = "p90", label = "p90" }],
          ["Giftify", "CreateToFinalLatency", "stage", local.metric_stage, "function", "fulfillment", { stat = "p99", label = "p99" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title  = "Orders queue: depth and oldest message age"
        region = local.region
        view   = "timeSeries"
        period = 60
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.orders.name, { stat = "Maximum", label = "waiting" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.orders.name, { stat = "Maximum", label = "being handled" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.orders.name, { stat = "Maximum", label = "oldest age (s)", yAxis = "right" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title  = "Dead letters"
        region = local.region
        view   = "timeSeries"
        period = 60
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dead_letter.name, { stat = "Maximum", label = "orders DLQ" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.webhooks_dead_letter.name, { stat = "Maximum", label = "webhooks DLQ" }],
          ["Giftify", "MessagesDeadLettered", "stage", local.metric_stage, "function", "fulfillment", { stat = "Sum", label = "dead-lettered (per minute)" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 12, height = 6
      properties = {
        title  = "Errors"
        region = local.region
        view   = "timeSeries"
        period = 300
        metrics = concat(
          [["AWS/ApiGateway", "5xx", "ApiId", aws_apigatewayv2_api.http.id, "Stage", aws_apigatewayv2_stage.default.name, { stat = "Sum", label = "API 5xx" }]],
          [["Giftify", "MessagesFailed", "stage", local.metric_stage, "function", "fulfillment", { stat = "Sum", label = "order messages failed" }]],
          [for name in sort(keys(local.functions)) : ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.this[name].function_name, { stat = "Sum", label = "${name} errors" }]],
        )
      }
    },
    {
      type = "metric", x = 12, y = 12, width = 12, height = 6
      properties = {
        title  = "Throttles"
        region = local.region
        view   = "timeSeries"
        period = 300
        metrics = concat(
          [for name in sort(keys(local.functions)) : ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.this[name].function_name, { stat = "Sum", label = "${name} Lambda" }]],
          [for short in sort(keys(local.dynamodb_tables)) : ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", aws_dynamodb_table.this[short].name, { stat = "Sum", label = "${short} writes" }]],
        )
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "operations" {
  dashboard_name = "${local.name_prefix}-operations"
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
