# Events: one message per final order status and per redeemed or returned card, with
# `eventType` and `status` message attributes for subscription filter policies
# (infra/src/aws/events.rs).

resource "aws_sns_topic" "order_events" {
  name              = local.topic_name
  kms_master_key_id = aws_kms_key.messaging.arn
  # SHA256 signatures: webhook subscribers verify SNS messages with them.
  signature_version = 2
}

resource "aws_sns_topic_policy" "order_events" {
  arn = aws_sns_topic.order_events.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.order_events.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

locals {
  # A subscription without event types gets every event; with them, a filter policy on the
  # `eventType` message attribute, e.g. ["order.fulfilled", "order.refunded",
  # "gift_card.redeemed"].
  event_subscriptions = merge(
    { for s in var.event_email_subscriptions : "email:${s.endpoint}" => merge(s, { protocol = "email" }) },
    { for s in var.event_https_subscriptions : "https:${s.endpoint}" => merge(s, { protocol = "https" }) },
  )
}

# Every event goes to the webhook dispatcher, raw (the event's JSON as published, no SNS
# envelope): subscribers get Giftify's own signed POSTs on both backends, and verify one
# signature scheme. Email subscriptions below stay for people.
resource "aws_sns_topic_subscription" "webhooks" {
  topic_arn            = aws_sns_topic.order_events.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.webhooks.arn
  raw_message_delivery = true
}

resource "aws_sns_topic_subscription" "order_events" {
  for_each = local.event_subscriptions

  topic_arn           = aws_sns_topic.order_events.arn
  protocol            = each.value.protocol
  endpoint            = each.value.endpoint
  filter_policy_scope = length(each.value.event_types) > 0 ? "MessageAttributes" : null
  filter_policy       = length(each.value.event_types) > 0 ? jsonencode({ eventType = each.value.event_types }) : null
  # A webhook that is down for a while still gets its events: SNS retries 50 times over about
  # 40 minutes (3 quick retries, 12 backing off to a minute, 35 a minute apart) before giving
  # up; SNS caps the whole schedule at an hour.
  delivery_policy = each.value.protocol != "https" ? null : jsonencode({
    healthyRetryPolicy = {
      numRetries         = 50
      numNoDelayRetries  = 0
      minDelayTarget     = 1
      maxDelayTarget     = 60
      numMinDelayRetries = 3
      numMaxDelayRetries = 35
      backoffFunction    = "exponential"
    }
    throttlePolicy = { maxReceivesPerSecond = 10 }
  })
}
