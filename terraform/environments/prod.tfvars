# Production. Apply with
#   terraform apply -var-file=environments/prod.tfvars
stage  = "prod"
region = "ap-south-1"

# The defaults already protect data (deletion protection, 35 days of point-in-time recovery,
# 30-day recovery windows for keys and secrets, a year of logs); stated here so a review of
# this file shows them.
deletion_protection         = true
point_in_time_recovery_days = 35
secret_recovery_window_days = 30
kms_deletion_window_days    = 30
log_retention_days          = 365

api_function         = { memory_mb = 1769, timeout_seconds = 15, reserved_concurrency = 200 }
fulfillment_function = { memory_mb = 1024, timeout_seconds = 60, reserved_concurrency = 50 }
reconciler_function  = { memory_mb = 256, timeout_seconds = 60, reserved_concurrency = 1 }

fulfillment_batch_size          = 10
fulfillment_maximum_concurrency = 50
queue_max_receives              = 5

api_throttling_rate_limit  = 500
api_throttling_burst_limit = 1000

log_filter = "info"

# Finance wants every refund by email; the partner webhook gets the outcomes it acts on.
event_email_subscriptions = [
  { endpoint = "finance-ops@example.in", event_types = ["order.refunded", "order.partially_fulfilled", "order.cancelled"] },
]
event_https_subscriptions = [
  {
    endpoint    = "https://partner.example.in/webhooks/giftify"
    event_types = ["order.fulfilled", "order.partially_fulfilled", "order.refunded", "order.cancelled"]
  },
]

# The on-call pager topic (replace with the real ARN).
alarm_topic_arn = "arn:aws:sns:ap-south-1:111111111111:oncall-pager"
