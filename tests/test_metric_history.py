"""A run's metric history as stored in blocks: what comes back is what was logged, in the
orders MLflow and the charts read it, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import modelreg
from modelreg import metric_blocks, runs
from modelreg.blobs import MemoryBlobStore
from modelreg.local import LocalRegistry
from modelreg.timestamps import to_ms

T0 = 1_800_000_000_000  # a time in milliseconds


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalRegistry]:
    if request.param == "sqlite":
        with modelreg.connect(tmp_path / "reg", actor="t") as reg:
            yield reg
        return
    from conftest import _empty_database

    postgres, url = request.getfixturevalue("postgres"), request.getfixturevalue("pg_database")
    _empty_database(postgres, url)
    with LocalRegistry(db_url=url, blobs=MemoryBlobStore(), actor="t") as reg:
        yield reg


def _logged(reg: LocalRegistry, batches: list[list[tuple[str, float, int, int]]]) -> str:
    with reg.start_run(name="fit") as run:
        for batch in batches:
            reg.record_run_metrics(run.id, batch)
    assert run.id is not None
    return run.id


def _series(reg: LocalRegistry, run_id: str, max_points: int) -> dict[str, Any]:
    return reg.db.read(lambda c: metric_blocks.series(c, run_id, max_points=max_points))


points = st.tuples(
    st.sampled_from(["loss", "acc"]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 40),
    st.integers(T0, T0 + 5),
)


@given(batches=st.lists(st.lists(points, min_size=1, max_size=40), min_size=1, max_size=5))
def test_every_reading_of_a_history_matches_the_points_logged(tmp_path_factory, batches):
    logged = [p for batch in batches for p in batch]
    with modelreg.connect(tmp_path_factory.mktemp("reg"), actor="t") as reg:
        run_id = _logged(reg, batches)
        for key in {k for k, *_ in logged}:
            mine = [(v, s, ms) for k, v, s, ms in logged if k == key]
            history = reg.db.read(lambda c, key=key: runs.metric_history(c, run_id, key))
            got = [(p.value, p.step, to_ms(p.timestamp)) for p in history]
            assert got == sorted(mine, key=lambda p: (p[2], p[1], p[0]))
            record = reg.db.read(lambda c: runs.record(c, run_id))["metric_history"][key]
            by_step = sorted(mine, key=lambda p: p[1])  # stable: the order logged within a step
            assert [(p["value"], p["step"]) for p in record] == [(v, s) for v, s, _ in by_step]
            latest = reg.db.read(
                lambda c, key=key: c.execute(
                    sa.select(metric_blocks.latest_points([run_id], key=key))
                ).one()
            )
            best = max(range(len(mine)), key=lambda i: (mine[i][1], mine[i][2], mine[i][0], i))
            assert (latest.value, latest.step, to_ms(latest.timestamp)) == mine[best]
            chart = _series(reg, run_id, 1000)[key]
            assert chart == {"points": len(mine), "step": [s for _, s, _ in by_step],
                             "value": [v for v, _, _ in by_step]}  # fmt: skip
            small = _series(reg, run_id, 4)[key]
            if len(mine) > 4:
                assert len(small["step"]) <= 4
                assert small["step"] == sorted(small["step"])
                assert min(small["min"]) == min(v for v, _, _ in mine)
                assert max(small["max"]) == max(v for v, _, _ in mine)
                bands = zip(small["min"], small["value"], small["max"], strict=True)
                assert all(lo <= m <= hi for lo, m, hi in bands)


@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    late=st.booleans(),
    pages=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 60)), min_size=1, max_size=5),
)
def test_a_page_of_a_history_is_the_same_slice_however_it_is_read(
    tmp_path_factory, sizes, late, pages
):
    """A loop's batches (time and step rising) are read a page at a time from the blocks
    the page spans; a batch logged late (earlier times) makes every point be sorted. Either
    way a page is the slice of the whole history in MLflow's order."""
    batches, step = [], 0
    for size in sizes:
        batches.append([("loss", float(step % 5), step, T0 + step // 3) for step in
                        range(step, step + size)])  # fmt: skip
        step += size
    if late:
        batches.append([("loss", 9.0, 2, T0 - 1)])
    logged = sorted(((ms, s, v) for batch in batches for _, v, s, ms in batch))
    with modelreg.connect(tmp_path_factory.mktemp("reg"), actor="t") as reg:
        run_id = _logged(reg, batches)
        for offset, limit in [*pages, (0, None)]:
            page = reg.db.read(
                lambda c, o=offset, n=limit: runs.metric_history(c, run_id, "loss", limit=n,
                                                                 offset=o)
            )  # fmt: skip
            want = logged[offset:] if limit is None else logged[offset : offset + limit]
            assert [(to_ms(p.timestamp), p.step, p.value) for p in page] == want


def test_a_long_history_is_charted_from_summaries_with_exact_buckets(store):
    """2,560 points in order, charted in 10 buckets of 256: each the mean, min and max of its
    points, read from the level of 256-point entries (and the same across batch sizes)."""
    values = [math.sin(i / 50) + (5.0 if i == 1234 else 0.0) for i in range(2560)]
    points = [("loss", v, i, T0 + i) for i, v in enumerate(values)]
    for sizes in ([2560], [1000, 1000, 560], [7] * 365 + [5]):
        batches, at = [], 0
        for size in sizes:
            batches.append(points[at : at + size])
            at += size
        run_id = _logged(store, batches)
        chart = _series(store, run_id, 10)["loss"]
        assert (chart["points"], chart["bucket"]) == (2560, 256)
        if sizes != [7] * 365 + [5]:  # batches of more points than an entry's: exact
            assert chart["step"] == list(range(0, 2560, 256))
            for b in range(10):
                part = values[b * 256 : (b + 1) * 256]
                assert chart["value"][b] == pytest.approx(sum(part) / 256)
                assert (chart["min"][b], chart["max"][b]) == (min(part), max(part))
        assert max(chart["max"]) == values[1234]  # the spike shows, whatever the batches
        assert len(chart["step"]) <= 10


def test_points_sent_again_through_mlflow_are_stored_once(store):
    run_id = _logged(store, [[("loss", 0.5, 3, T0), ("loss", 0.4, 4, T0)]])
    from modelreg import metric_points

    fresh, times = store.db.read(
        lambda c: metric_points.unseen_points(
            c, run_id, [("loss", 0.4, 4), ("loss", 0.3, 5), ("loss", 0.4, 4)], [T0, T0, T0 + 1]
        )
    )
    assert (fresh, times) == ([("loss", 0.3, 5), ("loss", 0.4, 4)], [T0, T0 + 1])


def test_a_damaged_block_is_named_not_misread(store):
    from modelreg import schema
    from modelreg.errors import IntegrityError

    run_id = _logged(store, [[("loss", 0.5, 3, T0)]])
    store.db.write(lambda c: c.execute(schema.metric_blocks.update().values(count=2)))
    with pytest.raises(IntegrityError, match="not 2 points"):
        store.db.read(lambda c: runs.metric_history(c, run_id, "loss"))


def test_a_version_made_by_a_long_run_carries_its_history_in_buckets(store, tmp_path):
    """Lineage gives every point of a short metric, and a long one in at most 10,000
    buckets (each its mean at its first step and time), with each metric's count."""
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")
    loss = [("loss", float(i % 10), i, T0 + i) for i in range(25_000)]
    with store.start_run(name="fit") as run:
        store.record_run_metrics(run.id, [*loss, *[("acc", s / 4, s, T0) for s in range(3)]])
        version = run.register("m", weights)
    found = store.get(version.ref).lineage["run"]
    assert found["metric_points"] == {"acc": 3, "loss": 25_000}
    assert [(p["step"], p["value"]) for p in found["metric_history"]["acc"]] == [
        (0, 0.0), (1, 0.25), (2, 0.5)]  # fmt: skip
    buckets = found["metric_history"]["loss"]
    assert len(buckets) == 8334  # 25,000 points in buckets of 3
    assert (buckets[1]["step"], buckets[1]["value"]) == (3, 4.0)  # the mean of 3, 4, 5
    assert to_ms(buckets[1]["timestamp"]) == T0 + 3


def test_values_near_the_largest_float_are_kept_and_charted_finite(store):
    """Finite values whose sums pass the largest float: stored as logged, and each bucket of
    the chart finite and within its minimum and maximum (where both signs' sums met)."""
    big = 1e308
    ups = [("x", big, s, T0) for s in range(0, 18_000, 2)]
    downs = [("x", -big, s, T0) for s in range(1, 18_000, 2)]
    run_id = _logged(store, [ups[:2], ups, downs])
    first = store.db.read(lambda c: runs.metric_history(c, run_id, "x", limit=1))
    assert first[0].value == big
    chart = _series(store, run_id, 1000)["x"]
    assert all(math.isfinite(v) for v in chart["value"])
    bands = zip(chart["min"], chart["value"], chart["max"], strict=True)
    assert all(lo <= v <= hi for lo, v, hi in bands)


def test_a_batch_digest_is_sha256_of_its_keys_and_columns():
    """The digest an audit event carries for a batch, pinned and derived by hand: the keys as
    JSON and a newline, then key indexes (uint32), values (float64) and steps (int64)."""
    import hashlib
    import struct

    from modelreg.metric_points import batch_of

    batch = batch_of([("loss", 0.5, 1), ("acc", 0.25, 1), ("loss", 0.4, 2)], None)
    by_hand = hashlib.sha256(
        b'["acc","loss"]\n'
        + struct.pack("<3I", 1, 0, 1)
        + struct.pack("<3d", 0.5, 0.25, 0.4)
        + struct.pack("<3q", 1, 1, 2)
    ).hexdigest()
    assert batch.digest() == by_hand
    assert by_hand == "6dd88448d024a010b2b7a0c775826b0cba6d0c14d7bbac9dc20a1aa375a39fdf"
