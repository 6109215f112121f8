# Offline stand-ins for the AWS provider in terraform test. Computed attributes get realistic,
# distinct values (for stage "test" in account 123456789012), so that the assertions can check
# which queue, key, table or secret each reference points at.

mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012" }
}

mock_data "aws_region" {
  defaults = { name = "ap-south-1" }
}

mock_data "aws_partition" {
  defaults = { partition = "aws" }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:ap-south-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    key_id = "00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:ap-south-1:123456789012:unnamed.fifo"
    url = "https://sqs.ap-south-1.amazonaws.com/123456789012/unnamed.fifo"
    id  = "https://sqs.ap-south-1.amazonaws.com/123456789012/unnamed.fifo"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:ap-south-1:123456789012:giftify-test-alarms"
  }
}

mock_resource "aws_dynamodb_table" {
  defaults = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/unnamed"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/unnamed"
  }
}

mock_resource "aws_lambda_function" {
  defaults = {
    arn        = "arn:aws:lambda:ap-south-1:123456789012:function:unnamed"
    invoke_arn = "arn:aws:apigateway:ap-south-1:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-south-1:123456789012:function:unnamed/invocations"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:ap-south-1:123456789012:log-group:unnamed"
  }
}

mock_resource "aws_secretsmanager_secret" {
  defaults = {
    arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:unnamed-AbCdEf"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    id            = "abcdef1234"
    execution_arn = "arn:aws:execute-api:ap-south-1:123456789012:abcdef1234"
    api_endpoint  = "https://abcdef1234.execute-api.ap-south-1.amazonaws.com"
  }
}

mock_resource "aws_apigatewayv2_stage" {
  defaults = {
    invoke_url = "https://abcdef1234.execute-api.ap-south-1.amazonaws.com/"
  }
}

mock_resource "aws_apigatewayv2_integration" {
  defaults = {
    id = "integ01"
  }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = {
    arn = "arn:aws:events:ap-south-1:123456789012:rule/giftify-test-reconciler"
  }
}

override_resource {
  target = aws_kms_key.data
  values = {
    arn    = "arn:aws:kms:ap-south-1:123456789012:key/00000000-0000-0000-0000-000000000001"
    key_id = "00000000-0000-0000-0000-000000000001"
  }
}

override_resource {
  target = aws_kms_key.messaging
  values = {
    arn    = "arn:aws:kms:ap-south-1:123456789012:key/00000000-0000-0000-0000-000000000002"
    key_id = "00000000-0000-0000-0000-000000000002"
  }
}

override_resource {
  target = aws_kms_key.logs
  values = {
    arn    = "arn:aws:kms:ap-south-1:123456789012:key/00000000-0000-0000-0000-000000000003"
    key_id = "00000000-0000-0000-0000-000000000003"
  }
}

override_resource {
  target = aws_sqs_queue.orders
  values = {
    arn = "arn:aws:sqs:ap-south-1:123456789012:giftify-test-orders.fifo"
    url = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-orders.fifo"
    id  = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-orders.fifo"
  }
}

override_resource {
  target = aws_sqs_queue.dead_letter
  values = {
    arn = "arn:aws:sqs:ap-south-1:123456789012:giftify-test-orders-dlq.fifo"
    url = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-orders-dlq.fifo"
    id  = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-orders-dlq.fifo"
  }
}

override_resource {
  target = aws_sns_topic.order_events
  values = {
    arn = "arn:aws:sns:ap-south-1:123456789012:giftify-test-order-events"
  }
}

override_resource {
  target = aws_secretsmanager_secret.jwt
  values = {
    arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:giftify-test/jwt-secret-AbCdEf"
    id  = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:giftify-test/jwt-secret-AbCdEf"
  }
}

override_resource {
  target = aws_secretsmanager_secret.card_key
  values = {
    arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:giftify-test/card-key-AbCdEf"
    id  = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:giftify-test/card-key-AbCdEf"
  }
}

override_resource {
  target = aws_dynamodb_table.this["users"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-users"
  }
}

override_resource {
  target = aws_dynamodb_table.this["wallet-transactions"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-wallet-transactions"
  }
}

override_resource {
  target = aws_dynamodb_table.this["products"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-products"
  }
}

override_resource {
  target = aws_dynamodb_table.this["product-variants"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-product-variants"
  }
}

