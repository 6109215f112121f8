# The four Lambdas, their environment, the reconciler schedule and the HTTP API in front.

# Computed attributes come from the mocks already at plan time, so every run is a plan:
# nothing is applied, not even to the mocks, and no run needs the network.
mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

# The ephemeral password generators (secrets.tf) are the one thing mock providers cannot stand
# in for. With generate_secret_values = false they have no instances, and this offline
# configuration only satisfies the reference without ever being called.
provider "aws" {
  alias                       = "secret_generation"
  region                      = "ap-south-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variables {
  stage                  = "test"
  generate_secret_values = false
  # tests/fixtures/target/lambda/<bin>/bootstrap.zip: where cargo-lambda would put them.
  cargo_target_dir = "tests/fixtures/target"
}

run "functions_run_the_cargo_lambda_packages" {
  command = plan

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.runtime == "provided.al2023" && f.handler == "bootstrap"])
    error_message = "cargo-lambda packages are custom-runtime bootstraps: provided.al2023, handler bootstrap."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.architectures == tolist(["x86_64"])])
    error_message = "x86_64 is the default: it is what scripts/lambda-zips builds."
  }
  assert {
    condition = {
      for name, f in aws_lambda_function.this : name => f.filename
      } == {
      api         = "tests/fixtures/target/lambda/api-lambda/bootstrap.zip"
      dispatcher  = "tests/fixtures/target/lambda/dispatcher/bootstrap.zip"
      fulfillment = "tests/fixtures/target/lambda/fulfillment/bootstrap.zip"
      reconciler  = "tests/fixtures/target/lambda/reconciler/bootstrap.zip"
    }
    error_message = "Packages default to <cargo_target_dir>/lambda/<bin>/bootstrap.zip, where cargo-lambda writes them."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.source_code_hash == filebase64sha256(f.filename)])
    error_message = "A new package must change the function: source_code_hash tracks the zip."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.tracing_config[0].mode == "Active"])
    error_message = "X-Ray tracing must be active on every function."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.kms_key_arn == aws_kms_key.data.arn])
    error_message = "Function environments are encrypted under the data key."
  }
  assert {
    condition = {
      for name, f in aws_lambda_function.this : name => [f.memory_size, f.timeout, f.reserved_concurrent_executions]
      } == {
      api         = [1024, 15, 100]
      dispatcher  = [256, 60, 5]
      fulfillment = [512, 60, 10]
      reconciler  = [256, 60, 1]
    }
    error_message = "Default sizing: api 1024 MB/15 s/100, dispatcher 256 MB/60 s/5, fulfillment 512 MB/60 s/10, reconciler 256 MB/60 s/1."
  }
  assert {
    condition     = alltrue([for name, f in aws_lambda_function.this : f.role == aws_iam_role.function[name].arn])
    error_message = "Each function runs as its own role."
  }
}

run "functions_log_to_encrypted_groups_kept_a_year" {
  command = plan

  assert {
    condition     = alltrue([for name, f in aws_lambda_function.this : f.logging_config[0].log_group == "/aws/lambda/giftify-test-${name}"])
    error_message = "Each function logs to its pre-created group."
  }
  assert {
    condition     = alltrue([for g in concat(values(aws_cloudwatch_log_group.function), [aws_cloudwatch_log_group.api_access]) : g.retention_in_days == 365 && g.kms_key_id == aws_kms_key.logs.arn])
    error_message = "Function and access logs are kept 365 days under the logs key."
  }
}

