//! Waiting for an order to become final without polling the store.
//!
//! Every use case that makes an order final announces it here after its commit (in
//! [`crate::Giftify`]'s `notify`, the step each of them ends with), and a reader waiting on
//! that order wakes at once. The hub lives in the process: where the finalising worker runs in
//! another process (`giftify worker` beside `giftify serve --no-worker`, or the fulfillment
//! Lambda beside the API Lambda) no announcement arrives, and the waiter falls back to reading
//! the order again every [`OrderWait::recheck`].
//!
//! A waiter registers *before* it reads the order, so an announcement between its read and its
//! wait is not lost: a `watch` receiver remembers a change made after it subscribed.
//!
//! Waiting holds a connection (on AWS, a function instance) for its whole length, so it is
//! bounded twice: [`OrderWait::max`] per request and [`OrderWait::max_waiters`] per process —
//! past it a read answers at once, as if the client had not asked to wait. A process that
//! stops [`OrderWatch::close`]s: every wait ends with the order as it is, so a wait for a
//! worker that stopped with it does not hold the shutdown to its deadline.

use crate::ids::OrderId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How long `GET /orders/{id}` with `Prefer: wait` may hold a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderWait {
    /// The cap on a client's `wait=`: a request never waits longer.
    pub max: Duration,
    /// How often a waiter reads the order again when no announcement comes: the latency a
    /// finalisation in another process adds, and one store read each time.
    pub recheck: Duration,
    /// Requests of this process that may wait at once.
    pub max_waiters: usize,
}

impl Default for OrderWait {
    fn default() -> Self {
        OrderWait {
            max: Duration::from_secs(20),
            recheck: Duration::from_millis(250),
            // A quarter of the HTTP server's default 1,024 connections.
            max_waiters: 256,
        }
    }
}

/// The process's waiters, by order.
#[derive(Debug, Default)]
pub struct OrderWatch {
    waiting: Mutex<HashMap<OrderId, watch::Sender<()>>>,
    /// Requests waiting now, across orders.
    waiters: AtomicUsize,
    closed: AtomicBool,
}

/// A request's place among the waiters, given back when dropped.
#[derive(Debug)]
pub struct WaitPermit<'a> {
    watch: &'a OrderWatch,
}

impl Drop for WaitPermit<'_> {
    fn drop(&mut self) {
        self.watch.waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a wait ended because the order was announced final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    Announced,
    TimedOut,
}

impl OrderWatch {
    /// A place among at most `max_waiters` waiting requests; `None` when they are all taken
    /// or the process is stopping.
    pub fn permit(&self, max_waiters: usize) -> Option<WaitPermit<'_>> {
        if self.is_closed() {
            return None;
        }
        self.waiters
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_waiters).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitPermit { watch: self })
    }

    /// Ends every wait now and every wait to come at once: the process is stopping.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for sender in self.lock().values() {
            sender.send_replace(());
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Registers interest in `order`; announcements from now on wake [`Watching::wait`].
    pub fn watch(&self, order: &OrderId) -> Watching<'_> {
        let mut waiting = self.lock();
        let receiver = waiting
            .entry(order.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Watching {
            watch: self,
            order: order.clone(),
            receiver,
        }
    }

    /// Wakes everyone waiting on `order`; free when no one is.
    pub fn announce_final(&self, order: &OrderId) {
        if let Some(sender) = self.lock().get(order) {
            sender.send_replace(());
        }
    }

    /// Orders someone waits on now.
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, watch::Sender<()>>> {
        // The map is left consistent by every critical section, so a panic elsewhere while it
        // was held does not make it unusable.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One registered waiter; dropping it unregisters.
#[derive(Debug)]
pub struct Watching<'a> {
    watch: &'a OrderWatch,
    order: OrderId,
    receiver: watch::Receiver<()>,
}

impl Watching<'_> {
    /// Until the order is announced final (since [`OrderWatch::watch`]) or `timeout` passes.
    pub async fn wait(&mut self, timeout: Duration) -> Woken {
        match tokio::time::timeout(timeout, self.receiver.changed()).await {
            Ok(_) => Woken::Announced,
            Err(_) => Woken::TimedOut,
        }
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut waiting = self.watch.lock();
        // Under the lock no one subscribes meanwhile; our own receiver is still counted.
        if waiting
            .get(&self.order)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            waiting.remove(&self.order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn an_announcement_after_registering_wakes_even_before_the_wait_begins() {
        let watch = OrderWatch::default();
        let order = OrderId::generate();
        let mut watching = watch.watch(&order);
        watch.announce_final(&order);
        assert_eq!(watching.wait(LONG).await, Woken::Announced);
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_its_order_only_and_times_out_otherwise() {
        let watch = OrderWatch::default();
        let (mine, other) = (OrderId::generate(), OrderId::generate());
        let mut watching = watch.watch(&mine);
        watch.announce_final(&other);
        assert_eq!(
            watching.wait(Duration::from_millis(20)).await,
            Woken::TimedOut
        );
        let announcer = async {
            tokio::task::yield_now().await;
            watch.announce_final(&mine);
        };
        let (woken, ()) = tokio::join!(watching.wait(LONG), announcer);
        assert_eq!(woken, Woken::Announced);
    }

    #[tokio::test]
    async fn waiters_are_bounded_and_closing_wakes_them_and_refuses_more() {
        let watch = OrderWatch::default();
        let first = watch.permit(2).expect("a place");
        let second = watch.permit(2).expect("a place");
        assert!(watch.permit(2).is_none(), "two wait at most");
        drop(first);
        let third = watch.permit(2).expect("a place freed");
        let order = OrderId::generate();
        let mut watching = watch.watch(&order);
        watch.close();
        assert_eq!(watching.wait(LONG).await, Woken::Announced);
        assert!(watch.is_closed());
        assert!(
            watch.permit(2).is_none(),
            "a stopping process lets no one wait"
        );
        drop((second, third));
    }

    #[tokio::test]
    async fn every_waiter_on_an_order_wakes_and_the_last_to_leave_unregisters_it() {
        let watch = OrderWatch::default();
        let order = OrderId::generate();
        let mut first = watch.watch(&order);
        let mut second = watch.watch(&order);
        assert_eq!(watch.watched(), 1);
        watch.announce_final(&order);
        assert_eq!(first.wait(LONG).await, Woken::Announced);
        assert_eq!(second.wait(LONG).await, Woken::Announced);
        drop(first);
        assert_eq!(watch.watched(), 1, "the second waiter still waits");
        drop(second);
        assert_eq!(watch.watched(), 0);
        watch.announce_final(&order);
        assert_eq!(
            watch.watched(),
            0,
            "an announcement nobody waits for keeps nothing"
        );
    }
}
