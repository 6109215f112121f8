#!/usr/bin/env python3
"""A small discrete-event model of one hot variant on DynamoDB: docs/hot-variant.md.

Orders for one variant arrive as a Poisson stream. Each fulfillment decrements a stock
counter item inside its TransactWriteItems. A single item sustains about `item_limit`
transactional updates per second; an update that finds its item saturated in the current
10 ms slot is rejected (TransactionConflict / throttling) and retried after a backoff.

Compared: one counter item (today's design) and N shard items, where a fulfillment picks a
random shard with stock and falls back to the next shard when the picked one is saturated or
empty. Reports throughput, the share of attempts rejected, extra attempts per order and the
p50/p99 of the delay the counter adds to an order. Deterministic (fixed seed); standard
library only:  python3 docs/hot_variant_sim.py
"""
import heapq
import math
import random
import sys

SLOT = 0.010  # seconds: capacity is granted per 10 ms slot


def simulate(rate, shards, item_limit=500.0, seconds=10.0, stock=None, seed=7,
             base_backoff=0.005, max_backoff=0.2, max_attempts=10):
    rng = random.Random(seed)
    per_slot = item_limit * SLOT  # updates one item takes per slot (5 at 500/s)
    used = {}  # (shard, slot) -> updates granted
    left = [math.inf] * shards if stock is None else [stock / shards] * shards
    # events: (time, order id, attempt, arrival time)
    events = []
    t, n = 0.0, 0
    while t < seconds:
        t += rng.expovariate(rate)
        heapq.heappush(events, (t, n, 0, t))
        n += 1
    delays, attempts_total, rejected, failed, done, sold_out = [], 0, 0, 0, 0, 0
    while events:
        now, order, attempt, arrived = heapq.heappop(events)
        slot = int(now / SLOT)
        order_of_shards = list(range(shards))
        rng.shuffle(order_of_shards)
        granted = False
        for k, shard in enumerate(order_of_shards if shards > 1 else [0]):
            attempts_total += 1
            if left[shard] < 1:
                continue  # empty shard: a failed condition check, try the next
            if used.get((shard, slot), 0) >= per_slot:
                rejected += 1
                continue  # saturated: conflict, try the next shard
            used[(shard, slot)] = used.get((shard, slot), 0) + 1
            left[shard] -= 1
            granted = True
            break
        if granted:
            done += 1
            delays.append(now - arrived)
        elif all(s < 1 for s in left):
            sold_out += 1  # the variant is sold out: fulfillment refunds the line
        elif attempt + 1 >= max_attempts:
            failed += 1  # the message goes back to the queue and is retried later
        else:
            backoff = min(max_backoff, base_backoff * 2 ** attempt) * (0.5 + rng.random() / 2)
            heapq.heappush(events, (now + backoff, order, attempt + 1, arrived))
    delays.sort()

    def pct(p):
        return 1000 * delays[min(len(delays) - 1, int(p / 100 * len(delays)))] if delays else float("nan")

    return {
        "offered_per_s": rate,
        "shards": shards,
        "fulfilled_per_s": done / seconds,
        "gave_up": failed,
        "sold_out": sold_out,
        "rejected_share": rejected / max(attempts_total, 1),
        "attempts_per_order": attempts_total / max(n, 1),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
    }


def main():
    rows = [
        simulate(400, 1),
        simulate(5000, 1, seconds=4.0),
        simulate(5000, 10),
        simulate(5000, 15),
        simulate(5000, 20),
        simulate(5000, 40),
        # 20 shards with stock for ~9 s of sales: shards run dry unevenly near the end.
        simulate(5000, 20, stock=45000),
    ]
    header = f"{'offered/s':>9} {'shards':>6} {'fulfilled/s':>11} {'gave up':>7} {'sold out':>8} {'rejected':>8} {'attempts':>8} {'p50 ms':>7} {'p99 ms':>8}"
    print(header)
    for r in rows:
        print(f"{r['offered_per_s']:>9.0f} {r['shards']:>6} {r['fulfilled_per_s']:>11.0f} {r['gave_up']:>7} {r['sold_out']:>8} "
              f"{r['rejected_share']:>8.1%} {r['attempts_per_order']:>8.2f} {r['p50_ms']:>7.1f} {r['p99_ms']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
