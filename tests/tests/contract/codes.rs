//! The code inventory: imports, the batch listing, allocation in the fulfillment step, voids.
//! Stock of an INVENTORY variant equals its available codes after every step.

use crate::support::*;
use anyhow::{Result, ensure};
use chrono::{DateTime, Duration, Utc};
use giftify_shared::Error;
use giftify_shared::catalogue::{CatalogueEntry, VariantUpdate};
use giftify_shared::codes::{
    BatchRef, CodeImport, CodeRow, CodeState, FulfillmentSource, InventoryCode, RowProblem,
};
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::order::{Fulfillment, Order};
use giftify_shared::ports::Ports;
use giftify_shared::vault::GiftCardStatus;
use giftify_shared::wallet::TransactionFilter;
use giftify_shared::wallet::TransactionType;
use secrecy::ExposeSecret;

/// A fresh INVENTORY variant (stock 0), as stored.
async fn inventory_variant(ports: &Ports) -> Result<CatalogueEntry> {
    let at = now();
    let product = product(&format!("Brand {}", ProductId::generate().ulid_part()), at);
    ports.catalogue.add_product(&product).await?;
    let mut variant = variant(&product.id, 500, 0, at);
    variant.fulfillment_source = FulfillmentSource::Inventory;
    ports.catalogue.add_variant(&variant).await?;
    Ok(entries_in_order(ports, &[variant.id]).await?.remove(0))
}

/// A code row with a number unique to this run, expiring `days` from now (`None`: no expiry).
fn row(days: Option<i64>) -> CodeRow {
    CodeRow {
        number: format!("BRAND{}", VariantId::generate().ulid_part()),
        pin: Some("4821".into()),
        expiry_date: days.map(|d| (Utc::now() + Duration::days(d)).date_naive().to_string()),
    }
}

fn plan(entry: &CatalogueEntry, batch: &str, rows: &[CodeRow], at: DateTime<Utc>) -> CodeImport {
    CodeImport::plan(
        vault(),
        entry.variant.id.clone(),
        entry.product.id.clone(),
        BatchRef::parse(batch).expect("a batch reference"),
        rows,
        at,
    )
    .expect("a plan")
}

async fn import(
    ports: &Ports,
    entry: &CatalogueEntry,
    batch: &str,
    rows: &[CodeRow],
) -> Result<()> {
    ports
        .codes
        .import_codes(&plan(entry, batch, rows, now()))
        .await?;
    Ok(())
}

/// The fulfillment of a one-line order from these codes, as the use case builds it.
fn fulfillment_from(order: &Order, codes: &[InventoryCode], at: DateTime<Utc>) -> Fulfillment {
    let units = codes.len() as u32;
    let mut f = fulfillment(order, &[units], at);
    for (card, code) in f.cards.iter_mut().zip(codes) {
        card.id = code.id.clone();
        card.sealed = code.sealed.clone();
        card.expiry_date = code.expiry_date.unwrap_or(card.expiry_date);
    }
    f.allocated_codes = codes.iter().map(|c| c.id.clone()).collect();
    f
}

async fn allocatable(
    ports: &Ports,
    entry: &CatalogueEntry,
    limit: u32,
) -> Result<Vec<InventoryCode>> {
    let valid_through = (now() + Duration::days(30)).date_naive();
    Ok(ports
        .codes
        .allocatable_codes(&entry.variant.id, valid_through, limit)
        .await?)
}

pub async fn importing_codes_stores_new_numbers_and_raises_stock_by_them(
    ports: &Ports,
) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    let mut rows: Vec<CodeRow> = (0..4).map(|i| row(Some(100 + i))).collect();
    rows.insert(
        2,
        CodeRow {
            number: "bad".into(),
            ..CodeRow::default()
        },
    );
    rows.push(rows[0].clone());

    let report = ports
        .codes
        .import_codes(&plan(&entry, "INV-1", &rows, now()))
        .await?;

    assert_eq!(
        (
            report.rows,
            report.imported,
            report.duplicates,
            report.invalid
        ),
        (6, 4, 1, 1)
    );
    let refused: Vec<_> = report.refused.iter().map(|r| (r.row, r.reason)).collect();
    assert_eq!(
        refused,
        [(3, RowProblem::InvalidNumber), (6, RowProblem::Duplicate)]
    );
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 4);
    let batches = ports.codes.code_batches(&entry.variant.id).await?;
    ensure!(batches.len() == 1, "{batches:?}");
    assert_eq!(batches[0].batch_ref.as_str(), "INV-1");
    assert_eq!(
        (
            batches[0].available,
            batches[0].allocated,
            batches[0].voided
        ),
        (4, 0, 0)
    );
    assert_eq!(
        batches[0].earliest_expiry,
        Some((Utc::now() + Duration::days(100)).date_naive())
    );
    Ok(())
}

