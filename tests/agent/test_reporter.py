"""StatusReporter: update_status reports batched across routers, in order, bounded."""

from __future__ import annotations

import threading

import oslo_messaging as messaging

from isthmus.agent.reporter import StatusReporter


def report(service_id: str, connections: int = 2, status: str = "ACTIVE") -> dict:
    return {"id": service_id, "status": status, "updated_pending_status": True,
            "ipsec_site_connections": {f"{service_id}-c{i}": {
                "status": status, "updated_pending_status": True} for i in range(connections)}}


class FakeServer:
    """Records each call; the first one waits for ``release`` (so that others queue up)."""

    def __init__(self, hold_first: bool = True, fail: set[int] = frozenset()) -> None:
        self.calls: list[list[str]] = []
        self.sent: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail = fail

    def send(self, reports):
        self.calls.append([r["id"] for r in reports])
        self.started.set()
        self.release.wait(5)
        if len(self.calls) - 1 in self.fail:
            raise messaging.MessagingTimeout("no answer")
        return len(reports)

    def on_sent(self, reports):
        self.sent.append([r["id"] for r in reports])


def test_reports_queued_during_a_call_go_together_in_order():
    server = FakeServer()
    reporter = StatusReporter(server.send, server.on_sent).start()
    reporter.submit([report("a")])
    assert server.started.wait(5)
    for router in range(5):   # five routers' reports while the first call is out
        reporter.submit([report(f"r{router}-s0"), report(f"r{router}-s1")])
    server.release.set()
    assert reporter.flush(5)
    reporter.stop(5)
    assert server.calls == [["a"], [f"r{r}-s{s}" for r in range(5) for s in range(2)]]
    assert server.sent == server.calls


def test_a_batch_is_bounded_and_cut_before_a_service_it_already_has():
    server = FakeServer()
    reporter = StatusReporter(server.send, server.on_sent, max_objects=9).start()
    reporter.submit([report("first")])
    assert server.started.wait(5)
    # 3 objects each, so three fit in 9; "b" again must wait for the next call.
    reporter.submit([report("a"), report("b")])
    reporter.submit([report("b", status="DOWN"), report("c")])
    reporter.submit([report("d"), report("e"), report("f"), report("g")])
    reporter.submit([report("big", connections=20)])   # alone, however big
    server.release.set()
    assert reporter.flush(5)
    reporter.stop(5)
    assert server.calls == [["first"], ["a", "b"], ["b", "c", "d"], ["e", "f", "g"],
                            ["big"]]


def test_done_says_when_reports_went_and_whether_they_were_sent():
    server = FakeServer(fail={1})
    reporter = StatusReporter(server.send, server.on_sent).start()
    outcomes: list[tuple[str, bool]] = []
    reporter.submit([report("a")], done=lambda sent: outcomes.append(("a", sent)))
    assert server.started.wait(5)
    reporter.submit([report("b"), report("c")], done=lambda sent: outcomes.append(("bc", sent)))
    reporter.submit([], done=lambda sent: outcomes.append(("nothing", sent)))
    assert outcomes == [("nothing", True)]   # nothing to send: at once
    server.release.set()
    assert reporter.flush(5)
    reporter.submit([report("d")], done=lambda sent: outcomes.append(("d", sent)))
    reporter.stop(5)
    # The failed call (b, c) is dropped, not retried, and not taken as known by the
    # server; the reporter goes on with the next reports.
    assert outcomes == [("nothing", True), ("a", True), ("bc", False), ("d", True)]
    assert server.calls == [["a"], ["b", "c"], ["d"]]
    assert server.sent == [["a"], ["d"]]


def test_stop_sends_what_is_queued():
    server = FakeServer(hold_first=False)
    reporter = StatusReporter(server.send, server.on_sent)
    reporter.submit([report("a")])
    reporter.start()
    reporter.stop(5)
    assert server.sent == [["a"]]
