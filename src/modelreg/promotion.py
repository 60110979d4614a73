"""Promotion gates: what a version must pass before a protected alias may point at it.

A policy belongs to one alias of one model; ``production`` is protected by default (a version
flagged data-retired may not take it). A policy can also ask that the candidate was evaluated
on the same dataset digest as the alias's current holder and is not worse on a metric (by at
least a margin), and that enough distinct people approved it. ``evaluate`` is pure: it turns
the facts into a list of checks, each with the figures that decided it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, evaluations, retirement, schema, versions
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput
from modelreg.records import GateCheck, PolicyInfo
from modelreg.refs import check_name
from modelreg.values import check_key

DEFAULT_PROTECTED = "production"
MAX_APPROVALS = 20
OVERRIDES = ("allowed", "forbidden", "approved")


@dataclass(frozen=True)
class Policy:
    protected: bool = True
    block_retired: bool = True
    metric: str | None = None
    dataset: str | None = None
    higher_is_better: bool = True
    min_margin: float = 0.0
    approvals: int = 0
    # Who may move the alias past failing gates: any maintainer with --force and a reason
    # ("allowed"), nobody ("forbidden"), or a maintainer once another person has approved
    # the version for the alias ("approved": two people, never one alone).
    overrides: str = "allowed"

    def to_dict(self) -> PolicyInfo:
        return {
            "protected": self.protected,
            "block_retired": self.block_retired,
            "metric": self.metric,
            "dataset": self.dataset,
            "higher_is_better": self.higher_is_better,
            "min_margin": self.min_margin,
            "approvals": self.approvals,
            "overrides": self.overrides,
        }

    @classmethod
    def checked(cls, **options: Any) -> Policy:
        """A policy from caller input, refused with a clear message when malformed."""
        unknown = set(options) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"unknown policy options: {', '.join(sorted(unknown))}")
        policy = cls(**options)
        for flag in ("protected", "block_retired", "higher_is_better"):
            if not isinstance(getattr(policy, flag), bool):
                raise InvalidInput(f"{flag} must be True or False, not {getattr(policy, flag)!r}")
        if isinstance(policy.approvals, bool):
            raise InvalidInput(f"approvals must be a whole number, not {policy.approvals!r}")
        if policy.dataset is not None:
            check_name(policy.dataset, kind="dataset name")
        if policy.metric is None and (policy.dataset is not None or not policy.higher_is_better):
            raise InvalidInput(
                "dataset and higher_is_better choose how a metric is compared: give metric too"
            )
        if policy.metric is not None:
            check_key(policy.metric, kind="metric")
        margin = policy.min_margin
        if not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
            raise InvalidInput(f"min_margin must be a number >= 0, not {policy.min_margin!r}")
        if not isinstance(policy.approvals, int) or not 0 <= policy.approvals <= MAX_APPROVALS:
            raise InvalidInput(f"approvals must be between 0 and {MAX_APPROVALS}")
        if policy.min_margin and policy.metric is None:
            raise InvalidInput("min_margin needs a metric to compare on")
        if policy.overrides not in OVERRIDES:
            raise InvalidInput(
                f"overrides must be one of {', '.join(OVERRIDES)}, not {policy.overrides!r}"
            )
        return policy


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> GateCheck:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Facts:
    """What the gates look at, gathered from the store."""

    candidate: str
    candidate_flags: list[str]
    holder: str | None
    # The holder's latest evaluation with the metric: (dataset name, digest, value).
    holder_score: tuple[str, str, float] | None
    # The candidate's latest evaluation with the metric on that digest (or on any, if no holder).
    candidate_score: tuple[str, str, float] | None
    approvers: list[str]


def evaluate(policy: Policy, facts: Facts) -> list[Check]:
    """The checks a policy makes, each passed or failed with its figures in a sentence."""
    checks = []
    candidate = facts.candidate
    if policy.block_retired:
        retired = retirement.FLAG in facts.candidate_flags
        detail = (
            f"{candidate} is flagged data-retired (it, or a version it descends from, was"
            " trained or evaluated on a retired dataset)"
            if retired
            else f"{candidate} is not flagged data-retired"
        )
        checks.append(Check("not-data-retired", not retired, detail))
    if policy.metric is not None:
        checks.extend(_metric_checks(policy, facts))
    if policy.approvals:
        people = sorted(set(facts.approvers))
        needed = policy.approvals
        detail = (
            f"{candidate} has {len(people)} {'approval' if len(people) == 1 else 'approvals'}"
            + (f" ({', '.join(people)})" if people else "")
            + f" and the policy needs {needed}"
        )
        if len(people) < needed:
            detail += " (each maintainer approves it with modelreg approve)"
        checks.append(Check("approvals", len(people) >= needed, detail))
    return checks


def refusal(
    name: str,
    alias: str,
    policy: Policy,
    facts: Facts,
    checks: list[Check],
    *,
    override_refused: str | None = None,
) -> str:
    """Why ``facts.candidate`` may not take ``name@alias``, in sentences: the failed checks
    with their figures, then whether a maintainer may move the alias anyway or, when
    ``--force`` was given, why that is refused (``override_refused``)."""
    failed = "; ".join(c.detail for c in checks if not c.ok)
    said = f"{name}@{alias} is protected by gates that {facts.candidate} does not pass: {failed}."
    if override_refused is not None:
        return f"{said} --force is refused: {override_refused}."
    if policy.overrides == "allowed":
        return f"{said} A maintainer may move it anyway with --force and a --reason."
    if policy.overrides == "approved":
        return (
            f"{said} A maintainer may move it anyway with --force and a --reason once someone"
            f" else has approved {facts.candidate} for {alias} (modelreg approve)."
        )
    return f"{said} {_FORBIDDEN[0].upper()}{_FORBIDDEN[1:]}."


def override_refusal(policy: Policy, facts: Facts, actor: str) -> str | None:
    """Why ``actor`` may not override the failing gates, or None when they may."""
    if policy.overrides == "forbidden":
        return _FORBIDDEN
    if policy.overrides == "approved" and not set(facts.approvers) - {actor}:
        return (
            f"the policy lets an override through only once someone other than {actor}"
            f" has approved {facts.candidate} for it (modelreg approve)"
        )
    return None


_FORBIDDEN = "the policy forbids overrides: only a version that passes the gates may take it"


def _metric_checks(policy: Policy, facts: Facts) -> list[Check]:
    metric = policy.metric
    on = f" on {policy.dataset}" if policy.dataset else ""
    if facts.holder is not None and facts.holder_score is None:
        return [
            Check(
                "evaluated",
                False,
                f"the current holder, {facts.holder}, has no evaluation with {metric}{on},"
                f" so {facts.candidate} cannot be compared with it on the same data"
                f" (evaluate {facts.holder} first)",
            )
        ]
    if facts.candidate_score is None:
        if facts.holder_score:
            where = (
                f" on {facts.holder_score[0]}@{facts.holder_score[1][:12]}, the data"
                f" {facts.holder} was evaluated on"
            )
        else:
            where = on or " on any dataset"
        return [
            Check(
                "evaluated",
                False,
                f"{facts.candidate} has not been evaluated with {metric}{where}",
            )
        ]
    name, digest, value = facts.candidate_score
    scores = f"{facts.candidate} scores {metric} {value:g} on {name}@{digest[:12]}"
    checks = [Check("evaluated", True, scores)]
    if facts.holder_score is None:
        return checks
    held = facts.holder_score[2]
    margin = policy.min_margin
    if policy.higher_is_better:
        ok, needed, bound = value >= held + margin, held + margin, "or more"
    else:
        ok, needed, bound = value <= held - margin, held - margin, "or less"
    why = ""
    if margin:
        plus = "plus" if policy.higher_is_better else "minus"
        why = f" ({facts.holder}'s score {plus} a margin of {margin:g})"
    detail = (
        f"{scores}, where {facts.holder} scores {held:g}, and the policy needs {needed:g}"
        f" {bound}{why}"
    )
    checks.append(Check("not-worse", ok, detail))
    return checks


# -- the store side ------------------------------------------------------------------------

_p = schema.alias_policies


def policy_for(conn: Connection, model_id: str, alias: str) -> Policy | None:
    """The alias's policy; ``production`` has the default one unless set otherwise."""
    row = conn.execute(
        sa.select(_p.c.policy).where(_p.c.model_id == model_id, _p.c.alias == alias)
    ).scalar()
    if row is not None:
        policy = Policy(**json.loads(row))
        return policy if policy.protected else None
    return Policy() if alias == DEFAULT_PROTECTED else None


