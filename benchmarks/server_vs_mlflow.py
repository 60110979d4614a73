"""Server benchmark: ``modelreg server`` against ``mlflow server``, one workload, one run.

The servers run on loopback with SQLite and a local directory for files, each on a fresh
temporary directory: ``modelreg server --db FILE --blobs DIR`` (one worker, its default) and
``mlflow server --serve-artifacts`` twice, once with its default workers (4) and once with
``--workers 1`` (multi-worker uvicorn adds about 40 ms to each request on a kept-alive
connection; see shared/COMPONENTS.md). Each MLflow figure in the table is the better of the
two. MLflow lives in its own virtualenv, ``.venv-mlflow`` (``scripts/bootstrap-mlflow``
creates it); it is never a dependency of modelreg. All three servers are started first;
then each phase runs against each server in turn, the order rotating from phase to phase,
so that the figures compared come from the same minutes of a shared, noisy machine.

Each phase of the workload runs in a fresh client process: modelreg's with this interpreter
and ``modelreg.connect(URL)`` (RemoteRegistry), MLflow's with ``.venv-mlflow``'s interpreter
and ``mlflow.MlflowClient``. Client start-up and imports are not timed, and no phase starts
before the server's process tree has been idle for a second (MLflow starts its job
runner's consumers after it answers /health). The phases:

1. register: versions with 10 params, 5 metrics, 3 tags and one distinct 1 KB file each
   (MLflow: create_run, log_batch, log_artifact, create_model_version with the tags;
   ``await_creation_for=0``, so it does not poll for the version's status).
2. alias: ``get("bench@production")`` / ``get_model_version_by_alias`` from 8 threads, each
   with its own client, started together; per-request latency and requests/s.
3. search: the best version by ``metrics.accuracy`` among all registered versions
   (``search(model=..., order_by="metrics.accuracy desc", limit=1)``; MLflow:
   ``search_runs(order_by=["metrics.accuracy DESC"], max_results=1)``, which returns the
   run and not yet its version, one request fewer than a real lookup).
4. metrics: 50,000 metric points in a run, 1000 points per request (1000 keys at each of
   50 steps: ``run.log_metrics`` / ``log_batch``, identical points). For information, the
   same count as 50 keys over 1000 steps: modelreg's ``run.log_metrics`` takes one step per
   call (1000 requests); MLflow batches 20 steps per ``log_batch`` (50 requests).
5. large file: upload (``register`` / ``log_artifact``) and download (``pull`` /
   ``download_artifacts``) of a 512 MiB file of random bytes, ``sync`` before each. The
   baseline is ``cp`` of the same file on the same disk, timed after a ``sync`` before each
   server's large-file phase; the median of those is used. ``cp`` followed by ``sync`` of
   the copy is printed for information: modelreg fsyncs each blob it stores, cp does not.
6. re-register the identical 512 MiB file: the bytes the server received (its /metrics
   ``modelreg_http_received_bytes_total``), blob uploads (PUT /blobs requests) and the growth
   of the blob directory. MLflow, for information, logs the file again to a new run; its
   "bytes sent" is the growth of its artifact directory.

The parent samples the resident memory (RSS) of each server's process tree every 25 ms and
reports the peak (MLflow's tree holds the CLI process, uvicorn and its workers and the job
runner's consumers; shared pages count once per process). Start-up is the time from spawn
to the first 200 from ``/healthz`` (MLflow: ``/health``).

It prints figures and never asserts on them: the machine is shared and noisy. It exits 0
when every server and phase ran.

    .venv/bin/python benchmarks/server_vs_mlflow.py              # full run, about 10 minutes
    .venv/bin/python benchmarks/server_vs_mlflow.py --quick      # smoke run, 64 MiB file
    .venv/bin/python benchmarks/server_vs_mlflow.py --mlflow 1 --py-spy /tmp/spy  # profile

``--py-spy DIR`` records the modelreg server's stacks (the thread holding the GIL) in each
phase into ``DIR/PHASE.txt`` (py-spy's collapsed format); the figures of such a run are
slowed down by the sampling.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, emit, figure, header, summary_ms

BENCH = "server vs MLflow"
MLFLOW_VENV = ROOT / ".venv-mlflow"
MLFLOW_PYTHON = MLFLOW_VENV / "bin" / "python"
ALIAS_CLIENTS = 8
MIB = 1 << 20
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "PYTHONWARNINGS": "ignore",
}
PHASES = ("register", "alias", "search", "metrics", "bigfile", "reregister")


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


# -- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process started in its own process group; stopped with its whole tree."""

    def __init__(self, label: str, cmd: list[str], health: str, folder: Path) -> None:
        self.label = label
        self.cmd = cmd
        self.health = health
        self.folder = folder
        self.url = health.rsplit("/", 1)[0]
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")
        self.log = folder / "server.log"

    def start(self) -> None:
        env = {**os.environ, **QUIET_ENV}
        with open(self.log, "wb") as log:
            start = time.perf_counter()
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = start + 120
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.health, timeout=2) as response:
                    if response.status == 200:
                        self.startup_s = time.perf_counter() - start
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.label} did not answer {self.health}:\n{self.log_tail()}")

    def settle(self, *, busy: float = 0.1, timeout: float = 60) -> float:
        """Wait until the process tree uses under ``busy`` of a core over one second (MLflow
        starts its job runner's consumers after it answers /health); the seconds waited."""
        import psutil

        assert self.proc is not None
        start = time.perf_counter()
        root = psutil.Process(self.proc.pid)

        def cpu() -> float:
            total = 0.0
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = proc.cpu_times()
                    total += times.user + times.system
            return total

        while time.perf_counter() - start < timeout:
            before = cpu()
            time.sleep(1)
            if cpu() - before < busy:
                break
        return time.perf_counter() - start

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        except psutil.NoSuchProcess:
            tree = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=20)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


