"""The per-router work queue: parallel across routers, serialized and coalesced per router."""

from __future__ import annotations

import threading
import time

from isthmus.agent.workqueue import RouterWorkQueue


class FakeWork:
    """Records overlapping runs; each run sleeps a little to make overlaps possible."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.max_same_router = 0
        self.max_parallel = 0
        self.runs: list[tuple[str, object]] = []

    def __call__(self, router_id: str, payload: object) -> None:
        with self.lock:
            self.active[router_id] = self.active.get(router_id, 0) + 1
            self.max_same_router = max(self.max_same_router, self.active[router_id])
            self.max_parallel = max(self.max_parallel, sum(self.active.values()))
            self.runs.append((router_id, payload))
        time.sleep(self.delay_s)
        with self.lock:
            self.active[router_id] -= 1


def test_routers_run_in_parallel_but_one_router_never_twice_at_once():
    work = FakeWork()
    queue = RouterWorkQueue(work, workers=4)
    for i in range(8):
        queue.submit(f"r{i % 4}")
    assert queue.wait_idle(5)
    queue.shutdown()
    assert work.max_same_router == 1
    assert work.max_parallel == 4
    assert {r for r, _ in work.runs} == {"r0", "r1", "r2", "r3"}


def test_a_burst_for_one_router_costs_at_most_two_runs_and_ends_with_the_newest():
    work = FakeWork(delay_s=0.1)
    queue = RouterWorkQueue(work, workers=2)
    for n in range(10):
        queue.submit("r", ["state", n])
    assert queue.wait_idle(5)
    queue.shutdown()
    assert len(work.runs) == 2
    assert work.runs[-1] == ("r", ["state", 9])


def test_a_failing_sync_does_not_stop_the_queue(caplog):
    calls = []

    def work(router_id, payload):
        calls.append(router_id)
        if router_id == "bad":
            raise RuntimeError("device exploded")

    queue = RouterWorkQueue(work, workers=2)
    queue.submit("bad")
    queue.submit("good")
    assert queue.wait_idle(5)
    queue.submit("bad")
    assert queue.wait_idle(5)
    queue.shutdown()
    assert calls.count("bad") == 2 and "good" in calls
    assert "device exploded" in caplog.text
