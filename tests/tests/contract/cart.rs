//! Carts: lines, versions, and the lock a cart checkout holds.

use crate::support::{
    assert_ledger_consistent, cart_line as line, funded_user, new_order, now, placement, stocked,
    user,
};
use anyhow::Result;
use giftify_shared::cart::{CartLine, MAX_CART_LINES};
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::order::OrderSource;
use giftify_shared::ports::Ports;
use giftify_shared::wallet::PageRequest;
use giftify_shared::wallet::TransactionFilter;
use giftify_shared::{Error, Paise};

fn variants(cart: &giftify_shared::cart::Cart) -> Vec<(&VariantId, u32)> {
    cart.lines
        .iter()
        .map(|l| (&l.variant_id, l.quantity))
        .collect()
}

pub async fn cart_lines_are_added_replaced_and_removed_and_each_change_bumps_the_version(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let e = stocked(ports, &[10, 10]).await?;
    let (a, b) = (&e[0].variant.id, &e[1].variant.id);
    let carts = &ports.carts;

    let empty = carts.cart(&owner.id).await?;
    assert!(empty.lines.is_empty() && empty.locked_by.is_none());
    assert_eq!(empty.version, 0);

    let v1 = carts.put_line(&owner.id, &line(&e[0], 1), now()).await?;
    let v2 = carts.put_line(&owner.id, &line(&e[1], 2), now()).await?;
    let v3 = carts.put_line(&owner.id, &line(&e[0], 3), now()).await?;
    assert_eq!(
        variants(&v3),
        vec![(a, 3), (b, 2)],
        "a replaced line keeps its place"
    );
    assert!(v1.version < v2.version && v2.version < v3.version);
    assert_eq!(v3.total_amount()?, Paise::new(3 * 23_750 + 2 * 47_500));

    let v4 = carts.remove_line(&owner.id, b, now()).await?;
    assert_eq!(variants(&v4), vec![(a, 3)]);
    assert!(v4.version > v3.version);
    let unchanged = carts.remove_line(&owner.id, b, now()).await?;
    assert_eq!(
        unchanged.version, v4.version,
        "removing what is not there changes nothing"
    );

    carts.clear_cart(&owner.id, now()).await?;
    let cleared = carts.cart(&owner.id).await?;
    assert!(cleared.lines.is_empty());
    assert!(cleared.version > v4.version);
    assert_eq!(carts.cart(&owner.id).await?, cleared);
    Ok(())
}

pub async fn a_cart_holds_at_most_max_cart_lines_distinct_items(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let product = ProductId::generate();
    let lines: Vec<CartLine> = (0..MAX_CART_LINES)
        .map(|i| CartLine {
            variant_id: VariantId::generate(),
            product_id: product.clone(),
            product_name: "Brand".into(),
            variant_name: format!("Card {i}"),
            quantity: 1,
            unit_price: Paise::new(10_000),
        })
        .collect();
    for line in &lines {
        ports.carts.put_line(&owner.id, line, now()).await?;
    }
    let full = ports.carts.cart(&owner.id).await?;

    let mut extra = lines[0].clone();
    extra.variant_id = VariantId::generate();
    let err = ports
        .carts
        .put_line(&owner.id, &extra, now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    assert_eq!(
        ports.carts.cart(&owner.id).await?,
        full,
        "the refused line changed nothing"
    );

    let mut more = lines[0].clone();
    more.quantity = 2;
    let replaced = ports.carts.put_line(&owner.id, &more, now()).await?;
    assert_eq!(
        replaced.lines.len(),
        MAX_CART_LINES,
        "an existing line can still change"
    );
    Ok(())
}

pub async fn repricing_updates_the_stored_prices_and_the_version(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let e = stocked(ports, &[10, 10]).await?;
    ports
        .carts
        .put_line(&owner.id, &line(&e[0], 1), now())
        .await?;
    let before = ports
        .carts
        .put_line(&owner.id, &line(&e[1], 1), now())
        .await?;

    ports
        .carts
        .reprice(
            &owner.id,
            &[(e[1].variant.id.clone(), Paise::new(40_000))],
            now(),
        )
        .await?;

    let after = ports.carts.cart(&owner.id).await?;
    assert_eq!(after.lines[0].unit_price, before.lines[0].unit_price);
    assert_eq!(after.lines[1].unit_price, Paise::new(40_000));
    assert!(
        after.version > before.version,
        "a priced checkout must see the change"
    );
    Ok(())
}

pub async fn a_cart_checkout_locks_the_cart_against_every_edit(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10, 10]).await?;
    let cart = ports
        .carts
        .put_line(&owner.id, &line(&e[0], 2), now())
        .await?;
    let order = new_order(&owner.id, &[(&e[0], 2)], OrderSource::Cart, now());

    ports
        .orders
        .place_order(&placement(&order, Some(cart.version)))
        .await?;

    let locked = ports.carts.cart(&owner.id).await?;
    assert_eq!(locked.locked_by, Some(order.id.clone()));
    assert_eq!(locked.lines, cart.lines);
    let edits = [
        ports
            .carts
            .put_line(&owner.id, &line(&e[1], 1), now())
            .await
            .map(|_| ()),
        ports
            .carts
            .remove_line(&owner.id, &e[0].variant.id, now())
            .await
            .map(|_| ()),
        ports.carts.clear_cart(&owner.id, now()).await,
        ports
            .carts
            .reprice(
                &owner.id,
                &[(e[0].variant.id.clone(), Paise::new(1))],
                now(),
            )
            .await,
    ];
    for edit in edits {
        assert!(matches!(edit, Err(Error::CartLocked)), "{edit:?}");
    }
    assert_eq!(
        ports.carts.cart(&owner.id).await?,
        locked,
        "refused edits change nothing"
    );
    Ok(())
}

pub async fn a_checkout_of_a_changed_or_locked_cart_fails_and_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let priced = ports
        .carts
        .put_line(&owner.id, &line(&e[0], 1), now())
        .await?;
    let current = ports
        .carts
        .put_line(&owner.id, &line(&e[0], 2), now())
        .await?;

    let stale = new_order(&owner.id, &[(&e[0], 1)], OrderSource::Cart, now());
    let err = ports
        .orders
        .place_order(&placement(&stale, Some(priced.version)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CartLocked), "{err:?}");
    assert!(ports.orders.order(&stale.id).await?.is_none());
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 1_000_000);
    assert_eq!(ports.carts.cart(&owner.id).await?, current);
    assert_eq!(ports.queue_ops.depths().await?.ready, 0);

    let first = new_order(&owner.id, &[(&e[0], 2)], OrderSource::Cart, now());
    ports
        .orders
        .place_order(&placement(&first, Some(current.version)))
        .await?;
    let locked = ports.carts.cart(&owner.id).await?;
    let second = new_order(&owner.id, &[(&e[0], 2)], OrderSource::Cart, now());
    let err = ports
        .orders
        .place_order(&placement(&second, Some(locked.version)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CartLocked), "{err:?}");
    assert!(ports.orders.order(&second.id).await?.is_none());
    assert_eq!(
        ports.wallets.balance(&owner.id).await?,
        Paise::new(1_000_000 - first.total_amount.get()),
        "only the first checkout was charged"
    );
    let history = ports
        .wallets
        .transactions(
            &owner.id,
            &TransactionFilter::ALL,
            PageRequest::new(None, None, 20)?,
        )
        .await?;
    assert_eq!(history.total, 2);
    assert_ledger_consistent(ports, &owner.id).await
}
