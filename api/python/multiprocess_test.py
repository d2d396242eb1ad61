"""The situations Python users come to shmdict from, replayed with real processes.

1. Two processes share keys, as in the shared_memory_dict README (only the import
   changes): one sets, the other reads and sets, the first sees it.
2. One writer and several readers of a shared "global" (the multiprocessing /
   memcached globals pattern): readers never see a half-written state.
3. Eight processes increment one counter with no lock, 10,000 times each: the total
   is exact and every intermediate value is handed out once (what
   multiprocessing.Value needs get_lock() for).
4. A reader blocked in wait_for_change is woken by a write from another process.
5. A writer killed with SIGKILL in the middle of its writes breaks nothing for the
   others: every key reads back whole, and new writers of the same keys proceed.

Each test has a deadline; the random choices come from a logged seed
(SHMDICT_TEST_SEED to replay).
"""

import multiprocessing
import os
import random
import secrets
import signal
import sys
import time
import unittest

SANITIZED = bool(os.environ.get("SHMDICT_SANITIZED"))
if not SANITIZED:
    import shmdict
    from shmdict.compat import SharedMemoryDict

SEED = int(os.environ.get("SHMDICT_TEST_SEED") or secrets.randbits(32))
DEADLINE_S = 10

spawn = multiprocessing.get_context("spawn")
fork = multiprocessing.get_context("fork")


def unique_name(tag):
    return "shmdict-pymp-%s-%d-%s" % (tag, os.getpid(), secrets.token_hex(6))


# --- 1. shared_memory_dict's README across two processes ---------------------------

def readme_second_shell(name):
    # "In either the same shell or a new Python shell on the same machine"
    existing_smd = SharedMemoryDict(name=name, size=1024)
    existing_smd["seen-by-second"] = existing_smd["some-key"]
    existing_smd["new-key"] = "some-value-with-any-type"
    existing_smd.shm.close()


# --- 2. one writer, several readers -------------------------------------------------

GENERATIONS = 5000
ITEMS = 16


def state(generation):
    # Every field is derived from the generation: a mix of two writes would show.
    return {"generation": generation, "items": [generation] * ITEMS,
            "label": "gen-%d" % generation}


def publish(d):
    for g in range(1, GENERATIONS + 1):
        d["state"] = state(g)


def read_until_last(d, reader):
    d["ready-%d" % reader] = True
    last = 0
    reads = 0
    distinct = 0
    deadline = time.monotonic() + DEADLINE_S
    while last < GENERATIONS and time.monotonic() < deadline:
        s = d.get("state")
        reads += 1
        if s is None:
            continue
        g = s["generation"]
        if s != state(g):
            d["reader-%d" % reader] = "torn: %r" % (s,)
            return
        if g < last:
            d["reader-%d" % reader] = "went back from %d to %d" % (last, g)
            return
        distinct += g != last
        last = g
    d["reader-%d" % reader] = ("ok", last, reads, distinct)


# --- 3. a counter without a lock ----------------------------------------------------

COUNTER_PROCESSES = 8
INCREMENTS = 10000


def count(d, results):
    got = [d.increment("hits") for _ in range(INCREMENTS)]
    results.put(got)


# --- 4. woken by another process ----------------------------------------------------

def waiter(d):
    version = d.version("signal")  # 0: absent
    d["waiting"] = True
    woke = d.wait_for_change("signal", version, timeout=DEADLINE_S)
    d["woke"] = (woke, time.monotonic())


# --- 5. a writer killed mid-write ---------------------------------------------------

KILL_KEYS = 64


def record(key, round_, n):
    # The value says who wrote it and is long enough to span several cache lines.
    return {"key": key, "round": round_, "n": n, "payload": [key, round_, n] * 40}


def write_forever(d, round_):
    n = 0
    while True:
        n += 1
        key = "k%d" % (n % KILL_KEYS)
        d[key] = record(key, round_, n)
        d.increment("writes")


def write_all_and_count(d, round_):
    for i in range(KILL_KEYS):
        key = "k%d" % i
        d[key] = record(key, round_, -1)
    d.increment("writes")
    del d["k0"]
    d["k0"] = record("k0", round_, -1)


