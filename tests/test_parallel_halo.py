"""hamforge.parallel: one graph over 2, 3 and 4 real gloo processes with halo exchange equals one process.

Forward outputs (node and edge blocks, overlaps) and all-reduced parameter gradients of a 2-layer float64
model, for Low-NN, METIS and brick partitions, against the single-process full-graph model; and the
instrumentation files (per-rank CSV with the exact byte counts, topology PNG).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _halo_worker import local_loss, spawn  # tests/_halo_worker.py: one gloo rank
from _systems import system  # tests/_systems.py: shared random structures
from hamforge.model import EDGE_OUT, EDGE_OVERLAP, NODE_OUT, NODE_OVERLAP, HamiltonianModel, ModelConfig
from hamforge.parallel import REPORT_FILES, HaloModel, build_halo_plan
from hamforge.partition import partition_atoms

pytestmark = [pytest.mark.multiprocess]

# float64; the ranks sum the same terms as one process (the incoming edges of a node stay on its rank, in
# the full graph's order), only gradient sums over ranks and BLAS blockings differ: ~1e-15 relative
EXACT = 1e-10
METHODS = ("lownn", "metis", "brick")
CONFIG = dict(
    species=(8, 72),
    node_irreps="1x0e+1x1o+1x2e",
    edge_irreps="1x0e+1x1o+1x2e",
    r_cut=3.0,
    l_max=2,
    embed_dim=4,
    n_heads=1,
    ffn_dim=8,
    n_layers=2,
    n_radial=6,
    radial_hidden=8,
    predict_overlap=True,
)


@pytest.fixture(scope="module")
def case():
    """64 random atoms in a periodic 8 x 8 x 13 Angstrom cell (about 9 neighbours each within 3 A)."""
    x, nl = system(64, np.diag([8.0, 8.0, 13.0]), seed=3, r_cut=CONFIG["r_cut"])
    rng = np.random.default_rng(5)
    numbers = torch.as_tensor(rng.choice([8, 72], size=64))
    cfg = ModelConfig(**CONFIG)
    gen = torch.Generator().manual_seed(7)
    job = {
        "config": cfg.to_dict(),
        "seed": 11,
        "numbers": numbers,
        "edge_index": nl.edge_index,
        "edge_vec": torch.as_tensor(np.array(nl.vec)),
        "w_node": torch.randn((64, cfg.node_dim), generator=gen, dtype=torch.float64),
        "w_edge": torch.randn((nl.n_edges, cfg.edge_dim), generator=gen, dtype=torch.float64),
    }
    model = HamiltonianModel(cfg, seed=job["seed"]).to(torch.float64)
    graph = {"numbers": numbers, "edge_index": torch.as_tensor(np.array(nl.edge_index)), "edge_vec": job["edge_vec"]}
    out = model(graph)
    local_loss(out, job["w_node"], job["w_edge"]).backward()
    ref = {"out": {k: v.detach() for k, v in out.items()}, "grads": {n: _grad(p) for n, p in model.named_parameters()}}
    return x, nl, job, ref


def _grad(p: torch.nn.Parameter) -> torch.Tensor:
    """A parameter the loss does not reach has no gradient; all_reduce_gradients counts it as zero."""
    return torch.zeros_like(p) if p.grad is None else p.grad


_RUNS: dict = {}


@pytest.fixture(scope="module")
def runs(case, tmp_path_factory):
    """world -> output directory of one spawned run of all three partitions (each world spawned once)."""
    x, nl, job, _ = case

    def run(world: int):
        if world not in _RUNS:
            assignments = {m: partition_atoms(nl, x, m, world) for m in METHODS}
            out = tmp_path_factory.mktemp(f"halo{world}")
            spawn({**job, "assignments": assignments, "report": world == 3}, world, out)
            _RUNS[world] = out
        return _RUNS[world]

    yield run
    _RUNS.clear()


def _assemble(d, world: int, n_atoms: int, n_edges: int):
    """Full-graph outputs put together from the ranks' owned rows; every atom and edge exactly once."""
    records = [torch.load(d / f"rank{r}.pt", weights_only=False) for r in range(world)]
    full, seen_n, seen_e = {}, np.zeros(n_atoms, int), np.zeros(n_edges, int)
    for rec in records:
        plan = rec["plan"]
        seen_n[plan.owned] += 1
        seen_e[plan.edges] += 1
        for key, v in rec["out"].items():
            rows = plan.owned if key in (NODE_OUT, NODE_OVERLAP) else plan.edges
            full.setdefault(
                key,
                torch.full(
                    (n_atoms if key in (NODE_OUT, NODE_OVERLAP) else n_edges, v.shape[1]), torch.nan, dtype=v.dtype
                ),
            )
            full[key][torch.from_numpy(rows)] = v
    assert (seen_n == 1).all() and (seen_e == 1).all()
    return full, records


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("method", METHODS)
def test_halo_forward_and_gradients_equal_one_process(case, runs, world, method):
    x, nl, job, ref = case
    full, records = _assemble(runs(world) / method, world, nl.n_atoms, nl.n_edges)
    plans = [r["plan"] for r in records]
    assert all(p.n_ghost > 0 for p in plans)  # every rank received halo rows, so the exchange was exercised
    for key in (NODE_OUT, EDGE_OUT, NODE_OVERLAP, EDGE_OVERLAP):
        err = (full[key] - ref["out"][key]).abs().max().item()
        assert err < EXACT, (key, err)
    grads = records[0]["grads"]
    assert set(grads) == set(ref["grads"])
    for name, g in grads.items():
        err = (g - ref["grads"][name]).abs().max().item()
        assert err < EXACT, (name, err)  # absolute; the largest gradient entries are ~30


