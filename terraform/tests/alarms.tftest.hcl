# Alarms: dead letters, stuck orders, failing workers, API errors, throttling — and where they go.

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

run "any_dead_letter_raises_an_alarm" {
  command = plan

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.dead_letters.namespace == "AWS/SQS" &&
      aws_cloudwatch_metric_alarm.dead_letters.metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.dead_letters.dimensions.QueueName == aws_sqs_queue.dead_letter.name
    )
    error_message = "The DLQ alarm must watch the DLQ's visible messages."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.dead_letters.comparison_operator == "GreaterThanThreshold" && aws_cloudwatch_metric_alarm.dead_letters.threshold == 0
    error_message = "One dead letter is enough: DLQ depth > 0."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.oldest_order_message.metric_name == "ApproximateAgeOfOldestMessage" &&
      aws_cloudwatch_metric_alarm.oldest_order_message.dimensions.QueueName == aws_sqs_queue.orders.name &&
      aws_cloudwatch_metric_alarm.oldest_order_message.threshold == 300
    )
    error_message = "Orders waiting over 5 minutes must raise an alarm."
  }
  assert {
    condition = alltrue([
      for a in [aws_cloudwatch_metric_alarm.dead_letters, aws_cloudwatch_metric_alarm.oldest_order_message] : a.treat_missing_data == "notBreaching"
    ])
    error_message = "An idle queue (no data) is not an alarm."
  }
}

run "failing_workers_raise_alarms" {
  command = plan

  assert {
    condition = {
      for name, a in aws_cloudwatch_metric_alarm.worker_errors : name => [a.namespace, a.metric_name, a.dimensions.FunctionName]
      } == {
      dispatcher  = ["AWS/Lambda", "Errors", "giftify-test-dispatcher"]
      fulfillment = ["AWS/Lambda", "Errors", "giftify-test-fulfillment"]
      reconciler  = ["AWS/Lambda", "Errors", "giftify-test-reconciler"]
    }
    error_message = "Every worker needs an Errors alarm."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.failed_order_messages.namespace == "Giftify" &&
      aws_cloudwatch_metric_alarm.failed_order_messages.metric_name == "MessagesFailed" &&
      aws_cloudwatch_metric_alarm.failed_order_messages.dimensions == tomap({ stage = "test", function = "fulfillment" })
    )
    error_message = "Messages failed in partial batch responses (the EMF metric of workers/src/fulfillment.rs) need an alarm."
  }
}

run "api_5xx_rate_and_throttles_raise_alarms" {
  command = plan

  assert {
    condition = anytrue([
      for q in aws_cloudwatch_metric_alarm.api_5xx_rate.metric_query : q.return_data == true && strcontains(coalesce(q.expression, "-"), "errors / requests")
    ])
    error_message = "The API alarm is on the 5xx rate, not the count."
  }
  assert {
    condition = toset(flatten([
      for q in aws_cloudwatch_metric_alarm.api_5xx_rate.metric_query : [for m in q.metric : m.metric_name]
    ])) == toset(["5xx", "Count"])
    error_message = "The rate is 5xx over Count of the HTTP API."
  }
  assert {
    condition = alltrue(flatten([
      for q in aws_cloudwatch_metric_alarm.api_5xx_rate.metric_query : [for m in q.metric : m.dimensions.ApiId == aws_apigatewayv2_api.http.id]
    ]))
    error_message = "The rate is measured on this API."
  }
  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.function_throttles)) == toset(["api", "dispatcher", "fulfillment", "reconciler"])
    error_message = "Every function needs a throttle alarm."
  }
  assert {
    condition     = alltrue([for name, a in aws_cloudwatch_metric_alarm.function_throttles : a.metric_name == "Throttles" && a.dimensions.FunctionName == "giftify-test-${name}"])
    error_message = "Throttle alarms watch Lambda Throttles of their function."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.table_throttles) == 17
    error_message = "Every table needs a throttle alarm (a hot variant shows up here first)."
  }
}

run "without_a_destination_alarms_only_show_in_cloudwatch" {
  command = plan

  assert {
    condition     = length(aws_sns_topic.alarms) == 0 && length(aws_cloudwatch_metric_alarm.dead_letters.alarm_actions) == 0
    error_message = "No topic, no actions, when no destination was given."
  }
  assert {
    condition     = output.alarm_topic_arn == null
    error_message = "alarm_topic_arn is null without a destination."
  }
}

