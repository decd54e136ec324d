"""pystrobe's demo: a small program with a known shape to profile.

Three threads for a few seconds: one parses and re-encodes JSON, one
searches for primes, one sorts records.  Runs on Python 2.7 and 3.x.
"""
import json
import random
import sys
import threading
import time

DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0


def is_prime(n):
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def count_primes(limit):
    return sum(1 for n in range(limit) if is_prime(n))


def primes_worker(deadline):
    while time.time() < deadline:
        count_primes(20000)


def make_document(rng):
    return {"id": rng.randint(0, 10 ** 6),
            "tags": [rng.choice("abcdef") * 3 for _ in range(8)],
            "values": [rng.random() for _ in range(16)]}


def round_trip(doc):
    return json.loads(json.dumps(doc))


def json_worker(deadline):
    rng = random.Random(1)
    docs = [make_document(rng) for _ in range(200)]
    while time.time() < deadline:
        for doc in docs:
            round_trip(doc)


def sort_records(records):
    return sorted(records, key=lambda r: (r[1], r[0]))


def sort_worker(deadline):
    rng = random.Random(2)
    records = [(rng.random(), rng.randint(0, 100)) for _ in range(5000)]
    while time.time() < deadline:
        sort_records(records)


def main():
    deadline = time.time() + DURATION
    workers = [threading.Thread(target=f, args=(deadline,), name=f.__name__)
               for f in (primes_worker, json_worker, sort_worker)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
