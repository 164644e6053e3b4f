"""Child processes that never outlive their caller: MPI launchers (mpirun, srun), CP2K, LAMMPS, workers.

``subprocess.run`` leaves children behind when its Python process is stopped with SIGTERM (what SLURM and
Snakemake send on timeout or cancel): Python dies at once, mpirun and every MPI rank keep running under
PID 1 and keep writing into the run directory. Here the child is started as the leader of a new session,
SIGTERM in the caller is turned into an exception (:class:`Terminated`), and on any way out (normal end,
error, timeout, SIGTERM, SIGINT) every process still in that session is terminated, then killed.

Processes are found by session id, not by process group: OpenMPI's mpirun puts each rank into its own
process group (measured: ranks have pgid = own pid, sid = mpirun's), so ``killpg`` of the launcher would
miss the ranks. The session is found by reading ``/proc`` (Linux); a descendant that calls ``setsid``
itself escapes this sweep (neither mpirun nor CP2K nor LAMMPS does).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["Terminated", "run_process_group", "session_members", "terminate_as_exception"]


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM inside :func:`terminate_as_exception`.

    A ``SystemExit`` (not an ``Exception``): ``except Exception`` does not swallow it, ``finally`` blocks and
    context managers run (temporary files are removed, child processes stopped), and an uncaught one ends
    the interpreter quietly with exit status 128 + signal number (143), as the default action would.
    """

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


@contextlib.contextmanager
def terminate_as_exception(signals: Sequence[int] = (signal.SIGTERM,)) -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of killing the process outright.

    Only installs the handler where the signal still has its default action and only in the main thread
    (Python delivers signals there); a handler set by the application is left alone. The previous handler
    is restored on exit. Nested use is fine. A second signal while the first is being handled is ignored,
    so that cleanup is not interrupted halfway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}
    fired = []  # per-block state: has a signal arrived already?

    def handler(signum, frame):
        if fired:
            return
        fired.append(signum)
        raise Terminated(signum)

    for sig in signals:
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of ``pid`` from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces and parentheses
    return fields[0], int(fields[1]), int(fields[3])


def session_members(sid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in session ``sid`` (Linux ``/proc``)."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _proc_stat(int(entry.name))
        if st is not None and st[2] == sid and st[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _stop_session(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM every process of the child's session, wait up to ``grace_s``, then SIGKILL what is left."""
    sid = proc.pid  # start_new_session: the child is the session leader
    members = session_members(sid)
    if proc.poll() is None and proc.pid not in members:
        members.append(proc.pid)
    if members:
        _signal_all(members, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader so that it does not count as alive
            if not session_members(sid):
                break
            time.sleep(0.05)
        left = session_members(sid)
        if left:
            _signal_all(left, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(grace_s, 1.0))


def run_process_group(
    cmd: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    stdout: IO | int | None = None,
    stderr: IO | int | None = None,
    timeout_s: float | None = None,
    grace_s: float = 10.0,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion in its own session; no process of it survives this call.

    ``stdout``/``stderr`` are passed to :class:`subprocess.Popen` (e.g. an open log file; ``None`` inherits).
    Returns a ``CompletedProcess`` with the exit status. On ``timeout_s`` the session is stopped and
    ``subprocess.TimeoutExpired`` raised. On SIGTERM (:class:`Terminated`), SIGINT (``KeyboardInterrupt``)
    or any other exception the session is stopped and the exception propagates. Stopping sends SIGTERM to
    every process of the session (mpirun forwards it to its ranks), waits up to ``grace_s`` seconds and then
    sends SIGKILL to whatever is left. Raises ``FileNotFoundError`` when the program does not exist.
    """
    with terminate_as_exception():
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop_session(proc, grace_s)
            raise
        except BaseException:
            _stop_session(proc, grace_s)
            raise
        # the leader ended by itself; ranks it left behind (a crashed launcher) must not keep running
        if session_members(proc.pid):
            _stop_session(proc, grace_s)
    return subprocess.CompletedProcess(list(cmd), returncode)