pub async fn a_number_held_by_any_batch_is_a_duplicate_and_a_batch_reference_replays(
    ports: &Ports,
) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    let other = inventory_variant(ports).await?;
    let first: Vec<CodeRow> = (0..3).map(|_| row(Some(200))).collect();
    let first_report = ports
        .codes
        .import_codes(&plan(&entry, "A", &first, now()))
        .await?;
    // The same numbers typed another way are the same numbers, in any variant.
    let mut retyped = first[1].clone();
    retyped.number = retyped.number.to_lowercase();
    let second = [row(Some(200)), retyped, row(None)];

    let report = ports
        .codes
        .import_codes(&plan(&other, "B", &second, now()))
        .await?;
    assert_eq!((report.imported, report.duplicates), (2, 1));
    assert_eq!(report.refused[0].row, 2);

    let again = ports
        .codes
        .import_codes(&plan(&entry, "A", &first, now()))
        .await?;
    let other_rows = ports
        .codes
        .import_codes(&plan(&entry, "A", &[row(Some(300))], now()))
        .await
        .unwrap_err();
    assert!(
        matches!(other_rows, Error::IdempotencyKeyReused),
        "{other_rows:?}"
    );
    assert_eq!(again, first_report, "the first report, and nothing stored");
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 3);
    assert_eq!(stock_of(ports, &other.variant.id).await?, 2);
    Ok(())
}

pub async fn importing_into_an_unknown_variant_is_not_found(ports: &Ports) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    let mut import = plan(&entry, "X", &[row(Some(90))], now());
    import.variant_id = VariantId::generate();
    for code in &mut import.codes {
        code.variant_id = import.variant_id.clone();
    }
    let err = ports.codes.import_codes(&import).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(allocatable(ports, &entry, 10).await?.is_empty());
    Ok(())
}

pub async fn allocatable_codes_are_available_valid_long_enough_and_first_expiring_first(
    ports: &Ports,
) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    let rows = [row(Some(400)), row(None), row(Some(10)), row(Some(60))];
    import(ports, &entry, "MIX", &rows).await?;

    let codes = allocatable(ports, &entry, 10).await?;

    let expiries: Vec<_> = codes.iter().map(|c| c.expiry_date).collect();
    assert_eq!(
        expiries,
        [
            Some((Utc::now() + Duration::days(60)).date_naive()),
            Some((Utc::now() + Duration::days(400)).date_naive()),
            None,
        ],
        "the code 10 days from expiry is never allocated"
    );
    assert!(codes.iter().all(|c| c.state == CodeState::Available));
    assert_eq!(allocatable(ports, &entry, 2).await?.len(), 2);
    assert_eq!(
        stock_of(ports, &entry.variant.id).await?,
        4,
        "stock counts every available code"
    );
    Ok(())
}

