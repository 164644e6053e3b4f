"""``train.parallel: halo``: every structure split over 2 and 3 real gloo processes, halo-exchanged every layer,
trains exactly like one process on the full graphs (parameters, losses, MAEs after two epochs of Adam); the
halo report of the last epoch; unknown values of the key refused naming it (settings, config, CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _train_halo_worker import spawn  # tests/_train_halo_worker.py: train_model on gloo ranks
from hamforge.cli import main as cli_main
from hamforge.graph import build_targets
from hamforge.io import read_targets_file, write_targets_file
from hamforge.model import HamiltonianModel, read_checkpoint
from hamforge.parallel import REPORT_FILES, build_halo_plan
from hamforge.partition import partition_atoms
from hamforge.stages import train_model
from hamforge.train import DETERMINISTIC_COLUMNS, TrainSettings, make_owned_sample, make_samples
from test_train import synthetic  # the A = (s, s, s), B = (p) periodic structures with exact targets

pytestmark = [pytest.mark.multiprocess]

# float64; the ranks sum the same per-edge terms as one process, only the sums over ranks (loss shares,
# gradients) and BLAS blockings differ: ~1e-15 relative, after 4 Adam steps still far below 1e-10
EXACT = 1e-10
HYPER = dict(l_max=2, embed_dim=4, n_heads=1, ffn_dim=8, n_layers=2, n_radial=6, radial_hidden=8)
SETTINGS = dict(lr=1e-2, min_lr=1e-5, patience=100, max_epochs=2, batch_size=2, dtype="float64", optimizer="adam")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Four 8-atom structures (three to train on, one to validate on; a cell edge < r_cut: self-images) and
    the one-process full-graph run."""
    d = tmp_path_factory.mktemp("halo_train")
    entries = []
    for k in range(4):  # different random positions and Hamiltonians (not translated copies of one structure)
        m, *_ = synthetic(n=8, cell_len=3.4, r_cut=3.5, seed=5 + k)
        write_targets_file(d / f"t{k}.h5", build_targets(m, 3.5), m)
        entries.append({"structure": f"t{k}", "targets": str(d / f"t{k}.h5")})
    torch.use_deterministic_algorithms(True)
    train_model(entries[:3], entries[3:], HYPER, TrainSettings(**SETTINGS), d / "ref")
    return d, entries


def _compare(ref, got) -> tuple[float, float]:
    """(max |difference| of the parameters in latest.pt, max relative difference of the deterministic
    metrics.csv columns: losses ~1e-2 Ha^2, MAEs ~1e2 meV, lr)."""
    a, b = (read_checkpoint(p / "latest.pt").model.state_dict() for p in (ref, got))
    assert a.keys() == b.keys()
    params = max(float((a[k] - b[k]).abs().max()) for k in a)
    ca, cb = (pd.read_csv(p / "metrics.csv")[list(DETERMINISTIC_COLUMNS)].to_numpy() for p in (ref, got))
    assert ca.shape == cb.shape == (SETTINGS["max_epochs"], len(DETERMINISTIC_COLUMNS))
    assert np.isfinite(ca).all()
    return params, float((np.abs(ca - cb) / np.abs(ca)).max())


def test_owned_samples_cover_every_target_once(case):
    """The parts' samples hold every node and every pair of the structure exactly once (the counts that the
    loss weights sum over ranks), each with its full-graph target."""
    d, entries = case
    t = read_targets_file(entries[0]["targets"])
    x = read_targets_file(entries[0]["targets"], graph_only=True).positions
    full = make_samples(t, "t0", None, torch.float64)[0]
    assignment = partition_atoms(t.nl, x, "lownn", 3)
    parts = [
        make_owned_sample(t, "t0", build_halo_plan(t.nl.edge_index, assignment, r), torch.float64) for r in range(3)
    ]
    atoms = np.concatenate([s.node_atoms.numpy() for s in parts])
    pairs = np.concatenate([s.pair_ids.numpy() for s in parts])
    assert sorted(atoms) == full.node_atoms.tolist() and sorted(pairs) == full.pair_ids.tolist()
    assert sum(int(s.node_mask.sum()) for s in parts) == int(full.node_mask.sum())
    assert sum(int(s.pair_mask.sum()) for s in parts) == int(full.pair_mask.sum())
    assert sum(s.self_edge.numel() for s in parts) == full.self_edge.numel() > 0  # self-images present
    assert min(s.pair_edge.numel() for s in parts) > 0