run "alarm_emails_get_an_encrypted_topic" {
  command = plan

  variables {
    alarm_email_addresses = ["oncall@example.in"]
  }

  assert {
    condition     = length(aws_sns_topic.alarms) == 1 && aws_sns_topic.alarms[0].kms_master_key_id == aws_kms_key.messaging.arn
    error_message = "Alarm emails get a topic encrypted under the messaging key."
  }
  assert {
    condition     = aws_sns_topic_subscription.alarm_email["oncall@example.in"].protocol == "email"
    error_message = "Each address is subscribed."
  }
  assert {
    condition = alltrue([
      for a in concat([aws_cloudwatch_metric_alarm.dead_letters, aws_cloudwatch_metric_alarm.api_5xx_rate], values(aws_cloudwatch_metric_alarm.worker_errors)) :
      a.alarm_actions == toset([aws_sns_topic.alarms[0].arn]) && a.ok_actions == toset([aws_sns_topic.alarms[0].arn])
    ])
    error_message = "Alarms notify the topic when they fire and when they clear."
  }
}

run "an_existing_alarm_topic_is_used_as_is" {
  command = plan

  variables {
    alarm_topic_arn       = "arn:aws:sns:ap-south-1:123456789012:oncall-pager"
    alarm_email_addresses = ["ignored@example.in"]
  }

  assert {
    condition     = length(aws_sns_topic.alarms) == 0 && length(aws_sns_topic_subscription.alarm_email) == 0
    error_message = "With a topic given, none is created."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.dead_letters.alarm_actions == toset(["arn:aws:sns:ap-south-1:123456789012:oncall-pager"])
    error_message = "Alarms notify the given topic."
  }
}

run "outputs_give_operators_what_the_cli_needs" {
  command = plan

  assert {
    condition = output.operator_environment == {
      GIFTIFY_BACKEND   = "aws"
      GIFTIFY_STAGE     = "test"
      GIFTIFY_QUEUE_URL = aws_sqs_queue.orders.url
      GIFTIFY_DLQ_URL   = aws_sqs_queue.dead_letter.url
      GIFTIFY_TOPIC_ARN = aws_sns_topic.order_events.arn
      # The CLI looks the webhook queue up by name otherwise, which its policy does not allow.
      GIFTIFY_WEBHOOK_QUEUE_URL = aws_sqs_queue.webhooks.url
      AWS_REGION                = "ap-south-1"
      # Without it the CLI would have no card key of the stage to check or seal with.
      GIFTIFY_CARD_KEY_SECRET_ARN = aws_secretsmanager_secret.card_key.arn
    }
    error_message = "operator_environment must configure the CLI for this stage, the card key's secret included and the access-token key's not."
  }
  assert {
    condition     = output.orders_queue_url == aws_sqs_queue.orders.url && output.dead_letter_queue_url == aws_sqs_queue.dead_letter.url && output.order_events_topic_arn == aws_sns_topic.order_events.arn
    error_message = "Queue URLs and the topic ARN are outputs."
  }
}

run "the_operations_dashboard_shows_orders_latency_queues_dead_letters_errors_and_throttles" {
  command = plan

  assert {
    condition = [for w in jsondecode(aws_cloudwatch_dashboard.operations.dashboard_body).widgets : w.properties.title] == [
      "Orders by status (per minute)",
      "Create → final latency (ms)",
      "Orders queue: depth and oldest message age",
      "Dead letters",
      "Errors",
      "Throttles",
    ]
    error_message = "The dashboard must have its six panels, in the README's order."
  }
  assert {
    condition = alltrue([
      for m in jsondecode(aws_cloudwatch_dashboard.operations.dashboard_body).widgets[3].properties.metrics :
      m[0] != "AWS/SQS" || contains([aws_sqs_queue.dead_letter.name, aws_sqs_queue.webhooks_dead_letter.name], m[3])
    ])
    error_message = "The dead letters panel must watch this stage's dead-letter queues."
  }
  assert {
    condition = alltrue([
      for m in jsondecode(aws_cloudwatch_dashboard.operations.dashboard_body).widgets[0].properties.metrics :
      m[0] == "Giftify" && m[3] == "test"
    ])
    error_message = "Giftify's own metrics must be this stage's (dimension stage)."
  }
}
