#!/usr/bin/env python3
"""Benchmark acmemc against cmemc and a minimal aiohttp client on local sandbox deployments.

For each number of deployments N, the script starts an acmemc sandbox in a child
process (``benchmarks/sandbox_server.py``) and runs every contender R times on the
same config.ini. It measures wall time, CPU time and peak RSS of each run, checks that
each run printed exactly the graph IRIs that the sandbox serves, and counts the token
requests that reached the sandbox. It also measures the start-up of both command lines
and writes a Markdown report.

Usage::

    .venv/bin/python benchmarks/run.py            # N = 20, 200, 1000; writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --quick    # N = 5, 1 repetition, no cmemc; prints only

Exit status: 0 when every run succeeded with the expected output, 1 when a run failed
or printed wrong output, 2 when the options are invalid or the sandbox or cmemc cannot
be set up. Performance targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import os
import platform
import resource
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCHMARK_DIR = Path(__file__).resolve().parent
REPOSITORY_DIR = BENCHMARK_DIR.parent
WORK_DIR = BENCHMARK_DIR / "work"
SANDBOX_SERVER = BENCHMARK_DIR / "sandbox_server.py"
FLOOR_SCRIPT = BENCHMARK_DIR / "floor.py"
COUNT_TLS_SCRIPT = BENCHMARK_DIR / "count_tls.py"
DEFAULT_OUTPUT = BENCHMARK_DIR / "RESULTS.md"

CMEMC_PACKAGE = "cmem-cmemc"
# The cmem-cmemc release to compare with. It installs on Python 3.11 (checked with
# pip on CPython 3.11.7); later releases may require a newer Python.
CMEMC_VERSION = "25.6.2"

DEFAULT_SIZES = (20, 200, 1000)
DEFAULT_CMEMC_SIZES = (20,)
DEFAULT_LATENCY = 0.05
DEFAULT_REPETITIONS = 3
DEFAULT_STARTUP_RUNS = 10
QUICK_SIZES = (5,)
QUICK_STARTUP_RUNS = 3

# acmemc's default --jobs, also used by the floor script and the in-process run.
CONCURRENCY = 20
# Parallel cmemc processes in the xargs pipeline (xargs -P).
XARGS_PARALLEL = 5

SANDBOX_START_TIMEOUT = 120.0
RUN_TIMEOUT = 600.0

# Variables that would change what the contenders connect to or trust. Every
# contender runs without them, so the config file alone decides.
REMOVED_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)

# The numbers of deployments at which acmemc should take at most 1.3× the floor's wall time.
FLOOR_TARGET_SIZES = (20, 200, 1000)

GRAPH_LIST = "graph list"
ADMIN_STATUS = "admin status"

# Runs one cmemc command for the connection $2 with the cmemc executable $1, and
# prefixes each output line with the connection name and a tab. It uses only shell
# builtins, so the cost per connection is one bash start. pipefail keeps cmemc's
# exit status, so that xargs reports a failed connection.
CMEMC_WRAPPER = (
    'set -o pipefail; "$1" -c "$2" {command} '
    '| while IFS= read -r line || [ -n "$line" ]; do printf "%s\\t%s\\n" "$2" "$line"; done'
)
# cmemc's way to run one command on every connection: `cmemc config list` piped into
# xargs, here with the wrapper above as the command. $1 is cmemc, $2 the number of
# parallel processes and $3 the wrapper script.
CMEMC_PIPELINE = 'set -o pipefail; "$1" config list | xargs -P "$2" -I{} bash -c "$3" wrapper "$1" {}'


class BenchmarkFailure(Exception):
    """A contender failed or printed wrong output, so the benchmark's results are invalid."""


class SetupError(Exception):
    """The sandbox, cmemc or the Python environment cannot be set up."""


# Measuring one process tree


@dataclass(frozen=True)
class Measurement:
    """One run of a command.

    ``cpu`` is user plus system time in seconds of the process and of every
    descendant it waited for. ``max_rss_kib`` is the peak RSS of the largest single
    process in that tree, as os.wait4 reports it, in KiB. Linux copies the parent's
    peak RSS into a child when it calls exec, so this value is never below the peak
    RSS of the benchmark process itself, which therefore keeps little in memory.
    """

    wall: float
    cpu: float
    max_rss_kib: int
    exit_code: int
    timed_out: bool
    stdout: str
    stderr: str


def measure(argv: Sequence[str], env: Mapping[str, str], timeout: float = RUN_TIMEOUT) -> Measurement:
    """Run ``argv`` to its end and measure it; kill its process group after ``timeout`` seconds."""
    with tempfile.TemporaryFile() as stdout_file, tempfile.TemporaryFile() as stderr_file:
        timed_out = threading.Event()
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout_file,
            stderr=stderr_file,
            env=dict(env),
            start_new_session=True,
        )

        def kill_process_group() -> None:
            timed_out.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill_process_group)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        # os.wait4 reaped the child, so tell Popen that it has ended.
        process.returncode = os.waitstatus_to_exitcode(status)

        stdout_file.seek(0)
        stderr_file.seek(0)
        return Measurement(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            max_rss_kib=usage.ru_maxrss,
            exit_code=process.returncode,
            timed_out=timed_out.is_set(),
            stdout=stdout_file.read().decode("utf-8", errors="replace"),
            stderr=stderr_file.read().decode("utf-8", errors="replace"),
        )


def describe_failure(label: str, measurement: Measurement) -> str:
    if measurement.timed_out:
        outcome = f"timed out after {RUN_TIMEOUT:g} s"
    else:
        outcome = f"exited with status {measurement.exit_code}"
    stderr_tail = "\n".join(measurement.stderr.strip().splitlines()[-15:]) or "(empty)"
    return f"{label} {outcome}. Last lines of its stderr:\n{stderr_tail}"


# The sandbox process


@dataclass(frozen=True)
class Counters:
    """Requests per deployment name that reached the sandbox, and the sandbox's CPU seconds."""

    token_requests: dict[str, int]
    graph_list_requests: dict[str, int]
    cpu_seconds: float

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Counters:
        return cls(record["token_requests"], record["graph_list_requests"], record["cpu_seconds"])

    def since(self, earlier: Counters) -> Counters:
        return Counters(
            {name: count - earlier.token_requests.get(name, 0) for name, count in self.token_requests.items()},
            {name: count - earlier.graph_list_requests.get(name, 0) for name, count in self.graph_list_requests.items()},
            self.cpu_seconds - earlier.cpu_seconds,
        )


