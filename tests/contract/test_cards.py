"""Model cards and traces: everything an auditor asks about one version, and the lineage of a
deployed version back to every dataset that fed it, directly or through a parent."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import uuid
from pathlib import Path

import pytest

from modelreg import IntegrityError, InvalidInput, NotFound, reports

HOSTILE = "a | b\n# not a heading"


@pytest.fixture
def chain(registry, write):
    """base.csv -train-> base/1 -> churn/1 (trained on train.csv) -> tiny/1."""
    write("data/base.csv", "id\n1\n")
    write("data/train.csv", "id\n2\n")
    write("m.bin", "m")
    base = registry.register("base", "m.bin", datasets=["data/base.csv"])
    churn = registry.register("churn", "m.bin", datasets=["data/train.csv"], parents=[base.ref])
    tiny = registry.register("tiny", "m.bin", parents=[churn.ref])
    return {"base": base, "churn": churn, "tiny": tiny}


@pytest.fixture
def audited(registry, write):
    """churn/1 made in a run from base/1, aliased, moved away from, evaluated, and flagged
    by the retirement of its training data; tiny/1 derives from it."""
    for name in ("base", "train", "valid", "holdout"):
        write(f"data/{name}.csv", f"id\n{name}\n")
    write("m.bin", "m")
    base = registry.register("base", "m.bin", datasets=["data/base.csv"])
    with registry.start_run("nightly", params={"seed": 7}) as run:
        run.use_dataset("data/train.csv")
        run.log_metric("loss", 0.5, step=1)
        churn = run.register(
            "churn",
            "m.bin",
            params={"C": 0.1},
            metrics={"accuracy": 0.9},
            datasets=[{"path": "data/valid.csv", "role": "validation"}],
            parents=[base.ref],
            tags={"team": "risk"},
            description="predicts churn",
        )
    newer = registry.register("churn", "m.bin")
    registry.set_alias("churn", "production", churn.ref)
    registry.set_alias("churn", "staging", churn.ref)
    registry.set_alias("churn", "production", newer.ref)
    registry.evaluate(churn.ref, "data/holdout.csv", metrics={"f1": 0.7})
    registry.register("tiny", "m.bin", parents=[churn.ref])
    registry.retire_dataset("train.csv", reason="erasure request 17")
    return churn


def test_a_card_holds_every_section_with_what_was_recorded(registry, backend, audited):
    card = registry.card("churn/1")

    assert card["identity"] == {
        "id": audited.id,
        "ref": "churn/1",
        "model": "churn",
        "number": 1,
        "description": "predicts churn",
        "manifest_digest": audited.manifest_digest,
        "size": 1,
        "file_count": 1,
        "tags": {"team": "risk"},
    }
    assert card["registration"]["created_by"] == backend.actor
    assert card["registration"]["created_at"] == audited.created_at
    assert card["run"]["name"] == "nightly"
    assert card["run"]["metric_history"]["loss"][0]["value"] == 0.5

    assert card["aliases"]["current"] == ["staging"]
    moves = [(m["alias"], m["from"], m["to"], m["actor"]) for m in card["aliases"]["history"]]
    assert moves == [
        ("production", None, "churn/1", backend.actor),
        ("staging", None, "churn/1", backend.actor),
        ("production", "churn/1", "churn/2", backend.actor),
    ]

    assert card["params"] == {"C": "0.1", "seed": "7"}
    assert card["metrics"] == {"accuracy": 0.9, "loss": 0.5}
    [evaluation] = card["evaluations"]
    assert evaluation["metrics"] == {"f1": 0.7}
    assert evaluation["dataset"]["name"] == "holdout.csv"
    assert evaluation["dataset"]["retired"] is False

    used = {
        d["name"]: (d["role"], d["digest"], d["retired"], d["reason"]) for d in card["datasets"]
    }
    assert used == {
        "train.csv": ("train", registry.dataset("train.csv")[0].digest, True, "erasure request 17"),
        "valid.csv": ("validation", registry.dataset("valid.csv")[0].digest, False, None),
    }

    assert card["code"]["command"]
    assert re.fullmatch(r"[0-9a-f]{64}", card["environment"]["digest"])
    assert card["environment"]["python"] == platform.python_version()
    assert card["parents"] == ["base/1"]
    assert card["children"] == ["tiny/1"]

    [flag] = card["flags"]
    assert flag["flag"] == "data-retired"
    assert flag["source"]["dataset"] == "train.csv"
    assert flag["source"]["reason"] == "erasure request 17"
    assert card["signature"] == {"status": "unsigned", "signatures": []}

    events = [(e["action"], e["entity"]) for e in card["audit"]]
    assert events == [
        ("version.create", "churn/1"),
        ("alias.set", "churn@production"),
        ("alias.set", "churn@staging"),
        ("alias.set", "churn@production"),
        ("evaluation.create", "churn/1"),
        ("dataset.retire", "train.csv"),
    ]
    assert [e["seq"] for e in card["audit"]] == sorted(e["seq"] for e in card["audit"])
    assert [f["path"] for f in card["files"]] == ["m.bin"]


def test_a_card_says_who_forced_a_move_past_failing_gates_and_why(registry, backend, write):
    """An auditor reads the reason given for an override beside the move it forced; a later
    move onto the same version through open gates is no override."""
    write("m.bin", "m")
    write("data/test.csv", "a\n1\n")
    for accuracy in (0.9, 0.8):
        version = registry.register("churn", "m.bin")
        registry.evaluate(version.ref, "data/test.csv", metrics={"accuracy": accuracy})
    registry.set_alias("churn", "production", "churn/1")
    registry.set_policy("churn", "production", metric="accuracy")
    registry.set_alias("churn", "production", "churn/2", force=True, reason="hotfix for INC-7")
    registry.set_policy("churn", "production", protected=False)
    registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("churn", "production", "churn/2")

    card = registry.card("churn/2")
    history = card["aliases"]["history"]
    moves = [(m["from"], m["to"], m["override"] is not None) for m in history]
    assert moves == [("churn/1", "churn/2", True), ("churn/2", "churn/1", False),
                     ("churn/1", "churn/2", False)]  # fmt: skip
    digest = hashlib.sha256(b"a\n1\n").hexdigest()
    failed = (
        f"churn/2 scores accuracy 0.8 on test.csv@{digest[:12]}, where churn/1 scores 0.9,"
        " and the policy needs 0.9 or more"
    )
    assert history[0]["override"] == {
        "by": backend.actor,
        "reason": "hotfix for INC-7",
        "failed": [{"name": "not-worse", "ok": False, "detail": failed}],
        "approvers": [],
    }
    # The card of the version the alias was forced away from shows the same move.
    [away] = [m for m in registry.card("churn/1")["aliases"]["history"] if m["override"]]
    assert (away["from"], away["to"], away["override"]) == ("churn/1", "churn/2",
                                                            history[0]["override"])  # fmt: skip

    text = reports.card_markdown(card)
    actor, at = reports.escape(backend.actor), history[0]["at"]
    assert f"| production | {at} | {actor} | churn/1 | churn/2 | yes, by {actor}, because:" \
        " hotfix for INC-7 |" in text  # fmt: skip
    assert text.count("| no |") >= 2  # the two later moves
    assert (
        f"- {at}: {actor} moved @production from churn/1 to churn/2, because: hotfix for INC-7."
        f" Failed: {failed}. Approved by: nobody."
    ) in text
    assert "| forced onto churn/2 past failed not-worse, because: hotfix for INC-7 |" in text


def test_a_card_shows_retired_bytes_as_retired_under_a_new_name(registry, audited, write):
    write("data/renamed.csv", "id\ntrain\n")  # the retired training data, renamed
    registry.register("churn", "m.bin", datasets=["data/renamed.csv"])
    card = registry.card("churn/3")
    [used] = card["datasets"]
    assert (used["name"], used["retired"], used["reason"]) == (
        "renamed.csv",
        True,
        "erasure request 17",
    )
    assert [f["flag"] for f in card["flags"]] == ["data-retired"]


def test_a_card_names_the_version_by_any_reference(registry, audited):
    by_alias = registry.card("churn@staging")
    assert by_alias == registry.card(audited.id)
    assert by_alias["identity"]["ref"] == "churn/1"


def test_a_card_of_an_unknown_or_malformed_reference_is_refused(registry, audited):
    with pytest.raises(NotFound):
        registry.card("churn/9")
    with pytest.raises(NotFound):
        registry.card(str(uuid.uuid4()))
    with pytest.raises(InvalidInput):
        registry.card("Not A Ref!")


SECTIONS = [
    "Identity",
    "Registration",
    "Aliases",
    "Params",
    "Metrics",
    "Evaluations",
    "Datasets",
    "Code",
    "Environment",
    "Parents and children",
    "Status flags",
    "Signature",
    "Audit events",
    "Files",
]


def cells(row: str) -> int:
    """How many cells a Markdown table row has: pipes not escaped by a backslash, minus one."""
    pipes, escaped = 0, False
    for char in row:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            pipes += 1
    return pipes - 1


def tables(text: str) -> list[list[str]]:
    found: list[list[str]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                found.append([])
            found[-1].append(line)
        previous = line
    return found


def test_the_markdown_card_has_one_heading_per_section(registry, audited):
    text = reports.card_markdown(registry.card("churn/1"))
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# Model card: churn/1", *(f"## {s}" for s in SECTIONS)]
    assert "erasure request 17" in text
    assert "churn@production" in text
    assert audited.manifest_digest in text


def test_markdown_escapes_hostile_text_so_the_layout_holds(registry, write):
    write("m.bin", "m")
    registry.register(
        "churn",
        "m.bin",
        description=HOSTILE,
        params={"note": "x | y\r\n## fake section"},
        tags={"owner": "<script>alert(1)</script> \\"},
    )
    text = reports.card_markdown(registry.card("churn/1"))
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# Model card: churn/1", *(f"## {s}" for s in SECTIONS)]
    for table in tables(text):
        assert {cells(row) for row in table} == {cells(table[0])}, table
    assert "| description | a \\| b<br>\\# not a heading |" in text
    assert "<script>" not in text
    assert "\\<script\\>" in text


def test_trace_by_uuid_gives_the_lineage_of_every_generation(registry, chain):
    found = registry.trace(chain["tiny"].id)
    assert (found["id"], found["version"], found["marker"]) == (chain["tiny"].id, "tiny/1", None)
    assert found["manifest_digest"] == chain["tiny"].manifest_digest
    assert found["lineage"]["parents"] == ["churn/1"]
    assert found["lineage"]["environment_digest"]
    generations = [(a["version"], a["depth"], a["parents"]) for a in found["ancestors"]]
    assert generations == [("churn/1", 1, ["base/1"]), ("base/1", 2, [])]
    for ancestor in found["ancestors"]:
        assert re.fullmatch(r"[0-9a-f]{64}", ancestor["environment_digest"])
        assert "command" in ancestor["code"]


def test_trace_lists_the_grandparents_dataset(registry, chain):
    found = registry.trace(chain["tiny"].id)
    fed = {d["name"]: d["used_by"] for d in found["datasets"]}
    assert fed == {
        "base.csv": [{"version": "base/1", "role": "train", "depth": 2}],
        "train.csv": [{"version": "churn/1", "role": "train", "depth": 1}],
    }
    digests = {d["name"]: d["digest"] for d in found["datasets"]}
    assert digests["base.csv"] == registry.dataset("base.csv")[0].digest
    assert [d["retired"] for d in found["datasets"]] == [False, False]


def test_trace_shows_retired_data_anywhere_up_the_chain(registry, chain, tmp_path):
    registry.retire_dataset("base.csv", reason="erasure request 18")
    found = registry.trace(chain["tiny"].id)
    [base] = [d for d in found["datasets"] if d["name"] == "base.csv"]
    assert (base["retired"], base["reason"]) == (True, "erasure request 18")
    assert found["flags"] == ["data-retired"]


def test_trace_after_pull_by_marker_file_and_by_directory(registry, chain, tmp_path: Path):
    root = registry.pull("tiny/1", tmp_path / "deploy")
    marker = json.loads((root / "modelreg.json").read_text())
    assert marker["id"] == chain["tiny"].id
    by_uuid = registry.trace(marker["id"])
    by_file = registry.trace(root / "modelreg.json")
    by_dir = registry.trace(str(root))
    for found in (by_file, by_dir):
        assert found["marker"]["path"] == str(root / "modelreg.json")
        assert found["marker"]["manifest_digest"] == chain["tiny"].manifest_digest
        assert {**found, "marker": None} == by_uuid


def test_trace_of_a_directory_finds_the_marker_beside_a_versions_own_modelreg_json(
    registry, chain, write, tmp_path: Path
):
    # A version that holds a modelreg.json (here: another version's marker) gets .modelreg.json.
    pulled = registry.pull("churn/1", tmp_path / "churn")
    wrapped = registry.register("wrapped", pulled, parents=["churn/1"])
    root = registry.pull(wrapped.ref, tmp_path / "wrapped")
    assert (root / ".modelreg.json").is_file()
    assert registry.trace(root)["version"] == "wrapped/1"


def test_trace_of_an_unknown_uuid_is_not_found(registry, chain):
    with pytest.raises(NotFound):
        registry.trace(str(uuid.uuid4()))


@pytest.mark.parametrize("target", ["not-a-uuid", "tiny/1", "", "1234"])
def test_trace_of_something_not_a_uuid_is_invalid_input(registry, chain, target):
    with pytest.raises(InvalidInput):
        registry.trace(target)


def test_trace_refuses_a_directory_or_file_that_is_no_marker(registry, chain, write, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"modelreg\.json"):
        registry.trace(tmp_path / "empty")
    for content in ["not json", "[1, 2]", '{"id": "tiny/1"}', '{"ref": "tiny/1"}']:
        path = write(tmp_path / "bad" / "modelreg.json", content)
        with pytest.raises(InvalidInput):
            registry.trace(path)


def test_trace_refuses_a_marker_whose_digest_the_registry_does_not_hold(
    registry, chain, tmp_path: Path
):
    root = registry.pull("tiny/1", tmp_path / "deploy")
    marker = json.loads((root / "modelreg.json").read_text())
    (root / "modelreg.json").write_text(json.dumps({**marker, "manifest_digest": "0" * 64}))
    with pytest.raises(IntegrityError, match="manifest digest"):
        registry.trace(root)
