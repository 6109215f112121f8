# A destroy of a stage that holds money fails before anything is deleted. Table deletion
# protection alone stops a destroy only when Terraform reaches the tables, after it has deleted
# both queues (with the orders waiting in them) and scheduled the card key for deletion.
#
# The guard depends on every other resource, so a destroy must delete it first; while
# deletion_protection is on, its destroy-time provisioner fails, and Terraform deletes nothing
# that the guard depends on — which is everything. To tear a stage down, lift the protection
# with an apply (the guard's input changes in place), then destroy (README, "Tear down").
# tests/tests/terraform_drift.rs fails when a resource is missing from depends_on.
resource "terraform_data" "destroy_guard" {
  input = var.deletion_protection

  provisioner "local-exec" {
    when    = destroy
    command = self.input ? "echo 'giftify: deletion_protection is on for this stage: apply with deletion_protection=false first (README, Tear down)' >&2; exit 1" : "true"
  }

  depends_on = [
    aws_sns_topic.alarms,
    aws_sns_topic_subscription.alarm_email,
    aws_cloudwatch_metric_alarm.dead_letters,
    aws_cloudwatch_metric_alarm.webhook_dead_letters,
    aws_cloudwatch_metric_alarm.oldest_order_message,
    aws_cloudwatch_metric_alarm.worker_errors,
    aws_cloudwatch_metric_alarm.failed_order_messages,
    aws_cloudwatch_metric_alarm.api_5xx_rate,
    aws_cloudwatch_metric_alarm.function_throttles,
    aws_cloudwatch_metric_alarm.table_throttles,
    aws_cloudwatch_dashboard.operations,
    aws_apigatewayv2_api.http,
    aws_apigatewayv2_integration.api,
    aws_apigatewayv2_route.default,
    aws_apigatewayv2_route.metrics,
    aws_cloudwatch_log_group.api_access,
    aws_apigatewayv2_stage.default,
    aws_lambda_permission.api_gateway,
    aws_dynamodb_table.this,
    aws_iam_role.function,
    aws_iam_role_policy.function,
    aws_kms_key.data,
    aws_kms_alias.data,
    aws_kms_key.messaging,
    aws_kms_alias.messaging,
    aws_kms_key.logs,
    aws_kms_alias.logs,
    aws_cloudwatch_log_group.function,
    aws_lambda_function.this,
    aws_lambda_event_source_mapping.orders,
    aws_lambda_event_source_mapping.webhooks,
    aws_cloudwatch_event_rule.reconciler,
    aws_cloudwatch_event_target.reconciler,
    aws_lambda_permission.reconciler_schedule,
    aws_secretsmanager_secret.jwt,
    aws_secretsmanager_secret.card_key,
    aws_secretsmanager_secret_version.jwt,
    aws_secretsmanager_secret_version.card_key,
    aws_sns_topic.order_events,
    aws_sns_topic_policy.order_events,
    aws_sns_topic_subscription.order_events,
    aws_sns_topic_subscription.webhooks,
    aws_sqs_queue.dead_letter,
    aws_sqs_queue.orders,
    aws_sqs_queue.webhooks,
    aws_sqs_queue.webhooks_dead_letter,
    aws_sqs_queue_redrive_allow_policy.dead_letter,
    aws_sqs_queue_redrive_allow_policy.webhooks_dead_letter,
    aws_sqs_queue_policy.tls_only,
    aws_sqs_queue_policy.webhooks,
  ]
}
