# DynamoDB: the tables of infra/src/aws/tables.rs, and how every one of them is protected.

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

run "every_table_is_on_demand_recoverable_encrypted_and_protected" {
  command = plan

  assert {
    condition     = length(aws_dynamodb_table.this) == 17
    error_message = "Expected the 17 tables of tables.rs ALL, got ${length(aws_dynamodb_table.this)}."
  }
  assert {
    condition     = alltrue([for t in aws_dynamodb_table.this : t.billing_mode == "PAY_PER_REQUEST"])
    error_message = "Every table must be on-demand."
  }
  assert {
    condition     = alltrue([for t in aws_dynamodb_table.this : t.point_in_time_recovery[0].enabled && t.point_in_time_recovery[0].recovery_period_in_days == 35])
    error_message = "Every table must have 35 days of point-in-time recovery."
  }
  assert {
    condition     = alltrue([for t in aws_dynamodb_table.this : t.server_side_encryption[0].enabled && t.server_side_encryption[0].kms_key_arn == aws_kms_key.data.arn])
    error_message = "Every table must be encrypted under the stack's data key."
  }
  assert {
    condition     = alltrue([for t in aws_dynamodb_table.this : t.deletion_protection_enabled])
    error_message = "Deletion protection must be on by default."
  }
  assert {
    condition     = terraform_data.destroy_guard.input == true
    error_message = "The destroy guard must refuse a destroy by default, before anything is deleted."
  }
  assert {
    condition     = aws_kms_key.data.enable_key_rotation && aws_kms_key.messaging.enable_key_rotation && aws_kms_key.logs.enable_key_rotation
    error_message = "Every customer-managed key must rotate."
  }
}

run "tables_carry_the_stage_in_their_names" {
  command = plan

  assert {
    condition = toset(values(output.table_names)) == toset([
      "giftify-test-users", "giftify-test-wallet-transactions", "giftify-test-products",
      "giftify-test-product-variants", "giftify-test-cart", "giftify-test-orders",
      "giftify-test-gift-cards", "giftify-test-idempotency-keys", "giftify-test-refresh-tokens",
      "giftify-test-login-throttle", "giftify-test-audit", "giftify-test-inventory-codes",
      "giftify-test-code-batches", "giftify-test-api-keys", "giftify-test-events",
      "giftify-test-webhooks", "giftify-test-daily-figures",
    ])
    error_message = "Table names must be giftify-<stage>-<table>: ${jsonencode(output.table_names)}"
  }
}

run "an_empty_stage_gives_the_names_without_infix" {
  command = plan

  variables {
    stage = ""
  }

  assert {
    condition     = aws_dynamodb_table.this["orders"].name == "giftify-orders" && aws_dynamodb_table.this["gift-cards"].name == "giftify-gift-cards"
    error_message = "Without a stage, tables are giftify-<table>."
  }
  assert {
    condition     = aws_sqs_queue.orders.name == "giftify-orders.fifo" && aws_sqs_queue.dead_letter.name == "giftify-orders-dlq.fifo"
    error_message = "Without a stage, the queues are giftify-orders.fifo and giftify-orders-dlq.fifo."
  }
  assert {
    condition     = aws_sns_topic.order_events.name == "giftify-order-events"
    error_message = "Without a stage, the topic is giftify-order-events."
  }
}

run "keys_and_indexes_are_the_code_s" {
  command = plan

  assert {
    condition     = aws_dynamodb_table.this["orders"].hash_key == "orderId" && aws_dynamodb_table.this["orders"].range_key == null
    error_message = "orders is keyed by orderId alone."
  }
  assert {
    condition     = aws_dynamodb_table.this["wallet-transactions"].hash_key == "userId" && aws_dynamodb_table.this["wallet-transactions"].range_key == "transactionId"
    error_message = "wallet-transactions is keyed by userId + transactionId."
  }
  assert {
    condition     = aws_dynamodb_table.this["product-variants"].hash_key == "productId" && aws_dynamodb_table.this["product-variants"].range_key == "variantId"
    error_message = "product-variants is keyed by productId + variantId."
  }
  assert {
    condition     = toset([for i in aws_dynamodb_table.this["orders"].global_secondary_index : i.name]) == toset(["userId-createdAt-index", "status-createdAt-index", "notifyPending-index"])
    error_message = "orders needs its three indexes (user history, status scans, unsent events)."
  }
  assert {
    condition = anytrue([
      for i in aws_dynamodb_table.this["gift-cards"].global_secondary_index :
      i.name == "giftCardNumber-index" && i.hash_key == "giftCardNumberHash" && i.range_key == null
    ])
    error_message = "gift-cards looks cards up by the HMAC of the number, never the number."
  }
  assert {
    condition = alltrue(flatten([
      for name, t in aws_dynamodb_table.this : [
        for i in t.global_secondary_index : i.projection_type == lookup({
          "active-name-index"                     = "ALL"
          "availableVariant-availableOrder-index" = "ALL"
          "batchKey-codeId-index"                 = "INCLUDE"
          "ledgerDay-createdAt-index"             = "ALL"
        }, i.name, "KEYS_ONLY")
      ]
    ]))
    error_message = "Indexes copy only keys (the adapter reads items by key after the query), except the active catalogue index, which serves whole products, the pool of available codes, which allocation issues from, the batch index, which counts codes by state, and the ledger's day index, whose entries never change and which the export reads whole."
  }
  assert {
    condition     = alltrue(flatten([for t in aws_dynamodb_table.this : [for a in t.attribute : a.type == "S"]]))
    error_message = "Every key attribute is a string."
  }
  assert {
    # DynamoDB rejects attribute definitions that no key uses.
    condition = alltrue([
      for t in aws_dynamodb_table.this : toset([for a in t.attribute : a.name]) == toset(compact(flatten([
        t.hash_key, t.range_key, [for i in t.global_secondary_index : [i.hash_key, i.range_key]],
      ])))
    ])
    error_message = "Attribute definitions must be exactly the key attributes."
  }
}

run "only_expiring_records_have_a_ttl" {
  command = plan

  assert {
    condition = alltrue([
      for name in ["idempotency-keys", "refresh-tokens", "login-throttle", "audit"] :
      aws_dynamodb_table.this[name].ttl[0].enabled && aws_dynamodb_table.this[name].ttl[0].attribute_name == "expiresAt"
    ])
    error_message = "Idempotency keys, refresh tokens, login throttles and queue failure notes (audit) expire on expiresAt."
  }
  assert {
    condition = alltrue([
      for name, t in aws_dynamodb_table.this :
      contains(["idempotency-keys", "refresh-tokens", "login-throttle", "audit"], name) || alltrue([for ttl in t.ttl : !ttl.enabled])
    ])
    error_message = "No other table may expire items: orders, cards and wallet records are kept."
  }
}

run "deletion_protection_can_be_lifted_for_a_throwaway_stage" {
  command = plan

  variables {
    deletion_protection = false
  }

  assert {
    condition     = alltrue([for t in aws_dynamodb_table.this : !t.deletion_protection_enabled])
    error_message = "deletion_protection = false must reach every table."
  }
  assert {
    condition     = terraform_data.destroy_guard.input == false
    error_message = "deletion_protection = false must lift the destroy guard."
  }
}
