//! Fixtures of the contract suite, written against [`Ports`] only: users, catalogue entries,
//! orders and fulfillments built the way the use cases build them, and the ledger invariant.

use anyhow::{Result, ensure};
use chrono::{DateTime, Utc};
use giftify_shared::Paise;
use giftify_shared::card_life::Expiry;
use giftify_shared::cart::CartLine;
use giftify_shared::catalogue::{CatalogueEntry, Pricing, Product, Variant};
use giftify_shared::ids::{GiftCardId, OrderId, ProductId, TransactionId, UserId, VariantId};
use giftify_shared::ledger::Posting;
use giftify_shared::ledger::{Movement, describe};
use giftify_shared::order::{
    Fulfillment, FulfillmentDetails, Order, OrderLine, OrderPlacement, OrderSource, OrderStatus,
    final_status, refund_amount,
};
use giftify_shared::ports::Ports;
use giftify_shared::user::{Email, NewUser, Role, User};
use giftify_shared::vault::{CardKey, CardVault, GiftCard, GiftCardStatus};
use giftify_shared::wallet::PageRequest;
use giftify_shared::wallet::TransactionFilter;
use std::sync::OnceLock;

/// The wallet limit the suite tops up against unless a case says otherwise.
pub const MAX_BALANCE: Paise = Paise::new(20_000_000);

/// Now, at the millisecond precision every backend stores.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// One vault for the suite: the backend stores sealed cards and never sees the key.
pub fn vault() -> &'static CardVault {
    static VAULT: OnceLock<CardVault> = OnceLock::new();
    VAULT.get_or_init(|| CardVault::new(&CardKey::generate()))
}

pub fn unique_email() -> Email {
    Email::parse(&format!(
        "user-{}@example.com",
        UserId::generate().ulid_part().to_lowercase()
    ))
    .expect("a valid email")
}

pub fn new_user(email: Email) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        first_name: "Asha".into(),
        last_name: "Rao".into(),
        phone_number: Some("+919876543210".into()),
        role: Role::User,
        now: now(),
    }
}

pub async fn user(ports: &Ports) -> Result<User> {
    Ok(ports.users.create_user(&new_user(unique_email())).await?)
}

pub fn top_up(user: &UserId, amount: i64) -> Posting {
    Posting {
        movement: Movement::top_up(
            TransactionId::generate(),
            user.clone(),
            Paise::new(amount),
            describe::TOP_UP.into(),
            MAX_BALANCE,
            now(),
        )
        .expect("a positive amount"),
        idempotency: None,
    }
}

pub async fn funded_user(ports: &Ports, amount: i64) -> Result<User> {
    let user = user(ports).await?;
    ports.wallets.top_up(&top_up(&user.id, amount)).await?;
    Ok(user)
}

pub fn product(name: &str, at: DateTime<Utc>) -> Product {
    Product {
        id: ProductId::generate(),
        name: name.to_string(),
        description: format!("{name} Gift Card"),
        brand: name.to_string(),
        category: "SHOPPING".into(),
        image_url: format!("https://cdn.giftify.in/products/{name}.jpg"),
        thumbnail_url: format!("https://cdn.giftify.in/products/{name}-thumb.jpg"),
        is_active: true,
        terms_and_conditions: "Valid for 1 year from purchase date.".into(),
        how_to_redeem: "Apply the card at checkout.".into(),
        validity_days: 365,
        created_at: at,
        updated_at: at,
    }
}

/// A variant of `denomination` rupees at 5 % off, cost 90 % of MRP.
pub fn variant(product: &ProductId, denomination: i64, stock: i64, at: DateTime<Utc>) -> Variant {
    let mrp = denomination * 100;
    let pricing = Pricing::new(mrp, mrp * 90 / 100, 5).expect("valid pricing");
    Variant {
        id: VariantId::generate(),
        product_id: product.clone(),
        name: format!("Card {denomination}"),
        denomination,
        mrp: pricing.mrp,
        cost_price: pricing.cost_price,
        discount_percent: pricing.discount_percent,
        selling_price: pricing.selling_price,
        stock_quantity: stock,
        min_order_quantity: 1,
        max_order_quantity: 10,
        is_active: true,
        fulfillment_source: giftify_shared::codes::FulfillmentSource::Generated,
        source_locked: false,
        created_at: at,
        updated_at: at,
    }
}

