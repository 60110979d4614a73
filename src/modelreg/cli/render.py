"""Human output of the CLI: Rich tables and trees, kept narrow-terminal friendly.

Imported only by the commands that print tables, so that ``modelreg --help`` stays fast.
The governance tables (retirement, evaluations, keys, webhooks) are in ``render_governance``.
Every value from the registry is printed literally (markup is off), never as Rich markup.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.filesize import decimal as _filesize
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from modelreg.cli.support import count

if TYPE_CHECKING:
    from modelreg.audit import AuditEvent
    from modelreg.datasets import Dataset
    from modelreg.versions import Model, Version

SHORT_DIGEST = 12
MAX_METRICS = 3
MAX_TAGS = 2
MAX_PACKAGES = 10
DATE_COLUMNS = ("created", "updated", "at", "recorded", "evaluated at", "added")


def console(*, stderr: bool = False) -> Console:
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False)


def when(stamp: str | None) -> str:
    """``2026-11-01T12:00:00.000000Z`` as ``2026-11-01 12:00`` (UTC)."""
    return "" if not stamp else stamp[:16].replace("T", " ")


def size(n: int) -> str:
    return _filesize(n)


def short(digest: str | None) -> str:
    return "-" if not digest else digest[:SHORT_DIGEST]


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def signed(value: float | None) -> str:
    if value is None:
        return ""
    return "0" if value == 0 else f"{value:+.6g}"


def pairs(
    values: dict[str, Any],
    limit: int | None = None,
    fmt: Callable[[Any], str] = str,
    *,
    sep: str = ", ",
) -> str:
    items = list(values.items())
    shown = [f"{k}={fmt(v)}" for k, v in items[:limit]]
    if limit is not None and len(items) > limit:
        shown.append(f"+{len(items) - limit}")
    return sep.join(shown)


def compact(value: float | None) -> str:
    """A number for a table cell: four significant digits."""
    return "-" if value is None else f"{value:.4g}"


class Listing(Table):
    """A table made by :func:`table`: its columns are sized by :func:`fit` when printed."""

    def __init__(self, *headers: str, title: str | None, elastic: Collection[str]) -> None:
        super().__init__(
            *headers,
            title=title,
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            show_edge=False,
        )
        self.elastic = tuple(elastic)


def table(*columns: str, title: str | None = None, elastic: Collection[str] = ()) -> Listing:
    """A table of records. ``elastic`` names the columns that give up width first when the
    terminal is too narrow, their long words cut with "..." (tags, then aliases): see
    :func:`fit`."""
    t = Listing(*columns, title=title, elastic=elastic)
    for column in t.columns:
        if column.header in DATE_COLUMNS:
            column.min_width = len("2026-11-01")  # wrap the time, never cut the date
    return t


# Between two columns of a table(): a pad, the divider, a pad.
GAP = 3
# An elastic column keeps at least this many cells, and every number in it whole.
ELASTIC_FLOOR = 8
_NUMBER = re.compile(r"[-+]?\.?\d[\d.:,_+eE%-]*")


def fit(t: Table, width: int) -> int:
    """Size the columns of ``t`` for a terminal ``width`` cells wide, so that Rich breaks a
    cell's lines only between words: a number, a date, a ``key=value`` pair, a reference is
    never split across lines (left to itself, Rich narrows a column below its longest word
    and folds it: ``train_accuracy=0`` over ``.9824``).

    Each column starts as wide as its longest line. While the table is too wide:

    1. columns wrap between words, the widest first, down to their longest word;
       right-aligned and ``no_wrap`` columns (counts, sizes, references) keep lines whole;
    2. the ``elastic`` columns, in the order named, then the ``fold`` ones (paths, URIs), go
       below their longest word: their long words are cut with "..." (or folded);
    3. then any column, the widest first.

    In 2 and 3 a column keeps ``ELASTIC_FLOOR`` cells and every number in it whole: a number,
    or a ``key=number``, is never cut. Returns how many cells too wide the table still is
    (0 when it fits): a table that does not fit is left to Rich, which cuts every column.
    """
    spans = [_span(column) for column in t.columns]
    if any(span is None for span in spans):
        return 0  # a cell that is not text: Rich measures it
    lows = [span[0] for span in spans if span is not None]
    widths = [span[1] for span in spans if span is not None]
    excess = sum(widths) + GAP * (len(widths) - 1) - width
    excess = _narrow(widths, lows, excess)
    floors = [
        min(low, max(ELASTIC_FLOOR, _longest_number(column)))
        for column, low in zip(t.columns, lows, strict=True)
    ]
    headers = [column.header for column in t.columns]
    named = [headers.index(h) for h in getattr(t, "elastic", ()) if h in headers]
    folded = [n for n, column in enumerate(t.columns) if column.overflow == "fold"]
    for n in dict.fromkeys([*named, *folded]):
        taken = max(0, min(excess, widths[n] - floors[n]))
        widths[n] -= taken
        excess -= taken
    excess = _narrow(widths, floors, excess)
    for column, w in zip(t.columns, widths, strict=True):
        column.width = w
    return excess


def whole_width(t: Table) -> int:
    """How many cells wide ``t`` is with every column at its longest word (0 if unknown)."""
    spans = [_span(column) for column in t.columns]
    if any(span is None for span in spans):
        return 0
    return sum(span[0] for span in spans if span is not None) + GAP * (len(spans) - 1)


def _lines(column: Column) -> list[str] | None:
    texts = []
    for cell in [column.header, *column.cells]:
        if isinstance(cell, Text):
            texts.append(cell.plain)
        elif isinstance(cell, str):
            texts.append(cell)
        else:
            return None
    return [line for text in texts for line in text.splitlines()]


def _span(column: Column) -> tuple[int, int] | None:
    """(longest word, longest line) of a column, within its min_width and max_width."""
    lines = _lines(column)
    if lines is None:
        return None
    longest = max((cell_len(line) for line in lines), default=0)
    word = max((cell_len(w) for line in lines for w in line.split()), default=0)
    if column.no_wrap or column.justify == "right":
        word = longest
    longest = max(longest, column.min_width or 0)
    if column.max_width is not None:
        longest = min(longest, column.max_width)
    return min(word, longest), longest


def _longest_number(column: Column) -> int:
    """The longest word of the column that is a number, or a ``key=number``."""
    words = (w for line in _lines(column) or [] for w in line.split())
    numbers = (w for w in words if _NUMBER.fullmatch(w.rstrip(",;").rpartition("=")[2]))
    return max((cell_len(w) for w in numbers), default=0)


def _narrow(widths: list[int], floors: Sequence[int], excess: int) -> int:
    """Take ``excess`` cells from the widest columns above their floor; return what is left."""
    while excess > 0:
        slack = [i for i, (w, floor) in enumerate(zip(widths, floors, strict=True)) if w > floor]
        if not slack:
            break
        widest = max(slack, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return excess


def grid(title: str, rows: Mapping[str, str] | Sequence[tuple[str, str]]) -> RenderableType:
    """Key/value rows under a heading, indented; a plain grid without one."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="cyan", no_wrap=True)
    t.add_column(overflow="fold")
    for key, value in rows.items() if isinstance(rows, Mapping) else rows:
        t.add_row(key, value)
    return section(title, t) if title else t