pub async fn fulfillment_allocates_each_code_once_and_a_taken_code_is_a_conflict(
    ports: &Ports,
) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    import(
        ports,
        &entry,
        "POOL",
        &[row(Some(90)), row(Some(91)), row(Some(92))],
    )
    .await?;
    let buyer = funded_user(ports, 1_000_000).await?;
    let rival = funded_user(ports, 1_000_000).await?;
    let first = place(ports, &buyer.id, &[(&entry, 2)]).await?;
    let second = place(ports, &rival.id, &[(&entry, 2)]).await?;
    let first = ports.orders.start_processing(&first.id, now()).await?;
    let second = ports.orders.start_processing(&second.id, now()).await?;
    let codes = allocatable(ports, &entry, 2).await?;
    // Both read the same pool; the first commits.
    let done = ports
        .orders
        .complete_fulfillment(&fulfillment_from(&first, &codes, now()))
        .await?;
    let balance = ports.wallets.balance(&rival.id).await?;

    let err = ports
        .orders
        .complete_fulfillment(&fulfillment_from(&second, &codes, now()))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(ports.orders.order(&second.id).await?, Some(second.clone()));
    assert_eq!(ports.wallets.balance(&rival.id).await?, balance);
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 1);
    let cards = cards_of_order(ports, &done.id).await?;
    let mut issued: Vec<_> = cards.iter().map(|c| c.id.clone()).collect();
    issued.sort();
    let mut allocated: Vec<_> = codes.iter().map(|c| c.id.clone()).collect();
    allocated.sort();
    assert_eq!(issued, allocated, "each card is its code");
    assert!(cards.iter().all(|c| c.status == GiftCardStatus::Active));
    assert_eq!(
        cards[0].expiry_date,
        codes
            .iter()
            .find(|c| c.id == cards[0].id)
            .unwrap()
            .expiry_date
            .unwrap()
    );
    let left = allocatable(ports, &entry, 5).await?;
    ensure!(
        left.len() == 1 && !codes.iter().any(|c| c.id == left[0].id),
        "{left:?}"
    );
    let batch = &ports.codes.code_batches(&entry.variant.id).await?[0];
    assert_eq!((batch.available, batch.allocated), (1, 2));
    // The rival allocates again from what is left: partial, and the rest refunded.
    let retried = ports
        .orders
        .complete_fulfillment(&fulfillment_from(&second, &left, now()))
        .await?;
    assert_eq!(retried.items[0].fulfilled_quantity, 1);
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 0);
    assert_ledger_consistent(ports, &rival.id).await?;
    Ok(())
}

pub async fn voiding_a_batch_withdraws_its_available_codes_and_their_stock(
    ports: &Ports,
) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    import(
        ports,
        &entry,
        "RECALL",
        &[row(Some(90)), row(Some(91)), row(Some(92))],
    )
    .await?;
    import(ports, &entry, "KEEP", &[row(Some(95))]).await?;
    let buyer = funded_user(ports, 1_000_000).await?;
    let order = place(ports, &buyer.id, &[(&entry, 1)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let first = allocatable(ports, &entry, 1).await?;
    ports
        .orders
        .complete_fulfillment(&fulfillment_from(&processing, &first, now()))
        .await?;
    let recall = BatchRef::parse("RECALL")?;

    let voided = ports
        .codes
        .void_batch(&entry.variant.id, &recall, now())
        .await?;

    assert_eq!(
        (voided.available, voided.allocated, voided.voided),
        (0, 1, 2)
    );
    ensure!(voided.voided_at.is_some(), "{voided:?}");
    assert_eq!(
        stock_of(ports, &entry.variant.id).await?,
        1,
        "only KEEP's code is left"
    );
    let again = ports
        .codes
        .void_batch(&entry.variant.id, &recall, now())
        .await?;
    assert_eq!((again.voided, again.voided_at), (2, voided.voided_at));
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 1);
    let left = allocatable(ports, &entry, 5).await?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].batch_ref.as_str(), "KEEP");
    let err = ports
        .codes
        .void_batch(&entry.variant.id, &BatchRef::parse("NOPE")?, now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    Ok(())
}

/// A fulfilled order of one Giftify card of `denomination` rupees; the card and its number.
async fn giftify_card(ports: &Ports) -> Result<(giftify_shared::vault::GiftCard, String)> {
    let owner = funded_user(ports, 1_000_000).await?;
    let entry = stocked(ports, &[5]).await?.remove(0);
    let order = place(ports, &owner.id, &[(&entry, 1)]).await?;
    let done = fulfil(ports, &order, &[1]).await?;
    let card = cards_of_order(ports, &done.id).await?.remove(0);
    let number = vault().open(&card.id, &card.sealed)?;
    Ok((card, number.number.expose_secret().to_string()))
}

pub fn redemption(
    card: &giftify_shared::vault::GiftCard,
    user: &giftify_shared::ids::UserId,
    cap: i64,
) -> giftify_shared::card_life::Redemption {
    giftify_shared::card_life::Redemption {
        card_id: card.id.clone(),
        credit: giftify_shared::ledger::Movement::redemption(
            giftify_shared::ids::TransactionId::generate(),
            user.clone(),
            card,
            giftify_shared::Paise::new(cap),
            now(),
        )
        .expect("a redemption"),
    }
}

