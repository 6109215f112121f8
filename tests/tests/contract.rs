//! The port contract suite: every MUST clause of `giftify_shared::ports`, written once against
//! [`Ports`] and run against every backend.
//!
//! A case is `async fn(&Ports) -> anyhow::Result<()>` in one of the modules below and never
//! names a backend type. A backend is a factory in [`backends`] that returns fresh, empty
//! ports; `contract_suite!(name)` generates one `#[tokio::test]` per case for it, so a failure
//! reads `sqlite::placing_an_order_with_insufficient_balance_changes_nothing`. The AWS backend
//! joins with one factory and one `contract_suite!` line.

#[path = "contract/accounts.rs"]
mod accounts;
#[path = "contract/api_keys.rs"]
mod api_keys;
#[path = "contract/audit.rs"]
mod audit;
#[path = "contract/cart.rs"]
mod cart;
#[path = "contract/catalogue.rs"]
mod catalogue;
#[path = "contract/codes.rs"]
mod codes;
#[path = "contract/feed.rs"]
mod feed;
#[path = "contract/idempotency.rs"]
mod idempotency;
#[path = "contract/keys.rs"]
mod keys;
#[path = "contract/orders.rs"]
mod orders;
#[path = "contract/queue.rs"]
mod queue;
#[path = "contract/reports.rs"]
mod reports;
#[path = "contract/support.rs"]
mod support;
#[path = "contract/wallet.rs"]
mod wallet;
#[path = "contract/webhooks.rs"]
mod webhooks;

use giftify_shared::ports::Ports;

/// Fresh ports of one backend, and whatever keeps their storage alive.
pub struct Backend {
    pub ports: Ports,
    _storage: Box<dyn std::any::Any + Send + Sync>,
}

mod backends {
    use super::Backend;
    use giftify_infra::embedded::SqliteStore;

    /// The embedded backend on a database in a fresh temporary directory; events are logged.
    pub async fn sqlite() -> anyhow::Result<Backend> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("giftify.db"), Default::default()).await?;
        Ok(Backend {
            ports: giftify_infra::embedded::ports_of(&store)?,
            _storage: Box::new(dir),
        })
    }

    /// The AWS backend on a fresh stage of the moto server: its own tables, queues and topic.
    pub async fn dynamodb() -> anyhow::Result<Backend> {
        let stack = giftify_tests::moto::AwsTestStack::start(3, 30).await;
        Ok(Backend {
            ports: stack.runtime.aws.ports(),
            _storage: Box::new(stack),
        })
    }
}

/// One test per case for `$backend`.
macro_rules! cases {
    ($backend:ident; $($module:ident::$case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> anyhow::Result<()> {
                let backend = crate::backends::$backend().await?;
                crate::$module::$case(&backend.ports).await
            }
        )+
    };
}

