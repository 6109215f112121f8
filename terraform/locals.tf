locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # `giftify` or `giftify-<stage>`: the prefix the code puts on every name it looks up
  # (TableDef::name in infra/src/aws/tables.rs, resource_name in infra/src/aws/mod.rs).
  name_prefix = var.stage == "" ? "giftify" : "giftify-${var.stage}"
  # The `stage` dimension of Giftify's own metrics (infra/src/metrics.rs; "default" unstaged).
  metric_stage = var.stage == "" ? "default" : var.stage

  # Every DynamoDB table of infra/src/aws/tables.rs (`ALL`), keyed by its short name: keys,
  # global secondary indexes with their projections, and TTL attribute. Every key attribute is
  # a string, as `giftify aws bootstrap` creates them. Most indexes copy only keys (the adapter
  # reads the items by key after the query, so a balance or status change is not also an index
  # write); the active catalogue index copies whole products. tests/tests/terraform_drift.rs
  # reads this map through `terraform console` and fails when it and the code disagree.
  dynamodb_tables = {
    "users" = {
      hash_key      = "userId"
      range_key     = null
      ttl_attribute = null
      # An email is found through its EMAIL# guard item, which also keeps it unique.
      indexes = {}
    }
    "wallet-transactions" = {
      hash_key      = "userId"
      range_key     = "transactionId"
      ttl_attribute = null
      # A user's ledger is the table's own partition, in the order of its sortable ids.
      indexes = {
        # Every account's ledger by UTC day (four partitions a day: `2026-12-07#2`), for the
        # admins' export; whole items (an entry never changes, so its copy is written once).
        "ledgerDay-createdAt-index" = { hash_key = "ledgerDay", range_key = "createdAt", projection = "ALL" }
      }
    }
    "products" = {
      hash_key      = "productId"
      range_key     = null
      ttl_attribute = null
      indexes = {
        # Sparse: `activeKey` is "true" on active products only (keys cannot be booleans).
        # Whole items: the catalogue page reads products straight from it.
        "active-name-index" = { hash_key = "activeKey", range_key = "name", projection = "ALL" }
      }
    }
    "product-variants" = {
      hash_key      = "productId"
      range_key     = "variantId"
      ttl_attribute = null
      indexes = {
        "variantId-index" = { hash_key = "variantId", range_key = null, projection = "KEYS_ONLY" }
      }
    }
    "cart" = {
      hash_key      = "userId"
      range_key     = null
      ttl_attribute = null
      indexes       = {}
    }
    "orders" = {
      hash_key      = "orderId"
      range_key     = null
      ttl_attribute = null
      indexes = {
        "userId-createdAt-index" = { hash_key = "userId", range_key = "createdAt", projection = "KEYS_ONLY" }
        "status-createdAt-index" = { hash_key = "status", range_key = "createdAt", projection = "KEYS_ONLY" }
        # Sparse: `notifyPending` exists only while a final order's event is unsent.
        "notifyPending-index" = { hash_key = "notifyPending", range_key = "createdAt", projection = "KEYS_ONLY" }
      }
    }
    "gift-cards" = {
      hash_key      = "giftCardId"
      range_key     = null
      ttl_attribute = null
      indexes = {
        "userId-issuedAt-index" = { hash_key = "userId", range_key = "issuedAt", projection = "KEYS_ONLY" }
        # The keyed HMAC of the card number, never the number.
        "giftCardNumber-index" = { hash_key = "giftCardNumberHash", range_key = null, projection = "KEYS_ONLY" }
        # Sparse: only ACTIVE cards, by expiry date (the reconciler expires them).
        "activeCard-expiryDate-index" = { hash_key = "activeCard", range_key = "expiryDate", projection = "KEYS_ONLY" }
        # Sparse: only redeemed or returned cards whose event is unsent (the reconciler sends it).
        "notifyPending-index" = { hash_key = "notifyPending", range_key = "issuedAt", projection = "KEYS_ONLY" }
      }
    }
    "idempotency-keys" = {
      hash_key      = "scopeKey"
      range_key     = null
      ttl_attribute = "expiresAt"
      indexes       = {}
    }
    "refresh-tokens" = {
      hash_key      = "tokenHash"
      range_key     = null
      ttl_attribute = "expiresAt"
      indexes       = {}
    }
    "login-throttle" = {
      hash_key      = "account"
      range_key     = null
      ttl_attribute = "expiresAt"
      indexes       = {}
    }
    "audit" = {
      hash_key      = "subjectId"
      range_key     = "auditId"
      ttl_attribute = "expiresAt"
      indexes       = {}
    }
    # Brand codes, keyed by the keyed HMAC of the number (a number is importable once).
    "inventory-codes" = {
      hash_key      = "codeHash"
      range_key     = null
      ttl_attribute = null
      indexes = {
        # Sparse: only available codes, first-expiring first; whole items (allocation issues them).
        "availableVariant-availableOrder-index" = { hash_key = "availableVariant", range_key = "availableOrder", projection = "ALL" }
        "batchKey-codeId-index"                 = { hash_key = "batchKey", range_key = "codeId", projection = "INCLUDE", non_key_attributes = ["state", "expiryDate", "returned"] }
      }
    }
    "code-batches" = {
      hash_key      = "variantId"
      range_key     = "batchRef"
      ttl_attribute = null
      indexes       = {}
    }
    # The event feed: a partition per feed and per order, by 20-digit position; a guard per event.
    "events" = {
      hash_key      = "feedKey"
      range_key     = "position"
      ttl_attribute = null
      indexes       = {}
    }
    # API keys by id (the id is in the key); a user's keys through a keys-only index.
    "api-keys" = {
      hash_key      = "keyId"
      range_key     = null
      ttl_attribute = null
      indexes = {
        "userId-createdAt-index" = { hash_key = "userId", range_key = "createdAt", projection = "KEYS_ONLY" }
      }
    }
    # Webhook endpoints (partition `endpoints`) and each endpoint's deliveries, with a guard
    # item per event (infra/src/aws/webhooks.rs).
    "webhooks" = {
      hash_key      = "scope"
      range_key     = "itemKey"
      ttl_attribute = null
      indexes = {
        # Sparse: only pending deliveries, by when they are due (the reconciler's sweep).
        "due-index" = { hash_key = "dueShard", range_key = "dueAt", projection = "KEYS_ONLY" }
      }
    }
    # The daily figures: an item per shard and UTC day, its counters added to in the same
    # transactions that change money, orders and cards (shared/src/figures.rs).
    "daily-figures" = {
      hash_key      = "shard"
      range_key     = "day"
      ttl_attribute = null
      indexes       = {}
    }
  }

  table_names = { for short, _ in local.dynamodb_tables : short => "${local.name_prefix}-${short}" }

  # Queue and topic names as infra/src/aws/mod.rs derives them.
  queue_name                     = "${local.name_prefix}-orders.fifo"
  dead_letter_queue_name         = "${local.name_prefix}-orders-dlq.fifo"
  topic_name                     = "${local.name_prefix}-order-events"
  webhook_queue_name             = "${local.name_prefix}-webhooks"
  webhook_dead_letter_queue_name = "${local.name_prefix}-webhooks-dlq"

  # The same rule for the webhook queue and its dispatcher.
  webhook_queue_visibility_seconds = 6 * var.dispatcher_function.timeout_seconds

  # SQS event sources need the visibility timeout at least 6x the function timeout: a batch
  # that is retried inside one invocation must never become visible to a second worker.
  queue_visibility_seconds = 6 * var.fulfillment_function.timeout_seconds

  target_dir = coalesce(var.cargo_target_dir, "${path.module}/../target")

  # What every function reads at cold start (Config::from_env, infra/src/config.rs). The code
  # looks queues and the topic up by name when their URL/ARN is missing, which would need
  # sqs:GetQueueUrl and sns:ListTopics: setting them keeps those permissions out of the roles.
  # Keys by least privilege: every function builds the core, which holds the card key; only the
  # API signs and verifies access tokens, so only it gets the JWT key's ARN (and may read it,
  # iam.tf). A compromised worker cannot mint tokens.
  lambda_environment = {
    GIFTIFY_BACKEND                    = "aws"
    GIFTIFY_STAGE                      = var.stage
    GIFTIFY_QUEUE_URL                  = aws_sqs_queue.orders.url
    GIFTIFY_DLQ_URL                    = aws_sqs_queue.dead_letter.url
    GIFTIFY_TOPIC_ARN                  = aws_sns_topic.order_events.arn
    GIFTIFY_WEBHOOK_QUEUE_URL          = aws_sqs_queue.webhooks.url
    GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS = tostring(var.webhook_disable_after_seconds)
    GIFTIFY_CARD_KEY_SECRET_ARN        = aws_secretsmanager_secret.card_key.arn
    GIFTIFY_STALE_PENDING_SECS         = tostring(var.stale_pending_seconds)
    GIFTIFY_STUCK_ORDER_REFUND_SECS    = tostring(var.stuck_order_refund_seconds)
    GIFTIFY_WALLET_MAX_BALANCE         = tostring(var.wallet_max_balance_paise)
    GIFTIFY_SANDBOX                    = tostring(var.sandbox)
    GIFTIFY_LOG_FORMAT                 = "json"
    RUST_LOG                           = var.log_filter
  }

  # The four functions: binary (= zip directory cargo-lambda writes), sizing and package.
  functions = {
    api = {
      bin         = "api-lambda"
      description = "Giftify HTTP API (axum behind API Gateway HTTP API)"
      settings    = var.api_function
      zip_path    = coalesce(var.api_zip_path, "${local.target_dir}/lambda/api-lambda/bootstrap.zip")
      environment = merge(local.lambda_environment, {
        GIFTIFY_JWT_SECRET_ARN     = aws_secretsmanager_secret.jwt.arn
        GIFTIFY_API_KEY_RATE_LIMIT = tostring(var.api_key_rate_limit)
        GIFTIFY_SELF_TOPUP         = tostring(var.self_top_up)
        GIFTIFY_USER_RATE_LIMITS   = var.user_rate_limits
        # A status read with Prefer: wait must answer before the function times out: the
        # cap leaves 3 s for the read, the answer and a cold start's share.
        GIFTIFY_ORDER_WAIT_MAX_SECS = tostring(max(0, min(var.order_wait_max_seconds, var.api_function.timeout_seconds - 3)))
        GIFTIFY_CATALOGUE_TTL_MS    = tostring(var.catalogue_cache_ms)
      })
      secrets = [aws_secretsmanager_secret.jwt.arn, aws_secretsmanager_secret.card_key.arn]
    }
    fulfillment = {
      bin         = "fulfillment"
      description = "Giftify fulfillment worker (SQS FIFO orders queue, partial batch responses)"
      settings    = var.fulfillment_function
      zip_path    = coalesce(var.fulfillment_zip_path, "${local.target_dir}/lambda/fulfillment/bootstrap.zip")
      environment = local.lambda_environment
      secrets     = [aws_secretsmanager_secret.card_key.arn]
    }
    dispatcher = {
      bin         = "dispatcher"
      description = "Giftify webhook dispatcher (SQS webhook queue: events from the topic, delivery wake-ups)"
      settings    = var.dispatcher_function
      zip_path    = coalesce(var.dispatcher_zip_path, "${local.target_dir}/lambda/dispatcher/bootstrap.zip")
      environment = local.lambda_environment
      # The signing secrets are sealed under the card key.
      secrets = [aws_secretsmanager_secret.card_key.arn]
    }
    reconciler = {
      bin         = "reconciler"
      description = "Giftify reconciler (scheduled: re-enqueues stale PENDING orders, sends owed events)"
      settings    = var.reconciler_function
      zip_path    = coalesce(var.reconciler_zip_path, "${local.target_dir}/lambda/reconciler/bootstrap.zip")
      environment = local.lambda_environment
      secrets     = [aws_secretsmanager_secret.card_key.arn]
    }
  }

  function_names = { for name, _ in local.functions : name => "${local.name_prefix}-${name}" }
}
