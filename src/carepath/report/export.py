"""Every table of the report as CSV files (``carepath report … --csv DIR``): one file per table,
named by the table's id (``goals.csv``, ``rates_channel.csv``, ``breached_open.csv``…), with a
header row of column keys and the raw values (fractions, seconds, ISO 8601 instants), UTF-8 with
a byte-order mark so spreadsheet programs read Vietnamese text right.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from carepath.report.view import build_view, compare_table

__all__ = ["write_csv"]


def write_csv(r: dict[str, Any], folder: str | Path, lang: str = "en") -> list[Path]:
    """Write every table of report ``r`` (or of a what-if) into ``folder`` (created when missing);
    return the files written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if "base" in r and "compare" in r and "playbook" not in r:
        tables = [compare_table(r, lang)]
        for side in ("base", "compare"):
            for t in build_view(r[side], lang).tables():
                t.id = f"{side}_{t.id}"
                tables.append(t)
    else:
        tables = build_view(r, lang).tables()
    written = []
    for t in tables:
        path = out / f"{t.id}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([key for key, _label, _num in t.columns])
            for row in t.rows:
                w.writerow(["" if c.raw is None else c.raw for c in row])
        written.append(path)
    return written
