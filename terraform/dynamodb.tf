# The tables of infra/src/aws/tables.rs, one resource per entry of local.dynamodb_tables, so
# that every table gets the same protection: on-demand capacity (no capacity planning, and no
# throttling from a provisioned ceiling during a sale), point-in-time recovery, encryption under
# the stack's own key, and deletion protection.

resource "aws_dynamodb_table" "this" {
  for_each = local.dynamodb_tables

  name         = local.table_names[each.key]
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value.hash_key
  range_key    = each.value.range_key

  # Only key attributes are declared; every Giftify key is a string.
  dynamic "attribute" {
    for_each = toset(compact(flatten([
      each.value.hash_key,
      each.value.range_key,
      [for index in values(each.value.indexes) : [index.hash_key, index.range_key]],
    ])))
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.indexes
    content {
      name               = global_secondary_index.key
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = global_secondary_index.value.projection
      non_key_attributes = try(global_secondary_index.value.non_key_attributes, null)
    }
  }

  # Idempotency keys, refresh tokens, login throttles and queue failure notes (in audit; card
  # reveal records there carry no expiry and are kept) have epoch-seconds expiries.
  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled                 = true
    recovery_period_in_days = var.point_in_time_recovery_days
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }

  deletion_protection_enabled = var.deletion_protection
}
