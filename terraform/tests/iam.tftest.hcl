# IAM: one role per function, each limited to the tables, indexes, actions, queue, topic, keys
# and secrets its code path uses.

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

run "each_function_has_its_own_role_and_policy" {
  command = plan

  assert {
    condition     = toset([for r in aws_iam_role.function : r.name]) == toset(["giftify-test-api-function", "giftify-test-dispatcher-function", "giftify-test-fulfillment-function", "giftify-test-reconciler-function"])
    error_message = "One role per function."
  }
  assert {
    condition     = alltrue([for r in aws_iam_role.function : jsondecode(r.assume_role_policy).Statement[0].Principal.Service == "lambda.amazonaws.com"])
    error_message = "Only Lambda may assume the function roles."
  }
  assert {
    condition     = alltrue([for name, p in aws_iam_role_policy.function : p.role == aws_iam_role.function[name].id])
    error_message = "Each policy is attached to its own function's role."
  }
}

run "the_reconciler_touches_only_orders_and_what_expires" {
  command = plan

  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.function["reconciler"].policy).Statement :
      [for r in flatten([s.Resource]) : r if startswith(r, "arn:aws:dynamodb:")] if s.Sid != "KeyCheckValues"
      ])) == toset([
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-orders",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-orders/index/status-createdAt-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-orders/index/notifyPending-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-gift-cards",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-gift-cards/index/activeCard-expiryDate-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-gift-cards/index/notifyPending-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-webhooks",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-webhooks/index/due-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-products",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-product-variants",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-product-variants/index/variantId-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-inventory-codes",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-inventory-codes/index/availableVariant-availableOrder-index",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-events",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-users",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-wallet-transactions",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-cart",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-audit",
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-daily-figures",
    ])
    error_message = "The reconciler reads stale and unnotified orders and cards, refunds orders stuck past their deadline (balance, REFUND record, cart, audit entry, the day's figures), expires cards and codes, records the events it publishes, and finds overdue webhook deliveries; nothing else."
  }
  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.function["reconciler"].policy).Statement :
      flatten([s.Action]) if s.Sid != "KeyCheckValues" && !contains(["arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-events", "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-wallet-transactions", "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-audit"], s.Resource) && anytrue([for r in flatten([s.Resource]) : startswith(r, "arn:aws:dynamodb:")])
    ])) == toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:Scan"])
    error_message = "The reconciler reads, marks orders notified, refunds stuck orders and expires cards and codes (besides the key check values every function reads, and the records it appends)."
  }
  assert {
    condition = !anytrue([
      for s in jsondecode(aws_iam_role_policy.function["reconciler"].policy).Statement :
      contains(flatten([s.Action]), "dynamodb:PutItem") || contains(flatten([s.Action]), "dynamodb:DeleteItem")
      if s.Sid != "KeyCheckValues" && !contains(["arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-events", "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-wallet-transactions", "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-audit"], s.Resource)
    ])
    error_message = "The reconciler creates and deletes nothing (besides the key check values every function writes once, and what it appends: feed entries, REFUND records, audit entries)."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.function["reconciler"].policy).Statement :
      !contains(flatten([s.Action]), "dynamodb:DeleteItem") && !contains(flatten([s.Action]), "dynamodb:UpdateItem")
      if contains(["arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-events", "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-wallet-transactions", "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-audit"], s.Resource)
    ])
    error_message = "The feed, the ledger's records and the audit log are append-only: the reconciler adds to them, never changes or deletes."
  }
}

