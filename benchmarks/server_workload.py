"""The workload of ``server_vs_mlflow.py``, and the clients that run it: modelreg's
(``modelreg.connect(URL)``, a RemoteRegistry) and MLflow's (``mlflow.MlflowClient``).

Each phase runs in a fresh process: ``server_vs_mlflow.py`` starts this file with this
interpreter for modelreg and with ``.venv-mlflow``'s for MLflow, so it imports neither
package at the top. The last line it prints is ``PHASE {json result}``.

    python benchmarks/server_workload.py modelreg|mlflow PHASE URL CONFIG_JSON
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import summary_ms

ALIAS_CLIENTS = 8

# -- the workload's data, the same for both clients ----------------------------------------


def accuracy(i: int) -> float:
    """Version i's accuracy: distinct values in a scrambled order."""
    return 0.5 + ((i * 7919) % 997) / 2000 + i * 1e-7


def version_data(i: int) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    params = {f"param_{j}": (i * 10 + j) / 7 for j in range(10)}
    metrics = {"accuracy": accuracy(i), **{f"metric_{j}": (i + j) / 13 for j in range(4)}}
    tags = {"team": "growth", "stage": f"s{i % 3}", "owner": f"user{i % 5}"}
    return params, metrics, tags


def make_small_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"model-{i}.bin"
        path.write_bytes(os.urandom(1024))
        paths.append(path)
    return paths


