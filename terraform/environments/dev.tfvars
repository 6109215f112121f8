# A development stage: small, cheap, easy to tear down. Apply with
#   terraform apply -var-file=environments/dev.tfvars
stage  = "dev"
region = "ap-south-1"

# Tear-down is routine here; never copy these three to a stage with real money.
deletion_protection         = false
secret_recovery_window_days = 0
kms_deletion_window_days    = 7
log_retention_days          = 30

# Sized for an account whose Lambda concurrency quota is still the initial 10: no reservations
# (reserving any would leave fewer than the 10 unreserved executions AWS requires).
api_function         = { memory_mb = 1024, timeout_seconds = 15, reserved_concurrency = -1 }
fulfillment_function = { memory_mb = 512, timeout_seconds = 60, reserved_concurrency = -1 }
reconciler_function  = { memory_mb = 256, timeout_seconds = 60, reserved_concurrency = -1 }

fulfillment_maximum_concurrency = 2

api_throttling_rate_limit  = 20
api_throttling_burst_limit = 40

log_filter = "info,giftify_infra=debug,giftify_shared=debug"

# A webhook receiving only terminal outcomes that need attention (example filter policy on the
# `eventType` message attribute).
event_https_subscriptions = [
  {
    endpoint    = "https://hooks.dev.example.in/giftify/order-events"
    event_types = ["order.refunded", "order.partially_fulfilled"]
  },
]

alarm_email_addresses = ["giftify-dev-alerts@example.in"]
