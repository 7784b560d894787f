"""The method table: one row per model (original, retrain, each unlearned), as JSON rows and as a rich table."""

from __future__ import annotations

from typing import Any

ROW_KEYS = ("model", "method", "UA", "RA", "TA", "mia_efficacy", "attack_auc", "seconds", "verdict")


def summary_row(model: str, method: str, evidence: dict, seconds: float, verdict: str, **extra: Any) -> dict:
    """One row of ``unlearn report --json``."""
    return {"model": model, "method": method, "UA": evidence["UA"], "RA": evidence["RA"], "TA": evidence["TA"],
            "mia_efficacy": evidence["mia_efficacy"], "attack_auc": evidence["attack_auc"],
            "strongest_attack": evidence["strongest_attack"], "seconds": seconds, "verdict": verdict, **extra}


def render_table(rows: list[dict], title: str = "unlearning summary") -> str:
    """Rows as a fixed-width text table (rich), e.g. for the end of ``make demo``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("model", "UA", "RA", "TA", "MIA-eff.", "attack AUC", "seconds", "verdict"):
        table.add_column(col, justify="left" if col in ("model", "verdict") else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['UA']:.1f}", f"{r['RA']:.1f}", f"{r['TA']:.1f}", f"{r['mia_efficacy']:.3f}",
                      f"{r['attack_auc']:.3f} ({r.get('strongest_attack', '')})", f"{r['seconds']:.1f}",
                      r["verdict"])
    console = Console(width=120, record=True, file=_Null())
    console.print(table)
    return console.export_text()


class _Null:
    def write(self, *_: Any) -> int:
        return 0

    def flush(self) -> None:
        pass