run "the_fulfillment_worker_cannot_reach_accounts_scan_or_delete" {
  command = plan

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.function["fulfillment"].policy).Statement : [
        for r in flatten([s.Resource]) : !anytrue([
          for t in ["idempotency-keys", "refresh-tokens", "login-throttle"] :
          startswith(r, "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-${t}")
        ])
      ]
    ]))
    error_message = "Fulfillment has no business with sessions, throttles or idempotency keys."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.function["fulfillment"].policy).Statement :
      flatten([s.Action]) == ["dynamodb:PutItem"] if s.Resource == "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-audit" && s.Sid != "KeyCheckValues"
    ])
    error_message = "Fulfillment may only add failure notes to the audit table, never read it (it holds card reveals)."
  }
  assert {
    condition = alltrue([
      for name in ["api", "fulfillment", "reconciler"] : length([
        for s in jsondecode(aws_iam_role_policy.function[name].policy).Statement : s
        if s.Sid == "KeyCheckValues" && try(s.Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"], null) == ["KEYCHECK"]
      ]) == 1
    ])
    error_message = "Every function reads and records the key check values, and only those items of the audit table."
  }
  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.function["fulfillment"].policy).Statement : [
        for a in flatten([s.Action]) : !contains(["dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:DescribeTable"], a)
      ]
    ]))
    error_message = "Fulfillment needs no Scan, DeleteItem or DescribeTable."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_iam_role_policy.function["fulfillment"].policy).Statement :
      s.Resource == "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-gift-cards" && flatten([s.Action]) == ["dynamodb:PutItem"]
    ])
    error_message = "Fulfillment may only add gift cards, never read or change them."
  }
}

run "the_dispatcher_reaches_only_the_webhooks_table_and_its_queue" {
  command = plan

  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.function["dispatcher"].policy).Statement :
      [for r in flatten([s.Resource]) : r if startswith(r, "arn:aws:dynamodb:")] if s.Sid != "KeyCheckValues"
      ])) == toset([
      "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-webhooks",
    ])
    error_message = "The dispatcher reads and writes webhook endpoints and deliveries only: no money, no orders, no cards."
  }
  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.function["dispatcher"].policy).Statement :
      [for r in flatten([s.Resource]) : r if startswith(r, "arn:aws:sqs:") || startswith(r, "arn:aws:sns:")]
    ])) == toset([aws_sqs_queue.webhooks.arn])
    error_message = "The dispatcher consumes (and wakes itself through) the webhook queue, and touches no other queue or topic."
  }
  assert {
    condition     = !anytrue([for s in jsondecode(aws_iam_role_policy.function["dispatcher"].policy).Statement : contains(flatten([s.Action]), "dynamodb:DeleteItem") || contains(flatten([s.Action]), "sns:Publish")])
    error_message = "The dispatcher deletes no endpoint and publishes nothing."
  }
  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.function["dispatcher"].policy).Statement : s.Resource if s.Sid == "ReadKeysAtColdStart"
    ])) == toset([aws_secretsmanager_secret.card_key.arn])
    error_message = "The dispatcher opens the sealed signing secrets with the card key, and never reads the access-token key."
  }
}

run "only_fulfillment_issues_cards_and_receives_orders" {
  command = plan

  assert {
    condition = !anytrue(flatten([
      for name in ["api", "reconciler"] : [
        for s in jsondecode(aws_iam_role_policy.function[name].policy).Statement :
        s.Resource == "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-gift-cards" && length(setintersection(flatten([s.Action]), ["dynamodb:PutItem", "dynamodb:DeleteItem"])) > 0
      ]
    ]))
    error_message = "Only the fulfillment worker issues gift cards; the API (redeem, reveal, return) and the reconciler (expiry) only change a card's status, and nothing deletes one."
  }
  assert {
    condition = !anytrue(flatten([
      for name in ["api", "reconciler"] : [
        for s in jsondecode(aws_iam_role_policy.function[name].policy).Statement :
        (contains(flatten([s.Action]), "sqs:ReceiveMessage") || contains(flatten([s.Action]), "sqs:DeleteMessage"))
        && contains(flatten([s.Resource]), aws_sqs_queue.orders.arn)
      ]
    ]))
    error_message = "Only the fulfillment worker consumes the orders queue."
  }
  assert {
    condition = !anytrue(flatten([
      for name, p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement :
        name != "api" && contains(flatten([s.Resource]), aws_sqs_queue.dead_letter.arn) && length(setsubtract(flatten([s.Action]), ["sqs:GetQueueAttributes", "sqs:SendMessage"])) > 0
      ]
    ]))
    error_message = "No worker may take dead letters: redriving or refunding one is an admin's decision, made through the API (audited)."
  }
  assert {
    condition = length(setsubtract(
      toset(flatten([for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Action if contains(flatten([s.Resource]), aws_sqs_queue.dead_letter.arn)])),
      toset(["sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"]),
    )) == 0
    error_message = "The API reads, hides and deletes dead letters for /admin/dead-letters, and never sends one there."
  }
  assert {
    condition = alltrue(flatten([
      for name, p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement :
        name == "fulfillment" if contains(flatten([s.Resource]), aws_sqs_queue.dead_letter.arn) && contains(flatten([s.Action]), "sqs:SendMessage")
      ]
    ]))
    error_message = "Only the fulfillment worker puts messages into the dead-letter queue (those no retry can cure)."
  }
  assert {
    condition = alltrue([
      for name, p in aws_iam_role_policy.function : anytrue([
        for s in jsondecode(p.policy).Statement : s.Action == "sns:Publish" && s.Resource == aws_sns_topic.order_events.arn
      ]) if name != "dispatcher"
    ])
    error_message = "Every function but the dispatcher publishes order events (placement, fulfillment, reconciler), to this topic only."
  }
}

