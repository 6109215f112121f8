# What the operator commands `giftify dlq list | redrive | refund | delete` call on a stage, as
# one policy to attach to the operators' role (output operator_policy_json): receive, hide and
# delete dead letters, send a redriven one to the orders queue, read the failure notes, give an
# order up with its refund and event, append to the audit log, check (and on a stage's first
# start record) the key check values, and read the card key.
# tests/tests/terraform_drift.rs fails when the code calls an action this policy lacks.
locals {
  operator_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadAndSettleDeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"]
        Resource = aws_sqs_queue.dead_letter.arn
      },
      {
        Sid      = "RedriveToTheOrdersQueue"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = aws_sqs_queue.orders.arn
      },
      {
        Sid      = "QueueEncryptionKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.messaging.arn
      },
      {
        Sid       = "FailureNotes"
        Effect    = "Allow"
        Action    = ["dynamodb:GetItem"]
        Resource  = aws_dynamodb_table.this["audit"].arn
        Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["SQS#*"] } }
      },
      {
        Sid       = "KeyCheckValues"
        Effect    = "Allow"
        Action    = ["dynamodb:GetItem", "dynamodb:PutItem"]
        Resource  = aws_dynamodb_table.this["audit"].arn
        Condition = { "ForAllValues:StringEquals" = { "dynamodb:LeadingKeys" = ["KEYCHECK"] } }
      },
      {
        # `dlq refund`: the order given up in one transaction — REFUNDED, the balance credited
        # with its REFUND record, a cart checkout's cart unlocked — each item read first.
        Sid    = "GiveUpOrders"
        Effect = "Allow"
        Action = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [
          aws_dynamodb_table.this["orders"].arn,
          aws_dynamodb_table.this["users"].arn,
          aws_dynamodb_table.this["cart"].arn,
        ]
      },
      {
        Sid      = "RefundRecords"
        Effect   = "Allow"
        Action   = ["dynamodb:PutItem"]
        Resource = aws_dynamodb_table.this["wallet-transactions"].arn
      },
      {
        # The refund's event is recorded in the feed (guard and positions, read then put)
        # before it is published.
        Sid      = "RecordRefundEvents"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
        Resource = aws_dynamodb_table.this["events"].arn
      },
      {
        Sid      = "PublishRefundEvents"
        Effect   = "Allow"
        Action   = ["sns:Publish"]
        Resource = aws_sns_topic.order_events.arn
      },
      {
        # Every redrive, refund and delete is an entry of the audit log (LOG# items).
        Sid       = "AuditLog"
        Effect    = "Allow"
        Action    = ["dynamodb:PutItem"]
        Resource  = aws_dynamodb_table.this["audit"].arn
        Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["LOG#*"] } }
      },
      {
        Sid      = "CardKey"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = aws_secretsmanager_secret.card_key.arn
      },
      {
        Sid      = "DataKeyThroughTheServices"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.data.arn
        Condition = {
          StringEquals = {
            "kms:ViaService" = [
              "dynamodb.${local.region}.amazonaws.com",
              "secretsmanager.${local.region}.amazonaws.com",
            ]
          }
        }
      },
    ]
  }
}

output "operator_policy_json" {
  description = "IAM policy for the operators who run `giftify dlq …` against this stage."
  value       = jsonencode(local.operator_policy)
}
