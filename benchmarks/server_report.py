"""The table of ``server_vs_mlflow.py``: each figure, modelreg against the better of the
MLflow settings, the ratio and whether the target is met."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server_workload import ALIAS_CLIENTS

# -- the table ----------------------------------------------------------------------------


def ratio_text(r: float) -> str:
    if r != r or r == float("inf"):
        return "-"
    return f"{r:,.1f}x" if r < 100 else f"{r:,.0f}x"


def number(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "%":
        return f"{value:.0f}%"
    if unit in {"ms", "s"}:
        return f"{value:,.2f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


# Each figure: (name, value of a server's results, unit, higher is better, target, check).
# ``check(modelreg value, ratio)`` says whether the target is met; None marks information.
Check = Callable[[float, float], bool] | None
Spec = tuple[str, Callable[[dict[str, Any]], float], str, bool, str, Check]


def specs(size: int, versions: int, cp_mib_s: float) -> list[Spec]:
    def up(r: dict[str, Any]) -> float:
        return size / r["bigfile"]["upload_s"]

    def down(r: dict[str, Any]) -> float:
        return size / r["bigfile"]["download_s"]

    def during_transfers(r: dict[str, Any]) -> float:
        return max(r["memory"].get("bigfile", 0), r["memory"].get("reregister", 0))

    n = ALIAS_CLIENTS
    big = f"{size} MiB file"
    again = f"re-register the identical {big}"
    return [
        (
            "register a version (10 params, 5 metrics, 3 tags, 1 KB file)",
            lambda r: r["register"]["per_s"],
            "versions/s",
            True,
            ">= 20x MLflow",
            lambda v, x: x >= 20,
        ),
        (
            f"resolve an alias, {n} clients: throughput",
            lambda r: r["alias"]["per_s"],
            "req/s",
            True,
            ">= 10x MLflow",
            lambda v, x: x >= 10,
        ),
        (
            f"resolve an alias, {n} clients: p99",
            lambda r: r["alias"]["p99"],
            "ms",
            False,
            "<= 20 ms",
            lambda v, x: v <= 20,
        ),
        (f"resolve an alias, {n} clients: p50", lambda r: r["alias"]["p50"], "ms", False, "", None),
        (
            f"best version by a metric among {versions:,}: p50",
            lambda r: r["search"]["p50"],
            "ms",
            False,
            "<= 5 ms",
            lambda v, x: v <= 5,
        ),
        (f"upload a {big}", up, "MiB/s", True, ">= 2x MLflow", lambda v, x: x >= 2),
        (
            f"upload a {big}: share of cp ({cp_mib_s:,.0f} MiB/s)",
            lambda r: 100 * up(r) / cp_mib_s,
            "%",
            True,
            ">= 50% of cp",
            lambda v, x: v >= 50,
        ),
        (f"download a {big}", down, "MiB/s", True, ">= 2x MLflow", lambda v, x: x >= 2),
        (
            f"download a {big}: share of cp",
            lambda r: 100 * down(r) / cp_mib_s,
            "%",
            True,
            ">= 50% of cp",
            lambda v, x: v >= 50,
        ),
        (
            "log 50,000 metric points, 1000 per request",
            lambda r: r["metrics"]["wide"]["per_s"],
            "points/s",
            True,
            ">= 20x MLflow",
            lambda v, x: x >= 20,
        ),
        (
            "log 50,000 metric points, 50 keys x 1000 steps",
            lambda r: r["metrics"]["long"]["per_s"],
            "points/s",
            True,
            "",
            None,
        ),
        (
            f"{again}: bytes sent",
            lambda r: r["reregister"]["received_bytes"],
            "B",
            False,
            "no file bytes",
            lambda v, x: v < 64 * 1024,
        ),
        (
            f"{again}: bytes stored",
            lambda r: r["reregister"]["stored_bytes"],
            "B",
            False,
            "0 bytes",
            lambda v, x: v == 0,
        ),
        (f"{again}: time", lambda r: r["reregister"]["seconds"], "s", False, "", None),
        ("server peak RSS, whole run", lambda r: r["peak_rss_mb"], "MiB", False, "", None),
        (f"server peak RSS, {big} transfers", during_transfers, "MiB", False, "", None),
        ("server start-up to health 200", lambda r: r["startup_s"], "s", False, "", None),
    ]


def build_rows(
    mr: dict[str, Any], ml: dict[str, dict[str, Any]], size: int, cp_mib_s: float
) -> list[dict[str, Any]]:
    """The table: modelreg against the better of the MLflow settings, figure by figure."""
    rows = []
    for name, get, unit, higher, target, check in specs(size, mr["versions_total"], cp_mib_s):
        value = get(mr)
        each = {label: get(res) for label, res in ml.items()}
        which = (max if higher else min)(each, key=lambda k: each[k])
        other = each[which]
        ratio = _divide(value, other) if higher else _divide(other, value)
        rows.append(
            {
                "figure": name,
                "modelreg": value,
                "mlflow": other,
                "mlflow_which": which,
                "mlflow_all": each,
                "unit": unit,
                "ratio": ratio,
                "target": target or "(info)",
                "passed": None if check is None else bool(check(value, ratio)),
            }
        )
    return rows


def _divide(a: float, b: float) -> float:
    if b == 0:
        return float("inf") if a > 0 else float("nan")
    return a / b


def show_table(rows: list[dict[str, Any]]) -> None:
    head = ("figure", "modelreg", "MLflow (best)", "ratio", "target", "result")
    body = []
    for r in rows:
        result = "(info)" if r["passed"] is None else ("met" if r["passed"] else "NOT MET")
        mlflow = number(r["mlflow"], r["unit"]) + (" (w1)" if "1" in r["mlflow_which"] else "")
        body.append(
            (
                r["figure"],
                number(r["modelreg"], r["unit"]),
                mlflow,
                ratio_text(r["ratio"]),
                r["target"],
                result,
            )
        )
    widths = [max(len(str(line[i])) for line in (head, *body)) for i in range(len(head))]
    for line in (head, tuple("-" * w for w in widths), *body):
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
    print(
        "  ratio: how many times better modelreg is (higher throughput, or lower latency, "
        "size, memory or time); (w1) marks MLflow's --workers 1 as the better of the two."
    )
