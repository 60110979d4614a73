"""MLflow's stages as modelreg aliases: Staging, Production and Archived are the aliases
``staging``, ``production`` and ``archived`` of a model (``mlflow_mapping.STAGE_ALIASES``), so
each stage holds at most one version, and a move into ``production`` passes its promotion
gates like any ``alias set``. A version is in the highest stage whose alias it holds, or in
None.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import aliases, schema, versions
from modelreg.errors import InvalidInput
from modelreg.mlflow_mapping import ACTIVE_STAGES, NO_STAGE, STAGE_ALIASES
from modelreg.refs import Ref

_a, _v = schema.aliases, schema.versions
_STAGE_OF_ALIAS = {alias: stage for stage, alias in STAGE_ALIASES.items()}


def holders(conn: Connection, model_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """{model id: {stage: version id}}: the version each stage alias points at, and for
    stage None the newest version (not deleted) that holds none of them."""
    found: dict[str, dict[str, str]] = {mid: {} for mid in model_ids}
    if not model_ids:
        return found
    held = sa.select(_a.c.model_id, _a.c.alias, _a.c.version_id).where(
        _a.c.model_id.in_(list(model_ids)), _a.c.alias.in_(list(_STAGE_OF_ALIAS))
    )
    for r in conn.execute(held):
        found[r.model_id][_STAGE_OF_ALIAS[r.alias]] = r.version_id
    staged = sa.exists(
        sa.select(1)
        .select_from(_a)
        .where(_a.c.version_id == _v.c.id, _a.c.alias.in_(list(_STAGE_OF_ALIAS)))
    )
    newest = (
        sa.select(_v.c.model_id, sa.func.max(_v.c.number).label("number"))
        .where(_v.c.model_id.in_(list(model_ids)), versions.LIVE, ~staged)
        .group_by(_v.c.model_id)
        .subquery()
    )
    q = sa.select(_v.c.model_id, _v.c.id).join(
        newest, (newest.c.model_id == _v.c.model_id) & (newest.c.number == _v.c.number)
    )
    for row in conn.execute(q):
        found[row.model_id][NO_STAGE] = row.id
    return found


def transition(
    conn: Connection, name: str, number: int, stage: str, *, archive_existing: bool, actor: str
) -> str:
    """Move version ``name/number`` into ``stage`` (as MLflow spells it): its alias moves to
    it, through the gates of a protected one, and it leaves its other stage; with
    ``archive_existing``, the version that held the stage before is archived. Returns the
    version's id; a refused gate leaves everything as it was (one transaction)."""
    if archive_existing and stage not in ACTIVE_STAGES:
        raise InvalidInput(
            f"archive_existing_versions applies to {' and '.join(ACTIVE_STAGES)}, not to {stage}"
        )
    vid = versions.resolve(conn, Ref(model=name, number=number))
    held = versions.load(conn, [vid])[0].aliases
    target = STAGE_ALIASES.get(stage)
    before = None
    if archive_existing:
        mid = versions.model_id(conn, name)
        before = holders(conn, [mid])[mid].get(stage)
    if target is not None:
        aliases.set_alias(conn, name, target, Ref(version_id=vid), actor=actor)
    for alias in held:
        if alias in _STAGE_OF_ALIAS and alias != target:
            aliases.delete_alias(conn, name, alias, actor=actor)
    if before is not None and before != vid:
        archived = STAGE_ALIASES["Archived"]
        aliases.set_alias(conn, name, archived, Ref(version_id=before), actor=actor)
    return vid