/// The whole suite for one backend factory of [`backends`].
macro_rules! contract_suite {
    ($backend:ident) => {
        mod $backend {
            cases!($backend;
                accounts::creating_a_user_with_a_taken_email_fails_and_changes_nothing,
                accounts::a_new_user_is_active_with_a_zero_balance_and_found_by_email,
                accounts::a_profile_update_changes_only_the_given_fields,
                accounts::updating_or_logging_in_an_unknown_user_is_not_found,
                accounts::make_admin_promotes_rekeys_and_raises_the_session_epoch,
                accounts::a_rotation_keeps_the_session_epoch_the_family_started_under,
                accounts::rotating_a_refresh_token_spends_it_and_issues_its_successor,
                keys::a_key_check_value_is_recorded_once_and_the_first_one_stays,
                keys::sealed_cards_counts_every_issued_card,
                accounts::presenting_a_spent_refresh_token_revokes_the_whole_family,
                accounts::unknown_expired_and_revoked_refresh_tokens_are_invalid_and_store_nothing,
                accounts::logout_revokes_only_the_family_of_the_token,
                accounts::support_pages_through_every_account_once_and_finds_one_by_email,
                accounts::a_suspension_is_conditional_on_the_status_read_and_ends_the_sessions,
                accounts::an_admin_suspends_another_only_while_still_an_active_admin,
                accounts::the_throttle_locks_an_account_after_max_failures_within_the_window,
                accounts::a_failure_recorded_while_locked_keeps_the_lock_as_it_is,
                accounts::failures_spread_beyond_the_window_do_not_lock,
                accounts::a_reset_clears_the_failures_of_one_account_only,
                feed::an_event_is_recorded_once_and_numbered_among_its_orders_events,
                feed::racing_recordings_leave_no_gap_for_a_reader,
                feed::one_event_recorded_by_racing_writers_is_recorded_once,
                api_keys::keys_are_stored_listed_and_revoked_by_their_owner_only,
                api_keys::a_keys_use_is_recorded_at_most_once_a_minute,
                api_keys::concurrent_requests_are_counted_exactly_to_the_windows_limit,
                webhooks::endpoints_are_created_once_and_saved_over_their_version,
                webhooks::a_delivery_is_opened_once_per_endpoint_and_event_even_racing,
                webhooks::deliveries_are_saved_over_their_version_and_listed_by_state,
                wallet::a_top_up_credits_the_wallet_and_records_the_balance_after,
                wallet::a_top_up_beyond_the_wallet_limit_fails_and_changes_nothing,
                wallet::a_top_up_for_an_unknown_user_is_not_found,
                wallet::an_adjustment_moves_the_balance_either_way_within_the_balance_rules,
                wallet::transactions_are_filtered_by_a_half_open_period,
                wallet::transactions_are_listed_newest_first_filtered_and_paged,
                wallet::concurrent_top_ups_never_exceed_the_wallet_limit,
                catalogue::seeding_writes_the_catalogue_once_even_when_two_seed_at_once,
                catalogue::the_active_catalogue_shows_only_active_products_and_variants_by_name,
                catalogue::the_catalogue_version_moves_with_every_change_and_only_then,
                catalogue::entries_returns_the_existing_variants_of_a_list_active_or_not,
                catalogue::adding_a_variant_to_an_unknown_product_is_not_found,
                catalogue::a_product_update_changes_what_it_names_and_nothing_else,
                catalogue::a_stock_update_that_would_go_negative_is_refused_and_changes_nothing,
                catalogue::a_price_update_re_derives_the_selling_price_or_changes_nothing,
                codes::importing_codes_stores_new_numbers_and_raises_stock_by_them,
                codes::a_number_held_by_any_batch_is_a_duplicate_and_a_batch_reference_replays,
                codes::importing_into_an_unknown_variant_is_not_found,
                codes::allocatable_codes_are_available_valid_long_enough_and_first_expiring_first,
                codes::fulfillment_allocates_each_code_once_and_a_taken_code_is_a_conflict,
                codes::voiding_a_batch_withdraws_its_available_codes_and_their_stock,
                codes::a_card_is_found_by_its_number_and_redeemed_once_for_its_face_value,
                codes::a_redemption_past_the_wallet_cap_changes_nothing,
                codes::expiry_marks_only_active_cards_past_their_date,
                codes::a_returned_card_is_refunded_and_its_unit_goes_back_to_stock,
                codes::a_redeemed_or_returned_card_owes_its_event_until_marked,
                codes::the_money_rule_holds_through_a_return_and_a_redemption,
                codes::a_variant_source_changes_only_before_it_issued_a_card_or_held_a_code,
                codes::stock_and_codes_move_only_for_the_source_they_were_decided_for,
                codes::a_returned_brand_code_goes_back_to_its_pool,
                codes::a_returned_code_of_a_voided_batch_stays_withdrawn,
                codes::a_revealed_card_cannot_be_returned_nor_a_returned_one_revealed,
                codes::expiry_takes_available_codes_past_their_date_out_of_stock,
                cart::cart_lines_are_added_replaced_and_removed_and_each_change_bumps_the_version,
                cart::a_cart_holds_at_most_max_cart_lines_distinct_items,
                cart::repricing_updates_the_stored_prices_and_the_version,
                cart::a_cart_checkout_locks_the_cart_against_every_edit,
                cart::a_checkout_of_a_changed_or_locked_cart_fails_and_changes_nothing,
                orders::placing_an_order_debits_the_wallet_and_stores_it_pending,
                orders::placing_an_order_with_insufficient_balance_changes_nothing,
                orders::concurrent_orders_never_overdraw_the_wallet,
                orders::a_client_reference_names_one_order_per_user_for_good,
                orders::concurrent_placements_with_one_reference_commit_one,
                orders::start_processing_moves_a_pending_order_once,
                orders::completing_fulfillment_issues_cards_takes_stock_and_refunds_the_rest,
                orders::completing_fulfillment_twice_returns_the_order_unchanged,
                orders::completing_fulfillment_without_enough_stock_is_a_conflict_and_changes_nothing,
                orders::completing_fulfillment_of_an_order_not_processing_changes_nothing,
                orders::an_inconsistent_fulfillment_is_refused_and_changes_nothing,
                orders::wallet_records_carry_the_cores_descriptions,
                orders::an_order_that_nothing_could_fulfil_is_refunded_in_full,
                orders::fulfilling_a_cart_order_clears_and_unlocks_the_cart,
                orders::cancelling_a_pending_order_refunds_it_in_full_and_unlocks_the_cart,
                orders::only_the_owner_can_cancel_and_only_while_pending,
                orders::a_final_order_owes_its_event_until_marked_notified,
                orders::stale_pending_lists_old_pending_orders_oldest_first,
                orders::stale_orders_lists_old_processing_orders_too,
                orders::giving_up_an_unfinished_order_refunds_it_in_full_with_its_reason,
                orders::orders_are_listed_newest_first_per_user_and_for_admins,
                reports::every_write_adds_what_it_counts_to_its_days_figures,
                reports::an_accounts_activity_is_counted_once_a_day_even_racing,
                reports::a_tally_recorded_on_its_own_adds_to_its_day,
                reports::open_orders_are_counted_by_status,
                reports::exports_read_the_orders_and_ledger_entries_of_a_half_open_period,
                reports::what_is_owed_follows_every_kind_of_write,
                orders::issued_cards_are_stored_sealed_and_found_by_id_and_order,
                idempotency::claiming_a_new_key_acquires_it_and_a_second_claim_is_in_progress,
                idempotency::a_finished_key_replays_its_outcome_and_refuses_another_request,
                idempotency::a_key_whose_lease_ran_out_is_taken_over_and_the_old_holder_cannot_commit,
                idempotency::placing_or_cancelling_with_a_lost_token_changes_nothing,
                idempotency::a_released_key_can_be_claimed_again_but_only_by_its_holder,
                idempotency::a_recorded_refusal_replays_as_the_same_domain_error,
                idempotency::keys_are_scoped_per_user,
                idempotency::an_expired_key_counts_as_absent,
                idempotency::a_key_expires_at_exactly_the_instant_the_core_gives_it,
                idempotency::a_takeover_restarts_the_keys_retention,
                queue::enqueueing_the_same_order_twice_keeps_one_message,
                queue::a_placement_says_where_its_fulfillment_message_is,
                queue::placing_an_order_then_enqueueing_it_leaves_one_message,
                queue::an_empty_dead_letter_queue_has_nothing_to_redrive,
                queue::dead_letters_are_picked_by_order_or_message,
                audit::the_audit_log_reads_back_newest_first_across_days_and_never_rewrites,
                queue::publishing_the_same_event_twice_is_harmless,
                queue::the_backend_answers_a_health_check,
            );
        }
    };
}

