//! Products, variants, stock and prices.

use crate::support::{
    entries_in_order, fulfil, funded_user, now, place, product, stock_of, stocked, variant,
};
use anyhow::{Result, ensure};
use giftify_shared::catalogue::{ProductUpdate, VariantUpdate, demo_catalogue};
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::ports::Ports;
use giftify_shared::{Error, Paise};

pub async fn seeding_writes_the_catalogue_once_even_when_two_seed_at_once(
    ports: &Ports,
) -> Result<()> {
    let (first, second) = (demo_catalogue(now()), demo_catalogue(now()));
    let variants: usize = first.iter().map(|p| p.variants.len()).sum();

    let (a, b) = tokio::join!(
        ports.catalogue.seed_if_empty(&first),
        ports.catalogue.seed_if_empty(&second)
    );

    assert!(a? ^ b?, "exactly one of two concurrent seeds writes");
    assert_eq!(ports.catalogue.inventory().await?.len(), variants);
    assert!(
        !ports
            .catalogue
            .seed_if_empty(&demo_catalogue(now()))
            .await?
    );
    assert_eq!(ports.catalogue.inventory().await?.len(), variants);
    Ok(())
}

pub async fn the_active_catalogue_shows_only_active_products_and_variants_by_name(
    ports: &Ports,
) -> Result<()> {
    let at = now();
    let zomato = product("Zomato", at);
    let amazon = product("Amazon", at);
    let mut retired = product("Retired", at);
    retired.is_active = false;
    for p in [&zomato, &amazon, &retired] {
        ports.catalogue.add_product(p).await?;
    }
    let z500 = variant(&zomato.id, 500, 10, at);
    let z250 = variant(&zomato.id, 250, 10, at);
    let mut z1000 = variant(&zomato.id, 1000, 10, at);
    z1000.is_active = false;
    let a500 = variant(&amazon.id, 500, 0, at);
    let r500 = variant(&retired.id, 500, 10, at);
    for v in [&z500, &z250, &z1000, &a500, &r500] {
        ports.catalogue.add_variant(v).await?;
    }

    let catalogue = ports.catalogue.active_catalogue().await?;

    let names: Vec<&str> = catalogue.iter().map(|p| p.product.name.as_str()).collect();
    assert_eq!(names, vec!["Amazon", "Zomato"]);
    let zomato_variants: Vec<&VariantId> = catalogue[1].variants.iter().map(|v| &v.id).collect();
    assert_eq!(
        zomato_variants,
        vec![&z250.id, &z500.id],
        "active ones, by denomination"
    );
    assert_eq!(
        catalogue[0].variants,
        vec![a500.clone()],
        "out of stock is still listed"
    );
    assert_eq!(catalogue[1].product, zomato);

    let inventory = ports.catalogue.inventory().await?;
    assert_eq!(inventory.len(), 5, "the admin inventory shows everything");
    let order: Vec<(&str, i64)> = inventory
        .iter()
        .map(|e| (e.product.name.as_str(), e.variant.denomination))
        .collect();
    assert_eq!(
        order,
        vec![
            ("Amazon", 500),
            ("Retired", 500),
            ("Zomato", 250),
            ("Zomato", 500),
            ("Zomato", 1000)
        ]
    );
    Ok(())
}

pub async fn entries_returns_the_existing_variants_of_a_list_active_or_not(
    ports: &Ports,
) -> Result<()> {
    let entries = stocked(ports, &[5, 7]).await?;
    let retired = &entries[1].variant.id;
    ports
        .catalogue
        .update_variant(
            retired,
            &VariantUpdate {
                is_active: Some(false),
                ..VariantUpdate::default()
            },
            now(),
        )
        .await?;
    let unknown = VariantId::generate();

    let found = ports
        .catalogue
        .entries(&[entries[0].variant.id.clone(), unknown, retired.clone()])
        .await?;

    assert_eq!(found.len(), 2);
    let retired_entry = found.iter().find(|e| e.variant.id == *retired).unwrap();
    assert!(!retired_entry.is_available());
    assert_eq!(retired_entry.product, entries[1].product);
    assert!(ports.catalogue.entries(&[]).await?.is_empty());
    Ok(())
}

pub async fn adding_a_variant_to_an_unknown_product_is_not_found(ports: &Ports) -> Result<()> {
    let orphan = variant(&ProductId::generate(), 500, 10, now());
    let err = ports.catalogue.add_variant(&orphan).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(ports.catalogue.entries(&[orphan.id]).await?.is_empty());
    Ok(())
}