pub async fn a_card_is_found_by_its_number_and_redeemed_once_for_its_face_value(
    ports: &Ports,
) -> Result<()> {
    let (card, number) = giftify_card(ports).await?;
    let found = ports
        .gift_cards
        .card_by_lookup_key(&vault().lookup_key(&number.replace('-', " ")))
        .await?;
    assert_eq!(found.as_ref().map(|c| &c.id), Some(&card.id));
    assert_eq!(
        ports
            .gift_cards
            .card_by_lookup_key(&vault().lookup_key("GFY0000000000000000"))
            .await?,
        None
    );
    let redeemer = funded_user(ports, 10_000).await?;
    let other = user(ports).await?;

    let redeemed = ports
        .gift_cards
        .redeem(&redemption(&card, &redeemer.id, 20_000_000))
        .await?;

    assert_eq!(redeemed.status, GiftCardStatus::Redeemed);
    assert_eq!(redeemed.redeemed_by.as_ref(), Some(&redeemer.id));
    assert_eq!(
        ports.gift_cards.card(&card.id).await?,
        Some(redeemed.clone())
    );
    let face = card.denomination * 100;
    assert_eq!(
        ports.wallets.balance(&redeemer.id).await?.get(),
        10_000 + face
    );
    assert_ledger_consistent(ports, &redeemer.id).await?;
    let err = ports
        .gift_cards
        .redeem(&redemption(&card, &other.id, 20_000_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Card(giftify_shared::CardRefusal::Redeemed)),
        "{err:?}"
    );
    assert_eq!(ports.wallets.balance(&other.id).await?.get(), 0);
    // The owner's card list follows the card: redeemed now, none active.
    let page = giftify_shared::wallet::PageRequest::new(None, None, 10)?;
    let all = ports
        .gift_cards
        .cards_of_user(&card.user_id, None, page)
        .await?;
    assert_eq!((all.total, all.items[0].id.clone()), (1, card.id.clone()));
    let active = ports
        .gift_cards
        .cards_of_user(&card.user_id, Some(GiftCardStatus::Active), page)
        .await?;
    assert_eq!(active.total, 0);
    let done = ports
        .gift_cards
        .cards_of_user(&card.user_id, Some(GiftCardStatus::Redeemed), page)
        .await?;
    assert_eq!(done.items, vec![redeemed]);
    Ok(())
}

pub async fn a_redemption_past_the_wallet_cap_changes_nothing(ports: &Ports) -> Result<()> {
    let (card, _) = giftify_card(ports).await?;
    let redeemer = funded_user(ports, 100_000).await?;

    let err = ports
        .gift_cards
        .redeem(&redemption(&card, &redeemer.id, 100_000))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::WalletLimitExceeded { .. }), "{err:?}");
    assert_eq!(ports.gift_cards.card(&card.id).await?, Some(card));
    assert_eq!(ports.wallets.balance(&redeemer.id).await?.get(), 100_000);
    Ok(())
}

pub async fn expiry_marks_only_active_cards_past_their_date(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let entry = stocked(ports, &[5]).await?.remove(0);
    let order = place(ports, &owner.id, &[(&entry, 3)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let mut f = fulfillment(&processing, &[3], now());
    let today = Utc::now().date_naive();
    f.cards[0].expiry_date = today - Duration::days(1);
    f.cards[1].expiry_date = today;
    f.cards[2].expiry_date = today - Duration::days(3);
    ports.orders.complete_fulfillment(&f).await?;
    let redeemer = user(ports).await?;
    ports
        .gift_cards
        .redeem(&redemption(&f.cards[2], &redeemer.id, 20_000_000))
        .await?;

    let expiry = crate::support::expiry(ports, today).await?;
    let expired = ports.gift_cards.expire_cards(&expiry).await?;

    assert_eq!(expired, 1);
    let status = |i: usize| {
        let id = f.cards[i].id.clone();
        async move {
            ports
                .gift_cards
                .card(&id)
                .await
                .map(|c| c.map(|c| c.status))
        }
    };
    assert_eq!(status(0).await?, Some(GiftCardStatus::Expired));
    assert_eq!(
        status(1).await?,
        Some(GiftCardStatus::Active),
        "good through its date"
    );
    assert_eq!(status(2).await?, Some(GiftCardStatus::Redeemed));
    assert_eq!(ports.gift_cards.expire_cards(&expiry).await?, 0);
    Ok(())
}

pub async fn expiry_takes_available_codes_past_their_date_out_of_stock(
    ports: &Ports,
) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    let a_month_ago = now() - Duration::days(30);
    let in_days = |d: i64| CodeRow {
        expiry_date: Some((Utc::now() + Duration::days(d)).date_naive().to_string()),
        ..row(None)
    };
    let rows = [in_days(-2), in_days(0), in_days(200), row(None)];
    ports
        .codes
        .import_codes(&plan(&entry, "OLD", &rows, a_month_ago))
        .await?;
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 4);
    let today = Utc::now().date_naive();

    let expired = ports
        .codes
        .expire_codes(&entry.variant.id, today, now())
        .await?;

    assert_eq!(expired, 1);
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 3);
    let batch = &ports.codes.code_batches(&entry.variant.id).await?[0];
    assert_eq!((batch.available, batch.expired), (3, 1));
    assert_eq!(
        ports
            .codes
            .expire_codes(&entry.variant.id, today, now())
            .await?,
        0
    );
    Ok(())
}

