"""The keyword options that several operations share, written once: the Registry contract,
both registries and the helpers they call take them as ``**options: Unpack[...]``, so mypy
checks every call against one list.

Typing only: nothing here runs, and importing it loads nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from modelreg.datasets import DatasetArg
    from modelreg.signing import PrivateKeyArg


class DraftOptions(TypedDict, total=False):
    """What ``register`` records besides the files (see LocalRegistry.register)."""

    params: Mapping[str, Any] | None
    metrics: Mapping[str, Any] | None
    tags: Mapping[str, Any] | None
    datasets: Sequence[DatasetArg] | None
    parents: Sequence[str] | None
    description: str | None
    sign: PrivateKeyArg | None
    input_example: Any
    flavor: str | None


class RegisterOptions(DraftOptions, total=False):
    progress: Callable[[int], None] | None


class ReproduceOptions(TypedDict, total=False):
    to: str | os.PathLike[str] | None
    run: bool
    workdir: str | os.PathLike[str] | None
    find_links: Sequence[str | os.PathLike[str]]
    no_index: bool


class AuditFilters(TypedDict, total=False):
    entity_type: str | None
    entity: str | None
    actor: str | None
    action: str | None
    limit: int
    before_seq: int | None


class WebhookOptions(TypedDict, total=False):
    actions: Sequence[str]
    secret: str | None


class PolicyOptions(TypedDict, total=False):
    """The gates of a protected alias (see promotion.Policy)."""

    protected: bool
    block_retired: bool
    metric: str | None
    dataset: str | None
    higher_is_better: bool
    min_margin: float
    approvals: int
    overrides: str
