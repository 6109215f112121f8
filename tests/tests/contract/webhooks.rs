//! Webhook endpoints and their delivery log: endpoints created once, saved only over the
//! version they were read at, deleted with their deliveries out of reach; a delivery opened
//! once per endpoint and event even when dispatchers race, saved over its version, and listed
//! newest first by state.

use crate::support::{now, user};
use anyhow::Result;
use chrono::Duration;
use giftify_shared::ids::{WebhookDeliveryId, WebhookEndpointId};
use giftify_shared::ports::Ports;
use giftify_shared::wallet::PageRequest;
use giftify_shared::webhooks::{
    DeliveryAttempt, DeliveryState, EndpointPatch, EndpointSettings, Outgoing, WebhookDelivery,
    WebhookEndpoint, check_event_types,
};
use giftify_shared::{Error, Missing};

async fn endpoint(ports: &Ports, at: chrono::DateTime<chrono::Utc>) -> Result<WebhookEndpoint> {
    let admin = user(ports).await?;
    let endpoint = WebhookEndpoint::new(
        WebhookEndpointId::generate(),
        EndpointSettings {
            url: "https://example.com/hooks".into(),
            event_types: check_event_types(&["order.fulfilled".into()])?,
            description: "contract".into(),
            enabled: true,
        },
        "sealed-secret".into(),
        Some(&admin.id),
        at,
    );
    ports.webhooks.create_endpoint(&endpoint).await?;
    Ok(endpoint)
}

fn outgoing(n: u32) -> Outgoing {
    Outgoing {
        event_id: format!(
            "evt_contract_{n}_{}",
            WebhookDeliveryId::generate().ulid_part()
        ),
        event_type: "order.fulfilled".into(),
        body: format!("{{\"n\":{n}}}"),
    }
}

pub async fn endpoints_are_created_once_and_saved_over_their_version(ports: &Ports) -> Result<()> {
    let older = endpoint(ports, now() - Duration::seconds(5)).await?;
    let newer = endpoint(ports, now()).await?;
    let again = ports.webhooks.create_endpoint(&older).await.unwrap_err();
    assert!(matches!(again, Error::Conflict(_)), "{again:?}");
    assert_eq!(ports.webhooks.endpoint(&older.id).await?, older);
    let listed: Vec<_> = ports.webhooks.endpoints().await?;
    assert_eq!(listed, vec![older.clone(), newer.clone()], "oldest first");

    let patched = older.patched(
        &EndpointPatch {
            enabled: Some(false),
            ..EndpointPatch::default()
        },
        now(),
    )?;
    ports.webhooks.save_endpoint(&patched).await?;
    assert_eq!(ports.webhooks.endpoint(&older.id).await?, patched);
    // A save over the version before is a lost race, and changes nothing.
    let stale = older.patched(
        &EndpointPatch {
            description: Some("stale".into()),
            ..EndpointPatch::default()
        },
        now(),
    )?;
    let lost = ports.webhooks.save_endpoint(&stale).await.unwrap_err();
    assert!(matches!(lost, Error::Conflict(_)), "{lost:?}");
    assert_eq!(ports.webhooks.endpoint(&older.id).await?, patched);

    let missing = WebhookEndpointId::generate();
    for refused in [
        ports
            .webhooks
            .endpoint(&missing)
            .await
            .map(|_| ())
            .unwrap_err(),
        ports.webhooks.delete_endpoint(&missing).await.unwrap_err(),
    ] {
        assert!(
            matches!(refused, Error::NotFound(Missing::WebhookEndpoint)),
            "{refused:?}"
        );
    }
    ports.webhooks.delete_endpoint(&older.id).await?;
    let gone = ports
        .webhooks
        .save_endpoint(&patched.patched(&EndpointPatch::default(), now())?)
        .await
        .unwrap_err();
    assert!(
        matches!(gone, Error::NotFound(Missing::WebhookEndpoint)),
        "{gone:?}"
    );
    assert_eq!(ports.webhooks.endpoints().await?, vec![newer]);
    Ok(())
}