pub fn card_return(
    card: &giftify_shared::vault::GiftCard,
    back_to_pool: bool,
) -> giftify_shared::card_life::CardReturn {
    let code = back_to_pool.then(|| {
        let secrets = vault().open(&card.id, &card.sealed).expect("opens");
        let id = giftify_shared::ids::GiftCardId::generate();
        giftify_shared::card_life::ReturnedCode {
            sealed: vault()
                .seal(
                    &id,
                    secrets.number.expose_secret(),
                    secrets.pin.expose_secret(),
                )
                .expect("seals"),
            id,
        }
    });
    giftify_shared::card_life::CardReturn {
        card: card.clone(),
        refund: giftify_shared::ledger::Movement::refund_of_returned(
            giftify_shared::ids::TransactionId::generate(),
            card,
            now(),
        ),
        code,
        now: now(),
    }
}

fn reveal_of(card: &giftify_shared::vault::GiftCard) -> giftify_shared::vault::RevealAudit {
    giftify_shared::vault::RevealAudit {
        gift_card_id: card.id.clone(),
        order_id: card.order_id.clone(),
        user_id: card.user_id.clone(),
        revealed_at: now(),
    }
}

pub async fn a_returned_card_is_refunded_and_its_unit_goes_back_to_stock(
    ports: &Ports,
) -> Result<()> {
    let (card, _) = giftify_card(ports).await?;
    let stock = stock_of(ports, &card.variant_id).await?;
    let balance = ports.wallets.balance(&card.user_id).await?;

    let returned = ports
        .gift_cards
        .return_card(&card_return(&card, false))
        .await?;

    assert_eq!(returned.status, GiftCardStatus::Cancelled);
    assert_eq!(ports.gift_cards.card(&card.id).await?, Some(returned));
    assert_eq!(stock_of(ports, &card.variant_id).await?, stock + 1);
    assert_eq!(
        ports.wallets.balance(&card.user_id).await?,
        balance.checked_add(card.purchase_price).unwrap()
    );
    assert_ledger_consistent(ports, &card.user_id).await?;
    let again = ports
        .gift_cards
        .return_card(&card_return(&card, false))
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::Card(giftify_shared::CardRefusal::Cancelled)),
        "{again:?}"
    );
    assert_eq!(stock_of(ports, &card.variant_id).await?, stock + 1);
    Ok(())
}

