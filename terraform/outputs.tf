output "api_url" {
  description = "Base URL of the Giftify API (e.g. <api_url>/health)."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "orders_queue_url" {
  description = "SQS FIFO orders queue (GIFTIFY_QUEUE_URL)."
  value       = aws_sqs_queue.orders.url
}

output "dead_letter_queue_url" {
  description = "SQS FIFO dead-letter queue (GIFTIFY_DLQ_URL)."
  value       = aws_sqs_queue.dead_letter.url
}

output "order_events_topic_arn" {
  description = "SNS topic of order events (GIFTIFY_TOPIC_ARN)."
  value       = aws_sns_topic.order_events.arn
}

output "table_names" {
  description = "DynamoDB table names by the code's short name."
  value       = { for short, table in aws_dynamodb_table.this : short => table.name }
}

output "function_names" {
  description = "Lambda function names."
  value       = { for name, function in aws_lambda_function.this : name => function.function_name }
}

output "secret_arns" {
  description = "Secrets Manager secrets the functions read at cold start."
  value = {
    jwt_secret = aws_secretsmanager_secret.jwt.arn
    card_key   = aws_secretsmanager_secret.card_key.arn
  }
}

output "alarm_topic_arn" {
  description = "Topic the alarms notify (null when alarms only show in CloudWatch)."
  value       = try(local.alarm_actions[0], null)
}

# For operators: `giftify dlq list|redrive` against this stage (see the README).
output "operator_environment" {
  description = "Environment for running the giftify CLI against this stage."
  value = {
    GIFTIFY_BACKEND   = "aws"
    GIFTIFY_STAGE     = var.stage
    GIFTIFY_QUEUE_URL = aws_sqs_queue.orders.url
    GIFTIFY_DLQ_URL   = aws_sqs_queue.dead_letter.url
    GIFTIFY_TOPIC_ARN = aws_sns_topic.order_events.arn
    # Looked up by name otherwise, which the operator policy does not allow.
    GIFTIFY_WEBHOOK_QUEUE_URL = aws_sqs_queue.webhooks.url
    AWS_REGION                = local.region
    # The CLI checks and seals cards with the stage's card key, never with a key of its own.
    # Not the access-token key: an operator who handles dead letters has no business minting
    # tokens (`giftify serve` against a stage needs it: jwt_secret_arn).
    GIFTIFY_CARD_KEY_SECRET_ARN = aws_secretsmanager_secret.card_key.arn
  }
}

output "jwt_secret_arn" {
  description = "Secrets Manager secret of the access-token key, for `giftify serve` against this stage (GIFTIFY_JWT_SECRET_ARN)."
  value       = aws_secretsmanager_secret.jwt.arn
}