contract_suite!(sqlite);
contract_suite!(dynamodb);

/// A refusal that a version before this one stored as HTTP status and bytes counts as expired
/// on either backend: the retry runs afresh instead of being answered "in progress" for a day.
mod legacy_refusals {
    use giftify_shared::idempotency::{Claim, IdempotencyKey, IdempotencyScope, NewClaim};
    use giftify_shared::ids::UserId;
    use giftify_shared::ports::IdempotencyKeys;

    fn claim(user: &UserId, key: &str) -> NewClaim {
        NewClaim {
            scope: IdempotencyScope {
                user_id: user.clone(),
                key: IdempotencyKey::parse(key).expect("key"),
            },
            fingerprint: "fp".into(),
            token: "retry".into(),
            now: chrono::Utc::now(),
        }
    }

    const LEGACY_BODY: &str = r#"{"success":false,"error":{"code":"OUT_OF_STOCK"}}"#;

    #[tokio::test]
    async fn sqlite_treats_a_refusal_stored_as_http_as_expired() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("giftify.db");
        let store = giftify_infra::embedded::SqliteStore::open(&path, Default::default())
            .await
            .expect("store");
        let user = UserId::generate();
        let in_a_day = chrono::Utc::now().timestamp_millis() + 86_400_000;
        let legacy = serde_json::json!({"kind": "RESPONSE", "status": 409, "body": LEGACY_BODY});
        rusqlite::Connection::open(&path)
            .expect("open")
            .execute(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, state, outcome, \
                 created_at, expires_at) VALUES (?1, 'old', 'fp', 'DONE', ?2, 0, ?3)",
                rusqlite::params![user.as_str(), legacy.to_string(), in_a_day],
            )
            .expect("a legacy record");

        let answer = store.claim(&claim(&user, "old")).await.expect("claim");

        assert_eq!(answer, Claim::Acquired("retry".into()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb_treats_a_refusal_stored_as_http_as_expired() {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let stack = giftify_tests::moto::AwsTestStack::start(3, 30).await;
        let store = &stack.runtime.aws.store;
        let user = UserId::generate();
        let in_a_day = chrono::Utc::now().timestamp() + 86_400;
        let outcome = A::M(
            [
                ("kind".to_string(), A::S("RESPONSE".into())),
                ("status".to_string(), A::N("409".into())),
                ("body".to_string(), A::S(LEGACY_BODY.into())),
            ]
            .into(),
        );
        store
            .client()
            .put_item()
            .table_name(&store.tables().idempotency_keys)
            .item("scopeKey", A::S(format!("{user}#old")))
            .item("fingerprint", A::S("fp".into()))
            .item("state", A::S("DONE".into()))
            .item("outcome", outcome)
            .item("createdAt", A::S("2026-12-01T00:00:00.000Z".into()))
            .item("expiresAt", A::N(in_a_day.to_string()))
            .send()
            .await
            .expect("a legacy record");

        let answer = store.claim(&claim(&user, "old")).await.expect("claim");

        assert_eq!(answer, Claim::Acquired("retry".into()));
    }

    /// A brand variant written before sources existed (no `fulfillmentSource`, no
    /// `sourceLocked`, a stock that counted minted cards) reads as INVENTORY with no stock and
    /// a fixed source; its first import writes its source and starts its stock from the codes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb_reads_a_legacy_brand_variant_as_codes_only() {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        use giftify_shared::codes::{BatchRef, CodeRow, FulfillmentSource};
        let stack = giftify_tests::moto::AwsTestStack::start(3, 30).await;
        let giftify = &stack.runtime.giftify;
        let store = &stack.runtime.aws.store;
        let product = giftify
            .add_product(
                &giftify_shared::audit::Actor::Operator,
                giftify_shared::usecases::NewProduct {
                    name: "Legacy Brand".into(),
                    description: "A brand's card from before sources".into(),
                    brand: "Legacy".into(),
                    category: "shopping".into(),
                    image_url: "https://example.in/l.png".into(),
                    thumbnail_url: "https://example.in/l-thumb.png".into(),
                    terms_and_conditions: "As the brand says.".into(),
                    how_to_redeem: "At the brand.".into(),
                    validity_days: 365,
                },
            )
            .await
            .expect("product");
        let variant = giftify
            .add_variant(
                &giftify_shared::audit::Actor::Operator,
                product.id.clone(),
                giftify_shared::usecases::NewVariant {
                    name: "Legacy 500".into(),
                    denomination: 500,
                    pricing: giftify_shared::catalogue::Pricing::new(50_000, 45_000, 5)
                        .expect("pricing"),
                    stock_quantity: 0,
                    min_order_quantity: 1,
                    max_order_quantity: 4,
                    is_active: true,
                    fulfillment_source: FulfillmentSource::Inventory,
                },
            )
            .await
            .expect("variant");
        store
            .client()
            .update_item()
            .table_name(&store.tables().product_variants)
            .key("productId", A::S(product.id.to_string()))
            .key("variantId", A::S(variant.id.to_string()))
            .update_expression("SET stockQuantity = :seven REMOVE fulfillmentSource, sourceLocked")
            .expression_attribute_values(":seven", A::N("7".into()))
            .send()
            .await
            .expect("the variant as a legacy one");
        let read = || async {
            giftify
                .ports
                .catalogue
                .entries(std::slice::from_ref(&variant.id))
                .await
                .expect("the variant")
                .remove(0)
                .variant
        };
        let legacy = read().await;
        assert_eq!(
            (
                legacy.fulfillment_source,
                legacy.stock_quantity,
                legacy.source_locked
            ),
            (FulfillmentSource::Inventory, 0, true)
        );

        let rows: Vec<CodeRow> = (0..2)
            .map(|i| CodeRow {
                number: format!("LEGACY{}{i}", &ulid::Ulid::new().to_string()[10..]),
                pin: Some("4821".into()),
                expiry_date: None,
            })
            .collect();
        let report = giftify
            .import_codes(
                &giftify_shared::audit::Actor::Operator,
                &variant.id,
                BatchRef::parse("FIRST").expect("ref"),
                &rows,
            )
            .await
            .expect("an import into a legacy brand variant");

        assert_eq!(report.imported, 2);
        let after = read().await;
        assert_eq!(
            (after.fulfillment_source, after.stock_quantity),
            (FulfillmentSource::Inventory, 2)
        );
        let raw = store
            .client()
            .get_item()
            .table_name(&store.tables().product_variants)
            .key("productId", A::S(product.id.to_string()))
            .key("variantId", A::S(variant.id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .expect("the item")
            .item
            .expect("stored");
        assert_eq!(
            raw.get("fulfillmentSource"),
            Some(&A::S("INVENTORY".into()))
        );
        assert_eq!(raw.get("stockQuantity"), Some(&A::N("2".into())));
    }
}