pub async fn a_redeemed_or_returned_card_owes_its_event_until_marked(ports: &Ports) -> Result<()> {
    let (kept, _) = giftify_card(ports).await?;
    let (redeemed, _) = giftify_card(ports).await?;
    let (returned, _) = giftify_card(ports).await?;
    let owing = |cards: Vec<giftify_shared::vault::GiftCard>| {
        let mut ids: Vec<_> = cards.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(owing(ports.gift_cards.unnotified_cards(10).await?), vec![]);
    let redeemer = user(ports).await?;
    let redeemed = ports
        .gift_cards
        .redeem(&redemption(&redeemed, &redeemer.id, 20_000_000))
        .await?;
    let returned = ports
        .gift_cards
        .return_card(&card_return(&returned, false))
        .await?;
    assert!(returned.returned_at.is_some());
    // What the adapters store is what the core decided: the event reads the same either way.
    assert_eq!(
        ports.gift_cards.card(&returned.id).await?,
        Some(returned.clone())
    );

    let mut both = vec![redeemed.id.clone(), returned.id.clone()];
    both.sort();
    assert_eq!(owing(ports.gift_cards.unnotified_cards(10).await?), both);
    let sent_at = now();
    ports
        .gift_cards
        .mark_card_notified(&redeemed.id, sent_at)
        .await?;
    // Marking again, or a card that owes nothing, changes nothing.
    ports
        .gift_cards
        .mark_card_notified(&redeemed.id, now())
        .await?;
    ports.gift_cards.mark_card_notified(&kept.id, now()).await?;
    assert_eq!(
        owing(ports.gift_cards.unnotified_cards(10).await?),
        vec![returned.id.clone()]
    );
    let marked = ports.gift_cards.card(&redeemed.id).await?.expect("stored");
    assert_eq!(marked.notified_at, Some(sent_at));
    assert_eq!(
        ports
            .gift_cards
            .card(&kept.id)
            .await?
            .expect("stored")
            .notified_at,
        None
    );
    ports
        .gift_cards
        .mark_card_notified(&returned.id, now())
        .await?;
    assert_eq!(owing(ports.gift_cards.unnotified_cards(10).await?), vec![]);
    Ok(())
}

/// The source changes on a fresh variant, and is fixed by stock, an issued card or a code
/// ever held (the stock back at zero changes nothing).
/// A change of the variant's source to `source` (at face value, as a Giftify card sells).
fn switch_to(source: FulfillmentSource) -> VariantUpdate {
    VariantUpdate {
        fulfillment_source: Some(source),
        discount_percent: (source == FulfillmentSource::Generated).then_some(0),
        ..VariantUpdate::default()
    }
}

/// Whether the backend refuses to switch the variant to `source`, for its source.
async fn source_change_refused(
    ports: &Ports,
    variant: &VariantId,
    source: FulfillmentSource,
) -> bool {
    matches!(
        ports.catalogue.update_variant(variant, &switch_to(source), now()).await,
        Err(Error::Validation { ref field, .. }) if field.as_deref() == Some("fulfillmentSource")
    )
}

/// The source changes on a fresh variant, and is fixed by stock, an issued card or a code
/// ever held (the stock back at zero changes nothing).
pub async fn a_variant_source_changes_only_before_it_issued_a_card_or_held_a_code(
    ports: &Ports,
) -> Result<()> {
    let fresh = stocked(ports, &[0]).await?.remove(0);
    let id = &fresh.variant.id;
    let changed = ports
        .catalogue
        .update_variant(id, &switch_to(FulfillmentSource::Inventory), now())
        .await?;
    assert_eq!(
        changed.variant.fulfillment_source,
        FulfillmentSource::Inventory
    );
    assert!(!changed.variant.source_locked);
    let back = ports
        .catalogue
        .update_variant(id, &switch_to(FulfillmentSource::Generated), now())
        .await?;
    assert_eq!(
        back.variant.fulfillment_source,
        FulfillmentSource::Generated
    );

    let sold = stocked(ports, &[2]).await?.remove(0);
    let sold_id = &sold.variant.id;
    assert!(source_change_refused(ports, sold_id, FulfillmentSource::Inventory).await);
    // Sold out: no stock, but a card was issued.
    let owner = funded_user(ports, 1_000_000).await?;
    let order = place(ports, &owner.id, &[(&sold, 2)]).await?;
    fulfil(ports, &order, &[2]).await?;
    assert_eq!(stock_of(ports, sold_id).await?, 0);
    assert!(source_change_refused(ports, sold_id, FulfillmentSource::Inventory).await);

    // Codes imported, then recalled: no stock, but the variant held codes.
    let brand = inventory_variant(ports).await?;
    import(ports, &brand, "RECALLED", &[row(None)]).await?;
    ports
        .codes
        .void_batch(&brand.variant.id, &BatchRef::parse("RECALLED")?, now())
        .await?;
    assert_eq!(stock_of(ports, &brand.variant.id).await?, 0);
    assert!(source_change_refused(ports, &brand.variant.id, FulfillmentSource::Generated).await);
    let entry = ports
        .catalogue
        .entries(std::slice::from_ref(&brand.variant.id))
        .await?
        .remove(0);
    assert_eq!(
        entry.variant.fulfillment_source,
        FulfillmentSource::Inventory
    );
    assert!(entry.variant.source_locked);
    Ok(())
}

/// A worker read a Giftify variant; before it commits, the admin empties it, makes it a brand
/// variant and imports codes. The minted cards must not take the codes' stock, and codes
/// never go into a variant that stopped taking them.
pub async fn stock_and_codes_move_only_for_the_source_they_were_decided_for(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let entry = stocked(ports, &[2]).await?.remove(0);
    let id = &entry.variant.id;
    let order = place(ports, &owner.id, &[(&entry, 2)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let minted = fulfillment(&processing, &[2], now());

    let emptied = VariantUpdate {
        stock_quantity: Some(0),
        ..VariantUpdate::default()
    };
    ports.catalogue.update_variant(id, &emptied, now()).await?;
    ports
        .catalogue
        .update_variant(id, &switch_to(FulfillmentSource::Inventory), now())
        .await?;
    let brand = ports
        .catalogue
        .entries(std::slice::from_ref(id))
        .await?
        .remove(0);
    import(ports, &brand, "SWITCHED", &[row(None), row(None)]).await?;

    let err = ports
        .orders
        .complete_fulfillment(&minted)
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        stock_of(ports, id).await?,
        2,
        "the codes' stock is untouched"
    );
    assert!(cards_of_order(ports, &order.id).await?.is_empty());

    // And the other way: codes for a variant that mints its own cards are refused.
    let minting = stocked(ports, &[0]).await?.remove(0);
    let refused = ports
        .codes
        .import_codes(&plan(&minting, "NOT-HERE", &[row(None)], now()))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Validation { ref field, .. } if field.as_deref() == Some("variantId")),
        "{refused:?}"
    );
    assert_eq!(stock_of(ports, &minting.variant.id).await?, 0);
    Ok(())
}