pub async fn a_stock_update_that_would_go_negative_is_refused_and_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let entries = stocked(ports, &[5]).await?;
    let id = &entries[0].variant.id;
    let adjust = |delta| VariantUpdate {
        stock_adjustment: Some(delta),
        ..VariantUpdate::default()
    };
    let set = |stock| VariantUpdate {
        stock_quantity: Some(stock),
        ..VariantUpdate::default()
    };

    let err = ports
        .catalogue
        .update_variant(id, &adjust(-6), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    assert_eq!(stock_of(ports, id).await?, 5);
    let err = ports
        .catalogue
        .update_variant(id, &set(-1), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    assert_eq!(stock_of(ports, id).await?, 5);

    let later = now();
    let drained = ports
        .catalogue
        .update_variant(id, &adjust(-5), later)
        .await?;
    assert_eq!(drained.variant.stock_quantity, 0);
    assert_eq!(drained.variant.updated_at, later);
    let restocked = ports
        .catalogue
        .update_variant(id, &adjust(40), now())
        .await?;
    assert_eq!(restocked.variant.stock_quantity, 40);
    let reset = ports.catalogue.update_variant(id, &set(12), now()).await?;
    assert_eq!(reset.variant.stock_quantity, 12);

    let err = ports
        .catalogue
        .update_variant(&VariantId::generate(), &set(1), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    Ok(())
}

pub async fn a_price_update_re_derives_the_selling_price_or_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    // A brand's card: a Giftify card sells at its face value, never repriced below it.
    let at = now();
    let brand = product("Repriced", at);
    ports.catalogue.add_product(&brand).await?;
    let mut variant = variant(&brand.id, 250, 5, at);
    variant.fulfillment_source = giftify_shared::codes::FulfillmentSource::Inventory;
    ports.catalogue.add_variant(&variant).await?;
    let entries = entries_in_order(ports, std::slice::from_ref(&variant.id)).await?;
    let before = &entries[0].variant;
    assert_eq!(before.selling_price, Paise::new(23_750), "₹250 at 5 % off");

    let deeper = VariantUpdate {
        discount_percent: Some(10),
        is_active: Some(false),
        ..VariantUpdate::default()
    };
    let updated = ports
        .catalogue
        .update_variant(&before.id, &deeper, now())
        .await?;
    assert_eq!(updated.variant.selling_price, Paise::new(22_500));
    assert_eq!(updated.variant.mrp, before.mrp);
    assert!(!updated.variant.is_active);
    assert_eq!(updated.variant.stock_quantity, 5);

    let invalid = VariantUpdate {
        cost_price: Some(before.mrp.get() + 1),
        stock_adjustment: Some(3),
        ..VariantUpdate::default()
    };
    let err = ports
        .catalogue
        .update_variant(&before.id, &invalid, now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    let after = entries_in_order(ports, std::slice::from_ref(&before.id)).await?;
    assert_eq!(after[0], updated, "a refused update changes no field");
    Ok(())
}

pub async fn a_product_update_changes_what_it_names_and_nothing_else(ports: &Ports) -> Result<()> {
    let e = stocked(ports, &[5]).await?;
    let before = e[0].product.clone();
    let unknown = ports
        .catalogue
        .update_product(&ProductId::generate(), &ProductUpdate::default(), now())
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::NotFound(_)), "{unknown:?}");
    let at = now();
    let change = ProductUpdate {
        name: Some("Renamed".into()),
        validity_days: Some(30),
        is_active: Some(false),
        ..ProductUpdate::default()
    };
    let (read, after) = ports
        .catalogue
        .update_product(&before.id, &change, at)
        .await?;
    assert_eq!(read, before);
    assert_eq!(after, change.applied_to(&before, at));
    assert_eq!(
        (after.name.as_str(), after.validity_days, after.is_active),
        ("Renamed", 30, false)
    );
    assert_eq!(after.description, before.description);
    let stored = ports.catalogue.entries(&[e[0].variant.id.clone()]).await?;
    assert_eq!(stored[0].product, after);
    assert_eq!(stored[0].variant, e[0].variant, "the variant is untouched");
    assert!(
        !ports
            .catalogue
            .active_catalogue()
            .await?
            .iter()
            .any(|p| p.product.id == before.id),
        "an inactive product leaves the catalogue"
    );
    Ok(())
}

/// Where a store keeps a catalogue version, every change to a product or a variant moves it —
/// an admin's, a sale's — and a refused change does not; a store that keeps none says so
/// every time, and readers fall back to a time to live.
pub async fn the_catalogue_version_moves_with_every_change_and_only_then(
    ports: &Ports,
) -> Result<()> {
    let version = || async { ports.catalogue.catalogue_version().await };
    let Some(start) = version().await? else {
        stocked(ports, &[5]).await?;
        ensure!(
            version().await?.is_none(),
            "a store keeps a version or never does"
        );
        return Ok(());
    };
    let e = stocked(ports, &[5]).await?;
    let added = version().await?.expect("a version");
    ensure!(added > start, "adding a product and a variant moves it");
    let id = &e[0].variant.id;

    let refused = VariantUpdate {
        stock_adjustment: Some(-6),
        ..VariantUpdate::default()
    };
    ports
        .catalogue
        .update_variant(id, &refused, now())
        .await
        .unwrap_err();
    ensure!(
        version().await? == Some(added),
        "a refused change leaves it"
    );

    let restock = VariantUpdate {
        stock_adjustment: Some(1),
        ..VariantUpdate::default()
    };
    ports.catalogue.update_variant(id, &restock, now()).await?;
    let restocked = version().await?.expect("a version");
    ensure!(restocked > added, "a stock change moves it");

    let rename = ProductUpdate {
        name: Some("Renamed".into()),
        ..ProductUpdate::default()
    };
    ports
        .catalogue
        .update_product(&e[0].product.id, &rename, now())
        .await?;
    let renamed = version().await?.expect("a version");
    ensure!(renamed > restocked, "a product change moves it");

    let owner = funded_user(ports, 1_000_000).await?;
    let order = place(ports, &owner.id, &[(&e[0], 2)]).await?;
    ensure!(
        version().await? == Some(renamed),
        "an order placed takes no stock yet"
    );
    fulfil(ports, &order, &[2]).await?;
    ensure!(
        version().await?.expect("a version") > renamed,
        "a sale's stock moves it"
    );
    Ok(())
}
