# SQS FIFO orders queue + DLQ, the fulfillment event source, and the order events topic.

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

run "orders_queue_is_high_throughput_fifo_with_a_fifo_dlq" {
  command = plan

  assert {
    condition     = aws_sqs_queue.orders.fifo_queue && aws_sqs_queue.dead_letter.fifo_queue
    error_message = "Both queues must be FIFO: a FIFO queue can only dead-letter into a FIFO queue."
  }
  assert {
    condition     = aws_sqs_queue.orders.name == "giftify-test-orders.fifo" && aws_sqs_queue.dead_letter.name == "giftify-test-orders-dlq.fifo"
    error_message = "Queue names must be the ones infra/src/aws/mod.rs derives."
  }
  assert {
    condition     = !aws_sqs_queue.orders.content_based_deduplication
    error_message = "The code sends a deduplication id per order; content-based deduplication must be off."
  }
  assert {
    condition     = aws_sqs_queue.orders.deduplication_scope == "messageGroup" && aws_sqs_queue.orders.fifo_throughput_limit == "perMessageGroupId"
    error_message = "The orders queue must run in high-throughput FIFO mode."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.orders.redrive_policy).deadLetterTargetArn == aws_sqs_queue.dead_letter.arn
    error_message = "The orders queue must dead-letter into the DLQ."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.orders.redrive_policy).maxReceiveCount == 5
    error_message = "Messages move to the DLQ after 5 deliveries by default."
  }
  assert {
    condition = jsondecode(aws_sqs_queue_redrive_allow_policy.dead_letter.redrive_allow_policy) == {
      redrivePermission = "byQueue"
      sourceQueueArns   = [aws_sqs_queue.orders.arn]
    }
    error_message = "Only the orders queue may dead-letter into the DLQ."
  }
  assert {
    condition     = aws_sqs_queue_redrive_allow_policy.dead_letter.queue_url == aws_sqs_queue.dead_letter.url
    error_message = "The redrive-allow policy belongs on the DLQ."
  }
  assert {
    condition     = aws_sqs_queue.orders.kms_master_key_id == aws_kms_key.messaging.arn && aws_sqs_queue.dead_letter.kms_master_key_id == aws_kms_key.messaging.arn
    error_message = "Both queues must be encrypted under the messaging key."
  }
  assert {
    condition     = aws_sqs_queue.orders.message_retention_seconds == 1209600 && aws_sqs_queue.dead_letter.message_retention_seconds == 1209600
    error_message = "Order messages and dead letters are kept the maximum 14 days."
  }
}

run "visibility_timeout_follows_the_worker_timeout" {
  command = plan

  variables {
    fulfillment_function = { timeout_seconds = 120 }
    queue_max_receives   = 3
  }

  assert {
    condition     = aws_sqs_queue.orders.visibility_timeout_seconds >= 6 * aws_lambda_function.this["fulfillment"].timeout
    error_message = "The visibility timeout must be at least 6x the fulfillment timeout."
  }
  assert {
    condition     = aws_sqs_queue.orders.visibility_timeout_seconds == 720
    error_message = "A 120 s worker gets a 720 s visibility timeout."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.orders.redrive_policy).maxReceiveCount == 3
    error_message = "queue_max_receives must reach the redrive policy."
  }
}

run "fulfillment_consumes_the_queue_with_partial_batch_responses" {
  command = plan

  assert {
    condition     = aws_lambda_event_source_mapping.orders.event_source_arn == aws_sqs_queue.orders.arn
    error_message = "The event source must be the orders queue."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.orders.function_name == aws_lambda_function.this["fulfillment"].arn
    error_message = "The orders queue must feed the fulfillment function."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.orders.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "The handler returns SqsBatchResponse: ReportBatchItemFailures must be on, or one failure retries the whole batch."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.orders.batch_size == 10
    error_message = "Default batch size is the FIFO maximum, 10."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.orders.scaling_config[0].maximum_concurrency == 10
    error_message = "maximum_concurrency must come from fulfillment_maximum_concurrency."
  }
}

run "queues_and_topic_refuse_plain_http" {
  command = plan

  assert {
    condition = alltrue([
      for p in aws_sqs_queue_policy.tls_only : jsondecode(p.policy).Statement[0].Effect == "Deny" && jsondecode(p.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false"
    ])
    error_message = "Every queue must deny requests without TLS."
  }
  assert {
    condition     = toset([for p in aws_sqs_queue_policy.tls_only : p.queue_url]) == toset([aws_sqs_queue.orders.url, aws_sqs_queue.dead_letter.url, aws_sqs_queue.webhooks_dead_letter.url])
    error_message = "The TLS-only policy must be on the orders queue and both dead-letter queues."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_sqs_queue_policy.webhooks.policy).Statement : s.Effect == "Deny" && try(s.Condition.Bool["aws:SecureTransport"], "") == "false"
    ])
    error_message = "The webhook queue must deny requests without TLS too."
  }
  assert {
    condition     = jsondecode(aws_sns_topic_policy.order_events.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false"
    error_message = "The topic must deny publishing without TLS."
  }
}