/// The money rule over the wallets involved: Σ top-ups + Σ face value redeemed = Σ balances +
/// Σ price of the fulfilled cards not returned, through a purchase, a return and a redemption
/// into another wallet.
pub async fn the_money_rule_holds_through_a_return_and_a_redemption(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let friend = funded_user(ports, 5_000).await?;
    let entry = stocked(ports, &[5]).await?.remove(0);
    let order = place(ports, &owner.id, &[(&entry, 3)]).await?;
    fulfil(ports, &order, &[3]).await?;
    let cards = cards_of_order(ports, &order.id).await?;
    ports
        .gift_cards
        .return_card(&card_return(&cards[0], false))
        .await?;
    ports
        .gift_cards
        .redeem(&redemption(&cards[1], &friend.id, 20_000_000))
        .await?;

    let mut money_in = 0;
    let mut balances = 0;
    for user in [&owner.id, &friend.id] {
        assert_ledger_consistent(ports, user).await?;
        let ledger = ports
            .wallets
            .transactions(
                user,
                &TransactionFilter::ALL,
                giftify_shared::wallet::PageRequest::new(None, None, 100)?,
            )
            .await?;
        money_in += ledger
            .items
            .iter()
            .filter(|t| matches!(t.kind, TransactionType::Credit | TransactionType::Redeem))
            .map(|t| t.amount.get())
            .sum::<i64>();
        balances += ports.wallets.balance(user).await?.get();
    }
    let kept: i64 = cards_of_order(ports, &order.id)
        .await?
        .iter()
        .filter(|c| c.status != GiftCardStatus::Cancelled)
        .map(|c| c.purchase_price.get())
        .sum();
    assert_eq!(kept, 2 * entry.variant.selling_price.get());
    assert_eq!(money_in, 1_000_000 + 5_000 + cards[1].denomination * 100);
    assert_eq!(money_in, balances + kept, "the money rule");
    Ok(())
}

