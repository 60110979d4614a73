"""Evaluations: record a version's metrics on a dataset, list them, rank and trend versions.

:mod:`modelreg.cli` mounts ``commands``, the four top-level commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelreg.cli.support import (
    JsonOption,
    check_dataset_ref,
    check_metric_name,
    check_model_name,
    check_ref,
    emit_json,
    evaluation_dataset,
    metric_values,
    open_registry,
)

commands = typer.Typer()

# -- evaluations ---------------------------------------------------------------------------


@commands.command()
def evaluate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version evaluated.")],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            metavar="PATH[,name=N]",
            help="The data it was evaluated on, hashed from its contents (required).",
        ),
    ],
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric", metavar="K=V", help="A metric; V is a number (required, repeatable)."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Record a version's metrics on a dataset.

    Evaluate versions on the same data to compare them with "leaderboard" and "trend".
    """
    check_ref(ref)
    use = evaluation_dataset(dataset)
    metrics = metric_values(metric)
    found = open_registry(ctx).evaluate(ref, use, metrics=metrics)
    if as_json:
        emit_json(found)
        return
    from modelreg.cli import render_governance

    render_governance.evaluation(found)


@commands.command()
def evaluations(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version.")],
    as_json: JsonOption = False,
) -> None:
    """List the evaluations of a version, oldest first."""
    check_ref(ref)
    found = open_registry(ctx).evaluations(ref)
    if as_json:
        emit_json(found)
        return
    from modelreg.cli import render_governance

    render_governance.evaluations(ref, found)


EvaluationDataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        metavar="NAME[@DIGEST]",
        help="The dataset compared on; NAME alone means its newest version (required).",
    ),
]
EvaluationMetric = Annotated[
    str, typer.Option("--metric", metavar="M", help="The metric, e.g. accuracy (required).")
]


@commands.command()
def leaderboard(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    dataset: EvaluationDataset,
    metric: EvaluationMetric,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="Rank the smallest value first (a loss).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Rank a model's versions by a metric on exactly one dataset version.

    Each version counts with its latest evaluation on that digest; evaluations on other
    versions of the dataset are left out.
    """
    check_model_name(name)
    check_dataset_ref(dataset)
    check_metric_name(metric)
    board = open_registry(ctx).leaderboard(
        name, dataset=dataset, metric=metric, higher_is_better=not lower_is_better
    )
    if as_json:
        emit_json(board)
        return
    from modelreg.cli import render_governance

    render_governance.leaderboard(board)


@commands.command()
def trend(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    dataset: EvaluationDataset,
    metric: EvaluationMetric,
    as_json: JsonOption = False,
) -> None:
    """A metric of a model's versions on one dataset version, over time."""
    check_model_name(name)
    check_dataset_ref(dataset)
    check_metric_name(metric)
    series = open_registry(ctx).metric_trend(name, dataset=dataset, metric=metric)
    if as_json:
        emit_json(series)
        return
    from modelreg.cli import render_governance

    render_governance.trend(series)