def point_batches(shape: str, total: int) -> Iterator[tuple[int, dict[str, float]]]:
    """(step, {key: value}) for ``total`` points: 'wide' is 1000 keys per step, 'long' 50."""
    keys = 1000 if shape == "wide" else 50
    for step in range(total // keys):
        yield step, {f"k{j:03d}": (step * keys + j) / 1e4 for j in range(keys)}


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def alias_run(make_client: Callable[[], Any], call: Callable[[Any], Any], per: int) -> dict:
    """``per`` calls in each of ALIAS_CLIENTS threads, each with its own client, started
    together after 20 untimed calls each."""
    clients = [make_client() for _ in range(ALIAS_CLIENTS)]
    latencies: list[list[float]] = [[] for _ in clients]
    started: list[float] = []
    barrier = threading.Barrier(ALIAS_CLIENTS, action=lambda: started.append(time.perf_counter()))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            client = clients[n]
            for _ in range(20):
                call(client)
            barrier.wait()
            out = latencies[n]
            clock = time.perf_counter
            for _ in range(per):
                t = clock()
                call(client)
                out.append((clock() - t) * 1000)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(ALIAS_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = time.perf_counter()
    if errors:
        raise errors[0]
    samples = [x for each in latencies for x in each]
    result = summary_ms(samples)
    result["per_s"] = len(samples) / (ended - started[0])
    return result


def search_run(call: Callable[[], float], calls: int, best: float) -> dict:
    for _ in range(10):
        found = call()
    if abs(found - best) > 1e-9:
        raise RuntimeError(f"search found accuracy {found}, the best is {best}")
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    return summary_ms(samples)


# -- modelreg's client (this interpreter) ---------------------------------------------------


def modelreg_phase(phase: str, url: str, cfg: dict[str, Any]) -> dict[str, Any]:
    import modelreg

    reg = modelreg.connect(url)
    work = Path(cfg["work"])
    total = cfg["warmup"] + cfg["versions"]
    if phase == "register":
        files = make_small_files(work / "small-modelreg", total)
        for i in range(total):
            if i == cfg["warmup"]:
                start = time.perf_counter()
            params, metrics, tags = version_data(i)
            reg.register("bench", files[i], params=params, metrics=metrics, tags=tags)
        seconds = time.perf_counter() - start
        reg.set_alias("bench", "production", f"bench/{total // 2}")
        return {"seconds": seconds, "per_s": cfg["versions"] / seconds}
    if phase == "alias":
        expected = f"bench/{total // 2}"
        if reg.get("bench@production").ref != expected:
            raise RuntimeError("bench@production does not resolve to " + expected)
        return alias_run(
            lambda: modelreg.connect(url), lambda c: c.get("bench@production"), cfg["alias_per"]
        )
    if phase == "search":

        def best() -> float:
            found = reg.search(model="bench", order_by="metrics.accuracy desc", limit=1)
            return float(found[0].metrics["accuracy"])

        return search_run(best, cfg["search_calls"], max(accuracy(i) for i in range(total)))
    if phase == "metrics":
        out = {}
        for shape in ("wide", "long"):
            with reg.start_run(f"points-{shape}") as run:
                start = time.perf_counter()
                for step, values in point_batches(shape, cfg["points"]):
                    run.log_metrics(values, step=step)
                seconds = time.perf_counter() - start
            out[shape] = {"seconds": seconds, "per_s": cfg["points"] / seconds}
        return out
    if phase == "bigfile":
        big, dest = Path(cfg["big"]), work / "pulled-modelreg"
        os.sync()
        start = time.perf_counter()
        reg.register("big", big, params={"size": big.stat().st_size})
        up = time.perf_counter() - start
        os.sync()
        start = time.perf_counter()
        reg.pull("big", dest)
        down = time.perf_counter() - start
        if (dest / big.name).stat().st_size != big.stat().st_size:
            raise RuntimeError("the pulled file has the wrong size")
        shutil.rmtree(dest)
        return {"upload_s": up, "download_s": down}
    if phase == "reregister":
        big, blobs = Path(cfg["big"]), Path(cfg["blobs"])
        before = server_counters(url)
        stored = tree_bytes(blobs)
        start = time.perf_counter()
        version = reg.register("big", big, params={"size": big.stat().st_size})
        seconds = time.perf_counter() - start
        after = server_counters(url)
        return {
            "seconds": seconds,
            "version": version.ref,
            "received_bytes": after["received"] - before["received"],
            "blob_puts": after["blob_puts"] - before["blob_puts"],
            "stored_bytes": tree_bytes(blobs) - stored,
        }
    raise ValueError(phase)


_BLOB_PUT = 'method="PUT",route="/api/v1/blobs/{digest}"'


def server_counters(url: str) -> dict[str, int]:
    """Bytes received and blob uploads so far, from the server's /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    received = puts = 0
    for line in text.splitlines():
        if line.startswith("modelreg_http_received_bytes_total "):
            received = int(float(line.split()[-1]))
        elif line.startswith("modelreg_http_requests_total{") and _BLOB_PUT in line:
            puts += int(float(line.split()[-1]))
    return {"received": received, "blob_puts": puts}


# -- MLflow's client (.venv-mlflow's interpreter) -------------------------------------------


def mlflow_phase(phase: str, url: str, cfg: dict[str, Any]) -> dict[str, Any]:
    import logging

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=url)
    work = Path(cfg["work"])
    total = cfg["warmup"] + cfg["versions"]

    def experiment(name: str) -> str:
        found = client.get_experiment_by_name(name)
        return found.experiment_id if found else client.create_experiment(name)

    if phase == "register":
        files = make_small_files(work / "small-mlflow", total)
        exp = experiment("bench")
        client.create_registered_model("bench")
        for i in range(total):
            if i == cfg["warmup"]:
                start = time.perf_counter()
            params, metrics, tags = version_data(i)
            run = client.create_run(exp)
            run_id = run.info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in params.items()],
            )
            client.log_artifact(run_id, str(files[i]), "model")
            client.create_model_version(
                "bench",
                f"{run.info.artifact_uri}/model",
                run_id=run_id,
                tags=tags,
                await_creation_for=0,
            )
        seconds = time.perf_counter() - start
        client.set_registered_model_alias("bench", "production", str(total // 2))
        return {"seconds": seconds, "per_s": cfg["versions"] / seconds}
    if phase == "alias":
        if client.get_model_version_by_alias("bench", "production").version != str(total // 2):
            raise RuntimeError("bench@production resolves to the wrong version")
        return alias_run(
            lambda: MlflowClient(tracking_uri=url),
            lambda c: c.get_model_version_by_alias("bench", "production"),
            cfg["alias_per"],
        )
    if phase == "search":
        exp = experiment("bench")

        def best() -> float:
            runs = client.search_runs([exp], order_by=["metrics.accuracy DESC"], max_results=1)
            return float(runs[0].data.metrics["accuracy"])

        return search_run(best, cfg["search_calls"], max(accuracy(i) for i in range(total)))
    if phase == "metrics":
        exp = experiment("points")
        out = {}
        for shape in ("wide", "long"):
            run_id = client.create_run(exp).info.run_id
            now = int(time.time() * 1000)
            batch: list[Any] = []
            start = time.perf_counter()
            for step, values in point_batches(shape, cfg["points"]):
                batch.extend(Metric(k, v, now, step) for k, v in values.items())
                if len(batch) >= 1000:
                    client.log_batch(run_id, metrics=batch)
                    batch = []
            if batch:
                client.log_batch(run_id, metrics=batch)
            seconds = time.perf_counter() - start
            client.set_terminated(run_id)
            out[shape] = {"seconds": seconds, "per_s": cfg["points"] / seconds}
        return out
    if phase == "bigfile":
        big, dest = Path(cfg["big"]), work / "pulled-mlflow"
        run_id = client.create_run(experiment("big")).info.run_id
        os.sync()
        start = time.perf_counter()
        client.log_artifact(run_id, str(big))
        up = time.perf_counter() - start
        os.sync()
        dest.mkdir()
        start = time.perf_counter()
        client.download_artifacts(run_id, big.name, str(dest))
        down = time.perf_counter() - start
        if (dest / big.name).stat().st_size != big.stat().st_size:
            raise RuntimeError("the downloaded file has the wrong size")
        shutil.rmtree(dest)
        return {"upload_s": up, "download_s": down}
    if phase == "reregister":
        big, artifacts = Path(cfg["big"]), Path(cfg["blobs"])
        run_id = client.create_run(experiment("big")).info.run_id
        stored = tree_bytes(artifacts)
        start = time.perf_counter()
        client.log_artifact(run_id, str(big))
        seconds = time.perf_counter() - start
        grown = tree_bytes(artifacts) - stored
        return {"seconds": seconds, "stored_bytes": grown, "received_bytes": grown}
    raise ValueError(phase)


def client_main(kind: str, phase: str, url: str, cfg: dict[str, Any]) -> None:
    run = modelreg_phase if kind == "modelreg" else mlflow_phase
    result = run(phase, url, cfg)
    sys.stdout.flush()
    print("PHASE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    kind, phase, url, cfg = sys.argv[1:]
    client_main(kind, phase, url, json.loads(cfg))
