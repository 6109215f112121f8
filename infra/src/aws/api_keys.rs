//! API keys (secrets only as their SHA-256).

use super::store::{DynamoStore, lost_race_or_error, names_of};
use crate::aws::item::{Attrs, Item, item, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::api_keys::{ApiKey, ApiKeyId, Scope};
use giftify_shared::ids::UserId;
use giftify_shared::ports::ApiKeys;
use giftify_shared::{Error, Result};

fn key_key(id: &ApiKeyId) -> Item {
    item([("keyId", s(id.as_str()))])
}

pub(super) fn key_item(key: &ApiKey) -> Item {
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    item([
        ("keyId", s(key.id.as_str())),
        ("userId", s(key.user_id.as_str())),
        ("name", s(&key.name)),
        ("scopes", s(scopes.join(" "))),
        ("secretHash", s(&key.secret_hash)),
        ("prefix", s(&key.prefix)),
        ("createdAt", ts(key.created_at)),
    ])
}

pub(super) fn key_from(raw: &Item) -> Result<ApiKey> {
    let a = Attrs::new(raw, "api-keys");
    Ok(ApiKey {
        id: ApiKeyId::parse(a.s("keyId")?)?,
        user_id: UserId::parse(a.s("userId")?)?,
        name: a.s("name")?.to_string(),
        scopes: a
            .s("scopes")?
            .split(' ')
            .map(|name| Scope::parse(name).ok_or_else(|| Error::internal("an unknown scope")))
            .collect::<Result<_>>()?,
        secret_hash: a.s("secretHash")?.to_string(),
        prefix: a.s("prefix")?.to_string(),
        created_at: a.ts("createdAt")?,
        last_used_at: a.opt_ts("lastUsedAt")?,
        revoked_at: a.opt_ts("revokedAt")?,
    })
}

#[async_trait]
impl ApiKeys for DynamoStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.tables.api_keys)
            .set_item(Some(key_item(key)))
            .condition_expression("attribute_not_exists(keyId)")
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>> {
        self.get(&self.tables.api_keys, key_key(id))
            .await?
            .as_ref()
            .map(key_from)
            .transpose()
    }

    /// The keys-only index gives the ids; the keys are then read in one consistent batch, so
    /// a key just revoked never lists as live.
    async fn api_keys_of(&self, user: &UserId) -> Result<Vec<ApiKey>> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.api_keys)
            .index_name("userId-createdAt-index")
            .key_condition_expression("#userId = :user")
            .set_expression_attribute_names(names_of(&["#userId"]))
            .expression_attribute_values(":user", s(user.as_str()))
            .scan_index_forward(false);
        let ids = super::store::all_pages!(query.clone())
            .iter()
            .map(|raw| {
                Ok(key_key(&ApiKeyId::parse(
                    Attrs::new(raw, "api-keys").s("keyId")?,
                )?))
            })
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = self
            .batch_get(&self.tables.api_keys, ids)
            .await?
            .iter()
            .map(key_from)
            .collect::<Result<Vec<_>>>()?;
        keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(keys)
    }

    async fn revoke_api_key(
        &self,
        user: &UserId,
        id: &ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.api_keys)
            .set_key(Some(key_key(id)))
            .update_expression("SET #revokedAt = :now")
            .condition_expression("#userId = :user AND attribute_not_exists(#revokedAt)")
            .set_expression_attribute_names(names_of(&["#revokedAt #userId"]))
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        if let Err(error) = result
            && let Some(error) = lost_race_or_error(error)
        {
            return Err(error);
        }
        // Revoked now, revoked before, or not the user's: the key as it is says which.
        match self.api_key(id).await? {
            Some(key) if key.user_id == *user => Ok(key),
            _ => Err(Error::NotFound(Missing::ApiKey)),
        }
    }

    async fn touch_api_key(
        &self,
        id: &ApiKeyId,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.api_keys)
            .set_key(Some(key_key(id)))
            .update_expression("SET #lastUsedAt = :now")
            .condition_expression(
                "attribute_exists(keyId) AND (attribute_not_exists(#lastUsedAt) OR #lastUsedAt < :since)",
            )
            .set_expression_attribute_names(names_of(&["#lastUsedAt"]))
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":since", ts(since))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Recorded by a concurrent request of the same minute.
            Err(error) => lost_race_or_error(error).map_or(Ok(()), Err),
        }
    }
}
