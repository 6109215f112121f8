# Terraform 1.11 for write-only arguments and ephemeral resources: the JWT key and the card
# master key are generated at apply time and written to Secrets Manager without ever entering
# the state (secrets.tf). Provider 5.88 is the first with `secret_string_wo`.
terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0, >= 5.88"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Application = "giftify"
      Stage       = var.stage == "" ? "default" : var.stage
      ManagedBy   = "terraform"
    })
  }
}

# Only the ephemeral password generators (secrets.tf) use this configuration. It is the same
# account and region; it exists because `terraform test` can mock every resource type but not
# ephemeral ones (Terraform 1.11), so the tests replace this one provider with an offline one.
provider "aws" {
  alias  = "secret_generation"
  region = var.region
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}