class SandboxProcess:
    """``benchmarks/sandbox_server.py`` in a child process, with its deployments and counters.

    Usage::

        with SandboxProcess(20, 0.05, directory) as sandbox:
            before = sandbox.counters()
    """

    def __init__(self, deployments: int, latency: float, directory: Path) -> None:
        self.deployments = deployments
        self.latency = latency
        self.directory = directory
        self.config_file = directory / "config.ini"
        self.ca_bundle = directory / "ca.pem"
        self.expected_graphs: dict[str, list[str]] = {}
        self.start_seconds = 0.0
        self._stderr_file = directory / "sandbox-stderr.txt"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SandboxProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(self._stderr_file, "wb") as stderr:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    str(SANDBOX_SERVER),
                    "--deployments",
                    str(self.deployments),
                    "--latency",
                    str(self.latency),
                    "--directory",
                    str(self.directory),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        try:
            ready = self._read_record("ready", SANDBOX_START_TIMEOUT)
        except BaseException:
            self._stop()
            raise
        self.start_seconds = time.perf_counter() - started
        self.config_file = Path(ready["config_file"])
        self.ca_bundle = Path(ready["ca_bundle"])
        self.expected_graphs = {item["name"]: sorted(item["graph_iris"]) for item in ready["deployments"]}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def counters(self) -> Counters:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(b"counters\n")
        self._process.stdin.flush()
        return Counters.from_record(self._read_record("counters", 30.0))

    def _read_record(self, event: str, timeout: float) -> dict[str, Any]:
        """Read the next JSON line from the server and check that it is ``event``."""
        assert self._process is not None and self._process.stdout is not None
        readable, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if readable else b""
        if not line:
            self._process.poll()
            raise SetupError(
                f"sandbox with {self.deployments} deployments sent no '{event}' line within {timeout:g} s "
                f"(exit status {self._process.returncode}). Its stderr:\n{self._stderr_tail()}"
            )
        record: dict[str, Any] = json.loads(line)
        if record.get("event") != event:
            raise SetupError(f"sandbox sent {record.get('event')!r} where {event!r} was expected: {line!r}")
        return record

    def _stderr_tail(self) -> str:
        try:
            lines = self._stderr_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "(no stderr file)"
        return "\n".join(lines[-15:]) or "(empty)"

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # End of stdin stops the server.
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


# Contenders


@dataclass(frozen=True)
class Tools:
    """Executables the contenders run, and the environment they run in."""

    python: str
    acmemc: str
    cmemc: str | None
    env: Mapping[str, str]


@dataclass(frozen=True)
class Contender:
    """One way to run a task on every connection of a config file.

    ``argv`` builds the command line for a config file. ``probe`` is a command that
    exits with status 0 when the contender is available; a contender whose probe
    fails is skipped.
    """

    name: str
    task: str
    argv: Callable[[Path], list[str]]
    display: str
    probe: list[str]
    uses_cmemc: bool = False


def cmemc_pipeline_argv(cmemc: str, command: str) -> list[str]:
    wrapper = CMEMC_WRAPPER.format(command=command)
    return ["bash", "-c", CMEMC_PIPELINE, "pipeline", cmemc, str(XARGS_PARALLEL), wrapper]


def cmemc_argv_for_config(cmemc: str, command: str, config: Path) -> list[str]:
    return cmemc_pipeline_argv(cmemc, command)


def cmemc_pipeline_display(command: str) -> str:
    wrapper = CMEMC_WRAPPER.format(command=command).replace('"$1"', "cmemc").replace('"$2"', '"$1"')
    return (
        f"set -o pipefail; cmemc config list | xargs -P {XARGS_PARALLEL} -I{{}} "
        f"bash -c {shlex.quote(wrapper)} wrapper {{}}"
    )


def build_contenders(tools: Tools, cmemc_admin_status: bool) -> list[Contender]:
    acmemc = tools.acmemc
    contenders = [
        Contender(
            name="acmemc",
            task=GRAPH_LIST,
            argv=lambda config: [acmemc, "--config-file", str(config), "--all-connections", "graph", "list", "--id-only"],
            display="acmemc --config-file CONFIG --all-connections graph list --id-only",
            probe=[acmemc, "graph", "list", "--help"],
        ),
        Contender(
            name="floor",
            task=GRAPH_LIST,
            argv=lambda config: [tools.python, str(FLOOR_SCRIPT), str(config), str(CONCURRENCY)],
            display=f"python benchmarks/floor.py CONFIG {CONCURRENCY}",
            probe=[tools.python, "-c", "import aiohttp"],
        ),
        Contender(
            name="acmemc",
            task=ADMIN_STATUS,
            argv=lambda config: [acmemc, "--config-file", str(config), "--all-connections", "admin", "status"],
            display="acmemc --config-file CONFIG --all-connections admin status",
            probe=[acmemc, "admin", "status", "--help"],
        ),
    ]
    if tools.cmemc is not None:
        cmemc = tools.cmemc
        cmemc_tasks = [(GRAPH_LIST, "graph list --id-only")]
        if cmemc_admin_status:
            cmemc_tasks.append((ADMIN_STATUS, "admin status"))
        for task, command in cmemc_tasks:
            contenders.append(
                Contender(
                    name=f"cmemc (xargs -P {XARGS_PARALLEL})",
                    task=task,
                    # The pipeline reads the config file from CMEMC_CONFIG_FILE, not from argv.
                    argv=functools.partial(cmemc_argv_for_config, cmemc, command),
                    display=cmemc_pipeline_display(command),
                    probe=[cmemc, *command.split()[:2], "--help"],
                    uses_cmemc=True,
                )
            )
    return contenders