@unittest.skipIf(SANITIZED, "sanitized build: libshmdict.so cannot be loaded into Python")
class MultiprocessTest(unittest.TestCase):

    def setUp(self):
        self.name = unique_name(self.id().rsplit(".", 1)[-1][5:25])
        self.addCleanup(shmdict.unlink, self.name, True)
        self.children = []
        self.addCleanup(self._reap)

    def _reap(self):
        for p in self.children:
            if p.is_alive():
                p.kill()
            p.join()

    def start(self, ctx, target, *args):
        p = ctx.Process(target=target, args=args)
        p.start()
        self.children.append(p)
        return p

    def join(self, p):
        p.join(DEADLINE_S)
        self.assertFalse(p.is_alive(), "child %s missed its deadline" % p.name)
        self.assertEqual(p.exitcode, 0, "child %s failed" % p.name)

    def open(self, **kwargs):
        d = shmdict.SharedDict(self.name, **kwargs)
        self.addCleanup(d.close)
        return d

    def test_1_readme_two_processes(self):
        smd = SharedMemoryDict(name=self.name, size=1024)
        smd["some-key"] = "some-value-with-any-type"
        self.join(self.start(spawn, readme_second_shell, self.name))
        # Back in the first process, smd reflects the second's changes.
        self.assertEqual(smd["seen-by-second"], "some-value-with-any-type")
        self.assertEqual(smd["new-key"], "some-value-with-any-type")
        smd.shm.close()
        smd.shm.unlink()
        self.assertFalse(os.path.exists("/dev/shm/" + self.name))

    def test_2_one_writer_several_readers(self):
        d = self.open(capacity=16, max_value_size=1024)
        readers = [self.start(fork, read_until_last, d, i) for i in range(3)]
        # The readers read before the writer begins.
        deadline = time.monotonic() + DEADLINE_S
        while (time.monotonic() < deadline
               and not all(d.get("ready-%d" % i) for i in range(3))):
            time.sleep(0.005)
        writer = self.start(fork, publish, d)
        self.join(writer)
        for p in readers:
            self.join(p)
        for i in range(3):
            outcome = d["reader-%d" % i]
            self.assertIsInstance(outcome, tuple, outcome)
            ok, last, reads, distinct = outcome
            self.assertEqual((ok, last), ("ok", GENERATIONS), outcome)
            self.assertGreater(distinct, 0)
        self.assertEqual(d["state"], state(GENERATIONS))

    def test_3_counter_without_a_lock(self):
        d = self.open(capacity=16)
        results = fork.Queue()
        procs = [self.start(fork, count, d, results) for _ in range(COUNTER_PROCESSES)]
        handed_out = []
        for _ in procs:
            handed_out.extend(results.get(timeout=DEADLINE_S))
        for p in procs:
            self.join(p)
        total = COUNTER_PROCESSES * INCREMENTS
        self.assertEqual(d.counter("hits"), total)
        # Each increment returned a distinct value: none was lost or duplicated.
        self.assertEqual(sorted(handed_out), list(range(1, total + 1)))

    def test_4_reader_woken_by_another_process(self):
        d = self.open(capacity=16)
        p = self.start(spawn, waiter, d)
        deadline = time.monotonic() + DEADLINE_S
        while "waiting" not in d and time.monotonic() < deadline:
            time.sleep(0.005)
        self.assertIn("waiting", d, "the waiter never started")
        time.sleep(0.2)  # the waiter is (almost surely) blocked by now
        written_at = time.monotonic()
        d["signal"] = "go"
        self.join(p)
        woke, woke_at = d["woke"]
        self.assertTrue(woke, "wait_for_change timed out instead of waking")
        # CLOCK_MONOTONIC is one clock for all processes of the machine.
        self.assertGreaterEqual(woke_at, written_at, "woke before the write")
        self.assertLess(woke_at - written_at, 1.0, "woke too late")

        # And without a write, it times out.
        start = time.monotonic()
        self.assertFalse(d.wait_for_change("signal", d.version("signal"), timeout=0.1))
        self.assertGreaterEqual(time.monotonic() - start, 0.1)

    def test_5_writer_killed_mid_write(self):
        rng = random.Random(SEED)
        print("multiprocess_test: SHMDICT_TEST_SEED=%d" % SEED, file=sys.stderr)
        d = self.open(capacity=256, max_value_size=2048)
        for round_ in range(1, 6):
            before = d.counter("writes")
            p = self.start(fork, write_forever, d, round_)
            deadline = time.monotonic() + DEADLINE_S
            while d.counter("writes") < before + 200 and time.monotonic() < deadline:
                time.sleep(0.002)
            self.assertGreaterEqual(d.counter("writes"), before + 200, "writer stalled")
            time.sleep(rng.uniform(0, 0.02))
            os.kill(p.pid, signal.SIGKILL)
            p.join(DEADLINE_S)
            self.assertEqual(p.exitcode, -signal.SIGKILL)

            # Every key reads back whole: one committed write, never a mix.
            for i in range(KILL_KEYS):
                key = "k%d" % i
                v = d[key]
                self.assertEqual(v, record(key, v["round"], v["n"]), key)
                self.assertLessEqual(v["round"], round_)
            # Another process writes every key (and erases and re-inserts one): it
            # must not wait forever for the dead writer's locks.
            self.join(self.start(fork, write_all_and_count, d, -round_))
            for i in range(KILL_KEYS):
                key = "k%d" % i
                self.assertEqual(d[key], record(key, -round_, -1), key)
            # And this process can write too.
            d["k1"] = "after round %d" % round_
            self.assertEqual(d["k1"], "after round %d" % round_)


if __name__ == "__main__":
    unittest.main()