INDENT = 2


def section(title: str, body: RenderableType) -> RenderableType:
    """A bold heading with the body indented under it."""
    if isinstance(body, Listing):
        fit(body, console().width - INDENT)
    return Group(Text(title, style="bold"), Padding(body, (0, 0, 0, INDENT), expand=False))


def print_all(*renderables: Any) -> None:
    out = console()
    for item in renderables:
        if isinstance(item, Listing):
            fit(item, out.width)
        out.print(item)


# -- models and versions -----------------------------------------------------------------


def models(found: Sequence[Model]) -> None:
    if not found:
        print_all("no models yet: register one with `modelreg register NAME PATH`")
        return
    t = table("name", "versions", "latest", "aliases", "updated", elastic=["aliases"])
    t.columns[0].no_wrap = True
    t.columns[1].justify = "right"
    t.columns[2].justify = "right"
    for m in found:
        aliases = ", ".join(f"{a}->{n}" for a, n in m.aliases.items())
        latest = "-" if m.latest is None else str(m.latest)
        t.add_row(m.name, str(m.version_count), latest, aliases, when(m.updated_at))
    print_all(t)


def versions(found: Sequence[Version], *, empty: str) -> None:
    if not found:
        print_all(empty)
        return
    # A flags column only when something is flagged: most listings have none to show.
    flagged = any(v.flags for v in found)
    headers = ["ref", "created", "aliases", "metrics", "tags", *(["flags"] if flagged else [])]
    # Tags and aliases give up width first, cut with "...": a metric is never cut (see fit).
    t = table(*headers, elastic=["tags", "aliases"])
    t.columns[0].no_wrap = True
    t.columns[1].max_width = 10  # the date above the time
    for v in found:
        row = [
            v.ref,
            when(v.created_at),
            "\n".join(v.aliases),
            pairs(v.metrics, MAX_METRICS, compact, sep="\n"),  # one a line
            pairs(v.tags, MAX_TAGS, sep="\n"),
        ]
        t.add_row(*row, *([", ".join(v.flags)] if flagged else []))
    if fit(t, console().width) > 0:  # too narrow for the columns: a block of lines a version
        print_all(*(_version_lines(v) for v in found))
        return
    print_all(t)