def available_contenders(contenders: list[Contender], env: Mapping[str, str]) -> tuple[list[Contender], list[str]]:
    """Return the contenders whose probe succeeds, and one note per skipped contender.

    A task whose acmemc command is missing is skipped whole, because its other
    contenders would have nothing to be compared with.
    """
    available: list[Contender] = []
    notes: list[str] = []
    for contender in contenders:
        result = measure(contender.probe, env, timeout=60)
        if result.exit_code == 0:
            available.append(contender)
        else:
            first_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
            notes.append(f"{contender.name} {contender.task}: skipped, `{' '.join(contender.probe[1:])}` failed ({first_line})")
    acmemc_tasks = {contender.task for contender in available if contender.name == "acmemc"}
    skipped = [contender for contender in available if contender.task not in acmemc_tasks]
    for contender in skipped:
        notes.append(f"{contender.name} {contender.task}: skipped, because acmemc has no {contender.task} command")
    return [contender for contender in available if contender.task in acmemc_tasks], notes


# Checking the output


def parse_connection_lines(stdout: str) -> tuple[dict[str, list[str]], list[str]]:
    """Group ``CONNECTION<TAB>VALUE`` lines by connection; return them and the lines without a tab."""
    values: dict[str, list[str]] = {}
    invalid: list[str] = []
    for line in stdout.splitlines():
        connection, tab, value = line.partition("\t")
        if not tab:
            invalid.append(line)
            continue
        values.setdefault(connection, []).append(value)
    return values, invalid


def check_graph_list(stdout: str, expected: Mapping[str, list[str]]) -> list[str]:
    """Return the differences between the printed graph IRIs and the sandbox's, or an empty list."""
    printed, invalid = parse_connection_lines(stdout)
    problems = [f"line without a tab: {line!r}" for line in invalid[:3]]
    for name in sorted(set(expected) - set(printed))[:5]:
        problems.append(f"{name}: no graphs printed, expected {len(expected[name])}")
    for name in sorted(set(printed) - set(expected))[:5]:
        problems.append(f"{name}: printed, but the sandbox has no such deployment")
    mismatched = [name for name in sorted(set(expected) & set(printed)) if sorted(printed[name]) != expected[name]]
    for name in mismatched[:5]:
        missing = sorted(set(expected[name]) - set(printed[name]))
        extra = sorted(set(printed[name]) - set(expected[name]))
        problems.append(
            f"{name}: printed {len(printed[name])} IRIs, expected {len(expected[name])}; "
            f"missing {missing[:3]}, unexpected {extra[:3]}"
        )
    if len(mismatched) > 5:
        problems.append(f"... and {len(mismatched) - 5} more connections with other IRIs")
    return problems


def check_admin_status(stdout: str, expected: Mapping[str, list[str]]) -> list[str]:
    """Return the connections whose name does not appear in the output.

    NOTE: this checks only that every connection is reported, not the status values,
    because the default tables of acmemc and cmemc differ and may wrap their cells.
    """
    missing = [name for name in expected if name not in stdout]
    if not missing:
        return []
    return [f"{len(missing)} of {len(expected)} connections missing from the output, e.g. {missing[:5]}"]


CHECKS: dict[str, Callable[[str, Mapping[str, list[str]]], list[str]]] = {
    GRAPH_LIST: check_graph_list,
    ADMIN_STATUS: check_admin_status,
}


# Running the benchmark


@dataclass(frozen=True)
class RunRecord:
    """One measured run of a contender and the requests it sent to the sandbox."""

    measurement: Measurement
    requests: Counters


@dataclass(frozen=True)
class TLSCounts:
    """``ssl.SSLContext`` objects created and TLS connections opened by one in-process run."""

    ssl_contexts: int
    tls_connections: int


@dataclass
class SizeResult:
    """Everything measured at one number of deployments."""

    deployments: int
    expected_names: list[str] = field(default_factory=list)
    sandbox_start_seconds: float = 0.0
    contexts_built: int | None = None
    in_process_token_requests: dict[str, int] = field(default_factory=dict)
    # Per task: the SSLContexts created and TLS connections opened by one in-process run.
    tls_counts: dict[str, TLSCounts] = field(default_factory=dict)
    runs: dict[tuple[str, str], list[RunRecord]] = field(default_factory=dict)


def contender_env(tools: Tools, config_file: Path) -> dict[str, str]:
    env = dict(tools.env)
    env["CMEMC_CONFIG_FILE"] = str(config_file)
    return env


def run_contender(contender: Contender, sandbox: SandboxProcess, tools: Tools) -> RunRecord:
    """Run one contender once and raise BenchmarkFailure unless it printed the expected output."""
    label = f"{contender.name} {contender.task} at N={sandbox.deployments}"
    before = sandbox.counters()
    measurement = measure(contender.argv(sandbox.config_file), contender_env(tools, sandbox.config_file))
    requests = sandbox.counters().since(before)
    if measurement.exit_code != 0:
        raise BenchmarkFailure(describe_failure(label, measurement))
    problems = CHECKS[contender.task](measurement.stdout, sandbox.expected_graphs)
    if problems:
        raise BenchmarkFailure(f"{label} printed output that differs from the sandbox's graphs:\n  " + "\n  ".join(problems))
    # The output is checked, so drop it: the memory of this process would count
    # towards the peak RSS of every later child (see Measurement).
    return RunRecord(dataclasses.replace(measurement, stdout="", stderr=""), requests)


def count_ssl_contexts(sandbox: SandboxProcess, tools: Tools, result: SizeResult) -> None:
    """List the graphs once through acmemc's API and record the SSLContexts, TLS connections and token requests."""
    label = f"in-process acmemc.run_each at N={sandbox.deployments}"
    before = sandbox.counters()
    measurement = measure(
        [tools.python, str(COUNT_TLS_SCRIPT), "api", str(sandbox.config_file), str(CONCURRENCY)],
        contender_env(tools, sandbox.config_file),
    )
    requests = sandbox.counters().since(before)
    if measurement.exit_code != 0:
        raise BenchmarkFailure(describe_failure(label, measurement))
    report = json.loads(measurement.stdout)
    if report["failed"]:
        raise BenchmarkFailure(f"{label}: {report['failed']} connections failed, e.g. {report['errors']}")
    printed = "".join(f"{name}\t{iri}\n" for name, iris in report["graphs"].items() for iri in iris)
    problems = check_graph_list(printed, sandbox.expected_graphs)
    if problems:
        raise BenchmarkFailure(f"{label} returned wrong graphs:\n  " + "\n  ".join(problems))
    result.contexts_built = report["contexts_built"]
    result.in_process_token_requests = requests.token_requests
    result.tls_counts["run_each"] = TLSCounts(report["ssl_contexts_created"], report["tls_connections"])


