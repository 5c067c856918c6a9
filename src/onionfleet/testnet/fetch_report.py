"""The fetch report of a test run: how many fetches failed, and why (``e2e-fetches.json``).

The end-to-end module writes one report into its artifacts directory at the end of every run,
green or red: per fetcher (``cluster``: the master address; ``control``: the plain target onion)
the number of fetches and every failed one with its SOCKS error and explanation
(:mod:`onionfleet.testnet.explain`). ``onionfleet testnet fetch-report DIR`` prints the
reports found under DIR; ``scripts/e2e-repeat.sh`` calls it after each run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from onionfleet.testnet.cluster import ClusterFetch

__all__ = ["REPORT_NAME", "format_reports", "write_fetch_report"]

REPORT_NAME = "e2e-fetches.json"


def write_fetch_report(path: Path, fetchers: Mapping[str, Sequence[ClusterFetch]]) -> None:
    """Write the report of ``fetchers`` (name → every fetch, explained) to ``path``."""
    doc: dict[str, Any] = {}
    for name, results in fetchers.items():
        doc[name] = {
            "fetches": len(results),
            "failed": [
                {
                    "isolation": r.isolation,
                    "started": time.strftime("%H:%M:%S", time.gmtime(r.started_wall)),
                    "seconds": round(r.seconds, 2),
                    "error": r.error,
                    "verdict": r.verdict,
                    "explanation": r.explanation,
                }
                for r in results
                if not r.ok
            ],
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def format_reports(root: Path) -> str:
    """Every report under ``root`` as text: counts by verdict, then each failed fetch."""
    lines: list[str] = []
    paths = sorted(root.rglob(REPORT_NAME))
    if not paths:
        return f"no {REPORT_NAME} under {root} (the module did not get to its end)"
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            lines.append(f"{path}: unreadable ({exc})")
            continue
        for name, part in doc.items():
            failed = part.get("failed", [])
            verdicts: dict[str, int] = {}
            for f in failed:
                verdicts[str(f.get("verdict"))] = verdicts.get(str(f.get("verdict")), 0) + 1
            lines.append(
                f"{name}: {part.get('fetches', 0)} fetches, {len(failed)} failed"
                + (f" {verdicts}" if verdicts else "")
            )
            for f in failed:
                lines.append(
                    f"  {f.get('started')} {f.get('isolation')} ({f.get('seconds')} s): "
                    f"{f.get('error')}"
                )
                for row in str(f.get("explanation") or "(not traced)").splitlines():
                    lines.append(f"    {row}")
    return "\n".join(lines)
