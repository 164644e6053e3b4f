"""SIGTERM to the process that runs CP2K/LAMMPS leaves none of their processes alive (checked by PID).

SLURM and Snakemake stop a job with SIGTERM to its process. The tests start a Python process that runs the
library call, wait until the launcher and its children exist, record their PIDs from /proc (never by name),
send SIGTERM to the Python process and check that every recorded PID is gone (zombies count as gone: this
container's PID 1 does not reap orphans).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hamforge._process import run_process_group, session_members


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except FileNotFoundError:
                continue
            if int(raw.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _wait_for(cond, what: str, limit_s: float = 120.0):
    """Poll ``cond`` (a wait for a real program to get going, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


@contextlib.contextmanager
def _started(args, **kw):
    """Popen that never outlives the test: on the way out, its process and its children's sessions are killed."""
    proc = subprocess.Popen(args, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    try:
        yield proc
    finally:
        stray = [m for c in _children(proc.pid) for m in session_members(c)] + [proc.pid]
        for pid in stray:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def _terminate_and_check(proc: subprocess.Popen, members: list[int]):
    assert all(_alive(p) for p in members)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out
    left = [p for p in members if _alive(p)]
    assert left == [], f"still running after SIGTERM: {left}"
    return out


# A launcher that behaves like OpenMPI's mpirun: its "ranks" move into their own process groups.
# argv: [pid file, exit status]; with an exit status the launcher "crashes" at once, leaving its ranks behind.
_FAKE_MPIRUN = """
import os, sys, time
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        time.sleep(300)
        os._exit(0)
    pids.append(pid)
with open(sys.argv[1], "w") as fh:
    fh.write(" ".join(map(str, pids)))
if len(sys.argv) > 2:
    os._exit(int(sys.argv[2]))
time.sleep(300)
"""

_RUN_GROUP = """
import sys
from hamforge._process import run_process_group
run_process_group([sys.executable, "-c", sys.argv[1], sys.argv[2]])
"""


def test_sigterm_stops_launcher_and_ranks_in_other_process_groups(tmp_path):
    with _started([sys.executable, "-c", _RUN_GROUP, _FAKE_MPIRUN, str(tmp_path / "pids")]) as proc:
        _check_group_stopped(proc)


def _check_group_stopped(proc):
    launcher = _wait_for(lambda: _children(proc.pid), "the launcher")[0]
    members = _wait_for(lambda: m if len(m := session_members(launcher)) == 3 else None, "two ranks")
    assert len({os.getpgid(p) for p in members}) == 3  # three process groups: killpg alone would miss the ranks
    _terminate_and_check(proc, members)


def test_ranks_left_by_a_crashed_launcher_are_stopped(tmp_path):
    pid_file = tmp_path / "pids"
    res = run_process_group([sys.executable, "-c", _FAKE_MPIRUN, str(pid_file), "3"], grace_s=2.0)
    assert res.returncode == 3
    ranks = [int(x) for x in pid_file.read_text().split()]
    assert len(ranks) == 2 and not any(_alive(p) for p in ranks)


def test_timeout_stops_the_session(tmp_path):
    pid_file = tmp_path / "pids"
    with pytest.raises(subprocess.TimeoutExpired):
        run_process_group([sys.executable, "-c", _FAKE_MPIRUN, str(pid_file)], timeout_s=3.0, grace_s=2.0)
    ranks = [int(x) for x in pid_file.read_text().split()]
    assert len(ranks) == 2 and not any(_alive(p) for p in ranks)


def test_missing_program_is_file_not_found():
    with pytest.raises(FileNotFoundError):
        run_process_group(["no-such-program-hamforge"])


_RUN_CP2K = """
import sys
from hamforge.dft import run_cp2k
run_cp2k(sys.argv[1], launcher="/usr/bin/mpirun --allow-run-as-root -np {tasks}", tasks=2)
"""


@pytest.mark.slow
@pytest.mark.cp2k
def test_sigterm_to_the_cp2k_process_stops_mpirun_and_every_rank(tmp_path):
    import dataclasses

    from ase.build import bulk
    from hamforge.dft import CP2KSettings, KindSettings, cp2k_input_schema, cp2k_input_tree, render_cp2k_input

    # 2-atom Si cell; an unreachable EPS_SCF keeps the SCF loop busy (each step ~0.1 s) until the signal
    si = CP2KSettings(kinds={"Si": KindSettings("Si", "SZV-MOLOPT-SR-GTH", "GTH-PBE-q4")}, added_mos=4)
    si = dataclasses.replace(si, eps_scf=1e-30, max_scf=100000)
    a = bulk("Si", "diamond", a=5.431)
    inp = tmp_path / "cp2k.inp"
    inp.write_text(
        render_cp2k_input(cp2k_input_tree(a.get_chemical_symbols(), a.positions, a.cell.array, si), cp2k_input_schema())
    )
    with _started([sys.executable, "-c", _RUN_CP2K, str(inp)]) as proc:
        mpirun = _wait_for(lambda: _children(proc.pid), "mpirun")[0]
        out = tmp_path / "cp2k.out"
        _wait_for(lambda: out.is_file() and "Step" in out.read_text(errors="replace"), "the SCF loop", 300)
        members = session_members(mpirun)
        assert mpirun in members and len(members) >= 3  # mpirun and two cp2k.psmp ranks
        _terminate_and_check(proc, members)


_RUN_LAMMPS = """
import sys
from hamforge.structures import MeltQuenchSettings, Stage, run_melt_quench
s = MeltQuenchSettings(elements=("Si",), pair_style="sw", potential_file="Si.sw",
    stages=(Stage("melt", 10000.0, 3000, 3000, sample=True),), dump_every=1000,
    initial={"crystal": "diamond", "a": 5.431, "repeat": [2, 2, 2]})
run_melt_quench(s, sys.argv[1], sys.argv[1] + "/t.extxyz", sys.argv[1] + "/th.csv")
"""


@pytest.mark.slow
@pytest.mark.lammps
def test_sigterm_to_the_melt_quench_process_stops_lammps(tmp_path):
    with _started([sys.executable, "-c", _RUN_LAMMPS, str(tmp_path)]) as proc:
        lmp = _wait_for(lambda: _children(proc.pid), "lmp")[0]
        _wait_for(lambda: (tmp_path / "log.lammps").is_file(), "the LAMMPS log")
        members = session_members(lmp)
        assert lmp in members
        _terminate_and_check(proc, members)
    assert not (tmp_path / "t.extxyz").exists() and not list(tmp_path.glob(".*.tmp"))