@pytest.mark.slow
def test_edge_reads_updated_exchanges_twice_per_layer_and_stays_exact(case, tmp_path):
    """The edge update reading the neighbour's *updated* node (model.edge_reads_updated) needs a second exchange
    inside each layer: 2 gloo ranks, 2 layers, outputs and gradients equal one process."""
    x, nl, job, _ = case
    cfg = ModelConfig(**{**CONFIG, "edge_reads_updated": True})
    model = HamiltonianModel(cfg, seed=job["seed"]).to(torch.float64)
    graph = {
        "numbers": job["numbers"],
        "edge_index": torch.as_tensor(np.array(nl.edge_index)),
        "edge_vec": job["edge_vec"],
    }
    out = model(graph)
    local_loss(out, job["w_node"], job["w_edge"]).backward()
    ref_grads = {n: _grad(p) for n, p in model.named_parameters()}
    spawn({**job, "config": cfg.to_dict(), "assignments": {"lownn": partition_atoms(nl, x, "lownn", 2)}}, 2, tmp_path)
    full, records = _assemble(tmp_path / "lownn", 2, nl.n_atoms, nl.n_edges)
    for key in (NODE_OUT, EDGE_OUT):
        assert (full[key] - out[key].detach()).abs().max().item() < EXACT, key
    for name, g in records[0]["grads"].items():
        assert (g - ref_grads[name]).abs().max().item() < EXACT, name


def test_stale_ghosts_break_the_result(case):
    """Control: without the exchange (ghost rows keep their layer-0 embeddings) the owned outputs differ."""
    x, nl, job, ref = case
    assignment = partition_atoms(nl, x, "lownn", 2)
    plan = build_halo_plan(nl.edge_index, assignment, 0)
    model = HamiltonianModel(ModelConfig(**CONFIG), seed=job["seed"]).to(torch.float64)
    with torch.no_grad():
        out = model(plan.local_graph(job["numbers"], job["edge_vec"]))
    err = (out[NODE_OUT][: plan.n_owned] - ref["out"][NODE_OUT][torch.from_numpy(plan.owned)]).abs().max().item()
    assert err > 1e-4


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_plan_send_lists_match_the_receivers_ghosts(case, world):
    x, nl, _, _ = case
    assignment = partition_atoms(nl, x, "lownn", world)
    plans = [build_halo_plan(nl.edge_index, assignment, r) for r in range(world)]
    for p in plans:
        nodes = p.nodes
        np.testing.assert_array_equal(nodes[p.edge_index], nl.edge_index[:, p.edges])  # same edges
        assert (p.edge_index[0] < p.n_owned).all()  # centres owned
        assert (assignment[p.ghosts] != p.rank).all()
        start = np.cumsum((0,) + p.recv_counts)
        for k, q in enumerate(p.recv_ranks):  # what q sends to p is exactly p's ghosts from q, in order
            sender = plans[q]
            mine = sender.send_index[sender.send_ranks.index(p.rank)]
            np.testing.assert_array_equal(sender.owned[mine], p.ghosts[start[k] : start[k + 1]])
        assert set(p.send_ranks) == {r for r in range(world) if p.rank in plans[r].recv_ranks}
    assert sum(p.edges.shape[0] for p in plans) == nl.n_edges


