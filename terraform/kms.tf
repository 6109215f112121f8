# Three customer-managed keys, split by who must be able to use them, so that a grant needed
# by one AWS service never reaches data it has no business with:
#   data      — DynamoDB tables, Secrets Manager secrets, Lambda environment variables;
#   messaging — the SQS queues and the SNS topics (CloudWatch alarms publish to the alarm topic);
#   logs      — CloudWatch log groups (the Logs service encrypts on the functions' behalf).
# Every key policy delegates to IAM in this account (the "root" statement), so the roles in
# iam.tf alone decide which principal may use a key and through which service.

locals {
  key_admin_statement = {
    Sid       = "EnableIamPoliciesOfThisAccount"
    Effect    = "Allow"
    Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }
}

resource "aws_kms_key" "data" {
  description             = "${local.name_prefix}: DynamoDB tables, secrets, Lambda environment"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.key_admin_statement]
  })
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name_prefix}-data"
  target_key_id = aws_kms_key.data.key_id
}

resource "aws_kms_key" "messaging" {
  description             = "${local.name_prefix}: SQS orders queues and SNS topics"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.key_admin_statement,
      {
        # CloudWatch alarms publish to the (encrypted) alarm topic as the service itself.
        Sid       = "CloudWatchAlarmsPublishToEncryptedTopics"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
      {
        # The events topic delivers into the (encrypted) webhook queue as the service itself.
        Sid       = "EventsTopicDeliversToEncryptedQueues"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "messaging" {
  name          = "alias/${local.name_prefix}-messaging"
  target_key_id = aws_kms_key.messaging.key_id
}

resource "aws_kms_key" "logs" {
  description             = "${local.name_prefix}: CloudWatch log groups"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.key_admin_statement,
      {
        # Only for this stack's log groups: the encryption context names the group.
        Sid       = "CloudWatchLogsEncryptTheseLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = [
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.name_prefix}-*",
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${local.name_prefix}-*",
            ]
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name_prefix}-logs"
  target_key_id = aws_kms_key.logs.key_id
}
