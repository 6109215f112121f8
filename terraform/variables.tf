# Inputs of the Giftify stack. Every default is what a production stage should run with unless
# it says otherwise; environments/*.tfvars show the usual overrides.

variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "ap-south-1"
}

variable "stage" {
  description = "Name infix of every resource: tables are giftify-<stage>-<table>, or giftify-<table> when empty. Must equal the GIFTIFY_STAGE the code runs with (set on the Lambdas here)."
  type        = string
  default     = ""

  # The same rule as Config::from_lookup in infra/src/config.rs, so the Lambdas accept it.
  validation {
    condition     = can(regex("^[A-Za-z0-9-]{0,32}$", var.stage))
    error_message = "stage must be up to 32 letters, digits or dashes (the GIFTIFY_STAGE rule)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (Application, Stage and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

# --- data --------------------------------------------------------------------------------

variable "deletion_protection" {
  description = "DynamoDB deletion protection. Keep true for any stage holding real money; turn off only to tear a test stage down."
  type        = bool
  default     = true
}

variable "point_in_time_recovery_days" {
  description = "How far back DynamoDB point-in-time recovery reaches (1-35 days)."
  type        = number
  default     = 35

  validation {
    condition     = var.point_in_time_recovery_days >= 1 && var.point_in_time_recovery_days <= 35
    error_message = "point_in_time_recovery_days must be between 1 and 35."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled KMS key deletion takes effect (7-30 days): the last chance to cancel the loss of every table, secret and message the key protects."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once: only for throwaway stages, since losing the card key makes every issued card unreadable)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "generate_secret_values" {
  description = "Generate the JWT key and the card master key at apply time (write-only: they never enter the state). Set false to put the values in out of band, e.g. when moving an existing card key over — and never turn it back on for that stage: it would write new keys over them, and cards sealed under the old card key could no longer be read."
  type        = bool
  default     = true
}

# --- queue -------------------------------------------------------------------------------

variable "queue_max_receives" {
  description = "Deliveries of an order message before SQS moves it to the dead-letter queue (the embedded backend's GIFTIFY_QUEUE_MAX_RECEIVES)."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_receives >= 1 && var.queue_max_receives <= 1000
    error_message = "queue_max_receives must be between 1 and 1000 (the SQS limits)."
  }
}

variable "fulfillment_batch_size" {
  description = "Messages per fulfillment invocation (FIFO queues allow at most 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.fulfillment_batch_size >= 1 && var.fulfillment_batch_size <= 10
    error_message = "fulfillment_batch_size must be between 1 and 10 for a FIFO queue."
  }
}

variable "fulfillment_maximum_concurrency" {
  description = "Most concurrent fulfillment invocations the SQS event source starts (2-1000); keep it at or below the function's reserved concurrency so the poller is never throttled."
  type        = number
  default     = 10

  validation {
    condition     = var.fulfillment_maximum_concurrency >= 2 && var.fulfillment_maximum_concurrency <= 1000
    error_message = "fulfillment_maximum_concurrency must be between 2 and 1000."
  }
}

# --- functions ---------------------------------------------------------------------------

variable "architecture" {
  description = "Lambda architecture. x86_64 is what scripts/lambda-zips builds (no aarch64 toolchain on the build machines); arm64 needs zips built with `cargo lambda build --arm64`."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "cargo_target_dir" {
  description = "Cargo target directory the zips were built in (CARGO_TARGET_DIR); cargo-lambda writes <dir>/lambda/<bin>/bootstrap.zip. Defaults to the repository's target/."
  type        = string
  default     = null
}

variable "api_zip_path" {
  description = "API Lambda package; defaults to <cargo_target_dir>/lambda/api-lambda/bootstrap.zip."
  type        = string
  default     = null
}

variable "fulfillment_zip_path" {
  description = "Fulfillment Lambda package; defaults to <cargo_target_dir>/lambda/fulfillment/bootstrap.zip."
  type        = string
  default     = null
}

variable "reconciler_zip_path" {
  description = "Reconciler Lambda package; defaults to <cargo_target_dir>/lambda/reconciler/bootstrap.zip."
  type        = string
  default     = null
}

variable "api_function" {
  description = "API Lambda sizing. Memory buys CPU too (1,769 MB = one vCPU): argon2id password hashing on login and register is the CPU-bound path. Timeout at most 29 s, under API Gateway's 30 s integration limit. reserved_concurrency -1 = none (for accounts whose concurrency quota is still 10)."
  type = object({
    memory_mb            = optional(number, 1024)
    timeout_seconds      = optional(number, 15)
    reserved_concurrency = optional(number, 100)
  })
  default = {}

  validation {
    condition     = var.api_function.timeout_seconds >= 1 && var.api_function.timeout_seconds <= 29
    error_message = "api_function.timeout_seconds must be between 1 and 29 (API Gateway cuts integrations at 30 s)."
  }
  validation {
    condition     = var.api_function.memory_mb >= 128 && var.api_function.memory_mb <= 10240
    error_message = "api_function.memory_mb must be between 128 and 10240."
  }
  validation {
    condition     = var.api_function.reserved_concurrency == -1 || var.api_function.reserved_concurrency >= 1
    error_message = "api_function.reserved_concurrency must be -1 (none) or at least 1 (0 would disable the function)."
  }
}

variable "fulfillment_function" {
  description = "Fulfillment Lambda sizing. The orders queue's visibility timeout is derived as 6x timeout_seconds (the AWS rule for SQS event sources), so a slow batch is never handed to a second worker while the first still runs it. reserved_concurrency -1 = none."
  type = object({
    memory_mb            = optional(number, 512)
    timeout_seconds      = optional(number, 60)
    reserved_concurrency = optional(number, 10)
  })
  default = {}

  validation {
    condition     = var.fulfillment_function.timeout_seconds >= 1 && var.fulfillment_function.timeout_seconds <= 900
    error_message = "fulfillment_function.timeout_seconds must be between 1 and 900."
  }
  validation {
    condition     = var.fulfillment_function.memory_mb >= 128 && var.fulfillment_function.memory_mb <= 10240
    error_message = "fulfillment_function.memory_mb must be between 128 and 10240."
  }
  validation {
    condition     = var.fulfillment_function.reserved_concurrency == -1 || var.fulfillment_function.reserved_concurrency >= 1
    error_message = "fulfillment_function.reserved_concurrency must be -1 (none) or at least 1 (0 would stop fulfillment and push every order towards the DLQ)."
  }
}

variable "reconciler_function" {
  description = "Reconciler Lambda sizing. Reserved concurrency 1 keeps scheduled passes from overlapping (-1 = none)."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 60)
    reserved_concurrency = optional(number, 1)
  })
  default = {}

  validation {
    condition     = var.reconciler_function.timeout_seconds >= 1 && var.reconciler_function.timeout_seconds <= 900
    error_message = "reconciler_function.timeout_seconds must be between 1 and 900."
  }
  validation {
    condition     = var.reconciler_function.memory_mb >= 128 && var.reconciler_function.memory_mb <= 10240
    error_message = "reconciler_function.memory_mb must be between 128 and 10240."
  }
  validation {
    condition     = var.reconciler_function.reserved_concurrency == -1 || var.reconciler_function.reserved_concurrency >= 1
    error_message = "reconciler_function.reserved_concurrency must be -1 (none) or at least 1."
  }
}

