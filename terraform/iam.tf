# One role per function, each allowed exactly what its code path calls. The DynamoDB lists
# below were read off the adapter (infra/src/aws/dynamo/*.rs): a transaction item needs the
# action it performs (Put → PutItem, Update → UpdateItem, ConditionCheck → ConditionCheckItem),
# an index query needs Query on that index only. Adding a table call to the code means adding
# it here; tests/iam.tftest.hcl pins what each worker may not do.

locals {
  dynamodb_access = {
    # The HTTP API: accounts, wallet, catalogue, cart, placing/cancelling orders, reading cards,
    # redeeming a Giftify card (found by the HMAC of its number).
    api = {
      # ConditionCheckItem: an admin suspending another admin checks, in the same transaction,
      # that the acting admin is still an active admin.
      "users"               = { actions = ["GetItem", "PutItem", "UpdateItem", "ConditionCheckItem", "DescribeTable", "Scan"], indexes = [] }
      "wallet-transactions" = { actions = ["GetItem", "PutItem", "Query"], indexes = ["ledgerDay-createdAt-index"] }
      "products"            = { actions = ["BatchGetItem", "Scan", "PutItem", "ConditionCheckItem"], indexes = ["active-name-index"] }
      "product-variants"    = { actions = ["BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem"], indexes = ["variantId-index"] }
      "cart"                = { actions = ["GetItem", "PutItem", "UpdateItem"], indexes = [] }
      "orders"              = { actions = ["GetItem", "BatchGetItem", "PutItem", "UpdateItem"], indexes = ["userId-createdAt-index", "status-createdAt-index"] }
      "gift-cards"          = { actions = ["GetItem", "BatchGetItem", "UpdateItem", "Query"], indexes = ["giftCardNumber-index", "userId-issuedAt-index", "activeCard-expiryDate-index"] }
      "idempotency-keys"    = { actions = ["GetItem", "PutItem", "UpdateItem", "DeleteItem"], indexes = [] }
      "refresh-tokens"      = { actions = ["GetItem", "PutItem", "UpdateItem", "ConditionCheckItem"], indexes = [] }
      # Failed logins, and each API key's request count per window (one conditional UpdateItem).
      "login-throttle" = { actions = ["GetItem", "PutItem", "UpdateItem", "DeleteItem"], indexes = [] }
      # The event feed: events recorded (cancel, redeem, return) and paged.
      "events" = { actions = ["GetItem", "PutItem", "Query"], indexes = [] }
      # API keys: created, read by id on every keyed request, listed, revoked, use recorded.
      "api-keys" = { actions = ["GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query"], indexes = ["userId-createdAt-index"] }
      "audit"    = { actions = ["PutItem", "Query"], indexes = [] }
      # Code imports (a conditional put per code), the batch listing and voids.
      "inventory-codes" = { actions = ["GetItem", "PutItem", "UpdateItem", "Query"], indexes = ["batchKey-codeId-index"] }
      "code-batches"    = { actions = ["GetItem", "PutItem", "UpdateItem", "Query"], indexes = [] }
      # Webhook endpoints managed, deliveries listed, retried and recovered (a delivery is
      # opened with a guard item in one transaction).
      "webhooks" = { actions = ["GetItem", "PutItem", "Query", "DeleteItem"], indexes = [] }
      # Every money, order and card write adds to its day's figures in its transaction (an
      # UpdateItem ADD); an account's first request of a day and a refused payment add on
      # their own; admin analytics query each shard's days.
      "daily-figures" = { actions = ["UpdateItem", "Query"], indexes = [] }
    }
    # One order message: PENDING → PROCESSING, read stock (and a brand variant's codes), then
    # one transaction of stock decrements, allocated codes, cards, final status, refund
    # (balance + REFUND record) and cart release; a message that fails leaves a note of why in
    # the audit table (`giftify dlq list` shows it).
    fulfillment = {
      "orders"              = { actions = ["GetItem", "UpdateItem"], indexes = [] }
      "product-variants"    = { actions = ["BatchGetItem", "UpdateItem"], indexes = ["variantId-index"] }
      "products"            = { actions = ["BatchGetItem"], indexes = [] }
      "gift-cards"          = { actions = ["PutItem"], indexes = [] }
      "users"               = { actions = ["GetItem", "UpdateItem"], indexes = [] }
      "wallet-transactions" = { actions = ["PutItem"], indexes = [] }
      "cart"                = { actions = ["GetItem", "UpdateItem"], indexes = [] }
      "audit"               = { actions = ["PutItem"], indexes = [] }
      # Each final order's event is recorded in the feed before it is published.
      "events" = { actions = ["GetItem", "PutItem", "Query"], indexes = [] }
      # A brand line reads its pool first-expiring first and allocates each code in the
      # completion transaction.
      "inventory-codes" = { actions = ["Query", "UpdateItem"], indexes = ["availableVariant-availableOrder-index"] }
      # The completion transaction adds to its day's figures.
      "daily-figures" = { actions = ["UpdateItem"], indexes = [] }
    }
    # Each event or wake-up: the endpoints read, deliveries opened (guard and delivery in one
    # transaction), claimed and recorded with versioned puts, an endpoint's health saved.
    dispatcher = {
      "webhooks" = { actions = ["GetItem", "PutItem", "Query"], indexes = [] }
    }
    # Stale PENDING orders, orders stuck past their deadline and unsent events, found through
    # keys-only indexes and then read by key. A stuck order is given up in one transaction:
    # REFUNDED, the balance credited with its REFUND record, a cart checkout's cart unlocked;
    # each refund is an entry of the audit log.
    reconciler = {
      "orders" = { actions = ["GetItem", "BatchGetItem", "UpdateItem"], indexes = ["status-createdAt-index", "notifyPending-index"] }
      "users"  = { actions = ["GetItem", "UpdateItem"], indexes = [] }
      # A give-up that finds its order final reads its own refund record: if it is there, the
      # commit's answer was lost and the give-up happened.
      "wallet-transactions" = { actions = ["GetItem", "PutItem"], indexes = [] }
      "cart"                = { actions = ["GetItem", "UpdateItem"], indexes = [] }
      "audit"               = { actions = ["PutItem"], indexes = [] }
      # Expiry: ACTIVE cards past their date (a sparse index), and each brand variant's
      # available codes past theirs, which leave its stock. Card events still owed: another
      # sparse index, each card read again before it is announced.
      "gift-cards"       = { actions = ["GetItem", "BatchGetItem", "UpdateItem"], indexes = ["activeCard-expiryDate-index", "notifyPending-index"] }
      "products"         = { actions = ["Scan"], indexes = [] }
      "product-variants" = { actions = ["Scan", "Query", "UpdateItem"], indexes = ["variantId-index"] }
      "inventory-codes"  = { actions = ["UpdateItem"], indexes = ["availableVariant-availableOrder-index"] }
      # Events a crash left unpublished are recorded in the feed first (once, by event id).
      "events" = { actions = ["GetItem", "PutItem", "Query"], indexes = [] }
      # Overdue webhook deliveries, through the sparse due index, each read again by key.
      "webhooks" = { actions = ["GetItem"], indexes = ["due-index"] }
      # A give-up's refund and each card's expiry add to their day's figures.
      "daily-figures" = { actions = ["UpdateItem"], indexes = [] }
    }
  }

  # What each function does with the orders queue, its DLQ, the events topic and the webhook
  # queue.
  messaging_access = {
    # Enqueue on order placement; /metrics reads both queue depths; cancel publishes an event;
    # a webhook retry or recover wakes the dispatcher. Admins list, redrive and settle dead
    # letters (/admin/dead-letters): receive (SQS has no peek), hide, delete, and send back to
    # the orders queue.
    api = {
      queue         = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
      dead_letter   = ["sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"]
      publish       = true
      webhook_queue = ["sqs:SendMessage"]
    }
    # The event source mapping polls with the function's role; the function sets a failed
    # message's backoff (ChangeMessageVisibility) and moves a message no retry can cure into
    # the dead-letter queue at once (SendMessage there, then DeleteMessage here).
    fulfillment = {
      queue         = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      dead_letter   = ["sqs:SendMessage"]
      publish       = true
      webhook_queue = []
    }
    # The event source mapping polls the webhook queue with the function's role; a retry
    # coming due is a wake-up the function sends to the same queue.
    dispatcher = {
      queue         = []
      dead_letter   = []
      publish       = false
      webhook_queue = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"]
    }
    # Re-enqueue stale orders, publish owed events (and the refunds of stuck orders), wake
    # overdue webhook deliveries.
    reconciler = {
      queue         = ["sqs:SendMessage"]
      dead_letter   = []
      publish       = true
      webhook_queue = ["sqs:SendMessage"]
    }
  }

  # Whether a function writes to DynamoDB (every one does today; reads alone need only Decrypt).
  dynamodb_writes = {
    for name, tables in local.dynamodb_access : name => anytrue([
      for table in values(tables) : length(setintersection(table.actions, ["PutItem", "UpdateItem", "DeleteItem"])) > 0
    ])
  }

  function_policies = {
    for name, tables in local.dynamodb_access : name => {
      Version = "2012-10-17"
      Statement = concat(
        [
          for short, access in tables : {
            Sid      = "Table${replace(title(short), "-", "")}"
            Effect   = "Allow"
            Action   = [for action in access.actions : "dynamodb:${action}"]
            Resource = aws_dynamodb_table.this[short].arn
          }
        ],
        [
          for short, access in tables : {
            Sid      = "Indexes${replace(title(short), "-", "")}"
            Effect   = "Allow"
            Action   = "dynamodb:Query"
            Resource = [for index in access.indexes : "${aws_dynamodb_table.this[short].arn}/index/${index}"]
          } if length(access.indexes) > 0
        ],
        [
          {
            # The tables are encrypted under the data key; DynamoDB uses it on the caller's
            # behalf, so the caller needs the key, but only through DynamoDB.
            Sid    = "TableEncryptionKey"
            Effect = "Allow"
            Action = concat(
              ["kms:Decrypt", "kms:DescribeKey"],
              local.dynamodb_writes[name] ? ["kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"] : [],
            )
            Resource  = aws_kms_key.data.arn
            Condition = { StringEquals = { "kms:ViaService" = "dynamodb.${local.region}.amazonaws.com" } }
          },
          {
            # AwsRuntime::open compares the function's keys with the stage's check values
            # (giftify_shared::keys) and records them on a stage's first start: the KEYCHECK
            # items of the audit table only, never the card reveals beside them.
            Sid       = "KeyCheckValues"
            Effect    = "Allow"
            Action    = ["dynamodb:GetItem", "dynamodb:PutItem"]
            Resource  = aws_dynamodb_table.this["audit"].arn
            Condition = { "ForAllValues:StringEquals" = { "dynamodb:LeadingKeys" = ["KEYCHECK"] } }
          },
          {
            # AwsRuntime::open reads the function's own keys at cold start (local.functions).
            Sid      = "ReadKeysAtColdStart"
            Effect   = "Allow"
            Action   = "secretsmanager:GetSecretValue"
            Resource = local.functions[name].secrets
          },
          {
            # Secret values and the function's environment are encrypted under the data key.
            Sid      = "DecryptSecretsAndEnvironment"
            Effect   = "Allow"
            Action   = "kms:Decrypt"
            Resource = aws_kms_key.data.arn
            Condition = {
              StringEquals = {
                "kms:ViaService" = [
                  "secretsmanager.${local.region}.amazonaws.com",
                  "lambda.${local.region}.amazonaws.com",
                ]
              }
            }
          },
        ],
        name != "api" ? [] : [
          {
            # /admin/dead-letters shows why each letter failed: the SQS# failure notes of the
            # audit table, read only.
            Sid       = "FailureNotes"
            Effect    = "Allow"
            Action    = ["dynamodb:GetItem"]
            Resource  = aws_dynamodb_table.this["audit"].arn
            Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["SQS#*"] } }
          },
        ],
        length(local.messaging_access[name].queue) == 0 ? [] : [
          {
            Sid      = "OrdersQueue"
            Effect   = "Allow"
            Action   = local.messaging_access[name].queue
            Resource = aws_sqs_queue.orders.arn
          },
        ],
        length(local.messaging_access[name].webhook_queue) == 0 ? [] : [
          {
            Sid      = "WebhookQueue"
            Effect   = "Allow"
            Action   = local.messaging_access[name].webhook_queue
            Resource = aws_sqs_queue.webhooks.arn
          },
        ],
        length(local.messaging_access[name].dead_letter) == 0 ? [] : [
          {
            Sid      = "DeadLetterQueue"
            Effect   = "Allow"
            Action   = local.messaging_access[name].dead_letter
            Resource = aws_sqs_queue.dead_letter.arn
          },
        ],
        local.messaging_access[name].publish ? [
          {
            Sid      = "PublishOrderEvents"
            Effect   = "Allow"
            Action   = "sns:Publish"
            Resource = aws_sns_topic.order_events.arn
          },
        ] : [],
        [
          {
            # Queue messages and events are encrypted under the messaging key: sending and
            # publishing make data keys, receiving decrypts.
            Sid      = "MessagingKey"
            Effect   = "Allow"
            Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
            Resource = aws_kms_key.messaging.arn
            Condition = {
              StringEquals = {
                "kms:ViaService" = [
                  "sqs.${local.region}.amazonaws.com",
                  "sns.${local.region}.amazonaws.com",
                ]
              }
            }
          },
          {
            # Log groups are pre-created (lambda.tf), so no logs:CreateLogGroup.
            Sid      = "WriteOwnLogs"
            Effect   = "Allow"
            Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
            Resource = "${aws_cloudwatch_log_group.function[name].arn}:*"
          },
          {
            # X-Ray has no resource-level permissions for these two actions.
            Sid      = "Tracing"
            Effect   = "Allow"
            Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
            Resource = "*"
          },
        ],
      )
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name                 = "${local.function_names[each.key]}-function"
  description          = "Execution role of ${local.function_names[each.key]}"
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = jsonencode(local.function_policies[each.key])
}
