# Alarms on what means money or orders are stuck: dead letters, old messages, failing
# workers, API errors, throttling. They notify alarm_topic_arn, or a topic created here for
# alarm_email_addresses; missing data (an idle queue, no traffic) is never an alarm.

resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null && length(var.alarm_email_addresses) > 0 ? 1 : 0

  name              = "${local.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.messaging.arn
  signature_version = 2
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = var.alarm_topic_arn == null ? toset(var.alarm_email_addresses) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = compact([
    var.alarm_topic_arn,
    try(aws_sns_topic.alarms[0].arn, null),
  ])
}

# Any dead letter is an order whose money is held until an operator redrives it.
resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${local.name_prefix}-dead-letters"
  alarm_description   = "Order messages in the dead-letter queue: inspect with GET /admin/dead-letters (or `giftify dlq list`), then redrive or refund each; the reconciler refunds any left past stuck_order_refund_seconds."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Webhook queue messages that could not be handled (not endpoints failing: those are the
# deliveries' own retries, seen at GET /webhooks/{id}/deliveries).
resource "aws_cloudwatch_metric_alarm" "webhook_dead_letters" {
  alarm_name          = "${local.name_prefix}-webhook-dead-letters"
  alarm_description   = "Webhook queue messages the dispatcher could not handle: read its logs; the deliveries are kept, and POST /webhooks/{id}/recover re-sends from the feed."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.webhooks_dead_letter.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Orders waiting too long: a blocked message group, a failing or throttled worker.
resource "aws_cloudwatch_metric_alarm" "oldest_order_message" {
  alarm_name          = "${local.name_prefix}-oldest-order-message"
  alarm_description   = "An order message has waited more than ${var.alarm_oldest_message_seconds} s for fulfillment."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.orders.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_oldest_message_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# A worker invocation that failed as a whole (crash, timeout, cold-start error such as a
# missing secret permission).
resource "aws_cloudwatch_metric_alarm" "worker_errors" {
  for_each = toset(["dispatcher", "fulfillment", "reconciler"])

  alarm_name          = "${local.function_names[each.key]}-errors"
  alarm_description   = "The ${each.key} Lambda failed whole invocations."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Messages reported failed in the partial batch response (emitted by the function as EMF:
# namespace Giftify, dimensions stage and function — infra/src/metrics.rs), of this stage only.
resource "aws_cloudwatch_metric_alarm" "failed_order_messages" {
  alarm_name          = "${local.name_prefix}-failed-order-messages"
  alarm_description   = "Order messages are failing and being retried; they reach the DLQ after ${var.queue_max_receives} deliveries."
  namespace           = "Giftify"
  metric_name         = "MessagesFailed"
  dimensions          = { stage = local.metric_stage, function = "fulfillment" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alarm_failed_messages
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The share of API requests answered with a 5xx, once there is enough traffic to mean it.
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${local.name_prefix}-api-5xx-rate"
  alarm_description   = "More than ${var.alarm_api_5xx_percent}% of API requests failed with a 5xx in five minutes."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_api_5xx_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= 20, 100 * errors / requests, 0)"
    label       = "5xx percent"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }
}

# A throttled function: requests answered 5xx/429 (API), orders delayed (fulfillment).
resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = local.functions

  alarm_name          = "${local.function_names[each.key]}-throttles"
  alarm_description   = "The ${each.key} Lambda is being throttled: raise its reserved concurrency or the account quota."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# DynamoDB throttling: on demand, this is a hot partition (one popular variant's stock item,
# see the README's capacity note) or a sudden surge beyond twice the previous peak.
resource "aws_cloudwatch_metric_alarm" "table_throttles" {
  for_each = local.dynamodb_tables

  alarm_name          = "${local.table_names[each.key]}-throttles"
  alarm_description   = "Requests to ${local.table_names[each.key]} are being throttled."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttled"
    expression  = "reads + writes"
    label       = "Throttle events"
    return_data = true
  }

  metric_query {
    id = "reads"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = { TableName = aws_dynamodb_table.this[each.key].name }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "writes"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = { TableName = aws_dynamodb_table.this[each.key].name }
      stat        = "Sum"
      period      = 300
    }
  }
}