def _version_lines(v: Version) -> RenderableType:
    head = Text(v.ref, style="bold")
    for fact in (when(v.created_at), ", ".join(v.aliases), ", ".join(v.flags)):
        if fact:
            head.append(f"  {fact}")
    lines: list[RenderableType] = [head]
    metrics = pairs(v.metrics, MAX_METRICS, compact, sep="  ")
    for text in (metrics, pairs(v.tags, MAX_TAGS, sep="  ")):
        if text:
            lines.append(Padding(Text(text), (0, 0, 0, INDENT), expand=False))
    return Group(*lines)


def version(v: Version) -> None:
    head = Text()
    head.append(v.ref, style="bold")
    head.append(f"  {v.id}", style="dim")
    facts = {
        "created": f"{when(v.created_at)} by {v.created_by}",
        "content": f"{count(len(v.files), 'file')}, {size(v.size)},"
        f" manifest {short(v.manifest_digest)}",
    }
    if v.flags:
        facts["flags"] = ", ".join(v.flags)
    if v.aliases:
        facts["aliases"] = ", ".join(v.aliases)
    if v.description:
        facts["description"] = v.description
    if v.parents:
        facts["parents"] = ", ".join(v.parents)
    lineage: Mapping[str, Any] = v.lineage or {}
    run = lineage.get("run")
    if run:
        facts["run"] = f"{run['name'] or run['id']} ({run['status']})"
    out: list[Any] = [head, grid("", facts)]
    if v.params:
        out.append(grid("params", dict(v.params)))
    if v.metrics:
        out.append(grid("metrics", {k: number(x) for k, x in v.metrics.items()}))
    if v.tags:
        out.append(grid("tags", dict(v.tags)))
    files = table("path", "size", "sha256")
    files.columns[0].overflow = "fold"
    files.columns[1].justify = "right"
    for f in v.files:
        files.add_row(f.path, size(f.size), short(f.digest))
    out.append(section("files", files))
    if v.datasets:
        used = table("role", "name", "sha256", "uri")
        used.columns[3].overflow = "fold"
        for d in v.datasets:
            used.add_row(d.role, d.name, short(d.digest), d.uri)
        out.append(section("datasets", used))
    code = lineage.get("code") or {}
    if code.get("commit") or code.get("repository"):
        out.append(grid("code", _code_facts(code)))
    print_all(*out)


def _code_facts(code: dict[str, Any]) -> dict[str, str]:
    facts: dict[str, str] = {}
    for key in ("repository", "commit", "branch"):
        if code.get(key):
            facts[key] = str(code[key])
    if code.get("dirty"):
        facts["dirty"] = "yes (uncommitted changes)"
    if code.get("command"):
        facts["command"] = str(code["command"])
    return facts


@contextlib.contextmanager
def byte_progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr; yields the callback that advances it by n bytes."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
        # Files already present are skipped, so the bar may not reach the end by itself.
        progress.update(task, completed=total)


# -- aliases, search results, comparison, lineage ------------------------------------------


def alias_history(label: str, events: Sequence[dict[str, Any]]) -> None:
    t = table("at", "actor", "version", title=label)
    for e in events:
        version = e["version"] or "(alias deleted)"
        if e.get("version_deleted_at"):
            version += " (version deleted since)"
        t.add_row(when(e["at"]), e["actor"], version)
    print_all(t)


