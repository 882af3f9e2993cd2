"""docs/diagnosis.md lists exactly the reason codes of isthmus.diagnosis, as they are."""

from __future__ import annotations

import re
from pathlib import Path

from isthmus.diagnosis import REASONS

DOC = Path(__file__).resolve().parents[1] / "docs" / "diagnosis.md"


def documented() -> dict[str, tuple[str, str, str]]:
    table = re.search(r"<!-- reasons -->\n(.*?)<!-- /reasons -->", DOC.read_text(), re.S)
    assert table, "docs/diagnosis.md lost its reasons table"
    rows = {}
    for line in table.group(1).splitlines()[2:]:
        code, kind, summary, check = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows[code.strip("`")] = (kind, summary, check)
    return rows


def test_every_reason_code_is_documented_as_it_is():
    rows = documented()
    assert list(rows) == list(REASONS)
    for code, reason in REASONS.items():
        kind, summary, check = rows[code]
        assert (summary, check) == (reason.summary, reason.check), code
        assert (kind == "failure") == reason.failure, code
