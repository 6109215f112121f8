# The four functions, built by scripts/lambda-zips (cargo-lambda, `provided.al2023`: the
# package is a single `bootstrap` executable, so the handler name is only a placeholder).

# Created before the functions so Lambda never creates them itself (unencrypted, kept forever).
resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "this" {
  for_each = local.functions
  #checkov:skip=CKV_AWS_117:the functions call only AWS APIs (DynamoDB, SQS, SNS, Secrets Manager) over TLS with IAM auth; a VPC would add NAT or endpoints and no protection
  #checkov:skip=CKV_AWS_116:no async failure path to catch: the API is invoked synchronously, fulfillment and dispatcher failures go to their SQS DLQs, and a failed reconciler pass is redone by the next tick
  #checkov:skip=CKV_AWS_272:packages are built from the repository by scripts/lambda-zips and uploaded by this configuration; there is no AWS Signer profile in the pipeline to sign them with

  function_name = local.function_names[each.key]
  description   = each.value.description
  role          = aws_iam_role.function[each.key].arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]
  memory_size   = each.value.settings.memory_mb
  timeout       = each.value.settings.timeout_seconds
  # -1 = no reservation: accounts with the initial quota of 10 cannot reserve any.
  reserved_concurrent_executions = each.value.settings.reserved_concurrency

  filename         = each.value.zip_path
  source_code_hash = fileexists(each.value.zip_path) ? filebase64sha256(each.value.zip_path) : null

  environment {
    variables = each.value.environment
  }
  kms_key_arn = aws_kms_key.data.arn

  tracing_config {
    mode = "Active"
  }

  logging_config {
    # The binaries already write one JSON object per line; Text passes them through as is.
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  lifecycle {
    precondition {
      condition     = fileexists(each.value.zip_path)
      error_message = "Lambda package ${each.value.zip_path} is missing: build it with scripts/lambda-zips (and set cargo_target_dir when CARGO_TARGET_DIR is not ../target)."
    }
  }

  # The role must be able to read its secrets and write its logs at the first cold start.
  depends_on = [aws_iam_role_policy.function]
}

# Orders queue → fulfillment. Failed messages are reported one by one (the handler returns an
# SqsBatchResponse); everything else in the batch is deleted.
resource "aws_lambda_event_source_mapping" "orders" {
  event_source_arn        = aws_sqs_queue.orders.arn
  function_name           = aws_lambda_function.this["fulfillment"].arn
  batch_size              = var.fulfillment_batch_size
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = true

  scaling_config {
    maximum_concurrency = var.fulfillment_maximum_concurrency
  }

  lifecycle {
    precondition {
      condition     = var.fulfillment_function.reserved_concurrency == -1 || var.fulfillment_maximum_concurrency <= var.fulfillment_function.reserved_concurrency
      error_message = "fulfillment_maximum_concurrency must not exceed fulfillment_function.reserved_concurrency: the poller would be throttled and burn receive counts towards the DLQ."
    }
  }
}

# Webhook queue → dispatcher, with partial batch responses like fulfillment.
resource "aws_lambda_event_source_mapping" "webhooks" {
  event_source_arn        = aws_sqs_queue.webhooks.arn
  function_name           = aws_lambda_function.this["dispatcher"].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = true

  scaling_config {
    maximum_concurrency = var.dispatcher_function.reserved_concurrency == -1 ? 10 : var.dispatcher_function.reserved_concurrency
  }
}

# The reconciler on a schedule. No retries: the next tick is the retry, and the function is
# idempotent (it re-enqueues with the order id as deduplication id).
# Paused (var.reconciler_paused) while `giftify migrate` fills a new stage: the reconciler
# would publish, refund and record events in tables that are still being copied.
resource "aws_cloudwatch_event_rule" "reconciler" {
  name                = "${local.name_prefix}-reconciler"
  description         = "Runs the Giftify reconciler"
  schedule_expression = var.reconciler_schedule
  state               = var.reconciler_paused ? "DISABLED" : "ENABLED"
}

resource "aws_cloudwatch_event_target" "reconciler" {
  rule = aws_cloudwatch_event_rule.reconciler.name
  arn  = aws_lambda_function.this["reconciler"].arn

  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "reconciler_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["reconciler"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconciler.arn
}
