"""What no command may do (issue 22): destroy an input, or report garbage as success.

One mechanism per class, tested through the CLI on several commands: the output-path guard of every command
(``hamforge.io.check_apart``: an output that is an input, also through symbolic and hard links, or a folder that
contains one), finite weights when a model is loaded, finite values in every matrix written. Each case asserts a
non-zero exit, a message naming the file (or field), the inputs byte-identical afterwards and nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hamforge.cli import main
from hamforge.io import MatrixFileError, Structure, matrix_file_writer
from hamforge.model import save_checkpoint
from test_predict_stream import model_for, unit_cell


def _bytes(paths):
    return {p: p.read_bytes() for p in paths}


@pytest.fixture()
def files(tmp_path):
    """A model, a structure file and two matrix files (a prediction and a copy standing in for a reference)."""
    import shutil

    from hamforge.predict import predict_structure, write_prediction

    unit = unit_cell()
    model = model_for(unit, n_layers=1)
    save_checkpoint(tmp_path / "m.pt", model)
    write_prediction(predict_structure(model, unit, n_parts=1, progress=False), tmp_path / "p.h5", {})
    shutil.copyfile(tmp_path / "p.h5", tmp_path / "r.h5")
    return tmp_path, model, unit


def _refused(argv, capsys, *, match):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code != 0 and "error" in err, err
    assert match in err, err
    return err


def test_an_output_that_is_an_input_is_refused(files, capsys):
    d, _, _ = files
    keep = _bytes([d / "p.h5", d / "r.h5", d / "m.pt"])
    _refused(
        ["eigen", d / "p.h5", d / "r.h5", "-o", d / "r.h5", "--no-plots"],
        capsys,
        match="r.h5: output is the same file as the input",
    )
    (d / "link.h5").symlink_to(d / "r.h5")  # through a symbolic link
    _refused(["eigen", d / "p.h5", d / "r.h5", "-o", d / "link.h5", "--no-plots"], capsys, match="link.h5")
    os.link(d / "m.pt", d / "hard.pt")  # through a hard link
    _refused(
        ["evaluate", d / "m.pt", d / "p.h5", "-o", d / "hard.pt"],
        capsys,
        match="hard.pt: output is the same file as the input",
    )
    _refused(
        ["predict", d / "m.pt", d / "p.h5", "-o", d / "p.h5"],
        capsys,
        match="p.h5: output is the same file as the input",
    )
    assert _bytes([d / "p.h5", d / "r.h5", d / "m.pt"]) == keep


def test_an_output_folder_holding_an_input_is_refused(files, capsys):
    d, _, _ = files
    material = d / "results" / "mat"
    material.mkdir(parents=True)
    (material / "keep.txt").write_text("MD, CP2K runs, checkpoints")
    cfg = d / "config.yaml"
    cfg.write_text("materials: {}\n")
    for out in (material, d / "results", d):  # the folder itself, a parent, the parent's parent
        _refused(["release", material, "--config", cfg, "-o", out, "--force"], capsys, match="output")
    assert (material / "keep.txt").read_text() == "MD, CP2K runs, checkpoints"


def test_release_force_never_replaces_a_folder_that_is_not_a_release(tmp_path):
    from hamforge.io._release import ReleaseError, _prepare_out_dir

    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    with pytest.raises(ReleaseError, match="only replaces a previous release"):
        _prepare_out_dir(other, force=True)
    rerun = tmp_path / "rerun"  # the release rule reruns: Snakemake removed its manifest.json, the rest is there
    rerun.mkdir()
    (rerun / "README.md").write_text("data card")
    (rerun / "config.yaml").write_text("materials: {}")
    _prepare_out_dir(rerun, force=True)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    _prepare_out_dir(broken, force=True)  # a previous release with a damaged manifest: replaceable with --force
    with pytest.raises(ReleaseError, match="not a hamforge release"):
        _prepare_out_dir(broken, force=False)


def test_a_model_with_non_finite_weights_is_refused_by_every_command(files, capsys):
    d, model, _ = files
    bad = next(p for n, p in model.named_parameters() if "head" in n)
    with torch.no_grad():
        bad.view(-1)[0] = float("nan")
    save_checkpoint(d / "nan.pt", model)
    for argv in (
        ["predict", d / "nan.pt", d / "p.h5", "-o", d / "out.h5"],
        ["evaluate", d / "nan.pt", d / "p.h5", "-o", d / "out.json"],
    ):
        _refused(argv, capsys, match="nan.pt: state_dict:")
    assert not (d / "out.h5").exists() and not (d / "out.json").exists()


def test_a_matrix_with_non_finite_values_is_never_written(tmp_path):
    import scipy.sparse as sp
    from hamforge.basis import ElementBasis

    s = Structure(
        numbers=np.array([14]),
        positions=np.zeros((1, 3)),
        cell=np.eye(3) * 5,
        pbc=np.ones(3, bool),
        kinds=np.array(["Si"], dtype=object),
        source="x",
    )
    basis = {"Si": ElementBasis("Si", "SZV-MOLOPT-SR-GTH", (0, 1))}
    for bad in (np.nan, np.inf):
        m = sp.csr_matrix(np.diag([1.0, 2.0, bad, 4.0]))
        with pytest.raises(MatrixFileError, match=r"out.h5: /H: non-finite values in rows 0..3; nothing written"):
            with matrix_file_writer(tmp_path / "out.h5", s, basis) as w:
                w.write_csr("S", sp.identity(4, format="csr"))
                c = w.csr_writer("H", (4, 4))
                c.append_csr(m)
        assert not list(tmp_path.iterdir())  # no file, no temporary


def test_comparing_different_structures_is_refused(tmp_path, capsys):
    """transport and eigen compare a prediction with its reference: files of different structures get an error
    naming both, not metrics."""
    from test_validate_transport import _chain_file

    _chain_file(tmp_path / "a.h5", 6)
    _chain_file(tmp_path / "b.h5", 5)
    keep = _bytes([tmp_path / "a.h5", tmp_path / "b.h5"])
    out = tmp_path / "out"
    base = ["--axis", "x", "--emin", "-30", "--emax", "30", "--ne", "11", "--eta", "1e-5", "--out-dir", out]
    _refused(["transport", tmp_path / "a.h5", tmp_path / "b.h5", *base], capsys, match="a.h5 vs")
    _refused(["eigen", tmp_path / "a.h5", tmp_path / "b.h5", "--no-plots", "--out-dir", out], capsys, match="b.h5")
    assert _bytes([tmp_path / "a.h5", tmp_path / "b.h5"]) == keep
    assert not (out / "transport.json").exists() and not (out / "metrics.json").exists()


def test_every_rooms_user_error_is_a_hamforge_error():
    """One base class for bad input (hamforge._errors.HamforgeError): the CLI reports all of them as user errors."""
    import inspect

    import hamforge.basis
    import hamforge.config
    import hamforge.dft
    import hamforge.io
    import hamforge.predict
    import hamforge.structures
    import hamforge.train
    import hamforge.validate
    from hamforge._errors import HamforgeError

    rooms = (hamforge.basis, hamforge.config, hamforge.dft, hamforge.io, hamforge.predict, hamforge.structures)
    rooms += (hamforge.train, hamforge.validate)
    errors = {
        f"{m.__name__}.{n}": c
        for m in rooms
        for n, c in vars(m).items()
        if inspect.isclass(c) and issubclass(c, Exception) and n.endswith("Error")
    }
    assert len(errors) >= 15, sorted(errors)
    assert [n for n, c in errors.items() if not issubclass(c, HamforgeError)] == []


def test_json_outputs_are_strict_json():
    """summary.json, metrics.json, provenance: NaN/inf are written as null (bare NaN is not JSON), numpy values as
    numbers; a strict parser reads them back."""
    import json
    from pathlib import Path

    from hamforge.io import strict_json

    text = strict_json({"a": float("nan"), "b": np.float32(1.5), "c": [np.inf, np.int64(3)], "d": Path("x")})

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": 1.5, "c": [None, 3], "d": "x"}


def test_training_data_is_identified_by_content_and_its_folder_is_locked(tmp_path, capsys):
    """A targets file given twice (also as a byte-identical copy under another name) or both for training and
    validation is refused before training; a second training into a folder in use is refused at once."""
    import fcntl
    import shutil

    from hamforge.stages import train_model
    from hamforge.train import TrainingError, TrainSettings

    src = Path(__file__).parent / "data" / "cp2k" / "si_szv"
    assert main(["parse-cp2k", str(src), "-o", str(tmp_path / "m.h5")]) == 0
    assert main(["targets", str(tmp_path / "m.h5"), "--rcut", "4", "-o", str(tmp_path / "t.h5")]) == 0
    shutil.copyfile(tmp_path / "t.h5", tmp_path / "copy.h5")
    e = lambda name: {"structure": name, "targets": str(tmp_path / f"{name}.h5")}  # noqa: E731
    s = TrainSettings(max_epochs=1)
    with pytest.raises(TrainingError, match="copy.h5: the same content as .*t.h5 .*training and validation"):
        train_model([e("t")], [e("copy")], {"l_max": 2, "embed_dim": 4}, s, tmp_path / "run")
    with pytest.raises(TrainingError, match="copy.h5: the same content as"):
        train_model([e("t"), e("copy")], [], {"l_max": 2, "embed_dim": 4}, s, tmp_path / "run")
    (tmp_path / "run").mkdir(exist_ok=True)
    with open(tmp_path / "run" / ".lock", "a") as fh:  # another training holds the folder
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TrainingError, match="another training is writing there"):
            train_model([e("t")], [], {"l_max": 2, "embed_dim": 4}, s, tmp_path / "run")
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_a_cuda_device_without_cuda_is_a_message_not_a_traceback(files, capsys, monkeypatch):
    import torch

    d, _, _ = files
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    _refused(["predict", d / "m.pt", d / "p.h5", "-o", d / "o.h5", "--device", "cuda"], capsys, match="--device cuda")
    assert not (d / "o.h5").exists()


def test_an_output_folder_that_is_a_file_is_a_message(files, capsys):
    d, _, _ = files
    (d / "afile").write_text("a file, not a folder")
    _refused(["eigen", d / "p.h5", d / "r.h5", "--no-plots", "--out-dir", d / "afile"], capsys, match="not a folder")
    _refused(["train", d / "p.h5", "-o", d / "afile"], capsys, match="-o")
    assert (d / "afile").read_text() == "a file, not a folder"