run "environment_is_exactly_what_the_code_reads" {
  command = plan

  assert {
    condition = alltrue([
      for name, f in aws_lambda_function.this : toset(keys(f.environment[0].variables)) == setunion(toset([
        "GIFTIFY_BACKEND", "GIFTIFY_STAGE", "GIFTIFY_QUEUE_URL", "GIFTIFY_DLQ_URL", "GIFTIFY_TOPIC_ARN",
        "GIFTIFY_WEBHOOK_QUEUE_URL", "GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS",
        "GIFTIFY_CARD_KEY_SECRET_ARN", "GIFTIFY_STALE_PENDING_SECS", "GIFTIFY_STUCK_ORDER_REFUND_SECS",
        "GIFTIFY_WALLET_MAX_BALANCE", "GIFTIFY_SANDBOX", "GIFTIFY_LOG_FORMAT", "RUST_LOG",
      ]), name == "api" ? toset(["GIFTIFY_JWT_SECRET_ARN", "GIFTIFY_API_KEY_RATE_LIMIT", "GIFTIFY_SELF_TOPUP", "GIFTIFY_USER_RATE_LIMITS", "GIFTIFY_ORDER_WAIT_MAX_SECS", "GIFTIFY_CATALOGUE_TTL_MS"]) : toset([]))
    ])
    error_message = "Function environments must hold exactly the AWS settings of infra/src/config.rs ENV_VARS."
  }
  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables["GIFTIFY_ORDER_WAIT_MAX_SECS"] == "5"
    error_message = "Prefer: wait is capped at order_wait_max_seconds (5 s by default)."
  }
  assert {
    condition = aws_lambda_function.this["fulfillment"].environment[0].variables == tomap({
      GIFTIFY_BACKEND                    = "aws"
      GIFTIFY_STAGE                      = "test"
      GIFTIFY_QUEUE_URL                  = aws_sqs_queue.orders.url
      GIFTIFY_DLQ_URL                    = aws_sqs_queue.dead_letter.url
      GIFTIFY_TOPIC_ARN                  = aws_sns_topic.order_events.arn
      GIFTIFY_WEBHOOK_QUEUE_URL          = aws_sqs_queue.webhooks.url
      GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS = "259200"
      GIFTIFY_CARD_KEY_SECRET_ARN        = aws_secretsmanager_secret.card_key.arn
      GIFTIFY_STALE_PENDING_SECS         = "120"
      GIFTIFY_STUCK_ORDER_REFUND_SECS    = "3600"
      GIFTIFY_WALLET_MAX_BALANCE         = "20000000"
      GIFTIFY_SANDBOX                    = "false"
      GIFTIFY_LOG_FORMAT                 = "json"
      RUST_LOG                           = "info"
    })
    error_message = "Each variable must point at this stack's own queue, DLQ, topic and secrets."
  }
  assert {
    condition     = aws_secretsmanager_secret.jwt.kms_key_id == aws_kms_key.data.arn && aws_secretsmanager_secret.card_key.kms_key_id == aws_kms_key.data.arn
    error_message = "Both secrets are encrypted under the data key."
  }
  assert {
    condition     = aws_secretsmanager_secret.jwt.name == "giftify-test/jwt-secret" && aws_secretsmanager_secret.card_key.name == "giftify-test/card-key"
    error_message = "Secrets are named per stage."
  }
}

run "sizing_and_architecture_are_variables" {
  command = plan

  variables {
    architecture          = "arm64"
    api_function          = { memory_mb = 2048, timeout_seconds = 20, reserved_concurrency = -1 }
    reconciler_zip_path   = "tests/fixtures/target/lambda/fulfillment/bootstrap.zip"
    stale_pending_seconds = 300
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.architectures == tolist(["arm64"])])
    error_message = "architecture must reach every function."
  }
  assert {
    condition     = aws_lambda_function.this["api"].memory_size == 2048 && aws_lambda_function.this["api"].timeout == 20
    error_message = "api_function must size the API function."
  }
  assert {
    condition     = aws_lambda_function.this["api"].reserved_concurrent_executions == -1
    error_message = "-1 means no reservation, for accounts still on the initial quota."
  }
  assert {
    condition     = aws_lambda_function.this["reconciler"].filename == "tests/fixtures/target/lambda/fulfillment/bootstrap.zip"
    error_message = "An explicit package path wins over the default."
  }
  assert {
    condition     = aws_apigatewayv2_integration.api.timeout_milliseconds == 21000
    error_message = "The integration waits one second longer than the function runs."
  }
  assert {
    condition     = aws_lambda_function.this["reconciler"].environment[0].variables.GIFTIFY_STALE_PENDING_SECS == "300"
    error_message = "stale_pending_seconds must reach GIFTIFY_STALE_PENDING_SECS."
  }
}

run "the_order_wait_stays_inside_the_api_function_timeout" {
  command = plan

  variables {
    api_function           = { timeout_seconds = 6 }
    order_wait_max_seconds = 20
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables["GIFTIFY_ORDER_WAIT_MAX_SECS"] == "3"
    error_message = "A wait longer than the function's timeout - 3 s must be cut to it."
  }
}