def test_one_process_halo_equals_full_graph_and_resumes(case, tmp_path):
    """One rank (no process group): the halo path (HaloModel without neighbours, owned samples) trains like the
    full graph; stopped after epoch 1 and rerun to epoch 2 it resumes from latest.pt to the same end."""
    d, entries = case
    train_model(entries[:3], entries[3:], HYPER, TrainSettings(**SETTINGS, parallel="halo"), tmp_path / "h1")
    assert max(_compare(d / "ref", tmp_path / "h1")) <= EXACT
    one = TrainSettings(**{**SETTINGS, "max_epochs": 1}, parallel="halo")
    train_model(entries[:3], entries[3:], HYPER, one, tmp_path / "resumed")
    assert len(pd.read_csv(tmp_path / "resumed" / "metrics.csv")) == 1
    train_model(entries[:3], entries[3:], HYPER, TrainSettings(**SETTINGS, parallel="halo"), tmp_path / "resumed")
    assert max(_compare(d / "ref", tmp_path / "resumed")) <= EXACT


@pytest.mark.slow
@pytest.mark.parametrize("world, method", [(2, "lownn"), (3, "metis")])
def test_halo_training_on_gloo_ranks_equals_one_process(case, tmp_path, world, method):
    d, entries = case
    settings = {**SETTINGS, "parallel": "halo", "halo_partition": method, "halo_report": True}
    job = {"train": entries[:3], "val": entries[3:], "hyper": HYPER, "settings": settings}
    spawn({**job, "checkpoints": str(tmp_path / "ck")}, world)
    params, metrics = _compare(d / "ref", tmp_path / "ck")
    print(
        f"halo training, {world} gloo ranks ({method}) vs one process: parameters {params:.3g}, metrics {metrics:.3g}"
    )
    assert params <= EXACT and metrics <= EXACT
    ck = read_checkpoint(tmp_path / "ck" / "latest.pt")
    init = HamiltonianModel(ck.config, seed=0).to(torch.float64).state_dict()
    assert max(float((v - init[k]).abs().max()) for k, v in ck.model.state_dict().items()) > 1e-4  # it trained
    assert ck.extra["world_size"] == world and ck.extra["settings"]["parallel"] == "halo"
    for e in entries[:3]:  # the last epoch's report of every training structure
        rep = tmp_path / "ck" / "halo_report" / e["structure"]
        assert all((rep / name).is_file() for name in REPORT_FILES)
        layers = pd.read_csv(rep / "halo_layers.csv")
        assert sorted(layers["rank"].unique()) == list(range(world))
        assert set(layers["step"]) == {0} and set(layers["phase"]) == {"forward", "backward"}  # one epoch
        assert set(layers["layer"]) == {0, 1}  # an exchange before each of the 2 layers
        assert (layers["bytes_sent"] > 0).any()


def test_unknown_parallel_value_is_refused_naming_the_key(tmp_path, capsys):
    from hamforge.config import ConfigError, validate_config
    from test_config import default

    with pytest.raises(ValueError, match=r"train\.parallel: unknown value 'ring' \(known: partitions, halo\)"):
        TrainSettings(parallel="ring")
    with pytest.raises(ValueError, match=r"train\.halo_partition: unknown partitioner 'kmeans'"):
        TrainSettings(halo_partition="kmeans")
    cfg = default()
    cfg["materials"]["a-Si"]["train"]["parallel"] = "ring"
    with pytest.raises(ConfigError, match=r"materials\.a-Si\.train\.parallel"):
        validate_config(cfg)
    cfg["materials"]["a-Si"]["train"].update(parallel="halo", use_partitions=True)
    with pytest.raises(ConfigError, match=r"materials\.a-Si\.train\.use_partitions: true with train\.parallel: halo"):
        validate_config(cfg)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["train", "t.h5", "-o", str(tmp_path), "--parallel", "ring"])
    assert exit_.value.code == 2 and "--parallel: invalid choice: 'ring'" in capsys.readouterr().err