variable "dispatcher_zip_path" {
  description = "Webhook dispatcher Lambda package; defaults to <cargo_target_dir>/lambda/dispatcher/bootstrap.zip."
  type        = string
  default     = null
}

variable "dispatcher_function" {
  description = "Webhook dispatcher Lambda sizing. A batch posts to endpoints one after another, each POST bounded by 5 s; the webhook queue's visibility timeout is 6x timeout_seconds. reserved_concurrency -1 = none."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 60)
    reserved_concurrency = optional(number, 5)
  })
  default = {}

  validation {
    condition     = var.dispatcher_function.timeout_seconds >= 10 && var.dispatcher_function.timeout_seconds <= 900
    error_message = "dispatcher_function.timeout_seconds must be between 10 and 900 (one POST may take 5 s)."
  }
  validation {
    condition     = var.dispatcher_function.memory_mb >= 128 && var.dispatcher_function.memory_mb <= 10240
    error_message = "dispatcher_function.memory_mb must be between 128 and 10240."
  }
  validation {
    condition     = var.dispatcher_function.reserved_concurrency == -1 || var.dispatcher_function.reserved_concurrency >= 2
    error_message = "dispatcher_function.reserved_concurrency must be -1 (none) or at least 2 (the least concurrency an SQS event source scales to)."
  }
}

