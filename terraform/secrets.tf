# The two keys the code reads from Secrets Manager at cold start (infra/src/aws/runtime.rs):
#   jwt-secret — HS256 key of access tokens (any string);
#   card-key   — base64 of the 32-byte master key that encrypts gift card numbers and PINs.
# Both are encrypted under the data key. Their values are generated from AWS's own CSPRNG
# (GetRandomPassword) during apply and written with write-only arguments: they are in neither
# the plan nor the state, so state access never reveals a key.

resource "aws_secretsmanager_secret" "jwt" {
  #checkov:skip=CKV2_AWS_57:the code holds one JWT key per cold start and cannot verify with two, so rotation would reject live tokens; rotate by deploy instead
  name                    = "${local.name_prefix}/jwt-secret"
  description             = "Giftify HS256 key of access tokens"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret" "card_key" {
  #checkov:skip=CKV2_AWS_57:issued cards are sealed under this key and the vault has no key versions, so rotating it would make every card unreadable
  name                    = "${local.name_prefix}/card-key"
  description             = "Giftify base64 32-byte master key of gift card encryption"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

ephemeral "aws_secretsmanager_random_password" "jwt" {
  count    = var.generate_secret_values ? 1 : 0
  provider = aws.secret_generation

  password_length     = 64
  exclude_punctuation = true
}

ephemeral "aws_secretsmanager_random_password" "card_key" {
  count    = var.generate_secret_values ? 1 : 0
  provider = aws.secret_generation

  # 64 characters of the full printable set carry about 420 bits of entropy.
  password_length = 64
}

resource "aws_secretsmanager_secret_version" "jwt" {
  count = var.generate_secret_values ? 1 : 0

  secret_id        = aws_secretsmanager_secret.jwt.id
  secret_string_wo = ephemeral.aws_secretsmanager_random_password.jwt[0].random_password
  # Written once: a new value would reach running containers only at their next cold start,
  # and the code verifies with one key, so a JWT key change is a planned deploy, not a bump here.
  secret_string_wo_version = 1
}

resource "aws_secretsmanager_secret_version" "card_key" {
  count = var.generate_secret_values ? 1 : 0

  secret_id = aws_secretsmanager_secret.card_key.id
  # SHA-256 condenses the random password into exactly the 32 bytes AES-256-GCM needs, in the
  # standard base64 that CardKey::from_base64 reads.
  secret_string_wo = base64sha256(ephemeral.aws_secretsmanager_random_password.card_key[0].random_password)
  # Written once and never again: a new card key would make every issued card unreadable.
  secret_string_wo_version = 1
}