run "a_missing_package_stops_the_plan" {
  command = plan

  variables {
    api_zip_path = "tests/fixtures/target/lambda/api-lambda/missing.zip"
  }

  expect_failures = [aws_lambda_function.this["api"]]
}

run "reconciler_runs_on_a_schedule" {
  command = plan

  assert {
    condition     = aws_cloudwatch_event_rule.reconciler.schedule_expression == "rate(1 minute)"
    error_message = "The reconciler runs every minute by default."
  }
  assert {
    condition     = aws_cloudwatch_event_target.reconciler.arn == aws_lambda_function.this["reconciler"].arn && aws_cloudwatch_event_target.reconciler.rule == aws_cloudwatch_event_rule.reconciler.name
    error_message = "The schedule must invoke the reconciler."
  }
  assert {
    condition     = aws_cloudwatch_event_target.reconciler.retry_policy[0].maximum_retry_attempts == 0
    error_message = "No retries: the next tick is the retry."
  }
  assert {
    condition     = aws_lambda_permission.reconciler_schedule.principal == "events.amazonaws.com" && aws_lambda_permission.reconciler_schedule.source_arn == aws_cloudwatch_event_rule.reconciler.arn
    error_message = "Only this rule may invoke the reconciler."
  }
  assert {
    condition     = aws_cloudwatch_event_rule.reconciler.state == "ENABLED"
    error_message = "The reconciler's schedule runs unless paused."
  }
}

run "the_reconciler_pauses_while_a_stage_is_filled" {
  command = plan

  variables {
    reconciler_paused = true
  }

  assert {
    condition     = aws_cloudwatch_event_rule.reconciler.state == "DISABLED"
    error_message = "reconciler_paused = true disables the schedule (giftify migrate fills the stage meanwhile)."
  }
}

run "http_api_proxies_to_the_api_function_with_throttling_and_access_logs" {
  command = plan

  variables {
    api_throttling_rate_limit  = 50
    api_throttling_burst_limit = 75
  }

  assert {
    condition     = aws_apigatewayv2_api.http.protocol_type == "HTTP"
    error_message = "An HTTP API (payload 2.0) is what lambda_http's apigw_http feature reads."
  }
  assert {
    condition = (
      aws_apigatewayv2_integration.api.integration_uri == aws_lambda_function.this["api"].invoke_arn &&
      aws_apigatewayv2_integration.api.payload_format_version == "2.0" &&
      aws_apigatewayv2_integration.api.integration_type == "AWS_PROXY"
    )
    error_message = "The integration must proxy to the API function with payload format 2.0."
  }
  assert {
    condition = (
      aws_apigatewayv2_stage.default.default_route_settings[0].throttling_rate_limit == 50 &&
      aws_apigatewayv2_stage.default.default_route_settings[0].throttling_burst_limit == 75
    )
    error_message = "Stage throttling must come from the rate and burst variables."
  }
  assert {
    condition     = aws_apigatewayv2_stage.default.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.api_access.arn
    error_message = "Access logs go to the encrypted access log group."
  }
  assert {
    condition     = !strcontains(aws_apigatewayv2_stage.default.access_log_settings[0].format, "header") && can(jsondecode(aws_apigatewayv2_stage.default.access_log_settings[0].format).status)
    error_message = "Access logs are JSON lines with the status and no headers (tokens)."
  }
  assert {
    condition     = aws_apigatewayv2_stage.default.name == "$default" && aws_apigatewayv2_stage.default.auto_deploy
    error_message = "One auto-deployed $default stage."
  }
  assert {
    condition     = aws_apigatewayv2_route.metrics.route_key == "GET /metrics" && aws_apigatewayv2_route.metrics.authorization_type == "AWS_IAM"
    error_message = "/metrics must not be public."
  }
  assert {
    condition     = aws_apigatewayv2_route.default.route_key == "$default" && aws_apigatewayv2_route.default.target == "integrations/${aws_apigatewayv2_integration.api.id}"
    error_message = "Every other route goes to the API function."
  }
  assert {
    condition     = aws_lambda_permission.api_gateway.source_arn == "${aws_apigatewayv2_api.http.execution_arn}/*/*" && aws_lambda_permission.api_gateway.function_name == aws_lambda_function.this["api"].function_name
    error_message = "Only this API may invoke the API function."
  }
  assert {
    condition     = output.api_url == aws_apigatewayv2_stage.default.invoke_url
    error_message = "api_url is the stage's invoke URL."
  }
}
