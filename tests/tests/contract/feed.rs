//! The event feed: an event is recorded once, numbered among its order's events, and read back
//! in recording order per user and in all — without gaps while recordings race.

use crate::support::{now, user};
use anyhow::Result;
use giftify_shared::Paise;
use giftify_shared::events::{Event, Feed, FeedCursor, OrderEvent};
use giftify_shared::ids::{OrderId, UserId};
use giftify_shared::order::OrderStatus;
use giftify_shared::ports::Ports;

fn event(order: &OrderId, user: &UserId, status: OrderStatus) -> Event {
    Event::Order(OrderEvent {
        event_id: format!(
            "evt_{}_{}",
            order.ulid_part(),
            status.as_str().to_lowercase()
        ),
        event_type: "order.fulfilled".into(),
        order_id: order.clone(),
        user_id: user.clone(),
        status,
        total_amount: Paise::new(100),
        paid_amount: Paise::new(100),
        refund_amount: Paise::ZERO,
        fulfilled_amount: Paise::new(100),
        items: Vec::new(),
        refund_reason: None,
        client_reference: None,
        metadata: Default::default(),
        occurred_at: now(),
        sequence: 0,
    })
}

/// Every event of the feed, paged `limit` at a time from the start.
async fn read_all(ports: &Ports, feed: &Feed, limit: u32) -> Result<Vec<Event>> {
    let mut cursor = FeedCursor::start(feed);
    let mut events = Vec::new();
    loop {
        let page = ports.feed.feed(feed, cursor, limit).await?;
        assert!(page.events.len() <= limit as usize);
        events.extend(page.events);
        cursor = page.next;
        if !page.has_more {
            return Ok(events);
        }
    }
}

pub async fn an_event_is_recorded_once_and_numbered_among_its_orders_events(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let order = OrderId::generate();
    let first = ports
        .feed
        .record_event(&event(&order, &owner.id, OrderStatus::Fulfilled), now())
        .await?;
    assert_eq!(first.sequence(), 1);
    let again = ports
        .feed
        .record_event(&event(&order, &owner.id, OrderStatus::Fulfilled), now())
        .await?;
    assert_eq!(again, first, "a republish returns the first recording");
    let second = ports
        .feed
        .record_event(&event(&order, &owner.id, OrderStatus::Cancelled), now())
        .await?;
    assert_eq!(second.sequence(), 2, "the order's next event");
    let other_order = ports
        .feed
        .record_event(
            &event(&OrderId::generate(), &owner.id, OrderStatus::Refunded),
            now(),
        )
        .await?;
    assert_eq!(other_order.sequence(), 1, "numbered per order");

    let mine = read_all(ports, &Feed::OfUser(owner.id.clone()), 2).await?;
    assert_eq!(
        mine,
        vec![first.clone(), second.clone(), other_order.clone()]
    );
    let stranger = user(ports).await?;
    assert!(
        read_all(ports, &Feed::OfUser(stranger.id), 10)
            .await?
            .is_empty()
    );
    let all = read_all(ports, &Feed::All, 100).await?;
    let positions: Vec<usize> = [&first, &second, &other_order]
        .iter()
        .map(|e| {
            all.iter()
                .position(|x| x == *e)
                .expect("in the feed of all")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in recording order"
    );

    let end = ports
        .feed
        .feed(
            &Feed::OfUser(owner.id.clone()),
            FeedCursor::start(&Feed::OfUser(owner.id.clone())),
            10,
        )
        .await?
        .next;
    let nothing_new = ports
        .feed
        .feed(&Feed::OfUser(owner.id.clone()), end, 10)
        .await?;
    assert!(nothing_new.events.is_empty() && !nothing_new.has_more);
    assert_eq!(nothing_new.next, end, "an empty page keeps the cursor");
    Ok(())
}

pub async fn one_event_recorded_by_racing_writers_is_recorded_once(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let order = OrderId::generate();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (ports, event) = (
                ports.clone(),
                event(&order, &owner.id, OrderStatus::Fulfilled),
            );
            tokio::spawn(async move { ports.feed.record_event(&event, now()).await })
        })
        .collect();
    let mut recordings = Vec::new();
    for writer in writers {
        recordings.push(writer.await??);
    }
    assert!(
        recordings.windows(2).all(|w| w[0] == w[1]),
        "every writer gets the one recording"
    );
    assert_eq!(recordings[0].sequence(), 1);
    let feed = read_all(ports, &Feed::OfUser(owner.id.clone()), 10).await?;
    assert_eq!(feed, vec![recordings[0].clone()], "in the feed once");
    Ok(())
}

pub async fn racing_recordings_leave_no_gap_for_a_reader(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let feed = Feed::OfUser(owner.id.clone());
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (ports, owner) = (ports.clone(), owner.id.clone());
            tokio::spawn(async move {
                let mut recorded = Vec::new();
                for _ in 0..6 {
                    // No retry here: racing writers must get through on the port's own.
                    let order = OrderId::generate();
                    recorded.push(
                        ports
                            .feed
                            .record_event(&event(&order, &owner, OrderStatus::Fulfilled), now())
                            .await?,
                    );
                }
                anyhow::Ok(recorded)
            })
        })
        .collect();
    // A reader pages while the writers race: whatever it has read must be a prefix of the
    // final feed, so a cursor never passed an event that came in behind it.
    let mut cursor = FeedCursor::start(&feed);
    let mut seen = Vec::new();
    for _ in 0..200 {
        let page = ports.feed.feed(&feed, cursor, 3).await?;
        seen.extend(page.events);
        cursor = page.next;
        if seen.len() == 24 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await??);
    }
    assert_eq!(written.len(), 24);
    let rest = ports.feed.feed(&feed, cursor, 100).await?;
    seen.extend(rest.events);
    let all = read_all(ports, &feed, 100).await?;
    assert_eq!(all.len(), 24);
    assert_eq!(
        seen, all,
        "paging during the race read every event once, in order"
    );
    Ok(())
}