pub async fn a_returned_brand_code_goes_back_to_its_pool(ports: &Ports) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    import(ports, &entry, "ONE", &[row(Some(120))]).await?;
    let buyer = funded_user(ports, 1_000_000).await?;
    let order = place(ports, &buyer.id, &[(&entry, 1)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let codes = allocatable(ports, &entry, 1).await?;
    ports
        .orders
        .complete_fulfillment(&fulfillment_from(&processing, &codes, now()))
        .await?;
    let card = cards_of_order(ports, &order.id).await?.remove(0);
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 0);

    let back = card_return(&card, true);
    ports.gift_cards.return_card(&back).await?;

    assert_eq!(stock_of(ports, &entry.variant.id).await?, 1);
    let pool = allocatable(ports, &entry, 5).await?;
    assert_eq!(pool.len(), 1);
    let code = back.code.as_ref().unwrap();
    assert_eq!(pool[0].id, code.id, "the same code, under its new id");
    assert_eq!(
        pool[0].sealed.lookup_key, card.sealed.lookup_key,
        "the same number"
    );
    let batch = &ports.codes.code_batches(&entry.variant.id).await?[0];
    assert_eq!(
        (batch.available, batch.allocated, batch.returned),
        (1, 0, 1)
    );
    // It is issued again, as a new card that holds the number.
    let next = place(ports, &buyer.id, &[(&entry, 1)]).await?;
    let processing = ports.orders.start_processing(&next.id, now()).await?;
    let done = ports
        .orders
        .complete_fulfillment(&fulfillment_from(&processing, &pool, now()))
        .await?;
    assert_eq!(done.items[0].fulfilled_quantity, 1);
    let reissued = cards_of_order(ports, &next.id).await?.remove(0);
    assert_eq!(reissued.id, code.id);
    assert_eq!(
        vault()
            .open(&reissued.id, &reissued.sealed)?
            .number
            .expose_secret(),
        vault().open(&card.id, &card.sealed)?.number.expose_secret(),
    );
    let found = ports
        .gift_cards
        .card_by_lookup_key(&card.sealed.lookup_key)
        .await?;
    assert_eq!(found.map(|c| c.id), Some(reissued.id));
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 0);
    Ok(())
}

pub async fn a_returned_code_of_a_voided_batch_stays_withdrawn(ports: &Ports) -> Result<()> {
    let entry = inventory_variant(ports).await?;
    import(ports, &entry, "RECALLED", &[row(Some(120)), row(Some(121))]).await?;
    let buyer = funded_user(ports, 1_000_000).await?;
    let order = place(ports, &buyer.id, &[(&entry, 1)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let codes = allocatable(ports, &entry, 1).await?;
    ports
        .orders
        .complete_fulfillment(&fulfillment_from(&processing, &codes, now()))
        .await?;
    let card = cards_of_order(ports, &order.id).await?.remove(0);
    ports
        .codes
        .void_batch(&entry.variant.id, &BatchRef::parse("RECALLED")?, now())
        .await?;
    assert_eq!(stock_of(ports, &entry.variant.id).await?, 0);

    ports
        .gift_cards
        .return_card(&card_return(&card, true))
        .await?;

    assert_eq!(
        stock_of(ports, &entry.variant.id).await?,
        0,
        "a recalled code is not sold"
    );
    assert!(allocatable(ports, &entry, 5).await?.is_empty());
    let batch = &ports.codes.code_batches(&entry.variant.id).await?[0];
    assert_eq!((batch.available, batch.allocated, batch.voided), (0, 0, 2));
    Ok(())
}

pub async fn a_revealed_card_cannot_be_returned_nor_a_returned_one_revealed(
    ports: &Ports,
) -> Result<()> {
    let (revealed, _) = giftify_card(ports).await?;
    let (returned, _) = giftify_card(ports).await?;

    ports
        .gift_cards
        .record_reveal(&reveal_of(&revealed))
        .await?;
    ports
        .gift_cards
        .record_reveal(&reveal_of(&revealed))
        .await?;
    let first = ports
        .gift_cards
        .card(&revealed.id)
        .await?
        .unwrap()
        .revealed_at;
    ensure!(first.is_some(), "the first reveal is on the card");
    let refused = ports
        .gift_cards
        .return_card(&card_return(&revealed, false))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Card(giftify_shared::CardRefusal::Revealed)),
        "{refused:?}"
    );
    assert_eq!(ports.gift_cards.reveals_of(&revealed.id).await?.len(), 2);
    assert_eq!(
        ports
            .gift_cards
            .card(&revealed.id)
            .await?
            .unwrap()
            .revealed_at,
        first
    );

    ports
        .gift_cards
        .return_card(&card_return(&returned, false))
        .await?;
    let refused = ports
        .gift_cards
        .record_reveal(&reveal_of(&returned))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Card(giftify_shared::CardRefusal::Cancelled)),
        "{refused:?}"
    );
    assert!(ports.gift_cards.reveals_of(&returned.id).await?.is_empty());
    Ok(())
}