/// One product with a variant per stock figure (₹250, ₹500, ₹750 …), as stored.
pub async fn stocked(ports: &Ports, stocks: &[i64]) -> Result<Vec<CatalogueEntry>> {
    let at = now();
    let product = product(&format!("Brand {}", ProductId::generate().ulid_part()), at);
    ports.catalogue.add_product(&product).await?;
    let mut ids = Vec::new();
    for (i, &stock) in (1..).zip(stocks) {
        let variant = variant(&product.id, 250 * i, stock, at);
        ports.catalogue.add_variant(&variant).await?;
        ids.push(variant.id);
    }
    entries_in_order(ports, &ids).await
}

/// The catalogue entries of `ids`, in that order.
pub async fn entries_in_order(ports: &Ports, ids: &[VariantId]) -> Result<Vec<CatalogueEntry>> {
    let entries = ports.catalogue.entries(ids).await?;
    ids.iter()
        .map(|id| {
            entries
                .iter()
                .find(|e| e.variant.id == *id)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("variant {id} is missing"))
        })
        .collect()
}

pub async fn stock_of(ports: &Ports, id: &VariantId) -> Result<i64> {
    Ok(entries_in_order(ports, std::slice::from_ref(id)).await?[0]
        .variant
        .stock_quantity)
}

/// A cart line of `quantity` units at the entry's current price.
pub fn cart_line(entry: &CatalogueEntry, quantity: u32) -> CartLine {
    CartLine {
        variant_id: entry.variant.id.clone(),
        product_id: entry.product.id.clone(),
        product_name: entry.product.name.clone(),
        variant_name: entry.variant.name.clone(),
        quantity,
        unit_price: entry.variant.selling_price,
    }
}

/// The cards of the order as it is stored now.
pub async fn cards_of_order(ports: &Ports, order: &OrderId) -> Result<Vec<GiftCard>> {
    let order = ports.orders.order(order).await?.expect("the order exists");
    ports
        .gift_cards
        .cards(&order.gift_card_ids)
        .await
        .map_err(Into::into)
}

/// A PENDING order of these lines at current prices, as `place_order` receives it.
pub fn new_order(
    user: &UserId,
    lines: &[(&CatalogueEntry, u32)],
    source: OrderSource,
    at: DateTime<Utc>,
) -> Order {
    let items: Vec<OrderLine> = lines
        .iter()
        .map(|(entry, quantity)| OrderLine {
            variant_id: entry.variant.id.clone(),
            product_id: entry.product.id.clone(),
            product_name: entry.product.name.clone(),
            variant_name: entry.variant.name.clone(),
            denomination: entry.variant.denomination,
            unit_price: entry.variant.selling_price,
            cost_price: entry.variant.cost_price,
            requested_quantity: *quantity,
            fulfilled_quantity: 0,
            validity_days: entry.product.validity_days,
        })
        .collect();
    let total = Paise::new(items.iter().map(|l| l.total_price().get()).sum());
    Order {
        id: OrderId::generate(),
        user_id: user.clone(),
        status: OrderStatus::Pending,
        source,
        total_amount: total,
        paid_amount: total,
        refund_amount: Paise::ZERO,
        items,
        fulfillment: FulfillmentDetails::default(),
        created_at: at,
        updated_at: at,
        notified_at: None,
        labels: Default::default(),
        gift_card_ids: Vec::new(),
    }
}

pub fn placement(order: &Order, cart_version: Option<u64>) -> OrderPlacement {
    OrderPlacement {
        order: order.clone(),
        debit: Movement::payment(
            TransactionId::generate(),
            order.user_id.clone(),
            &order.id,
            order.total_amount,
            order.created_at,
        ),
        cart_version,
        idempotency: None,
    }
}

