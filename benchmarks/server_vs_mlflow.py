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

Each phase of the workload runs in a fresh client process (``server_workload.py``, which
holds the workload and both clients): modelreg's with this interpreter and
``modelreg.connect(URL)`` (RemoteRegistry), MLflow's with ``.venv-mlflow``'s interpreter and
``mlflow.MlflowClient``. ``server_report.py`` makes the table. Client start-up and imports
are not timed, and no phase starts before the server's process tree has been idle for a
second (MLflow starts its job runner's consumers after it answers /health). The phases:

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, emit, figure, header
from server_report import build_rows, number, ratio_text, show_table
from server_workload import ALIAS_CLIENTS

BENCH = "server vs MLflow"
MLFLOW_VENV = ROOT / ".venv-mlflow"
MLFLOW_PYTHON = MLFLOW_VENV / "bin" / "python"
WORKLOAD = Path(__file__).with_name("server_workload.py")  # each phase's client process
MIB = 1 << 20
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "PYTHONWARNINGS": "ignore",
}
PHASES = ("register", "alias", "search", "metrics", "bigfile", "reregister")


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
    cmd = [python, str(WORKLOAD), kind, phase, url, json.dumps(cfg)]
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


def side_by_side(root: Path) -> list[Server]:
    """``modelreg server`` and ``mlflow server`` with its default workers and with one, each
    in its own folder under ``root``: made, not started."""
    servers = []
    for folder_name, make in (
        ("modelreg", lambda f: modelreg_server(f)[0]),
        ("mlflow-default", lambda f: mlflow_server(f, None)[0]),
        ("mlflow-1", lambda f: mlflow_server(f, 1)[0]),
    ):
        folder = root / folder_name
        folder.mkdir()
        servers.append(make(folder))
    return servers


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
    args = parser.parse_args()

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