def test_plan_rejects_bad_input(case):
    _, nl, _, _ = case
    with pytest.raises(ValueError, match="rank"):
        build_halo_plan(nl.edge_index, np.zeros(nl.n_atoms, int), 1)
    with pytest.raises(ValueError, match="empty"):
        build_halo_plan(nl.edge_index, np.where(np.arange(nl.n_atoms) < 5, 0, 2), 0)
    with pytest.raises(ValueError, match="edge_index"):
        build_halo_plan(nl.edge_index, np.zeros(3, int), 0)


@pytest.mark.slow
def test_instrumentation_csv_and_topology_png(case, runs):
    _, nl, job, _ = case
    d = runs(3) / METHODS[0]
    report = d / "report"
    assert all((report / name).is_file() for name in REPORT_FILES)
    assert (report / "halo_topology.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plans = [torch.load(d / f"rank{r}.pt", weights_only=False)["plan"] for r in range(3)]
    ranks = pd.read_csv(report / "halo_ranks.csv")
    assert ranks["rank"].tolist() == [0, 1, 2]
    cfg = ModelConfig.from_dict(job["config"])
    row = (cfg.l_max + 1) ** 2 * cfg.embed_dim * 8  # bytes of one float64 node row (K, C)
    for p, r in zip(plans, ranks.itertuples()):
        assert r.n_neighbours == len(p.neighbours) > 0
        sent_rows = sum(len(ix) for ix in p.send_index) + p.n_ghost  # forward rows + backward gradient rows
        assert r.bytes_sent == cfg.n_layers * sent_rows * row > 0
        assert 0 < r.comm_fraction < 1
    layers = pd.read_csv(report / "halo_layers.csv")
    assert len(layers) == 3 * cfg.n_layers * 2  # rank x layer x (forward, backward), one step
    assert (layers[["t_pack", "t_exchange", "t_unpack", "t_compute"]] >= 0).all().all()
    topo = pd.read_csv(report / "halo_topology.csv")
    for p in plans:
        for q, ix in zip(p.send_ranks, p.send_index):
            sent = topo[(topo.src == p.rank) & (topo.dst == q)]["bytes"].sum()
            back = p.recv_counts[p.recv_ranks.index(q)] if q in p.recv_ranks else 0
            assert sent == cfg.n_layers * (len(ix) + back) * row


def test_one_rank_is_the_plain_model_bit_for_bit(case):
    """World 1 (no process group needed: nothing to send): the hooked forward is the plain forward, bitwise;
    one forward and one backward row per layer are recorded; a graph of another rank's size is refused."""
    x, nl, job, ref = case
    plan = build_halo_plan(nl.edge_index, np.zeros(nl.n_atoms, np.int64), 0)
    model = HamiltonianModel(ModelConfig(**CONFIG), seed=job["seed"]).to(torch.float64)
    halo = HaloModel(model, plan)
    out = halo(plan.local_graph(job["numbers"], job["edge_vec"]))
    for key, v in ref["out"].items():
        assert torch.equal(out[key].detach(), v), key
    halo.backward(local_loss(out, job["w_node"], job["w_edge"]))
    for name, p in model.named_parameters():
        assert torch.equal(_grad(p), ref["grads"][name]), name
    rows = halo.stats.rows
    assert [(r["phase"], r["layer"]) for r in rows] == [
        ("forward", 0),
        ("forward", 1),
        ("backward", 0),
        ("backward", 1),
    ]
    assert all(r["bytes_sent"] == 0 and r["t_compute"] > 0 for r in rows)
    other = build_halo_plan(nl.edge_index, partition_atoms(nl, x, "lownn", 2), 0)
    with pytest.raises(ValueError, match="must have"):
        halo(other.local_graph(job["numbers"], job["edge_vec"]))