def comparison(diff: dict[str, Any]) -> None:
    a, b = diff["a"], diff["b"]
    head = Text()
    head.append(f"{a} -> {b}", style="bold")
    if diff["same_content"]:
        head.append("  (same files)", style="dim")
    out: list[Any] = [head]

    params = _mapping_rows(diff["params"])
    if params:
        t = table("param", a, b)
        for column in t.columns:
            column.overflow = "fold"
        for row in params:
            t.add_row(*row)
        out.append(section("params", t))

    if diff["metrics"]:
        t = table("metric", a, b, "delta")
        for column in t.columns[1:]:
            column.justify = "right"
        for key, m in diff["metrics"].items():
            t.add_row(key, number(m["a"]), number(m["b"]), signed(m["delta"]))
        out.append(section("metrics", t))

    tags = _mapping_rows(diff["tags"])
    if tags:
        t = table("tag", a, b)
        for column in t.columns:
            column.overflow = "fold"
        for row in tags:
            t.add_row(*row)
        out.append(section("tags", t))

    if diff["datasets"]:
        t = table("role", "name", a, b)
        for d in diff["datasets"]:
            t.add_row(d["role"], d["name"], short(d["a"]), short(d["b"]))
        out.append(section("datasets whose digests differ", t))

    facts = _code_and_environment(diff["code"], diff["environment"])
    if facts:
        out.append(grid("code and environment", facts))

    files = diff["files"]
    changes = {
        **{path: "added" for path in files["added"]},
        **{path: "removed" for path in files["removed"]},
        **{path: "changed" for path in files["changed"]},
    }
    if changes:
        out.append(grid("files", dict(sorted(changes.items()))))

    unchanged = all(m["delta"] == 0 for m in diff["metrics"].values())
    if unchanged and len(out) == 1 + bool(diff["metrics"]):
        out.append("no differences in params, metrics, tags, data, code or files")
    print_all(*out)


def _code_and_environment(code: dict[str, Any], env: dict[str, Any]) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    if code["changed"]:
        if code["a"] == code["b"]:
            text = f"commit {short(code['a'])} in both; repository or uncommitted changes differ"
        else:
            text = f"commit {short(code['a'])} -> {short(code['b'])}"
        facts.append(("code", text))
    if env["python"]:
        facts.append(("python", f"{env['python'][0]} -> {env['python'][1]}"))
    if env["platform"]:
        facts.append(("platform", f"{env['platform'][0]} -> {env['platform'][1]}"))
    packages = env["packages"]
    lines = [f"{name} {old} -> {new}" for name, (old, new) in packages["changed"].items()]
    lines += [f"{name} {new} added" for name, new in packages["added"].items()]
    lines += [f"{name} {old} removed" for name, old in packages["removed"].items()]
    if len(lines) > MAX_PACKAGES:
        lines[MAX_PACKAGES:] = [f"and {len(lines) - MAX_PACKAGES} more (see --json)"]
    facts += [("packages" if n == 0 else "", line) for n, line in enumerate(lines)]
    return facts