def count_cli_tls(contender: Contender, sandbox: SandboxProcess, tools: Tools, result: SizeResult) -> None:
    """Run an acmemc command once in-process and record the SSLContexts and TLS connections it created."""
    label = f"in-process acmemc {contender.task} at N={sandbox.deployments}"
    arguments = contender.argv(sandbox.config_file)[1:]
    measurement = measure([tools.python, str(COUNT_TLS_SCRIPT), "cli", *arguments], contender_env(tools, sandbox.config_file))
    if measurement.exit_code != 0:
        raise BenchmarkFailure(describe_failure(label, measurement))
    report = json.loads(measurement.stdout)
    if report["exit_code"] != 0:
        raise BenchmarkFailure(describe_failure(label, dataclasses.replace(measurement, exit_code=report["exit_code"])))
    result.tls_counts[contender.task] = TLSCounts(report["ssl_contexts_created"], report["tls_connections"])


def check_trust(contender: Contender, sandbox: SandboxProcess, tools: Tools, wrong_ca: Path) -> str:
    """Check that ``contender`` rejects the sandbox's certificate when it trusts another CA.

    Runs the contender on a copy of the first section of the config file whose
    REQUESTS_CA_BUNDLE names ``wrong_ca``, and returns the error line it printed.
    """
    name = next(iter(sandbox.expected_graphs))
    lines = sandbox.config_file.read_text(encoding="utf-8").splitlines()
    section: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("["):
            inside = line.strip() == f"[{name}]"
        if inside:
            section.append(f"REQUESTS_CA_BUNDLE = {wrong_ca}" if line.startswith("REQUESTS_CA_BUNDLE") else line)
    config = sandbox.directory / "wrong-ca.ini"
    config.write_text("\n".join(section) + "\n", encoding="utf-8")
    config.chmod(0o600)

    measurement = measure(contender.argv(config), contender_env(tools, config))
    label = f"{contender.name} {contender.task}"
    if measurement.exit_code == 0 or "\t" in measurement.stdout:
        raise BenchmarkFailure(
            f"{label} succeeded while its config trusted only {wrong_ca}, "
            "so it does not verify the sandbox's certificate."
        )
    verify_lines = [line for line in measurement.stderr.splitlines() if "verif" in line.lower()]
    if not verify_lines:
        raise BenchmarkFailure(describe_failure(f"{label} with a CA bundle that does not issue the sandbox's certificate", measurement))
    return verify_lines[-1].strip()


def run_size(
    deployments: int,
    contenders: list[Contender],
    arguments: argparse.Namespace,
    tools: Tools,
    directory: Path,
    trust_notes: dict[str, str],
) -> SizeResult:
    result = SizeResult(deployments)
    active = [c for c in contenders if not c.uses_cmemc or deployments in arguments.cmemc_sizes]
    progress(f"N={deployments}: starting the sandbox (latency {arguments.latency:g} s)")
    with SandboxProcess(deployments, arguments.latency, directory) as sandbox:
        result.sandbox_start_seconds = sandbox.start_seconds
        result.expected_names = list(sandbox.expected_graphs)
        for contender in active:
            key = f"{contender.name} {contender.task}"
            if contender.task == GRAPH_LIST and key not in trust_notes:
                progress(f"N={deployments}: checking that {key} verifies certificates")
                trust_notes[key] = check_trust(contender, sandbox, tools, arguments.wrong_ca)

        progress(f"N={deployments}: in-process runs to count SSLContexts and TLS connections")
        count_ssl_contexts(sandbox, tools, result)
        # The command line counts grow linearly with N, so the smallest N shows them
        # at the lowest cost: admin status alone took 25 s at N=1000 in RESULTS.md.
        if deployments == min(arguments.sizes):
            for contender in active:
                if contender.name == "acmemc":
                    count_cli_tls(contender, sandbox, tools, result)

        for repetition in range(1, arguments.repetitions + 1):
            for contender in active:
                record = run_contender(contender, sandbox, tools)
                result.runs.setdefault((contender.name, contender.task), []).append(record)
                progress(
                    f"N={deployments}: {contender.name} {contender.task} run {repetition}/{arguments.repetitions}: "
                    f"{record.measurement.wall:.2f} s wall, {record.measurement.cpu:.2f} s CPU"
                )
    return result


@dataclass(frozen=True)
class StartupResult:
    command: str
    measurements: list[Measurement]


def measure_startup(tools: Tools, config_file: Path, expected_names: list[str], runs: int) -> list[StartupResult]:
    """Measure ``--help`` and ``config list`` of both command lines, interleaved, ``runs`` times each."""
    commands: list[tuple[str, list[str]]] = [
        ("acmemc --help", [tools.acmemc, "--help"]),
        ("acmemc config list", [tools.acmemc, "--config-file", str(config_file), "config", "list"]),
    ]
    if tools.cmemc is not None:
        commands += [
            ("cmemc --help", [tools.cmemc, "--help"]),
            ("cmemc config list", [tools.cmemc, "config", "list"]),
        ]
    env = contender_env(tools, config_file)
    results = {command: StartupResult(command, []) for command, _ in commands}
    for _ in range(runs):
        for command, argv in commands:
            measurement = measure(argv, env, timeout=120)
            if measurement.exit_code != 0:
                raise BenchmarkFailure(describe_failure(command, measurement))
            if command.endswith("config list") and measurement.stdout.split() != expected_names:
                raise BenchmarkFailure(f"{command} printed {measurement.stdout.split()[:5]}..., expected {expected_names[:5]}...")
            results[command].measurements.append(measurement)
    return list(results.values())


@dataclass(frozen=True)
class WrapperOverhead:
    deployments: int
    measurement: Measurement


def measure_wrapper_overhead(tools: Tools, names: list[str], directory: Path) -> WrapperOverhead:
    """Run the cmemc pipeline with a shell stub in place of cmemc.

    The result bounds what xargs, bash and the wrapper add to the cmemc runs: the stub
    prints the connection names for ``config list`` and six fixed lines otherwise.
    """
    names_file = directory / "stub-names.txt"
    names_file.write_text("".join(name + "\n" for name in names), encoding="utf-8")
    stub = directory / "stub-cmemc"
    stub.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = config ]; then cat {shlex.quote(str(names_file))}; '
        "else printf 'a\\nb\\nc\\nd\\ne\\nf\\n'; fi\n",
        encoding="utf-8",
    )
    stub.chmod(0o755)
    measurement = measure(cmemc_pipeline_argv(str(stub), "graph list --id-only"), tools.env)
    if measurement.exit_code != 0:
        raise BenchmarkFailure(describe_failure("the cmemc pipeline with a stub", measurement))
    return WrapperOverhead(len(names), measurement)