class MemorySampler:
    """Peak RSS of a process and its descendants, sampled every 25 ms, per phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self._stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += proc.memory_info().rss
            self.processes = max(self.processes, len(procs))
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), total)
            self._stop.wait(0.025)

    @property
    def peak(self) -> int:
        return max(self.peaks.values(), default=0)


def run_client(kind: str, phase: str, url: str, cfg: dict[str, Any], work: Path) -> dict[str, Any]:
    """One phase in a fresh client process; its result and the client's peak RSS."""
    python = str(MLFLOW_PYTHON) if kind == "mlflow" else sys.executable
    cmd = [python, __file__, "--client", kind, phase, url, json.dumps(cfg)]
    env = {**os.environ, **QUIET_ENV, "MLFLOW_TRACKING_URI": url}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = out.read().decode().splitlines()
        if code != 0 or not lines or not lines[-1].startswith("PHASE "):
            tail = "\n".join(err.read().decode(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"{kind} {phase} failed ({code}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1][len("PHASE ") :])
    result["client_rss_mb"] = usage.ru_maxrss / 1024
    return result


def timed_cp(source: Path, *, fsync: bool = False) -> float:
    """Seconds to ``cp`` the file on the same disk (with ``fsync``: and ``sync`` the copy)."""
    target = source.with_name(source.name + ".cp")
    os.sync()
    start = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    if fsync:
        subprocess.run(["sync", str(target)], check=True)
    seconds = time.perf_counter() - start
    target.unlink()
    os.sync()
    return seconds


def make_big_file(path: Path, size_mb: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(MIB))


def modelreg_server(folder: Path) -> tuple[Server, Path]:
    """``modelreg server`` on SQLite and a blob directory, one worker; its blob folder."""
    port = free_port()
    reg = folder / "registry"
    reg.mkdir()
    cmd = [str(BIN / "modelreg"), "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--db", str(reg / "registry.db"), "--blobs", str(reg / "blobs")]
    return Server("modelreg", cmd, f"http://127.0.0.1:{port}/healthz", folder), reg / "blobs"


def mlflow_server(folder: Path, workers: int | None) -> tuple[Server, Path]:
    port = free_port()
    artifacts = folder / "artifacts"
    artifacts.mkdir()
    cmd = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(artifacts),
        "--serve-artifacts",
    ]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    label = "MLflow --workers 1" if workers == 1 else "MLflow default workers"
    return Server(label, cmd, f"http://127.0.0.1:{port}/health", folder), artifacts


class Target:
    """A server under test, the client that talks to it and what it measured."""

    def __init__(self, kind: str, server: Server, store: Path, cfg: dict[str, Any]) -> None:
        self.kind = kind
        self.server = server
        self.work = server.folder / "client"
        self.work.mkdir()
        self.cfg = {**cfg, "work": str(self.work), "blobs": str(store)}
        self.results: dict[str, Any] = {}
        self.memory: MemorySampler | None = None

    def start(self) -> None:
        self.server.start()
        assert self.server.proc is not None
        settled = self.server.settle()
        print(
            f"   {self.server.label}: started in {self.server.startup_s:.2f} s; idle after"
            f" {settled:.1f} s more",
            flush=True,
        )
        self.memory = MemorySampler(self.server.proc.pid).__enter__()

    def run(self, phase: str, py_spy: Path | None) -> None:
        assert self.memory is not None
        assert self.server.proc is not None
        self.memory.phase = phase
        start = time.perf_counter()
        with recording(py_spy if self.kind == "modelreg" else None, self.server.proc.pid, phase):
            result = run_client(self.kind, phase, self.server.url, self.cfg, self.work)
        self.results[phase] = result
        print(
            f"   {phase:<10} {self.server.label:<22} {time.perf_counter() - start:6.1f} s  "
            f"{json.dumps(_rounded(result))}",
            flush=True,
        )

    def stop(self) -> None:
        if self.memory is not None:
            self.memory.__exit__()
            self.results["memory"] = {k: v / MIB for k, v in self.memory.peaks.items()}
            self.results["peak_rss_mb"] = self.memory.peak / MIB
            self.results["processes"] = self.memory.processes
        self.results["startup_s"] = self.server.startup_s
        self.server.stop()


def run_all(targets: list[Target], baselines: dict[str, list[float]], py_spy: Path | None) -> None:
    """Start every server, then run each phase against each in turn (the order rotates from
    phase to phase), so that all see the same moments of a shared machine; stop them all."""
    try:
        for target in targets:
            target.start()
        for i, phase in enumerate(PHASES):
            print(flush=True)
            for target in targets[i % len(targets) :] + targets[: i % len(targets)]:
                if phase == "bigfile":
                    big = Path(target.cfg["big"])
                    baselines["cp"].append(timed_cp(big))
                    baselines["cp + fsync"].append(timed_cp(big, fsync=True))
                try:
                    target.run(phase, py_spy)
                except Exception:
                    print(f"   {target.server.label} log:\n{target.server.log_tail()}", flush=True)
                    raise
    finally:
        for target in targets:
            target.stop()


@contextlib.contextmanager
def recording(folder: Path | None, pid: int, phase: str) -> Iterator[None]:
    """py-spy recording ``pid`` into ``folder/phase.txt`` (collapsed stacks) meanwhile."""
    if folder is None:
        yield
        return
    out = folder / f"{phase}.txt"
    spy = shutil.which("py-spy", path=str(BIN)) or "py-spy"
    cmd = [spy, "record", "--pid", str(pid), "--rate", "250", "--gil", "--format", "raw"]
    proc = subprocess.Popen([*cmd, "-o", str(out)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


# -- the table ----------------------------------------------------------------------------


def ratio_text(r: float) -> str:
    if r != r or r == float("inf"):
        return "-"
    return f"{r:,.1f}x" if r < 100 else f"{r:,.0f}x"


def number(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "%":
        return f"{value:.0f}%"
    if unit in {"ms", "s"}:
        return f"{value:,.2f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


# Each figure: (name, value of a server's results, unit, higher is better, target, check).
# ``check(modelreg value, ratio)`` says whether the target is met; None marks information.
Check = Callable[[float, float], bool] | None
Spec = tuple[str, Callable[[dict[str, Any]], float], str, bool, str, Check]


def specs(size: int, versions: int, cp_mib_s: float) -> list[Spec]:
    def up(r: dict[str, Any]) -> float:
        return size / r["bigfile"]["upload_s"]

    def down(r: dict[str, Any]) -> float:
        return size / r["bigfile"]["download_s"]

    def during_transfers(r: dict[str, Any]) -> float:
        return max(r["memory"].get("bigfile", 0), r["memory"].get("reregister", 0))

    n = ALIAS_CLIENTS
    big = f"{size} MiB file"
    again = f"re-register the identical {big}"
    return [
        (
            "register a version (10 params, 5 metrics, 3 tags, 1 KB file)",
            lambda r: r["register"]["per_s"],
            "versions/s",
            True,
            ">= 20x MLflow",
            lambda v, x: x >= 20,
        ),
        (
            f"resolve an alias, {n} clients: throughput",
            lambda r: r["alias"]["per_s"],
            "req/s",
            True,
            ">= 10x MLflow",
            lambda v, x: x >= 10,
        ),
        (
            f"resolve an alias, {n} clients: p99",
            lambda r: r["alias"]["p99"],
            "ms",
            False,
            "<= 20 ms",
            lambda v, x: v <= 20,
        ),
        (f"resolve an alias, {n} clients: p50", lambda r: r["alias"]["p50"], "ms", False, "", None),
        (
            f"best version by a metric among {versions:,}: p50",
            lambda r: r["search"]["p50"],
            "ms",
            False,
            "<= 5 ms",
            lambda v, x: v <= 5,
        ),
        (f"upload a {big}", up, "MiB/s", True, ">= 2x MLflow", lambda v, x: x >= 2),
        (
            f"upload a {big}: share of cp ({cp_mib_s:,.0f} MiB/s)",
            lambda r: 100 * up(r) / cp_mib_s,
            "%",
            True,
            ">= 50% of cp",
            lambda v, x: v >= 50,
        ),
        (f"download a {big}", down, "MiB/s", True, ">= 2x MLflow", lambda v, x: x >= 2),
        (
            f"download a {big}: share of cp",
            lambda r: 100 * down(r) / cp_mib_s,
            "%",
            True,
            ">= 50% of cp",
            lambda v, x: v >= 50,
        ),
        (
            "log 50,000 metric points, 1000 per request",
            lambda r: r["metrics"]["wide"]["per_s"],
            "points/s",
            True,
            ">= 20x MLflow",
            lambda v, x: x >= 20,
        ),
        (
            "log 50,000 metric points, 50 keys x 1000 steps",
            lambda r: r["metrics"]["long"]["per_s"],
            "points/s",
            True,
            "",
            None,
        ),
        (
            f"{again}: bytes sent",
            lambda r: r["reregister"]["received_bytes"],
            "B",
            False,
            "no file bytes",
            lambda v, x: v < 64 * 1024,
        ),
        (
            f"{again}: bytes stored",
            lambda r: r["reregister"]["stored_bytes"],
            "B",
            False,
            "0 bytes",
            lambda v, x: v == 0,
        ),
        (f"{again}: time", lambda r: r["reregister"]["seconds"], "s", False, "", None),
        ("server peak RSS, whole run", lambda r: r["peak_rss_mb"], "MiB", False, "", None),
        (f"server peak RSS, {big} transfers", during_transfers, "MiB", False, "", None),
        ("server start-up to health 200", lambda r: r["startup_s"], "s", False, "", None),
    ]


def build_rows(
    mr: dict[str, Any], ml: dict[str, dict[str, Any]], size: int, cp_mib_s: float
) -> list[dict[str, Any]]:
    """The table: modelreg against the better of the MLflow settings, figure by figure."""
    rows = []
    for name, get, unit, higher, target, check in specs(size, mr["versions_total"], cp_mib_s):
        value = get(mr)
        each = {label: get(res) for label, res in ml.items()}
        which = (max if higher else min)(each, key=lambda k: each[k])
        other = each[which]
        ratio = _divide(value, other) if higher else _divide(other, value)
        rows.append(
            {
                "figure": name,
                "modelreg": value,
                "mlflow": other,
                "mlflow_which": which,
                "mlflow_all": each,
                "unit": unit,
                "ratio": ratio,
                "target": target or "(info)",
                "passed": None if check is None else bool(check(value, ratio)),
            }
        )
    return rows


def _divide(a: float, b: float) -> float:
    if b == 0:
        return float("inf") if a > 0 else float("nan")
    return a / b


def show_table(rows: list[dict[str, Any]]) -> None:
    head = ("figure", "modelreg", "MLflow (best)", "ratio", "target", "result")
    body = []
    for r in rows:
        result = "(info)" if r["passed"] is None else ("met" if r["passed"] else "NOT MET")
        mlflow = number(r["mlflow"], r["unit"]) + (" (w1)" if "1" in r["mlflow_which"] else "")
        body.append(
            (
                r["figure"],
                number(r["modelreg"], r["unit"]),
                mlflow,
                ratio_text(r["ratio"]),
                r["target"],
                result,
            )
        )
    widths = [max(len(str(line[i])) for line in (head, *body)) for i in range(len(head))]
    for line in (head, tuple("-" * w for w in widths), *body):
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
    print(
        "  ratio: how many times better modelreg is (higher throughput, or lower latency, "
        "size, memory or time); (w1) marks MLflow's --workers 1 as the better of the two."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: smaller sizes")
    parser.add_argument("--size-mb", type=int, help="large file size (default 512, quick 64)")
    parser.add_argument("--versions", type=int, help="timed versions (default 300, quick 40)")
    parser.add_argument("--alias-per", type=int, help="calls per alias client (default 250)")
    parser.add_argument("--search-calls", type=int, help="timed searches (default 200)")
    parser.add_argument("--points", type=int, help="metric points (default 50,000)")
    parser.add_argument(
        "--mlflow",
        default="default,1",
        help="MLflow worker settings to run, comma-separated: 'default' and/or numbers",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record the modelreg server with py-spy in each phase (slows it down)",
    )
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        kind, phase, url, cfg = args.client
        client_main(kind, phase, url, json.loads(cfg))
        return

    quick = args.quick
    cfg: dict[str, Any] = {
        "warmup": 5,
        "versions": args.versions or (40 if quick else 300),
        "alias_per": args.alias_per or (50 if quick else 250),
        "search_calls": args.search_calls or (50 if quick else 200),
        "points": args.points or (10_000 if quick else 50_000),
    }
    size_mb = args.size_mb or (64 if quick else 512)
    header(
        f"server vs MLflow: {cfg['versions']} versions, {ALIAS_CLIENTS}x{cfg['alias_per']} alias"
        f" calls, {cfg['search_calls']} searches, {cfg['points']:,} points, {size_mb} MiB file"
    )
    if not (MLFLOW_VENV / ".installed").exists():
        print("   creating .venv-mlflow (scripts/bootstrap-mlflow)", flush=True)
        subprocess.run([str(ROOT / "scripts" / "bootstrap-mlflow")], check=True)
    version = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **QUIET_ENV},
    ).stdout.strip()
    print(f"   MLflow {version}", flush=True)

    with tempfile.TemporaryDirectory(prefix="modelreg-bench-server-") as tmp_name:
        tmp = Path(tmp_name)
        big = tmp / "big.bin"
        make_big_file(big, size_mb)
        cfg["big"] = str(big)
        baselines: dict[str, list[float]] = {"cp": [], "cp + fsync": []}
        if args.py_spy:
            args.py_spy.mkdir(parents=True, exist_ok=True)
        (tmp / "modelreg").mkdir()
        targets = [Target("modelreg", *modelreg_server(tmp / "modelreg"), cfg)]
        for setting in args.mlflow.split(","):
            folder = tmp / f"mlflow-{setting}"
            folder.mkdir()
            server, store = mlflow_server(folder, None if setting == "default" else int(setting))
            targets.append(Target("mlflow", server, store, cfg))
        run_all(targets, baselines, args.py_spy)
    mr = targets[0].results
    mr["versions_total"] = cfg["warmup"] + cfg["versions"]
    ml = {t.server.label: t.results for t in targets[1:]}

    print()
    for label, times in baselines.items():
        each = ", ".join(f"{size_mb / t:,.0f}" for t in times)
        median = size_mb / statistics.median(times)
        print(f"   {label} of the {size_mb} MiB file: {each} MiB/s (median {median:,.0f})")
    cp_mib_s = size_mb / statistics.median(baselines["cp"])
    rows = build_rows(mr, ml, size_mb, cp_mib_s)
    print()
    show_table(rows)
    print("\n   MLflow by setting:")
    for r in rows:
        each = ", ".join(f"{k}: {number(v, r['unit'])}" for k, v in r["mlflow_all"].items())
        print(f"   {r['figure']}: {each}")
    print()
    for label, res in [("modelreg", mr), *ml.items()]:
        phases = ", ".join(f"{k} {v:,.0f}" for k, v in res["memory"].items())
        print(f"   {label}: peak RSS by phase (MiB, {res['processes']} processes): {phases}")
        print(
            f"   {label}: alias p50 {res['alias']['p50']:.2f} ms, "
            f"p95 {res['alias']['p95']:.2f} ms, p99 {res['alias']['p99']:.2f} ms; "
            f"search p99 {res['search']['p99']:.2f} ms; client peak RSS in the large-file "
            f"phase {res['bigfile']['client_rss_mb']:,.0f} MiB"
        )
    figures = [
        figure(
            BENCH,
            r["figure"],
            r["modelreg"],
            r["unit"],
            target=r["target"],
            passed=r["passed"],
            baseline=f"MLflow {number(r['mlflow'], r['unit'])} ({r['mlflow_which']})",
            note=f"ratio {ratio_text(r['ratio'])}",
        )
        for r in rows
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   load average at the end: {load}")
    emit(figures)


if __name__ == "__main__":
    main()