variable "webhook_disable_after_seconds" {
  description = "How long a webhook endpoint may fail every delivery before it is disabled and the other endpoints are told (GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS)."
  type        = number
  default     = 259200

  validation {
    condition     = var.webhook_disable_after_seconds >= 1 && var.webhook_disable_after_seconds <= 2592000
    error_message = "webhook_disable_after_seconds must be between 1 and 2592000 (the range the code accepts)."
  }
}

variable "reconciler_schedule" {
  description = "EventBridge schedule of the reconciler (refunds orders stuck past their deadline, re-enqueues stale PENDING orders, publishes events a crash left unsent). One minute is EventBridge's finest rate."
  type        = string
  default     = "rate(1 minute)"
}

variable "reconciler_paused" {
  description = "Pause the reconciler's schedule. Only while `giftify migrate` fills a new stage (README, \"Moving a machine to AWS\"): apply with true before the copy, false once it is verified."
  type        = bool
  default     = false
}

variable "stuck_order_refund_seconds" {
  description = "Age after which the reconciler gives up an order that is still not final, dead-lettered or not, with a full refund (GIFTIFY_STUCK_ORDER_REFUND_SECS). On AWS it must outlast a message's every retry: a crashed or timed-out fulfillment invocation's message comes back only after the visibility timeout (6 x the function timeout), up to queue_max_receives times — 30 minutes with the defaults — hence an hour here rather than the code's 15 minutes."
  type        = number
  default     = 3600

  validation {
    condition     = var.stuck_order_refund_seconds >= 6 * var.fulfillment_function.timeout_seconds * var.queue_max_receives && var.stuck_order_refund_seconds <= 2592000
    error_message = "stuck_order_refund_seconds must be at least 6 x fulfillment_function.timeout_seconds x queue_max_receives (a message's whole retry span, or orders that would still be fulfilled are refunded) and at most 2592000."
  }
}

variable "stale_pending_seconds" {
  description = "Age after which the reconciler re-enqueues a PENDING order (GIFTIFY_STALE_PENDING_SECS)."
  type        = number
  default     = 120

  validation {
    condition     = var.stale_pending_seconds >= 0 && var.stale_pending_seconds <= 86400
    error_message = "stale_pending_seconds must be between 0 and 86400 (the range the code accepts)."
  }
}

variable "api_key_rate_limit" {
  description = "Requests each API key may make per 10-second window, counted in DynamoDB so the limit holds across every API Lambda instance (GIFTIFY_API_KEY_RATE_LIMIT)."
  type        = number
  default     = 100

  validation {
    condition     = var.api_key_rate_limit >= 1 && var.api_key_rate_limit <= 100000
    error_message = "api_key_rate_limit must be between 1 and 100000 (the range the code accepts)."
  }
}

variable "user_rate_limits" {
  description = "Each customer's budgets (GIFTIFY_USER_RATE_LIMITS): off, or action=REQUESTS/SECONDS items for register (per client address), topup, order, reveal and redeem (per account) that change the code's defaults. Empty keeps the defaults."
  type        = string
  default     = ""

  validation {
    condition = trimspace(var.user_rate_limits) == "off" || alltrue([
      for item in compact([for part in split(",", var.user_rate_limits) : trimspace(part)]) :
      can(regex("^(register|topup|order|reveal|redeem)=off$", item)) || try(
        can(regex("^(register|topup|order|reveal|redeem)=[0-9]+/[0-9]+$", item)) &&
        tonumber(regex("=([0-9]+)/", item)[0]) >= 1 &&
        tonumber(regex("=([0-9]+)/", item)[0]) <= 1000000 &&
        tonumber(regex("/([0-9]+)$", item)[0]) >= 1 &&
        tonumber(regex("/([0-9]+)$", item)[0]) <= 86400,
        false
      )
    ])
    error_message = "user_rate_limits must be empty, off, or comma-separated items like order=30/60 or register=off: REQUESTS 1–1000000, SECONDS 1–86400 (the range the code accepts)."
  }
}

variable "self_top_up" {
  description = "Whether customers may credit their own wallets with POST /wallet/topup (GIFTIFY_SELF_TOPUP). Set false for a shop that takes real money: wallets are then credited by admins' balance corrections and card redemptions only, and a top-up answers 403 SELF_TOPUP_DISABLED."
  type        = bool
  default     = true
}

variable "sandbox" {
  description = "A test deployment (GIFTIFY_SANDBOX): orders may ask for a rehearsed outcome in metadata.sandbox. Never true for a stage that takes real money."
  type        = bool
  default     = false
}