# Setup


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_open_file_limit(needed: int) -> str:
    """Raise the soft RLIMIT_NOFILE to ``needed`` (children inherit it) and describe the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return f"open file limit {soft} (at least the {needed} needed)"
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        message = f"open file limit raised from {soft} to {target}, the hard limit, but {needed} are needed"
        progress(f"warning: {message}; the largest sandbox may fail with 'Too many open files'")
        return message
    return f"open file limit raised from {soft} to {target}"


def find_acmemc() -> str:
    if importlib.util.find_spec("acmemc") is None or importlib.util.find_spec("aiohttp") is None:
        raise SetupError(
            f"acmemc or aiohttp is not installed for {sys.executable}. "
            "Run the benchmark with the Python of acmemc's environment, e.g. .venv/bin/python benchmarks/run.py."
        )
    script = Path(sys.executable).parent / "acmemc"
    if not script.exists():
        raise SetupError(f"the acmemc command is missing next to {sys.executable}. Fix: pip install -e . in that environment.")
    return str(script)


def describe_bytecode() -> str | None:
    """Return a note when acmemc's modules have no cached bytecode, so that every start compiles them."""
    spec = importlib.util.find_spec("acmemc")
    if spec is None or spec.origin is None:
        return None
    cache = Path(spec.origin).parent / "__pycache__"
    if cache.is_dir() and any(cache.glob("*.pyc")):
        return None
    reason = " (PYTHONDONTWRITEBYTECODE is set)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return (
        f"acmemc's modules in {cache.parent} have no cached bytecode{reason}, so every acmemc start "
        "compiles them, unlike cmemc's installed modules. --revision benchmarks an installed copy with bytecode."
    )


def find_certifi_bundle() -> Path:
    """Return certifi's CA bundle, which does not issue the sandbox's certificate.

    It is located without importing certifi, to keep the benchmark process small.
    """
    spec = importlib.util.find_spec("certifi")
    if spec is None or spec.origin is None:
        raise SetupError(f"certifi is not installed for {sys.executable}; acmemc depends on it. Fix: pip install -e .")
    return Path(spec.origin).with_name("cacert.pem")


def ensure_cmemc(version: str) -> tuple[str, str]:
    """Install cmem-cmemc ``version`` into its own virtual environment under benchmarks/work on first use.

    Returns the cmemc executable and its ``--version`` line.
    """
    environment = WORK_DIR / f"cmemc-{version}"
    executable = environment / "bin" / "cmemc"
    python = environment / "bin" / "python"
    check = [str(python), "-c", f"import importlib.metadata as m; assert m.version({CMEMC_PACKAGE!r}) == {version!r}"]
    if not executable.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        progress(f"installing {CMEMC_PACKAGE}=={version} into {environment} (first use only)")
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(environment)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{CMEMC_PACKAGE}=={version}"],
        ]
        for step in steps:
            completed = subprocess.run(step, capture_output=True, text=True)
            if completed.returncode != 0:
                output = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-20:])
                raise SetupError(f"installing cmemc failed: {' '.join(step)} exited with status {completed.returncode}:\n{output}")
    completed = subprocess.run([str(executable), "--version"], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SetupError(f"{executable} --version exited with status {completed.returncode}: {completed.stderr.strip()}")
    return str(executable), completed.stdout.strip()


def clean_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CMEMC_") and key not in REMOVED_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def install_revision(revision: str) -> tuple[str, Path]:
    """Install acmemc at git ``revision`` into benchmarks/work on first use; return the commit and its Python.

    The commit's files come from ``git archive``, so uncommitted changes in the working
    tree never reach the benchmark.
    """
    completed = subprocess.run(
        ["git", "-C", str(REPOSITORY_DIR), "rev-parse", "--verify", f"{revision}^{{commit}}"], capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise SetupError(f"--revision {revision!r} is not a commit of {REPOSITORY_DIR}: {completed.stderr.strip()}")
    commit = completed.stdout.strip()
    directory = WORK_DIR / f"acmemc-{commit[:12]}"
    source, environment = directory / "source", directory / "venv"
    python = environment / "bin" / "python"
    if (environment / "bin" / "acmemc").exists():
        return commit, python

    progress(f"installing acmemc {commit[:12]} into {environment} (first use only)")
    if directory.exists():
        subprocess.run(["rm", "-rf", str(directory)], check=True)
    source.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(REPOSITORY_DIR), "archive", commit], stdout=subprocess.PIPE)
    extract = subprocess.run(["tar", "-x", "-C", str(source)], stdin=archive.stdout, capture_output=True, text=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0 or extract.returncode != 0:
        raise SetupError(f"exporting commit {commit} with git archive failed: {extract.stderr.strip()}")
    for step in (
        [sys.executable, "-m", "venv", str(environment)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
    ):
        completed = subprocess.run(step, capture_output=True, text=True)
        if completed.returncode != 0:
            output = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-20:])
            raise SetupError(f"installing acmemc {commit[:12]} failed: {' '.join(step)} exited with status {completed.returncode}:\n{output}")
    return commit, python


def run_in_revision(arguments: argparse.Namespace) -> int:
    """Run this script again with the Python of the environment of ``--revision``; return its exit status."""
    commit, python = install_revision(arguments.revision)
    argv = list(sys.argv[1:])
    index = argv.index("--revision") if "--revision" in argv else None
    if index is not None:
        del argv[index : index + 2]
    else:
        argv = [item for item in argv if not item.startswith("--revision=")]
    return subprocess.run([str(python), str(Path(__file__).resolve()), *argv, "--installed-revision", commit]).returncode


# Statistics and the report


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """Format the median with the min–max range, e.g. ``1.23 (1.20–1.31)``."""
    median = statistics.median(values) * scale
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values) * scale:.{digits}f}–{max(values) * scale:.{digits}f})"