/// Places an order of these items and returns it as placed.
pub async fn place(
    ports: &Ports,
    user: &UserId,
    lines: &[(&CatalogueEntry, u32)],
) -> Result<Order> {
    let order = new_order(user, lines, OrderSource::Items, now());
    ports.orders.place_order(&placement(&order, None)).await?;
    Ok(order)
}

/// The fulfillment of `order` with these quantities, built like the fulfillment use case:
/// sealed cards, the final status and the refund the quantities imply.
pub fn fulfillment(order: &Order, quantities: &[u32], at: DateTime<Utc>) -> Fulfillment {
    let mut lines = order.items.clone();
    let mut cards = Vec::new();
    for (line, &units) in lines.iter_mut().zip(quantities) {
        line.fulfilled_quantity = units;
        for _ in 0..units {
            let id = GiftCardId::generate();
            cards.push(GiftCard {
                sealed: vault().issue(&id).expect("sealing works"),
                id,
                order_id: order.id.clone(),
                user_id: order.user_id.clone(),
                product_id: line.product_id.clone(),
                variant_id: line.variant_id.clone(),
                product_name: line.product_name.clone(),
                variant_name: line.variant_name.clone(),
                denomination: line.denomination,
                expiry_date: (at + chrono::Duration::days(i64::from(line.validity_days)))
                    .date_naive(),
                status: GiftCardStatus::Active,
                purchase_price: line.unit_price,
                issued_at: at,
                redeemed_at: None,
                redeemed_by: None,
                revealed_at: None,
                returned_at: None,
                notified_at: None,
            });
        }
    }
    let refund = refund_amount(&lines);
    Fulfillment {
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        status: final_status(&lines),
        fulfilled_quantities: quantities.to_vec(),
        cards,
        allocated_codes: Vec::new(),
        refund: (refund > Paise::ZERO).then(|| {
            Movement::refund_of_unfulfilled(
                TransactionId::generate(),
                order.user_id.clone(),
                &order.id,
                refund,
                at,
            )
        }),
        clear_cart: order.source == OrderSource::Cart,
        now: at,
    }
}

/// Starts processing and completes the order with these quantities.
pub async fn fulfil(ports: &Ports, order: &Order, quantities: &[u32]) -> Result<Order> {
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    ensure!(
        processing.status == OrderStatus::Processing,
        "{processing:?}"
    );
    Ok(ports
        .orders
        .complete_fulfillment(&fulfillment(&processing, quantities, now()))
        .await?)
}

/// The wallet's ledger explains its balance: credits and refunds minus debits, every record's
/// `balance_after` chaining from the previous one, and the newest one equal to the balance.
pub async fn assert_ledger_consistent(ports: &Ports, user: &UserId) -> Result<()> {
    let balance = ports.wallets.balance(user).await?;
    let page = ports
        .wallets
        .transactions(
            user,
            &TransactionFilter::ALL,
            PageRequest::new(Some(1), Some(100), 100)?,
        )
        .await?;
    ensure!(page.total <= 100, "the ledger check reads one page");
    let mut running = 0i64;
    for txn in page.items.iter().rev() {
        running += txn.balance_change().get();
        ensure!(
            txn.balance_after.get() == running,
            "balance_after of {} is {}, the ledger says {running}",
            txn.id,
            txn.balance_after
        );
        ensure!(running >= 0, "the balance went negative");
    }
    ensure!(
        running == balance.get(),
        "the balance is {balance}, the ledger says {running}"
    );
    Ok(())
}

/// `paidAmount = fulfilled value + refundAmount`, and a final order's refund is recorded.
pub fn assert_order_adds_up(order: &Order) -> Result<()> {
    ensure!(
        order.paid_amount.get() == order.fulfilled_value().get() + order.refund_amount.get(),
        "paid {} ≠ fulfilled {} + refund {}",
        order.paid_amount,
        order.fulfilled_value(),
        order.refund_amount
    );
    ensure!(order.paid_amount == order.total_amount);
    Ok(())
}

/// A pass of card expiry on `today`, with the catalogue's Giftify variants as they are now.
pub async fn expiry(ports: &Ports, today: chrono::NaiveDate) -> Result<Expiry> {
    Ok(Expiry::new(today, 100, &ports.catalogue.inventory().await?))
}