pub async fn a_delivery_is_opened_once_per_endpoint_and_event_even_racing(
    ports: &Ports,
) -> Result<()> {
    let first = endpoint(ports, now()).await?;
    let second = endpoint(ports, now()).await?;
    let event = outgoing(1);
    let racers = (0..8).map(|_| {
        let ports = ports.clone();
        let delivery = WebhookDelivery::open(&first.id, &event, now());
        tokio::spawn(async move { ports.webhooks.open_delivery(&delivery).await })
    });
    let mut opened = Vec::new();
    for racer in racers {
        opened.push(racer.await??);
    }
    assert!(
        opened.iter().all(|d| *d == opened[0]),
        "every racer answers the same delivery"
    );
    assert_eq!(
        ports.webhooks.delivery(&first.id, &opened[0].id).await?,
        opened[0]
    );
    let other = ports
        .webhooks
        .open_delivery(&WebhookDelivery::open(&second.id, &event, now()))
        .await?;
    assert_ne!(other.id, opened[0].id, "another endpoint has its own");
    let theirs = ports
        .webhooks
        .delivery(&second.id, &opened[0].id)
        .await
        .unwrap_err();
    assert!(
        matches!(theirs, Error::NotFound(Missing::WebhookDelivery)),
        "{theirs:?}"
    );
    Ok(())
}

pub async fn deliveries_are_saved_over_their_version_and_listed_by_state(
    ports: &Ports,
) -> Result<()> {
    let hook = endpoint(ports, now()).await?;
    let mut opened = Vec::new();
    for n in 0..3 {
        opened.push(
            ports
                .webhooks
                .open_delivery(&WebhookDelivery::open(&hook.id, &outgoing(n), now()))
                .await?,
        );
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let due = ports.webhooks.due_deliveries(now(), 100).await?;
    for delivery in &opened {
        assert!(due.contains(delivery), "a fresh delivery is due at once");
    }
    let claimed = opened[1].claimed(now(), Duration::seconds(60));
    ports.webhooks.save_delivery(&claimed).await?;
    let lost = ports
        .webhooks
        .save_delivery(&opened[1].claimed(now(), Duration::seconds(60)))
        .await
        .unwrap_err();
    assert!(
        matches!(lost, Error::Conflict(_)),
        "a second claim loses: {lost:?}"
    );
    let delivered = claimed.attempted(DeliveryAttempt::new(now(), Some(200), 7, None), now());
    ports.webhooks.save_delivery(&delivered).await?;
    assert_eq!(
        ports.webhooks.delivery(&hook.id, &delivered.id).await?,
        delivered
    );
    let due: Vec<_> = ports
        .webhooks
        .due_deliveries(now(), 100)
        .await?
        .into_iter()
        .filter(|d| d.endpoint_id == hook.id)
        .map(|d| d.id)
        .collect();
    assert_eq!(
        due,
        vec![opened[0].id.clone(), opened[2].id.clone()],
        "soonest first; a delivered one is not due"
    );
    let later = ports
        .webhooks
        .due_deliveries(now() + Duration::seconds(120), 100)
        .await?;
    assert!(
        later.iter().all(|d| d.state == DeliveryState::Pending),
        "only pending deliveries are due"
    );

    let all = ports
        .webhooks
        .deliveries(&hook.id, None, PageRequest::new(None, None, 10)?)
        .await?;
    assert_eq!(all.total, 3);
    let ids: Vec<_> = all.items.iter().map(|d| d.id.clone()).collect();
    let mut newest_first: Vec<_> = opened.iter().map(|d| d.id.clone()).collect();
    newest_first.reverse();
    assert_eq!(ids, newest_first);
    let pending = ports
        .webhooks
        .deliveries(
            &hook.id,
            Some(DeliveryState::Pending),
            PageRequest::new(Some(2), Some(1), 10)?,
        )
        .await?;
    assert_eq!(pending.total, 2);
    assert_eq!(
        pending.items,
        vec![opened[0].clone()],
        "page 2 of the pending ones"
    );
    let done = ports
        .webhooks
        .deliveries(
            &hook.id,
            Some(DeliveryState::Delivered),
            PageRequest::new(None, None, 10)?,
        )
        .await?;
    assert_eq!(done.items, vec![delivered]);

    Ok(())
}