run "keys_are_usable_only_through_their_services" {
  command = plan

  assert {
    condition = alltrue(flatten([
      for p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement :
        can(s.Condition.StringEquals["kms:ViaService"]) if anytrue([for a in flatten([s.Action]) : startswith(a, "kms:")])
      ]
    ]))
    error_message = "Every KMS permission must be limited to use through DynamoDB, Secrets Manager, Lambda, SQS or SNS."
  }
  assert {
    condition = alltrue([
      for name, p in aws_iam_role_policy.function : anytrue([
        for s in jsondecode(p.policy).Statement :
        s.Action == "secretsmanager:GetSecretValue" && toset(flatten([s.Resource])) == (
          name == "api"
          ? toset([aws_secretsmanager_secret.jwt.arn, aws_secretsmanager_secret.card_key.arn])
          : toset([aws_secretsmanager_secret.card_key.arn])
        )
      ])
    ])
    error_message = "The API reads both keys; the workers only the card key (they never sign or verify tokens)."
  }
  assert {
    condition = alltrue(flatten([
      for p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement :
        alltrue([for a in flatten([s.Action]) : startswith(a, "xray:")]) if contains(flatten([s.Resource]), "*")
      ]
    ]))
    error_message = "Only X-Ray (which has no resource-level permissions) may use Resource *."
  }
  assert {
    condition = alltrue([
      for name, p in aws_iam_role_policy.function : anytrue([
        for s in jsondecode(p.policy).Statement :
        s.Resource == "${aws_cloudwatch_log_group.function[name].arn}:*" && !contains(flatten([s.Action]), "logs:CreateLogGroup")
      ])
    ])
    error_message = "Each function writes only its own, pre-created log group."
  }
}

run "a_permissions_boundary_can_be_required" {
  command = plan

  variables {
    permissions_boundary_arn = "arn:aws:iam::123456789012:policy/workload-boundary"
  }

  assert {
    condition     = alltrue([for r in aws_iam_role.function : r.permissions_boundary == "arn:aws:iam::123456789012:policy/workload-boundary"])
    error_message = "The boundary must reach every function role."
  }
}

run "the_checks_inside_admin_and_reconciler_transactions_are_allowed" {
  command = plan

  assert {
    condition = anytrue([
      for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement :
      contains(flatten([s.Action]), "dynamodb:ConditionCheckItem") && contains(flatten([s.Resource]), "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-users")
    ])
    error_message = "An admin suspending another admin checks the acting admin's account in the same transaction (ConditionCheckItem on users)."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_iam_role_policy.function["reconciler"].policy).Statement :
      contains(flatten([s.Action]), "dynamodb:GetItem") && contains(flatten([s.Resource]), "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-wallet-transactions")
    ])
    error_message = "A give-up that finds its order final reads its own refund record (GetItem on wallet-transactions)."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_iam_role_policy.function["fulfillment"].policy).Statement :
      contains(flatten([s.Action]), "dynamodb:UpdateItem") && contains(flatten([s.Resource]), "arn:aws:dynamodb:ap-south-1:123456789012:table/giftify-test-daily-figures")
    ])
    error_message = "The completion transaction adds to its day's figures (UpdateItem on daily-figures)."
  }
}
