# Inputs that would deploy something broken are refused at plan time.

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

run "a_stage_the_code_would_reject_is_refused" {
  command = plan

  variables {
    stage = "prod eu"
  }

  expect_failures = [var.stage]
}

run "a_fifo_batch_cannot_exceed_ten" {
  command = plan

  variables {
    fulfillment_batch_size = 11
  }

  expect_failures = [var.fulfillment_batch_size]
}

run "the_api_must_answer_within_the_gateway_timeout" {
  command = plan

  variables {
    api_function = { timeout_seconds = 30 }
  }

  expect_failures = [var.api_function]
}

run "fulfillment_cannot_be_switched_off_by_a_zero_reservation" {
  command = plan

  variables {
    fulfillment_function = { reserved_concurrency = 0 }
  }

  expect_failures = [var.fulfillment_function]
}

run "the_poller_may_not_outrun_the_reservation" {
  command = plan

  variables {
    fulfillment_function            = { reserved_concurrency = 5 }
    fulfillment_maximum_concurrency = 6
  }

  expect_failures = [aws_lambda_event_source_mapping.orders]
}

run "a_retention_cloudwatch_does_not_offer_is_refused" {
  command = plan

  variables {
    log_retention_days = 100
  }

  expect_failures = [var.log_retention_days]
}

run "every_message_is_delivered_at_least_once" {
  command = plan

  variables {
    queue_max_receives = 0
  }

  expect_failures = [var.queue_max_receives]
}

run "a_stuck_order_deadline_shorter_than_a_message_s_retries_is_refused" {
  command = plan

  variables {
    # 6 x 60 s visibility x 5 receives = 30 minutes of retries: 15 minutes would refund orders
    # a worker may still fulfil.
    stuck_order_refund_seconds = 900
  }

  expect_failures = [var.stuck_order_refund_seconds]
}

run "budgets_the_code_would_reject_are_refused" {
  command = plan
  variables {
    user_rate_limits = "order=0/60,register=1/86401"
  }
  expect_failures = [var.user_rate_limits]
}

run "budgets_the_code_accepts_pass" {
  command = plan
  variables {
    user_rate_limits = "order=120/60, register=off"
  }
}
