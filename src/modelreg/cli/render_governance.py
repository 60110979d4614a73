"""Human output of the governance commands: dataset retirement, evaluations, trusted keys,
webhooks and API tokens. Same rules as :mod:`modelreg.cli.render`, whose helpers it uses:
imported only by the commands that print these tables, and every value is printed literally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from rich.text import Text

from modelreg.cli.render import (
    Listing,
    also_known_as,
    console,
    grid,
    number,
    pairs,
    print_all,
    section,
    short,
    signed,
    table,
    when,
    whole_width,
)
from modelreg.cli.support import count
from modelreg.reports import GC_NOTE

SHORT_KEY_ID = 16


# -- datasets and retirement ---------------------------------------------------------------


def retirement(
    report: dict[str, Any],
    *,
    mode: Literal["retired", "dry-run", "impact"],
    reason: str | None = None,
) -> None:
    """A retirement report: what was (``retired``), would be (``dry-run``) or is (``impact``)
    flagged, the dataset versions, the affected versions and the aliases on them."""
    ref, found, used = report["dataset"], report["datasets"], report["versions"]
    flagged = count(len(used), "version")
    retired = [d for d in found if d["retired"]]
    # Retirement is about the bytes: say every other name they are recorded under.
    others = [n for n in dict.fromkeys(d["name"] for d in found) if n != ref.partition("@")[0]]
    named = f"{ref} ({also_known_as(sorted(others))})" if others else ref
    if mode == "retired":
        head = f"retired {named}: flagged {flagged} data-retired; reason: {reason}"
    elif mode == "dry-run":
        head = f"dry run: retiring {named} would flag {flagged} data-retired; reason: {reason}"
    elif not retired:
        head = f"retiring {named} would flag {flagged} data-retired"
    else:
        reasons = "; ".join(dict.fromkeys(d["reason"] for d in retired))
        some = "" if len(retired) == len(found) else f" ({len(retired)} of {len(found)} versions)"
        head = f"{named} is retired{some}: {flagged} flagged data-retired; reason: {reasons}"
    out: list[Any] = [Text(head, style="bold")]
    states = {
        f"{d['name']}@{short(d['digest'])}": (
            f"retired {when(d['retired_at'])}" if d["retired"] else "not retired"
        )
        for d in found
    }
    out.append(grid("dataset versions", states))
    if used:
        t = table("version", "relation", "uses", "via")
        t.columns[2].overflow = "fold"
        for row in used:
            t.add_row(row["version"], row["relation"], ", ".join(row["uses"]), row["via"] or "")
        out.append(section("affected versions", t))
    elif report.get("deleted_versions"):
        out.append("no version that is not deleted depends on it")
    else:
        out.append("no version depends on it")
    if report["aliases"]:
        t = table("alias", "version")
        for a in report["aliases"]:
            t.add_row(a["alias"], a["version"])
        out.append(section("aliases on affected versions", t))
    elif used:
        out.append("no alias points at an affected version")
    if report.get("deleted_versions"):
        t = table("version", "relation", "via", "deleted")
        for row in report["deleted_versions"]:
            t.add_row(row["version"], row["relation"], row["via"] or "", when(row["deleted_at"]))
        out.append(section("deleted versions that depended on it", t))
        out.append(Text(GC_NOTE, style="dim"))
    if mode == "dry-run":
        out.append(Text("nothing was changed (--dry-run)", style="dim"))
    print_all(*out)


# -- evaluations ---------------------------------------------------------------------------


def _dataset_label(d: dict[str, Any]) -> str:
    return f"{d['name']}@{short(d['digest'])}"


def evaluation(found: dict[str, Any]) -> None:
    print_all(
        f"{found['version']} on {_dataset_label(found['dataset'])}:"
        f" {pairs(found['metrics'], fmt=number)}"
    )


def evaluations(ref: str, found: Sequence[dict[str, Any]]) -> None:
    if not found:
        print_all(f"no evaluations of {ref}: record one with `modelreg evaluate`")
        return
    t = _evaluations(ref, found, narrow=False)
    if whole_width(t) > console().width:
        t = _evaluations(ref, found, narrow=True)
    print_all(t)


def _evaluations(ref: str, found: Sequence[dict[str, Any]], *, narrow: bool) -> Listing:
    """One line an evaluation, or if ``narrow`` the digest under the dataset's name and one
    metric a line, rather than cut."""
    t = table("at", "version", "dataset", "metrics", "by", title=f"evaluations of {ref}")
    t.columns[1].no_wrap = True
    for e in found:
        name, digest = e["dataset"]["name"], short(e["dataset"]["digest"])
        t.add_row(
            when(e["created_at"]),
            e["version"],
            f"{name}\n@{digest}" if narrow else f"{name}@{digest}",
            pairs(e["metrics"], fmt=number, sep="\n" if narrow else ", "),
            e["created_by"],
        )
    return t


def _compared_on(found: dict[str, Any]) -> str:
    name = str(found["dataset"]).partition("@")[0]
    return f"{found['model']}: {found['metric']} on {name}@{short(found['digest'])}"


def leaderboard(board: dict[str, Any]) -> None:
    better = "higher" if board["higher_is_better"] else "lower"
    head = Text(f"{_compared_on(board)} ({better} is better)", style="bold")
    t = table("rank", "version", "value", "evaluated at")
    t.columns[0].justify = "right"
    t.columns[2].justify = "right"
    for row in board["ranking"]:
        t.add_row(str(row["rank"]), row["version"], number(row["value"]), when(row["evaluated_at"]))
    print_all(head, t, Text(f"dataset sha256 {board['digest']}", style="dim"))


def trend(series: dict[str, Any]) -> None:
    head = Text(_compared_on(series), style="bold")
    if not series["points"]:
        print_all(head, "no evaluation with this metric on this dataset version")
        return
    t = table("at", "version", "value", "change")
    t.columns[2].justify = "right"
    t.columns[3].justify = "right"
    previous: float | None = None
    for point in series["points"]:
        change = None if previous is None else point["value"] - previous
        t.add_row(when(point["at"]), point["version"], number(point["value"]), signed(change))
        previous = point["value"]
    print_all(head, t)


# -- trusted keys and webhooks -------------------------------------------------------------


def trusted_keys(found: Sequence[dict[str, Any]]) -> None:
    if not found:
        print_all("no trusted keys: add one with `modelreg keys trust NAME PUBKEY`")
        return
    t = table("name", "key id", "added", "by")
    t.columns[0].no_wrap = True
    for k in found:
        t.add_row(k["name"], k["key_id"][:SHORT_KEY_ID], when(k["added_at"]), k["added_by"])
    print_all(t)


def webhooks(found: Sequence[dict[str, Any]]) -> None:
    if not found:
        print_all("no webhooks: add one with `modelreg webhook add NAME URL`")
        return
    t = table("name", "url", "actions", "pending", "created")
    t.columns[0].no_wrap = True
    t.columns[1].overflow = "fold"
    t.columns[3].justify = "right"
    for w in found:
        name = w["name"] if w["active"] else f"{w['name']} (inactive)"
        t.add_row(name, w["url"], ", ".join(w["actions"]), str(w["pending"]), when(w["created_at"]))
    print_all(t)


def webhook_deliveries(found: Sequence[dict[str, Any]]) -> None:
    if not found:
        print_all("no delivery attempts yet: run `modelreg webhook deliver`")
        return
    t = table("at", "webhook", "event", "attempt", "status", "detail")
    t.columns[3].justify = "right"
    t.columns[5].overflow = "fold"
    for d in found:
        detail = [f"HTTP {d['status_code']}"] if d["status_code"] is not None else []
        if d["error"]:
            detail.append(d["error"])
        if d["next_attempt_at"] and d["status"] == "retrying":
            detail.append(f"next attempt {when(d['next_attempt_at'])}")
        event = f"{d['event_seq']} {d['action']}"
        t.add_row(
            when(d["at"]), d["webhook"], event, str(d["attempt"]), d["status"], "; ".join(detail)
        )
    print_all(t)


def api_tokens(found: Sequence[dict[str, Any]]) -> None:
    if not found:
        print_all("no tokens: create one with `modelreg token create --name NAME --role ROLE`")
        return
    t = table("name", "role", "token", "created", "by", "revoked", "last used")
    t.columns[0].no_wrap = True
    t.columns[5].min_width = t.columns[6].min_width = len("2026-11-01")
    for k in found:
        revoked = f"{when(k['revoked_at'])} by {k['revoked_by']}" if k["revoked_at"] else ""
        t.add_row(
            k["name"],
            k["role"],
            f"{k['prefix']}...",
            when(k["created_at"]),
            k["created_by"],
            revoked,
            when(k["last_used_at"]) or "never",
        )
    print_all(t)