def _mapping_rows(diff: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [(k, str(a), str(b)) for k, (a, b) in diff["changed"].items()]
    rows += [(k, "-", str(b)) for k, b in diff["added"].items()]
    rows += [(k, str(a), "-") for k, a in diff["removed"].items()]
    return sorted(rows)


def lineage(found: dict[str, Any]) -> None:
    tree = Tree(Text(f"{found['version']}  {found['id']}", style="bold"))
    parents = found.get("parents") or []
    deleted = set(found.get("deleted_parents") or [])
    branch = tree.add(Text("parents", style="cyan"))
    for parent in parents:
        branch.add(f"{parent} (deleted)" if parent in deleted else parent)
    if not parents:
        branch.add(Text("none", style="dim"))

    used = found.get("datasets") or []
    branch = tree.add(Text("datasets", style="cyan"))
    for d in used:
        node = branch.add(f"{d['role']}: {d['name']} sha256:{short(d['digest'])}")
        node.add(Text(d["uri"], style="dim"))
    if not used:
        branch.add(Text("none recorded", style="dim"))

    run = found.get("run")
    if run:
        branch = tree.add(Text(f"run {run['name'] or run['id']}  {run['status']}", style="cyan"))
        branch.add(f"id: {run['id']}")
        if run.get("params"):
            branch.add(f"params: {pairs(run['params'])}")
        if run.get("metric_history"):
            branch.add(f"metrics: {', '.join(run['metric_history'])}")
        if run.get("error"):
            branch.add(f"error: {run['error']}")
    else:
        tree.add(Text("run: none (registered directly)", style="dim"))

    code = found.get("code") or {}
    if code.get("commit") or code.get("repository"):
        label = f"code {code.get('repository', '')}"
        branch = tree.add(Text(label.strip(), style="cyan"))
        branch.add(f"commit: {code.get('commit') or 'none'}")
        if code.get("branch"):
            branch.add(f"branch: {code['branch']}")
        branch.add(f"dirty: {'yes' if code.get('dirty') else 'no'}")
        if code.get("command"):
            branch.add(f"command: {code['command']}")
    else:
        tree.add(Text("code: not in a git repository", style="dim"))

    env = found.get("environment") or {}
    if env:
        branch = tree.add(Text("environment", style="cyan"))
        branch.add(f"python {env.get('python', '?')} ({env.get('implementation', '?')})")
        branch.add(f"platform {env.get('platform', '?')}")
        branch.add(f"{len(env.get('packages') or {})} packages")
    else:
        tree.add(Text("environment: not recorded", style="dim"))

    children = found.get("children") or []
    branch = tree.add(Text("children", style="cyan"))
    for child in children:
        branch.add(child)
    if not children:
        branch.add(Text("none", style="dim"))
    print_all(tree)


# -- datasets ---------------------------------------------------------------


def also_known_as(names: Sequence[str]) -> str:
    """The other names the same bytes are recorded under, as words; "" if none."""
    return f"also known as {', '.join(names)}" if names else ""


def datasets(found: Sequence[Dataset]) -> None:
    if not found:
        print_all("no datasets recorded yet")
        return
    t = table("name", "sha256", "size", "files", "recorded", "retired")
    t.columns[0].overflow = "fold"
    t.columns[2].justify = "right"
    t.columns[3].justify = "right"
    for d in found:
        retired = when(d.retired_at) if d.retired_at else ""
        name = Text(d.name)
        if d.also_known_as:
            name.append(f"\n{also_known_as(d.also_known_as)}", style="dim")
        cells: list[Text | str] = [name, short(d.digest), size(d.size), str(d.file_count)]
        t.add_row(*cells, when(d.created_at), retired)
    print_all(t)


def dataset_versions(found: Sequence[Dataset]) -> None:
    """Each version of one dataset in full (digests and URIs are long: one field a line)."""
    out: list[Any] = []
    for d in found:
        out.append(
            grid(
                f"{d.name}@{short(d.digest)}",
                {
                    "sha256": d.digest,
                    **(
                        {"also known as": f"{', '.join(d.also_known_as)} (the same bytes)"}
                        if d.also_known_as
                        else {}
                    ),
                    "uri": d.uri,
                    "size": f"{size(d.size)} in {count(d.file_count, 'file')}",
                    "recorded": when(d.created_at),
                    **(
                        {"retired": f"{when(d.retired_at)}: {d.retired_reason}"}
                        if d.retired_at
                        else {}
                    ),
                },
            )
        )
    print_all(*out)


def dataset_models(ref: str, found: Sequence[dict[str, Any]], *, others: Sequence[str]) -> None:
    """The versions that depend on a dataset's bytes; ``others``: the other names of them."""
    named = f"{ref} ({also_known_as(others)}: the same bytes)" if others else ref
    if not found:
        print_all(f"no version uses {named}")
        return
    t = table("version", "relation", "uses", "via")
    t.columns[2].overflow = "fold"
    for row in found:
        t.add_row(row["version"], row["relation"], ", ".join(row["uses"]), row["via"] or "")
    print_all(Text(f"versions that depend on {named}", style="bold"), t)


# -- audit ---------------------------------------------------------------------------------


def audit(events: Sequence[AuditEvent]) -> None:
    if not events:
        print_all("no audit events match")
        return
    t = table("seq", "at", "actor", "action", "entity")
    t.columns[0].justify = "right"
    t.columns[4].overflow = "fold"
    for e in events:
        t.add_row(str(e.seq), when(e.at), e.actor, e.action, e.entity)
    print_all(t)