def median_wall(records: Sequence[RunRecord]) -> float:
    return statistics.median(record.measurement.wall for record in records)


def median_cpu(records: Sequence[RunRecord]) -> float:
    return statistics.median(record.measurement.cpu for record in records)


def per_connection_counts(records: Sequence[RunRecord], kind: str) -> str:
    """Describe the requests per connection and run, e.g. ``1 (each)`` or ``1.50 (1–2)``."""
    counts = [count for record in records for count in getattr(record.requests, kind).values()]
    if not counts:
        return "–"
    low, high = min(counts), max(counts)
    if low == high:
        return f"{low} (each)"
    return f"{statistics.mean(counts):.2f} ({low}–{high})"


def machine_lines(cmemc_version: str | None, installed_revision: str | None) -> list[str]:
    # Imported here, after the last measured run, because it adds about 7 MB to this
    # process (CPython 3.11.7), and every child starts with this process's peak RSS as its own.
    import importlib.metadata

    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu_model = line.partition(":")[2].strip()
                break
        memory_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{memory_kib / 1024**2:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    if installed_revision is not None:
        commit = f"{installed_revision[:12]}, installed from git archive"
    else:
        try:
            described = subprocess.run(
                ["git", "-C", str(REPOSITORY_DIR), "describe", "--always", "--dirty"], capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            described = ""
        commit = f"working tree {described or 'unknown'}"
    return [
        f"- CPU: {cpu_model}, {os.cpu_count()} cores; memory {memory}; {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- aiohttp {importlib.metadata.version('aiohttp')}, acmemc {importlib.metadata.version('acmemc')} "
        f"({commit}), cmemc: {cmemc_version or 'not run'}",
    ]


def render_size_table(result: SizeResult, task: str) -> list[str]:
    rows = {name: records for (name, row_task), records in result.runs.items() if row_task == task}
    if not rows:
        return []
    floor = rows.get("floor")
    cmemc = next((records for name, records in rows.items() if name.startswith("cmemc")), None)
    acmemc = rows.get("acmemc")
    n = result.deployments
    lines = [
        "| contender | wall s | s/connection | CPU s | CPU ms/connection | sandbox CPU s | peak RSS MB | "
        "token requests/connection | graph lists/connection | wall ×floor | wall ×cmemc |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, records in rows.items():
        walls = [record.measurement.wall for record in records]
        cpus = [record.measurement.cpu for record in records]
        rss = [record.measurement.max_rss_kib / 1024 for record in records]
        sandbox_cpus = [record.requests.cpu_seconds for record in records]
        versus_floor = f"{median_wall(records) / median_wall(floor):.2f}" if floor else "–"
        versus_cmemc = f"{median_wall(records) / median_wall(cmemc):.3f}" if cmemc else "–"
        lines.append(
            f"| {name} | {spread(walls)} | {statistics.median(walls) / n:.4f} | {spread(cpus)} | "
            f"{statistics.median(cpus) / n * 1000:.1f} | {spread(sandbox_cpus)} | {spread(rss, digits=0)} | "
            f"{per_connection_counts(records, 'token_requests')} | "
            f"{per_connection_counts(records, 'graph_list_requests') if task == GRAPH_LIST else '–'} | "
            f"{versus_floor} | {versus_cmemc} |"
        )
    if acmemc and cmemc:
        lines.append("")
        lines.append(
            f"cmemc takes {median_wall(cmemc) / median_wall(acmemc):.1f}× the wall time and "
            f"{median_cpu(cmemc) / median_cpu(acmemc):.1f}× the CPU time of acmemc."
        )
    return lines


@dataclass
class Report:
    arguments: argparse.Namespace
    tools: Tools
    cmemc_version: str | None
    started: datetime
    sizes: list[SizeResult] = field(default_factory=list)
    startup: list[StartupResult] = field(default_factory=list)
    trust_notes: dict[str, str] = field(default_factory=dict)
    skipped_notes: list[str] = field(default_factory=list)
    wrapper: WrapperOverhead | None = None
    contenders: list[Contender] = field(default_factory=list)
    file_limit: str = ""
    benchmark_rss_mb: float = 0.0
    benchmark_rss_mb_at_startup: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def render(self) -> str:
        arguments = self.arguments
        lines = [
            "# acmemc benchmark",
            "",
            f"Measured on {self.started:%Y-%m-%d %H:%M} UTC with `{arguments.command_line}`.",
            "",
            *machine_lines(self.cmemc_version, arguments.installed_revision),
            f"- Sandbox: one process (benchmarks/sandbox_server.py) serving N HTTPS deployments on 127.0.0.1, "
            f"{arguments.latency:g} s latency per response; {self.file_limit}",
            f"- {arguments.repetitions} run{'s' if arguments.repetitions != 1 else ''} per contender and N, "
            "interleaved; values are median (min–max).",
            f"- Load average (1 min) {self.load_before[0]:.2f} before and {self.load_after[0]:.2f} after the run: "
            "other processes on the machine share its cores.",
            "",
            "## List graphs of N deployments",
            "",
        ]
        for result in self.sizes:
            lines += [
                f"### N = {result.deployments}",
                "",
                *render_size_table(result, GRAPH_LIST),
                "",
                f"SSLContexts built by acmemc (in-process `run_each` with a shared `SSLContextCache`): "
                f"{result.contexts_built}; token requests per connection in that run: "
                f"{count_range(result.in_process_token_requests)}. "
                f"The sandbox took {result.sandbox_start_seconds:.1f} s to start.",
                "",
                *render_tls_counts(result),
            ]
            status = render_size_table(result, ADMIN_STATUS)
            if status:
                lines += [f"Admin status at N = {result.deployments}:", "", *status, ""]
        lines += self.render_startup()
        lines += self.render_targets()
        lines += self.render_method()
        return "\n".join(lines).rstrip() + "\n"

    def render_startup(self) -> list[str]:
        if not self.startup:
            return []
        lines = [
            "## Start-up",
            "",
            "| command | runs | wall s | CPU s | peak RSS MB |",
            "| --- | --- | --- | --- | --- |",
        ]
        for result in self.startup:
            measurements = result.measurements
            lines.append(
                f"| `{result.command}` | {len(measurements)} | {spread([m.wall for m in measurements], digits=3)} | "
                f"{spread([m.cpu for m in measurements], digits=3)} | "
                f"{spread([m.max_rss_kib / 1024 for m in measurements], digits=0)} |"
            )
        return lines + [""]

    def render_targets(self) -> list[str]:
        lines = ["## Targets", "", "| target | measured | result |", "| --- | --- | --- |"]
        for target, measured, verdict in evaluate_targets(self):
            lines.append(f"| {target} | {measured} | {verdict} |")
        return lines + [""]

    def render_method(self) -> list[str]:
        lines = [
            "## Method",
            "",
            "Commands (CONFIG is the sandbox's config.ini, also in CMEMC_CONFIG_FILE):",
            "",
        ]
        for contender in self.contenders:
            lines.append(f"- {contender.name}, {contender.task}: `{contender.display}`")
        lines += [
            "",
            "- Wall time: from starting the process to reaping it. CPU time: user + system time "
            "of the process and every descendant it waited for (os.wait4).",
            "- Peak RSS: ru_maxrss from os.wait4, which is the peak of the largest single process in "
            "the tree, not the sum. For the cmemc pipeline that is the largest cmemc process; "
            f"up to {XARGS_PARALLEL} of them run at once. Linux carries the parent's peak RSS into a "
            f"child at exec, so no value is below the benchmark's own peak RSS: {self.benchmark_rss_mb_at_startup:.0f} MB "
            f"until the start-up runs, {self.benchmark_rss_mb:.0f} MB at the end.",
            "- Token and graph list requests are counted by the sandbox per deployment and run. "
            "Sandbox CPU is the CPU time of the sandbox process during the run; it shares the cores "
            "with the contender.",
            "- Every run's output is compared with the graph IRIs that the sandbox serves, per "
            "connection; a difference stops the benchmark with exit status 1.",
        ]
        if self.wrapper is not None:
            measurement = self.wrapper.measurement
            lines.append(
                f"- Overhead of xargs and the wrapper that prefixes cmemc's lines with the connection name: "
                f"the same pipeline with a shell stub in place of cmemc takes {measurement.wall:.3f} s wall and "
                f"{measurement.cpu:.3f} s CPU for {self.wrapper.deployments} connections, stub included."
            )
        for key, note in self.trust_notes.items():
            lines.append(f"- {key} with a config that trusts only certifi's bundle fails: `{note[:220]}`")
        lines += [f"- {note}" for note in self.skipped_notes]
        return lines


def render_tls_counts(result: SizeResult) -> list[str]:
    if not result.tls_counts:
        return []
    lines = [
        "| in-process run | ssl.SSLContext objects created | TLS connections | TLS connections/deployment |",
        "| --- | --- | --- | --- |",
    ]
    for run, counts in result.tls_counts.items():
        name = "`acmemc.run_each`, graph list" if run == "run_each" else f"acmemc {run} (command line)"
        lines.append(
            f"| {name} | {counts.ssl_contexts} | {counts.tls_connections} | "
            f"{counts.tls_connections / result.deployments:.1f} |"
        )
    return lines + [""]


def count_range(counts: Mapping[str, int]) -> str:
    if not counts:
        return "–"
    low, high = min(counts.values()), max(counts.values())
    return f"{low} (each)" if low == high else f"{low}–{high}"


def own_max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evaluate_targets(report: Report) -> list[tuple[str, str, str]]:
    """Compare the results with the project's targets; return (target, measured, met or missed) rows."""
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    by_size = {result.deployments: result for result in report.sizes}
    for result in report.sizes:
        runs = {name: records for (name, task), records in result.runs.items() if task == GRAPH_LIST}
        acmemc, floor = runs.get("acmemc"), runs.get("floor")
        cmemc = next((records for name, records in runs.items() if name.startswith("cmemc")), None)
        n = result.deployments
        if acmemc and cmemc and n == 20:
            ratio = median_wall(cmemc) / median_wall(acmemc)
            rows.append((f"N={n}: acmemc ≥ 10× faster than cmemc (wall)", f"{ratio:.1f}×", verdict(ratio >= 10)))
        if acmemc and floor and n in FLOOR_TARGET_SIZES:
            ratio = median_wall(acmemc) / median_wall(floor)
            rows.append((f"N={n}: acmemc ≤ 1.3× the floor (wall)", f"{ratio:.2f}×", verdict(ratio <= 1.3)))
        if acmemc:
            tokens = [count for record in acmemc for count in record.requests.token_requests.values()]
            ok = bool(tokens) and all(count == 1 for count in tokens)
            rows.append((f"N={n}: 1 token request per connection and run", per_connection_counts(acmemc, "token_requests"), verdict(ok)))
        if result.contexts_built is not None:
            rows.append((f"N={n}: SSLContexts = 1 (one trust configuration)", str(result.contexts_built), verdict(result.contexts_built == 1)))
        for task, counts in result.tls_counts.items():
            if task != "run_each":
                rows.append(
                    (f"N={n}: acmemc {task} creates 1 ssl.SSLContext", str(counts.ssl_contexts), verdict(counts.ssl_contexts == 1))
                )

    if 200 in by_size and 1000 in by_size:
        small = by_size[200].runs.get(("acmemc", GRAPH_LIST))
        large = by_size[1000].runs.get(("acmemc", GRAPH_LIST))
        if small and large:
            wall_small, wall_large = median_wall(small) / 200, median_wall(large) / 1000
            cpu_small, cpu_large = median_cpu(small) / 200, median_cpu(large) / 1000
            # Allow 10 % for noise between runs.
            ok = wall_large <= 1.1 * wall_small and cpu_large <= 1.1 * cpu_small
            rows.append(
                (
                    "cost per connection does not grow from N=200 to N=1000 (±10 %)",
                    f"wall {wall_small * 1000:.2f} → {wall_large * 1000:.2f} ms, CPU {cpu_small * 1000:.2f} → {cpu_large * 1000:.2f} ms",
                    verdict(ok),
                )
            )
    if 1000 in by_size and ("acmemc", GRAPH_LIST) in by_size[1000].runs:
        peak = max(record.measurement.max_rss_kib for record in by_size[1000].runs[("acmemc", GRAPH_LIST)]) / 1024
        rows.append(("N=1000: acmemc peak RSS ≤ 150 MB", f"{peak:.0f} MB (max of runs)", verdict(peak <= 150)))

    startup = {result.command: statistics.median(m.wall for m in result.measurements) for result in report.startup}
    for command in ("--help", "config list"):
        ours, theirs = startup.get(f"acmemc {command}"), startup.get(f"cmemc {command}")
        if ours is not None and theirs is not None:
            rows.append(
                (f"start-up `{command}` ≤ ⅓ of cmemc's", f"{ours:.3f} s vs {theirs:.3f} s ({ours / theirs:.2f}×)", verdict(ours <= theirs / 3))
            )
    return rows


# Command line


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark acmemc against cmemc and a minimal aiohttp client on local sandbox deployments.",
    )
    parser.add_argument("--quick", action="store_true", help="N=5, 1 repetition, no cmemc, no report file: for CI")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N", help=f"numbers of deployments (default {' '.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--repetitions", type=int, metavar="R", help=f"runs per contender and N (default {DEFAULT_REPETITIONS})")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY, help=f"seconds each sandbox response is delayed (default {DEFAULT_LATENCY})")
    parser.add_argument(
        "--cmemc-sizes",
        type=int,
        nargs="*",
        metavar="N",
        help="run cmemc at these N only (default 20). One cmemc process needs about 1.3 s of CPU, "
        "so N=1000 takes over 10 minutes on 2 cores",
    )
    parser.add_argument("--no-cmemc", action="store_true", help="do not install or run cmemc")
    parser.add_argument(
        "--cmemc-admin-status",
        action="store_true",
        help="also run `cmemc admin status` through xargs (about 20 s per run at N=20 on a 2-core machine)",
    )
    parser.add_argument("--cmemc-version", default=CMEMC_VERSION, help=f"cmem-cmemc version to install (default {CMEMC_VERSION})")
    parser.add_argument("--startup-runs", type=int, metavar="K", help=f"runs of each start-up command (default {DEFAULT_STARTUP_RUNS})")
    parser.add_argument("--output", type=Path, help="write the Markdown report here (default benchmarks/RESULTS.md, none with --quick)")
    parser.add_argument(
        "--revision",
        metavar="REV",
        help="benchmark this git commit of acmemc: install it into its own environment under "
        "benchmarks/work and run everything with that Python (default: the acmemc of this Python)",
    )
    # Set by --revision when the script runs itself again in the environment of that commit.
    parser.add_argument("--installed-revision", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.quick:
        arguments.sizes = arguments.sizes or list(QUICK_SIZES)
        arguments.repetitions = arguments.repetitions or 1
        arguments.no_cmemc = True
        arguments.startup_runs = arguments.startup_runs or QUICK_STARTUP_RUNS
    else:
        arguments.sizes = arguments.sizes or list(DEFAULT_SIZES)
        arguments.repetitions = arguments.repetitions or DEFAULT_REPETITIONS
        arguments.startup_runs = arguments.startup_runs or DEFAULT_STARTUP_RUNS
        arguments.output = arguments.output or DEFAULT_OUTPUT
    arguments.cmemc_sizes = [] if arguments.no_cmemc else (
        arguments.cmemc_sizes if arguments.cmemc_sizes is not None else list(DEFAULT_CMEMC_SIZES)
    )
    if any(size < 1 for size in arguments.sizes) or arguments.repetitions < 1 or arguments.startup_runs < 1:
        parser.error("--sizes, --repetitions and --startup-runs must be at least 1")
    if not arguments.latency >= 0:
        parser.error(f"--latency must be at least 0 seconds, got {arguments.latency}")
    displayed_argv = list(argv if argv is not None else sys.argv[1:])
    if arguments.installed_revision is not None:
        index = displayed_argv.index("--installed-revision")
        displayed_argv[index : index + 2] = ["--revision", arguments.installed_revision[:12]]
    arguments.command_line = shlex.join(["python", "benchmarks/run.py", *displayed_argv])
    return arguments


def run_benchmark(arguments: argparse.Namespace) -> Report:
    file_limit = raise_open_file_limit(4 * max(arguments.sizes) + 1024)
    acmemc = find_acmemc()
    cmemc: str | None = None
    cmemc_version: str | None = None
    if arguments.cmemc_sizes:
        cmemc, cmemc_version = ensure_cmemc(arguments.cmemc_version)
    arguments.wrong_ca = find_certifi_bundle()
    tools = Tools(python=sys.executable, acmemc=acmemc, cmemc=cmemc, env=clean_environment())
    report = Report(arguments, tools, cmemc_version, datetime.now(timezone.utc), file_limit=file_limit)
    report.load_before = os.getloadavg()
    contenders, report.skipped_notes = available_contenders(build_contenders(tools, arguments.cmemc_admin_status), tools.env)
    bytecode_note = describe_bytecode()
    if bytecode_note is not None:
        progress(f"note: {bytecode_note}")
        report.skipped_notes.append(bytecode_note)
    report.contenders = contenders

    with tempfile.TemporaryDirectory(prefix="acmemc-benchmark-") as temporary:
        root = Path(temporary)
        for index, size in enumerate(arguments.sizes):
            directory = root / f"n{size}"
            report.sizes.append(run_size(size, contenders, arguments, tools, directory, report.trust_notes))
            if index > 0:
                continue
            # Start-up runs right after the first N, before the larger ones make
            # this process bigger (see Measurement).
            names = sorted(report.sizes[0].expected_names, key=str.casefold)
            progress(f"start-up: {arguments.startup_runs} runs of each command")
            report.startup = measure_startup(tools, directory / "config.ini", names, arguments.startup_runs)
            report.benchmark_rss_mb_at_startup = own_max_rss_mb()
            if cmemc is not None:
                report.wrapper = measure_wrapper_overhead(tools, names, root)
    report.benchmark_rss_mb = own_max_rss_mb()
    report.load_after = os.getloadavg()
    return report


def main() -> int:
    arguments = parse_arguments()
    try:
        if arguments.revision is not None:
            return run_in_revision(arguments)
        report = run_benchmark(arguments)
    except SetupError as error:
        print(f"benchmark setup failed: {error}", file=sys.stderr)
        return 2
    except BenchmarkFailure as error:
        print(f"\nBENCHMARK FAILED: {error}\n", file=sys.stderr)
        return 1
    text = report.render()
    print(text)
    if arguments.output is not None:
        arguments.output.write_text(text, encoding="utf-8")
        progress(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
