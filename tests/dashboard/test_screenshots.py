"""The screenshots of docs/dashboard.md are taken by tested code: scripts/dashboard-screenshots
runs this same :func:`take_screenshots`, which waits for what each picture must show
(traffic lines, a failure's reason, a status change in the event list)."""

from __future__ import annotations

from tests.dashboard.screenshots import take_screenshots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_docs_screenshots_are_taken_of_a_running_isthmus(chromium, tmp_path):
    out = tmp_path / "images"
    out.mkdir()
    shots = take_screenshots(chromium, out, tmp_path / "state")
    assert [p.name for p in shots] == ["dashboard.png", "dashboard-status-change.png",
                                     "dashboard-credentials.png"]
    for path in shots:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path
