"""Outputs: never replace an input or a non-file, nothing partial left behind, readable by the group (umask)."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hamforge.cli import main as cli_main
from hamforge.io import OutputPathError, atomic_path, atomic_paths, check_output_path, write_text_atomic

DATA = Path(__file__).parent / "data" / "cp2k"


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it (the umask is per process; pytest runs serially)."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def test_outputs_follow_the_umask(tmp_path, umask):
    umask(0o022)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # readable by group and others
    assert cli_main(["parse-cp2k", str(DATA / "hfo2_szv"), "-o", str(tmp_path / "m.h5")]) == 0
    assert stat.S_IMODE((tmp_path / "m.h5").stat().st_mode) == 0o644
    umask(0o027)
    write_text_atomic(tmp_path / "b.txt", "x")
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640


def test_output_that_is_an_input_is_refused(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(DATA / "hfo2_szv", run)
    before = (run / "KS.csr").read_bytes()
    os.symlink(run / "S.csr", tmp_path / "link.h5")
    for out in (run / "KS.csr", tmp_path / "link.h5"):
        assert cli_main(["parse-cp2k", str(run), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert "same file as the input" in err and "Traceback" not in err
    assert (run / "KS.csr").read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (DATA / "hfo2_szv").iterdir())


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "parent_is_file"])
def test_non_regular_output_is_refused(tmp_path, capsys, kind):
    if kind == "directory":
        out = tmp_path / "adir"
        out.mkdir()
        want = "is a directory"
    elif kind == "fifo":
        out = tmp_path / "fifo"
        os.mkfifo(out)
        want = "is a FIFO"
    elif kind == "device":
        out = Path("/dev/null")
        want = "is a device"
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "m.h5"
        want = "is not a directory"
    assert cli_main(["parse-cp2k", str(DATA / "hfo2_szv"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert want in err and str(out) in err and "Traceback" not in err
    if kind == "device":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(OutputPathError, match=want):
        write_text_atomic(out, "x")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*") if p.is_file())


def test_sibling_outputs_appear_together_or_not_at_all(tmp_path):
    a, b = tmp_path / "m.h5", tmp_path / "m.png"
    with pytest.raises(RuntimeError, match="plot failed"), atomic_paths(a, b) as (ta, tb):
        ta.write_text("matrix")
        raise RuntimeError("plot failed")
    assert list(tmp_path.iterdir()) == []
    # the second target turns out to be a directory when the outputs are renamed into place
    with pytest.raises(OutputPathError), atomic_paths(a, b) as (ta, tb):
        ta.write_text("matrix")
        tb.write_text("plot")
        b.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"] and not a.exists()
    with atomic_paths(a, tmp_path / "c.csv") as (ta, tc):
        ta.write_text("matrix")
        tc.write_text("csv")
    assert a.read_text() == "matrix" and (tmp_path / "c.csv").read_text() == "csv"


def test_atomic_path_leaves_target_untouched_on_error(tmp_path):
    out = tmp_path / "x.txt"
    out.write_text("old")
    with pytest.raises(ValueError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert out.read_text() == "old" and sorted(tmp_path.iterdir()) == [out]
    assert check_output_path(out) == out


_WRITER = """
import signal, sys, time
# a command started from a terminal: SIGINT raises KeyboardInterrupt even when this test runs in a background
# job, whose children inherit SIGINT as ignored (bash does that without job control)
signal.signal(signal.SIGINT, signal.default_int_handler)
from hamforge.io import atomic_paths
with atomic_paths(sys.argv[1] + "/m.h5", sys.argv[1] + "/m.png") as (a, b):
    a.write_text("half")
    print("ready", flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)])
def test_temporary_files_removed_on_signal(tmp_path, sig, code):
    # SIGTERM: exit status 143 (Terminated); SIGINT: Python exits by re-raising SIGINT after the cleanup (-2)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    assert len(list(tmp_path.iterdir())) == 2  # the two temporary files exist while writing
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def si_matrix(tmp_path):
    path = tmp_path / "si.h5"
    assert cli_main(["parse-cp2k", str(DATA / "si_szv"), "-o", str(path)]) == 0
    return path


def test_targets_and_partition_outputs_appear_together_or_not_at_all(tmp_path, si_matrix, monkeypatch, capsys):
    """A failure in the last step (the plot) of `hamforge targets` / `hamforge partition` leaves none of the
    command's outputs (not the targets/partition file written before it), and no temporary file."""
    import hamforge.stages._partition as stage_partition
    import hamforge.stages._targets as stage_targets

    def broken_plot(*args, **kwargs):
        raise RuntimeError("plot failed: disk full")

    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.setattr(stage_targets, "plot_coverage", broken_plot)
    with pytest.raises(RuntimeError, match="disk full"):
        cli_main(["targets", str(si_matrix), "--rcut", "4", "-o", str(tmp_path / "t.h5")])
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    monkeypatch.undo()
    assert cli_main(["targets", str(si_matrix), "--rcut", "4", "-o", str(tmp_path / "t.h5")]) == 0
    made = {p.name for p in tmp_path.iterdir()} - set(before)
    assert made == {"t.h5", "t.coverage.csv", "t.coverage.json", "t.coverage.png"}

    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.setattr(stage_partition, "plot_partition", broken_plot)
    args = ["partition", str(tmp_path / "t.h5"), "--method", "lownn", "--parts", "2", "--halo", "1"]
    args += ["-o", str(tmp_path / "p.h5"), "--plot", str(tmp_path / "p.png"), "--metrics-csv", str(tmp_path / "p.csv")]
    with pytest.raises(RuntimeError, match="disk full"):
        cli_main(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    monkeypatch.undo()
    assert cli_main(args) == 0
    assert {"p.h5", "p.png", "p.csv"} <= {p.name for p in tmp_path.iterdir()}
    capsys.readouterr()


def test_targets_and_partition_refuse_to_overwrite_their_input(tmp_path, si_matrix, capsys):
    before = si_matrix.read_bytes()
    assert cli_main(["targets", str(si_matrix), "--rcut", "4", "-o", str(si_matrix)]) == 2
    err = capsys.readouterr().err
    assert "same file as the input" in err and str(si_matrix) in err and "Traceback" not in err
    assert cli_main(["partition", str(si_matrix), "--rcut", "4", "--parts", "2", "-o", str(si_matrix)]) == 2
    err = capsys.readouterr().err
    assert "same file as the input" in err and "Traceback" not in err
    assert si_matrix.read_bytes() == before


def test_staged_directory_moves_all_files_in_or_none(tmp_path):
    """A command writing many files into one folder (rule validate: metrics, CSVs, plots) through
    staged_directory leaves the folder as it was when it fails, and moves everything in when it succeeds."""
    from hamforge.io import staged_directory

    out = tmp_path / "validation"
    out.mkdir()
    (out / "mae.json").write_text("input of the command")
    with pytest.raises(RuntimeError, match="plot failed"), staged_directory(out) as stage:
        write_text_atomic(stage / "metrics.json", "{}")
        raise RuntimeError("plot failed")
    assert sorted(p.name for p in out.iterdir()) == ["mae.json"]
    with staged_directory(out) as stage:
        write_text_atomic(stage / "metrics.json", "{}")
        write_text_atomic(stage / "spectra.png", "png")
    assert sorted(p.name for p in out.iterdir()) == ["mae.json", "metrics.json", "spectra.png"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="not a directory"), staged_directory(tmp_path / "file" / "v"):
        pass
