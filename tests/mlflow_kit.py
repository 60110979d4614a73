"""The real MLflow client against ``modelreg server``, for the tests of the MLflow API.

MLflow lives in its own virtualenv (``.venv-mlflow``, made by ``scripts/bootstrap-mlflow``,
which ``scripts/test`` runs; never a dependency of modelreg). A test writes the client code a
user would, and reads back what it printed as JSON:

    def test_something(any_server):
        seen = run_client(any_server.url, '''
            mlflow.set_experiment("exp")
            with mlflow.start_run() as run:
                mlflow.log_param("alpha", 0.5)
            out(run.info.run_id)
        ''')
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = ROOT / ".venv-mlflow" / "bin" / "python"

_PRELUDE = """\
import json, os, sys
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
_results = []
def out(*values):
    _results.extend(values)
def error_of(call, *args, **kwargs):
    '''The MLflow error code and message a call raises, or None when it succeeds.'''
    try:
        call(*args, **kwargs)
    except MlflowException as exc:
        return {"code": exc.error_code, "message": exc.message}
    return None
"""

_EPILOGUE = """
print("\\n@@RESULT@@" + json.dumps(_results, default=str))
"""


def mlflow_python() -> Path:
    if not MLFLOW_PYTHON.exists():
        pytest.fail(f"{MLFLOW_PYTHON} is missing: run scripts/bootstrap-mlflow (scripts/test does)")
    return MLFLOW_PYTHON


def run_client(
    url: str,
    code: str,
    *,
    token: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> list[Any]:
    """Run ``code`` (dedented) in MLflow's virtualenv with ``MLFLOW_TRACKING_URI=url``;
    the values it passed to ``out(...)``, in order. A failing script fails the test with
    its output."""
    script = _PRELUDE + textwrap.dedent(code) + _EPILOGUE
    with tempfile.TemporaryDirectory(prefix="mlflow-client-") as scratch:
        path = Path(scratch) / "client.py"
        path.write_text(script)
        # What the client downloads to temporary folders (MLflow's own included) goes with
        # the scratch folder, not into the machine's /tmp.
        temporary = Path(scratch) / "tmp"
        temporary.mkdir()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELREG_"))
        }
        environment.update(
            MLFLOW_TRACKING_URI=url,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # an error is seen at once, not after backoff
            MLFLOW_ENABLE_ASYNC_LOGGING="false",
            GIT_PYTHON_REFRESH="quiet",
            TMPDIR=str(temporary),
            **({"MLFLOW_TRACKING_TOKEN": token} if token else {}),
            **(env or {}),
        )
        done = subprocess.run(
            [str(mlflow_python()), str(path)],
            cwd=cwd or scratch,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if done.returncode != 0 or "@@RESULT@@" not in done.stdout:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-10000:])
        tail = done.stderr[-2000:]
        pytest.fail(f"the MLflow client script failed (exit {done.returncode}): {tail}")
    result: list[Any] = json.loads(done.stdout.rpartition("@@RESULT@@")[2])
    return result


# The files of a scikit-learn model as MLflow's client logs it (what a registry test stores
# as a logged model's or a run's artifacts).
MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.7
  sklearn:
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
"""
FILES = {
    "MLmodel": MLMODEL.encode(),
    "python_env.yaml": b"python: 3.11.7\nbuild_dependencies:\n- pip==23.2.1\ndependencies:\n"
    b"- -r requirements.txt\n",
    "requirements.txt": b"mlflow==3.17.2\nscikit-learn==1.9.1\ncloudpickle\n",
    "model.skops": b"weights" * 100,
}