def set_policy(
    conn: Connection, name: str, alias: str, policy: Policy, *, actor: str
) -> PolicyInfo:
    mid = versions.model_id(conn, name)
    before = policy_for(conn, mid, alias)
    conn.execute(_p.delete().where(_p.c.model_id == mid, _p.c.alias == alias))
    conn.execute(
        _p.insert().values(
            model_id=mid,
            alias=alias,
            policy=json.dumps(policy.to_dict(), sort_keys=True),
            updated_at=now(),
            updated_by=actor,
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="policy.set",
        entity_type="alias",
        entity_id=mid,
        entity=f"{name}@{alias}",
        before=None if before is None else before.to_dict(),
        after=policy.to_dict(),
    )
    return policy.to_dict()


def approve(conn: Connection, version_id: str, alias: str, *, actor: str) -> list[str]:
    """Record ``actor``'s approval of a version for an alias; return every approver."""
    a = schema.approvals
    done = conn.execute(
        sa.select(a.c.approver).where(
            a.c.version_id == version_id, a.c.alias == alias, a.c.approver == actor
        )
    ).first()
    ref = versions.ref_of(conn, version_id)
    if done is not None:
        raise Conflict(f"{actor} has already approved {ref} for {alias!r}")
    conn.execute(
        a.insert().values(version_id=version_id, alias=alias, approver=actor, created_at=now())
    )
    audit.append(
        conn,
        actor=actor,
        action="approval.create",
        entity_type="version",
        entity_id=version_id,
        entity=ref,
        after={"alias": alias},
    )
    return approvers(conn, version_id, alias)


def approvers(conn: Connection, version_id: str, alias: str) -> list[str]:
    a = schema.approvals
    q = sa.select(a.c.approver).where(a.c.version_id == version_id, a.c.alias == alias)
    return sorted(conn.execute(q).scalars())


def _latest_score(
    conn: Connection, version_id: str, metric: str, *, name: str | None, digest: str | None
) -> tuple[str, str, float] | None:
    for e in reversed(evaluations.of_version(conn, version_id)):
        if metric not in e["metrics"]:
            continue
        if name is not None and e["dataset"]["name"] != name:
            continue
        if digest is not None and e["dataset"]["digest"] != digest:
            continue
        return e["dataset"]["name"], e["dataset"]["digest"], e["metrics"][metric]
    return None


def gather(conn: Connection, policy: Policy, model_id: str, alias: str, candidate_id: str) -> Facts:
    a, e, v = schema.aliases, schema.alias_events, schema.versions
    holder_id = conn.execute(
        sa.select(a.c.version_id).where(a.c.model_id == model_id, a.c.alias == alias)
    ).scalar()
    if holder_id is None:
        # An alias deleted and set again is compared with what it last held: deleting a
        # protected alias first must not let a worse version past the gates.
        holder_id = conn.execute(
            sa.select(e.c.version_id)
            .join(v, v.c.id == e.c.version_id)
            .where(e.c.model_id == model_id, e.c.alias == alias, v.c.deleted_at.is_(None))
            .order_by(e.c.at.desc(), e.c.id.desc())
            .limit(1)
        ).scalar()
    candidate = versions.load(conn, [candidate_id])[0]
    holder_score = candidate_score = None
    if policy.metric is not None:
        if holder_id is not None:
            holder_score = _latest_score(
                conn, holder_id, policy.metric, name=policy.dataset, digest=None
            )
        if holder_id is None or holder_score is not None:
            candidate_score = _latest_score(
                conn,
                candidate_id,
                policy.metric,
                name=holder_score[0] if holder_score else policy.dataset,
                digest=holder_score[1] if holder_score else None,
            )
    return Facts(
        candidate=candidate.ref,
        candidate_flags=candidate.flags,
        holder=None if holder_id is None else versions.ref_of(conn, holder_id),
        holder_score=holder_score,
        candidate_score=candidate_score,
        approvers=approvers(conn, candidate_id, alias),
    )
