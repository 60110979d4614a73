"""Demo content: small models really trained (pure Python) on generated data.

``fill(reg)`` trains logistic-regression churn models in several versions with different
params inside runs (metric history per epoch, train and validation datasets), a distilled
child of one of them, and moves an alias, so every view of the registry has something true
to show.
"""

from __future__ import annotations

import csv
import json
import math
import random
import tempfile
from pathlib import Path
from typing import Any

FEATURES = ("tenure", "monthly_charges", "support_calls", "contract_months")


def make_rows(count: int, seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        x = {
            "tenure": rng.uniform(0, 72),
            "monthly_charges": rng.uniform(20, 120),
            "support_calls": float(rng.randint(0, 9)),
            "contract_months": float(rng.choice([1, 12, 24])),
        }
        z = -0.05 * x["tenure"] + 0.03 * x["monthly_charges"] + 0.4 * x["support_calls"]
        z += -0.08 * x["contract_months"] - 1.5 + rng.gauss(0, 0.8)
        x["churned"] = 1.0 if z > 0 else 0.0
        rows.append(x)
    return rows


def write_csv(path: Path, rows: list[dict[str, float]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*FEATURES, "churned"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4f}" for k, v in row.items()})
    return path


def _scale(rows: list[dict[str, float]], features: tuple[str, ...]) -> list[list[float]]:
    limits = {"tenure": 72, "monthly_charges": 120, "support_calls": 9, "contract_months": 24}
    return [[row[f] / limits[f] for f in features] for row in rows]


def train(
    rows: list[dict[str, float]],
    *,
    features: tuple[str, ...],
    lr: float,
    epochs: int,
    l2: float,
    seed: int,
    on_epoch: Any = None,
) -> list[float]:
    """Logistic regression by full-batch gradient descent; returns [bias, *weights]."""
    rng = random.Random(seed)
    xs = _scale(rows, features)
    ys = [row["churned"] for row in rows]
    w = [rng.uniform(-0.1, 0.1) for _ in range(len(features) + 1)]
    for epoch in range(epochs):
        grad = [0.0] * len(w)
        loss = 0.0
        for x, y in zip(xs, ys, strict=True):
            p = _sigmoid(w[0] + sum(wi * xi for wi, xi in zip(w[1:], x, strict=True)))
            loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
            grad[0] += p - y
            for i, xi in enumerate(x):
                grad[i + 1] += (p - y) * xi
        n = len(xs)
        w = [w[0] - lr * grad[0] / n] + [
            wi - lr * (gi / n + l2 * wi) for wi, gi in zip(w[1:], grad[1:], strict=True)
        ]
        if on_epoch is not None:
            on_epoch(epoch, loss / n)
    return w


def accuracy(w: list[float], rows: list[dict[str, float]], features: tuple[str, ...]) -> float:
    xs = _scale(rows, features)
    hits = 0
    for x, row in zip(xs, rows, strict=True):
        p = _sigmoid(w[0] + sum(wi * xi for wi, xi in zip(w[1:], x, strict=True)))
        hits += (p >= 0.5) == (row["churned"] == 1.0)
    return hits / len(rows)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-max(-60.0, min(60.0, z))))


def fill(reg: Any, *, workdir: str | Path | None = None) -> list[str]:
    """Fill ``reg`` with demo models; return the refs registered."""
    root = getattr(reg, "root", None)
    base = Path(workdir) if workdir else (root / "demo-data" if root else None)
    if base is None:
        base = Path(tempfile.mkdtemp(prefix="modelreg-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    train_v1 = write_csv(base / "churn-train-2026-10.csv", make_rows(600, seed=1))
    train_v2 = write_csv(base / "churn-train-2026-11.csv", make_rows(900, seed=2))
    valid_rows = make_rows(300, seed=3)
    valid = write_csv(base / "churn-validation.csv", valid_rows)
    holdout_rows = make_rows(400, seed=4)
    holdout = write_csv(base / "churn-holdout.csv", holdout_rows)
    made = []
    settings = [
        ("lr=0.5, 40 epochs", train_v1, {"lr": 0.5, "epochs": 40, "l2": 0.01, "seed": 7}),
        ("lr=1.0, 80 epochs", train_v1, {"lr": 1.0, "epochs": 80, "l2": 0.001, "seed": 7}),
        (
            "lr=2.0, 120 epochs, November data",
            train_v2,
            {"lr": 2.0, "epochs": 120, "l2": 0.001, "seed": 7},
        ),
    ]
    for label, train_file, params in settings:
        with reg.start_run(name=f"churn {label}", params=params) as run:
            run.use_dataset(train_file, name="churn-train", role="train")
            run.use_dataset(valid, name="churn-validation", role="validation")
            rows = make_rows(
                600 if train_file == train_v1 else 900, seed=1 if train_file == train_v1 else 2
            )
            w = train(
                rows,
                features=FEATURES,
                lr=float(params["lr"]),
                epochs=int(params["epochs"]),
                l2=float(params["l2"]),
                seed=int(params["seed"]),
                on_epoch=lambda epoch, loss: run.log_metric("train_loss", loss, step=epoch),
            )
            run.log_metric("val_accuracy", accuracy(w, valid_rows, FEATURES))
            model = base / "churn-model.json"
            model.write_text(json.dumps({"features": list(FEATURES), "weights": w}, indent=2))
            v = run.register(
                "churn",
                model,
                metrics={"train_accuracy": accuracy(w, rows, FEATURES)},
                tags={"team": "growth", "framework": "pure-python"},
                description=f"Logistic regression, {label}.",
            )
            made.append(v.ref)
            reg.evaluate(
                v.ref,
                {"path": holdout, "name": "churn-holdout"},
                metrics={"accuracy": accuracy(w, holdout_rows, FEATURES)},
            )
    reg.set_alias("churn", "production", made[1])
    reg.set_alias("churn", "staging", made[2])
    reg.set_alias("churn", "production", made[2])
    # From now on, production takes only a version at least as good on the same holdout data.
    reg.set_policy("churn", "production", metric="accuracy", dataset="churn-holdout")
    small = ("tenure", "support_calls")
    with reg.start_run(
        name="churn distilled", params={"lr": 1.0, "epochs": 60, "teacher": made[2]}
    ) as run:
        run.use_dataset(train_v2, name="churn-train", role="train")
        rows = make_rows(900, seed=2)
        w = train(
            rows,
            features=small,
            lr=1.0,
            epochs=60,
            l2=0.0,
            seed=11,
            on_epoch=lambda epoch, loss: run.log_metric("train_loss", loss, step=epoch),
        )
        run.log_metric("val_accuracy", accuracy(w, valid_rows, small))
        model = base / "churn-distilled.json"
        model.write_text(json.dumps({"features": list(small), "weights": w}, indent=2))
        v = run.register(
            "churn-distilled",
            model,
            parents=[made[2]],
            tags={"team": "growth"},
            description="Two-feature student of churn.",
        )
        made.append(v.ref)
    reg.set_alias("churn-distilled", "production", v.ref)
    return made