run "order_events_topic_is_encrypted_and_signs_with_sha256" {
  command = plan

  assert {
    condition     = aws_sns_topic.order_events.name == "giftify-test-order-events"
    error_message = "The topic name must be the one infra/src/aws/mod.rs derives."
  }
  assert {
    condition     = aws_sns_topic.order_events.signature_version == 2
    error_message = "Subscribers verify SHA256 signatures: signature_version must be 2."
  }
  assert {
    condition     = aws_sns_topic.order_events.kms_master_key_id == aws_kms_key.messaging.arn
    error_message = "The topic must be encrypted under the messaging key."
  }
  assert {
    condition     = length(aws_sns_topic_subscription.order_events) == 0
    error_message = "No subscriptions unless asked for."
  }
}

run "subscriptions_filter_on_event_type" {
  command = plan

  variables {
    event_email_subscriptions = [
      { endpoint = "finance@example.in", event_types = ["order.refunded", "order.cancelled"] },
    ]
    event_https_subscriptions = [
      { endpoint = "https://hooks.example.in/giftify" },
    ]
  }

  assert {
    condition     = length(aws_sns_topic_subscription.order_events) == 2
    error_message = "One subscription per address and per webhook."
  }
  assert {
    condition = jsondecode(aws_sns_topic_subscription.order_events["email:finance@example.in"].filter_policy) == {
      eventType = ["order.refunded", "order.cancelled"]
    }
    error_message = "Event types become a filter policy on the eventType message attribute."
  }
  assert {
    condition     = aws_sns_topic_subscription.order_events["email:finance@example.in"].filter_policy_scope == "MessageAttributes"
    error_message = "The filter applies to message attributes, which is where the code puts eventType."
  }
  assert {
    condition     = aws_sns_topic_subscription.order_events["https:https://hooks.example.in/giftify"].filter_policy == null
    error_message = "A subscription without event types receives every event."
  }
  assert {
    condition     = jsondecode(aws_sns_topic_subscription.order_events["https:https://hooks.example.in/giftify"].delivery_policy).healthyRetryPolicy.numRetries == 50
    error_message = "Webhooks get a retry policy."
  }
  assert {
    condition     = aws_sns_topic_subscription.order_events["email:finance@example.in"].protocol == "email" && aws_sns_topic_subscription.order_events["https:https://hooks.example.in/giftify"].protocol == "https"
    error_message = "Protocols follow the variable each subscription came from."
  }
}

run "webhooks_must_use_https" {
  command = plan

  variables {
    event_https_subscriptions = [{ endpoint = "http://hooks.example.in/giftify" }]
  }

  expect_failures = [var.event_https_subscriptions]
}

run "every_event_reaches_the_webhook_dispatcher_raw" {
  command = plan

  assert {
    condition = (
      aws_sns_topic_subscription.webhooks.protocol == "sqs" &&
      aws_sns_topic_subscription.webhooks.endpoint == aws_sqs_queue.webhooks.arn &&
      aws_sns_topic_subscription.webhooks.raw_message_delivery == true &&
      aws_sns_topic_subscription.webhooks.filter_policy == null
    )
    error_message = "The webhook queue gets every event as published (raw), for the dispatcher to sign and send."
  }
  assert {
    condition = [
      for s in jsondecode(aws_sqs_queue_policy.webhooks.policy).Statement : s.Condition.ArnEquals["aws:SourceArn"] if s.Effect == "Allow"
    ] == [aws_sns_topic.order_events.arn]
    error_message = "Only this stack's events topic may send into the webhook queue."
  }
  assert {
    condition     = aws_sqs_queue.webhooks.kms_master_key_id == aws_kms_key.messaging.arn && aws_sqs_queue.webhooks_dead_letter.kms_master_key_id == aws_kms_key.messaging.arn
    error_message = "Webhook queues are encrypted under the messaging key."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.webhooks.redrive_policy).deadLetterTargetArn == aws_sqs_queue.webhooks_dead_letter.arn
    error_message = "A webhook message that keeps failing to be handled goes to its own dead-letter queue."
  }
  assert {
    condition = (
      aws_lambda_event_source_mapping.webhooks.event_source_arn == aws_sqs_queue.webhooks.arn &&
      aws_lambda_event_source_mapping.webhooks.function_name == aws_lambda_function.this["dispatcher"].arn &&
      aws_lambda_event_source_mapping.webhooks.function_response_types == toset(["ReportBatchItemFailures"])
    )
    error_message = "The dispatcher consumes the webhook queue with partial batch responses."
  }
  assert {
    condition     = aws_sqs_queue.webhooks.visibility_timeout_seconds == 6 * aws_lambda_function.this["dispatcher"].timeout
    error_message = "The webhook queue's visibility timeout is 6x the dispatcher's timeout."
  }
}
