#!/usr/bin/env python3
"""Read orderflow's order events from Python: any Kafka client can, because on the wire an
event is nothing but a UTF-8 key (the order id) and a plain JSON object as the value.

    python3 -m venv .venv && .venv/bin/pip install -r examples/python/requirements.txt
    .venv/bin/python examples/python/read_orders.py                 # group python-reader
    .venv/bin/python examples/python/read_orders.py --count 20 -g py-2

It joins its own consumer group, so it gets every event whatever orderflow's roles do
(fan-out); run it twice with the same -g and the two share the partitions.
"""

import argparse
import json
import os
import sys

from confluent_kafka import Consumer


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-b", "--brokers",
        default=os.environ.get("ORDERFLOW_BROKERS", "localhost:9092"),
        help="bootstrap servers (default: $ORDERFLOW_BROKERS or localhost:9092)")
    parser.add_argument(
        "-t", "--topic", default=os.environ.get("ORDERFLOW_TOPIC", "order-events"))
    parser.add_argument("-g", "--group", default="python-reader")
    parser.add_argument(
        "--count", type=int, default=0, help="stop after this many records (default: never)")
    return parser.parse_args()


def describe(value):
    """One event's status, user and source, or why the value is not an order event.
    Never raises: a consumer that crashes on one bad record would stop at it forever."""
    try:
        event = json.loads(value)
        return "{status:<9}  {user_id:<9}  {source}".format(**event)
    except (TypeError, ValueError, KeyError) as error:
        return f"not an order event ({type(error).__name__}: {error})"


def main():
    args = parse_args()
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        # A group without committed offsets starts at the beginning, as orderflow's roles do.
        "auto.offset.reset": "earliest",
        # The built-in broker completes a rebalance only after the session timeout: keep it
        # short, as orderflow does, so partitions arrive in seconds.
        "session.timeout.ms": 6000,
        # At-least-once, as in orderflow: an offset is stored (and later committed) only
        # after its record was handled, never merely because it was fetched.
        "enable.auto.offset.store": False,
    })

    def assigned(_consumer, partitions):
        print("assigned partitions", [p.partition for p in partitions], flush=True)

    def revoked(_consumer, partitions):
        print("revoked partitions", [p.partition for p in partitions], flush=True)

    consumer.subscribe([args.topic], on_assign=assigned, on_revoke=revoked)
    seen = 0
    try:
        while not args.count or seen < args.count:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                # Transport errors and the like: librdkafka retries by itself.
                print(f"consumer error: {message.error()}", file=sys.stderr)
                continue
            key = message.key().decode("utf-8", "replace") if message.key() else "-"
            print(f"p{message.partition()} @{message.offset():<6} {key}  "
                  f"{describe(message.value())}", flush=True)
            consumer.store_offsets(message=message)
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        # Commits the stored offsets and leaves the group, so the partitions move at once.
        consumer.close()


if __name__ == "__main__":
    main()