override_resource {
  target = aws_dynamodb_table.this["cart"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-cart"
  }
}

override_resource {
  target = aws_dynamodb_table.this["orders"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-orders"
  }
}

override_resource {
  target = aws_dynamodb_table.this["gift-cards"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-gift-cards"
  }
}

override_resource {
  target = aws_dynamodb_table.this["idempotency-keys"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-idempotency-keys"
  }
}

override_resource {
  target = aws_dynamodb_table.this["refresh-tokens"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-refresh-tokens"
  }
}

override_resource {
  target = aws_dynamodb_table.this["login-throttle"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-login-throttle"
  }
}

override_resource {
  target = aws_dynamodb_table.this["audit"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-audit"
  }
}

override_resource {
  target = aws_dynamodb_table.this["inventory-codes"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-inventory-codes"
  }
}

override_resource {
  target = aws_dynamodb_table.this["code-batches"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-code-batches"
  }
}

override_resource {
  target = aws_dynamodb_table.this["api-keys"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-api-keys"
  }
}

override_resource {
  target = aws_dynamodb_table.this["events"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-events"
  }
}

override_resource {
  target = aws_lambda_function.this["api"]
  values = {
    arn        = "arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-api"
    invoke_arn = "arn:aws:apigateway:ap-south-1:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-api/invocations"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["api"]
  values = {
    arn = "arn:aws:logs:ap-south-1:123456789012:log-group:/aws/lambda/giftify-test-api"
  }
}

override_resource {
  target = aws_iam_role.function["api"]
  values = {
    arn = "arn:aws:iam::123456789012:role/giftify-test-api-function"
  }
}

override_resource {
  target = aws_lambda_function.this["fulfillment"]
  values = {
    arn        = "arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-fulfillment"
    invoke_arn = "arn:aws:apigateway:ap-south-1:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-fulfillment/invocations"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["fulfillment"]
  values = {
    arn = "arn:aws:logs:ap-south-1:123456789012:log-group:/aws/lambda/giftify-test-fulfillment"
  }
}

override_resource {
  target = aws_iam_role.function["fulfillment"]
  values = {
    arn = "arn:aws:iam::123456789012:role/giftify-test-fulfillment-function"
  }
}

override_resource {
  target = aws_lambda_function.this["reconciler"]
  values = {
    arn        = "arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-reconciler"
    invoke_arn = "arn:aws:apigateway:ap-south-1:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-reconciler/invocations"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["reconciler"]
  values = {
    arn = "arn:aws:logs:ap-south-1:123456789012:log-group:/aws/lambda/giftify-test-reconciler"
  }
}

override_resource {
  target = aws_iam_role.function["reconciler"]
  values = {
    arn = "arn:aws:iam::123456789012:role/giftify-test-reconciler-function"
  }
}

override_resource {
  target = aws_dynamodb_table.this["webhooks"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-webhooks"
  }
}

override_resource {
  target = aws_dynamodb_table.this["daily-figures"]
  values = {
    arn = "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-daily-figures"
  }
}

override_resource {
  target = aws_sqs_queue.webhooks
  values = {
    arn = "arn:aws:sqs:ap-south-1:123456789012:giftify-test-webhooks"
    url = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-webhooks"
    id  = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-webhooks"
  }
}

override_resource {
  target = aws_sqs_queue.webhooks_dead_letter
  values = {
    arn = "arn:aws:sqs:ap-south-1:123456789012:giftify-test-webhooks-dlq"
    url = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-webhooks-dlq"
    id  = "https://sqs.ap-south-1.amazonaws.com/123456789012/giftify-test-webhooks-dlq"
  }
}

override_resource {
  target = aws_lambda_function.this["dispatcher"]
  values = {
    arn        = "arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-dispatcher"
    invoke_arn = "arn:aws:apigateway:ap-south-1:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-south-1:123456789012:function:giftify-test-dispatcher/invocations"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["dispatcher"]
  values = {
    arn = "arn:aws:logs:ap-south-1:123456789012:log-group:/aws/lambda/giftify-test-dispatcher"
  }
}

override_resource {
  target = aws_iam_role.function["dispatcher"]
  values = {
    arn = "arn:aws:iam::123456789012:role/giftify-test-dispatcher-function"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.api_access
  values = {
    arn = "arn:aws:logs:ap-south-1:123456789012:log-group:/aws/apigateway/giftify-test-api-access"
  }
}
