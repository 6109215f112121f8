# The fulfillment queue: SQS FIFO, one message group per user (orders of one user are fulfilled
# in order), a deduplication id per order sent by the code (so content-based deduplication is
# off), and a FIFO dead-letter queue for messages that keep failing.

resource "aws_sqs_queue" "dead_letter" {
  name                        = local.dead_letter_queue_name
  fifo_queue                  = true
  content_based_deduplication = false
  deduplication_scope         = "messageGroup"
  fifo_throughput_limit       = "perMessageGroupId"
  # The maximum: dead letters wait for an operator (`giftify dlq list|redrive`), and a FIFO
  # dead-letter queue restarts the retention clock when a message moves in.
  message_retention_seconds         = 1209600
  visibility_timeout_seconds        = local.queue_visibility_seconds
  kms_master_key_id                 = aws_kms_key.messaging.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "orders" {
  name                        = local.queue_name
  fifo_queue                  = true
  content_based_deduplication = false
  # High-throughput FIFO: deduplication and the throughput quota apply per message group
  # (per user) instead of per queue, so the queue scales with the number of active users.
  deduplication_scope   = "messageGroup"
  fifo_throughput_limit = "perMessageGroupId"
  # An order message must outlive any outage of the workers; the reconciler re-enqueues
  # PENDING orders whose message is lost anyway.
  message_retention_seconds         = 1209600
  visibility_timeout_seconds        = local.queue_visibility_seconds
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = aws_kms_key.messaging.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.queue_max_receives
  })
}

# Only the orders queue may dead-letter into the DLQ (a separate resource: the two queues
# reference each other).
resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.orders.arn]
  })
}

# SQS still answers plain HTTP; refuse it for anything touching order messages.
resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    orders               = aws_sqs_queue.orders
    dead_letter          = aws_sqs_queue.dead_letter
    webhooks_dead_letter = aws_sqs_queue.webhooks_dead_letter
  }

  queue_url = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sqs:*"
      Resource  = each.value.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

# The webhook queue: a standard queue the dispatcher reads. The events topic delivers every
# event into it (raw, sns.tf), and the code sends delivery wake-ups to it (a retry coming due,
# an admin's retry or recover). Order does not matter here: each delivery carries its own
# state, and events their per-order sequence. A message that keeps failing to be handled (not
# a failing endpoint: that is the delivery's own retry schedule) goes to its dead-letter queue
# after queue_max_receives tries; the deliveries stay in DynamoDB, so nothing is lost with it
# (POST /webhooks/{id}/recover re-sends from the feed).
resource "aws_sqs_queue" "webhooks_dead_letter" {
  name                              = local.webhook_dead_letter_queue_name
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.messaging.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "webhooks" {
  name                              = local.webhook_queue_name
  message_retention_seconds         = 1209600
  visibility_timeout_seconds        = local.webhook_queue_visibility_seconds
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = aws_kms_key.messaging.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.webhooks_dead_letter.arn
    maxReceiveCount     = var.queue_max_receives
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "webhooks_dead_letter" {
  queue_url = aws_sqs_queue.webhooks_dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.webhooks.arn]
  })
}

# Only this stack's events topic may send to the webhook queue (besides the roles of iam.tf),
# and only over TLS.
resource "aws_sqs_queue_policy" "webhooks" {
  queue_url = aws_sqs_queue.webhooks.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "EventsTopicDelivers"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.webhooks.arn
        Condition = { ArnEquals = { "aws:SourceArn" = aws_sns_topic.order_events.arn } }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sqs:*"
        Resource  = aws_sqs_queue.webhooks.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}
