"""Runs an ASGI app under uvicorn in its own process group, and always stops it again."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import LOOPBACK

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_BYTES = 4000


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the uvicorn process and its workers (Linux), else None."""
        return _process_group_cpu_seconds(self.process.pid)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(
    name: str,
    factory: str,
    *,
    database_url: str,
    workers: int,
    log_dir: Path,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """Serves `factory` ("module:function") on a free loopback port until the block ends;
    `settings` are further environment variables (KOKYAKU_...)."""
    port = free_port()
    env = {
        **os.environ,
        **(settings or {}),
        "KOKYAKU_DATABASE_URL": database_url,
        # The benchmark sends one key's requests far past any sensible production limit.
        "KOKYAKU_RATE_LIMIT": "100000000",
        "KOKYAKU_ACCESS_LOG": "false",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        # The load generator keeps its connections open across a window's quiet moments.
        "--timeout-keep-alive",
        "300",
        "--log-level",
        "warning",
    ]
    log_path = log_dir / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        # A session of its own, so stopping it reaches every worker and nothing else.
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, port, log_path)
        yield Server(name=name, port=port, process=process)
    finally:
        stop_process_group(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"the server exited with {process.returncode} on start:\n{_tail(log_path)}"
            )
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass  # not listening yet
        finally:
            connection.close()
        time.sleep(0.1)
    raise ServerError(
        f"no healthy answer within {STARTUP_TIMEOUT_SECONDS:.0f} s:\n{_tail(log_path)}"
    )


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group; SIGKILL to whatever is left after the grace time."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT_SECONDS)
    # A stuck master, or workers it left behind: the group id still reaches them.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(log_path: Path) -> str:
    data = log_path.read_bytes()[-LOG_TAIL_BYTES:]
    return data.decode(errors="replace")


def group_processes(group_id: int) -> list[tuple[Path, list[str]]]:
    """The processes of a process group (uvicorn and its workers): each one's /proc folder and
    the fields of its stat after the command name, which may contain spaces; [2] is the process
    group, [11] and [12] user and system time in clock ticks."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group_id:
            found.append((entry, fields))
    return found


def _process_group_cpu_seconds(group_id: int) -> float | None:
    if not Path("/proc").is_dir():
        return None
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in group_processes(group_id))
    return ticks / os.sysconf("SC_CLK_TCK")
