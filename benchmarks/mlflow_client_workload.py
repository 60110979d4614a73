"""One MLflow-client workload, run by bench_mlflow_client.py with MLflow's own interpreter
(``.venv-mlflow``) against whichever server ``MLFLOW_TRACKING_URI`` names; the same code for
``mlflow server`` and ``modelreg server``.

    .venv-mlflow/bin/python benchmarks/mlflow_client_workload.py MODEL_NAME [--declared]

With ``--declared`` the model is logged with its requirements given (``pip_requirements``),
so that MLflow's client does not infer them: inference loads the model in a subprocess and
takes seconds of the client's own CPU, the same whichever server it talks to.

Prints one line, ``PHASES {json}``: seconds per phase. Imports are not timed.
"""

from __future__ import annotations

import json
import sys
import time

import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

METRICS, STEPS = 50, 100


def main() -> None:
    name = sys.argv[1]
    declared = "--declared" in sys.argv[2:]
    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 8))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    phases: dict[str, float] = {}

    start = time.perf_counter()
    mlflow.set_experiment(f"{name}-experiment")
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 1.0, "solver": "lbfgs", "features": 8})
        for step in range(STEPS):
            mlflow.log_metrics({f"m{k}": (k + step) / 1000 for k in range(METRICS)}, step=step)
        phases["log_run"] = time.perf_counter() - start

        model = LogisticRegression().fit(features, labels)
        mark = time.perf_counter()
        requirements = None
        if declared:
            import sklearn

            requirements = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=features[:2],
            pip_requirements=requirements,
        )
        phases["log_model"] = time.perf_counter() - mark
    mark = time.perf_counter()
    client = MlflowClient()
    version = client.search_model_versions(f"name='{name}'")[0].version
    client.set_registered_model_alias(name, "champion", version)
    phases["alias"] = time.perf_counter() - mark

    mark = time.perf_counter()
    loaded = mlflow.sklearn.load_model(f"models:/{name}@champion")
    phases["load"] = time.perf_counter() - mark
    if not np.array_equal(loaded.predict(features), model.predict(features)):
        raise SystemExit("the loaded model predicts differently")
    phases["total"] = time.perf_counter() - start
    phases["run_id"] = run.info.run_id  # type: ignore[assignment]
    print("PHASES " + json.dumps(phases), flush=True)


if __name__ == "__main__":
    main()