variable "wallet_max_balance_paise" {
  description = "Largest wallet balance in paise (GIFTIFY_WALLET_MAX_BALANCE); 20000000 = Rs 2,00,000, the RBI cap on a full-KYC prepaid wallet."
  type        = number
  default     = 20000000

  validation {
    condition     = var.wallet_max_balance_paise >= 1 && var.wallet_max_balance_paise <= 1000000000000
    error_message = "wallet_max_balance_paise must be between 1 and 10^12 (the range the code accepts)."
  }
}

variable "log_filter" {
  description = "RUST_LOG of the Lambdas."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of function and access logs. 365 days meets PCI DSS 10.5.1 (a year of audit history)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs supports (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary for the three function roles, where the account requires one."
  type        = string
  default     = null
}

# --- API ---------------------------------------------------------------------------------

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the API stage admits (across all clients)."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be positive."
  }
}

variable "api_throttling_burst_limit" {
  description = "Request burst the API stage admits above the steady rate."
  type        = number
  default     = 200

  validation {
    condition     = var.api_throttling_burst_limit >= 0
    error_message = "api_throttling_burst_limit must not be negative."
  }
}

# --- events ------------------------------------------------------------------------------

variable "event_email_subscriptions" {
  description = "Email addresses subscribed to order and card events, each with the event types it wants (empty = all). Each address must confirm the subscription from the email SNS sends."
  type = list(object({
    endpoint    = string
    event_types = optional(list(string), [])
  }))
  default = []
}

variable "event_https_subscriptions" {
  description = "HTTPS webhooks subscribed to order and card events, each with the event types it wants (empty = all). The endpoint must confirm the subscription (SubscribeURL) and should verify SNS signatures (SignatureVersion 2, SHA256)."
  type = list(object({
    endpoint    = string
    event_types = optional(list(string), [])
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.event_https_subscriptions : startswith(s.endpoint, "https://")])
    error_message = "event_https_subscriptions endpoints must be https:// URLs: order events carry amounts and user ids."
  }
}

# --- alarms ------------------------------------------------------------------------------

variable "alarm_topic_arn" {
  description = "Existing SNS topic (pager, chat) that alarms notify. When null, a topic is created if alarm_email_addresses is not empty; with neither, alarms only show in CloudWatch."
  type        = string
  default     = null
}

variable "alarm_email_addresses" {
  description = "Email addresses subscribed to the created alarm topic (ignored when alarm_topic_arn is set)."
  type        = list(string)
  default     = []
}

variable "alarm_oldest_message_seconds" {
  description = "Alarm when the oldest order message has waited this long: orders are stuck (a blocked message group, a failing worker)."
  type        = number
  default     = 300
}

variable "alarm_failed_messages" {
  description = "Alarm when this many order messages fail in five minutes (each failure is retried; a steady stream means a broken dependency)."
  type        = number
  default     = 5
}

variable "alarm_api_5xx_percent" {
  description = "Alarm when this percentage of API requests in five minutes end in a 5xx (evaluated only with at least 20 requests)."
  type        = number
  default     = 1
}

variable "catalogue_cache_ms" {
  description = "Milliseconds each API function instance serves GET /products from memory (GIFTIFY_CATALOGUE_TTL_MS): DynamoDB keeps no catalogue version, so a stock or price change shows up to this late on the catalogue (never at checkout, which reads current prices and stock). 0 reads the tables on every request."
  type        = number
  default     = 1000
  validation {
    condition     = var.catalogue_cache_ms >= 0 && var.catalogue_cache_ms <= 60000 && floor(var.catalogue_cache_ms) == var.catalogue_cache_ms
    error_message = "catalogue_cache_ms must be a whole number from 0 to 60000."
  }
}

variable "order_wait_max_seconds" {
  description = "Longest a GET /orders/{id} with Prefer: wait holds an API function instance waiting for the order to become final (GIFTIFY_ORDER_WAIT_MAX_SECS; further capped at the API function's timeout - 3 s). Each waiting request holds one unit of the function's concurrency: while orders stay pending (a backlog, a stuck group) waits run to this cap, so keep it short. 0 turns waiting off."
  type        = number
  default     = 5
  validation {
    condition     = var.order_wait_max_seconds >= 0 && var.order_wait_max_seconds <= 20 && floor(var.order_wait_max_seconds) == var.order_wait_max_seconds
    error_message = "order_wait_max_seconds must be a whole number from 0 to 20."
  }
}
