"""Test helper (not a test): one rank of a halo-exchanged forward + backward on real gloo process groups.

``spawn(job, world, out_dir)`` starts ``world`` processes (torch.multiprocessing, start method spawn); each
joins a gloo group through ``hamforge._dist.distributed`` (the torchrun/srun environment variables set
here by hand), runs every partition in ``job["assignments"]`` and saves its owned outputs, its plan and,
on rank 0, the all-reduced parameter gradients to ``out_dir/<method>/``. With ``job["report"]`` the
instrumentation files of the first method are written to ``out_dir/<method>/report``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from _launch import free_port
from _launch import spawn as launch
from hamforge.model import EDGE_OUT, NODE_OUT, HamiltonianModel, ModelConfig
from hamforge.parallel import HaloModel, all_reduce_gradients, build_halo_plan, distributed, write_halo_report


def local_loss(out: dict, w_node: torch.Tensor, w_edge: torch.Tensor) -> torch.Tensor:
    """Fixed random projection of the outputs (rows already restricted to the owned ones)."""
    return (out[NODE_OUT] * w_node).sum() + (out[EDGE_OUT] * w_edge).sum()


def _rank(rank: int, world: int, port: int, job: dict, out_dir: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1"}
    )
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    with distributed(device="cpu") as ctx:
        assert ctx.backend == "gloo" and ctx.world_size == world
        model = HamiltonianModel(ModelConfig.from_dict(job["config"]), seed=job["seed"]).to(torch.float64)
        for k, (method, assignment) in enumerate(job["assignments"].items()):
            plan = build_halo_plan(job["edge_index"], assignment, rank)
            halo = HaloModel(model, plan)
            model.zero_grad(set_to_none=True)
            out = halo(plan.local_graph(job["numbers"], job["edge_vec"]))
            owned, edges = torch.from_numpy(plan.owned), torch.from_numpy(plan.edges)
            halo.backward(local_loss(out, job["w_node"][owned], job["w_edge"][edges]))
            all_reduce_gradients(model)
            d = Path(out_dir) / method
            d.mkdir(parents=True, exist_ok=True)
            record = {"plan": plan, "out": {key: v.detach() for key, v in out.items()}}
            if rank == 0:
                record["grads"] = {name: p.grad.clone() for name, p in model.named_parameters()}
            torch.save(record, d / f"rank{rank}.pt")
            if job.get("report") and k == 0:
                write_halo_report(halo.stats, plan, d / "report")


def spawn(job: dict, world: int, out_dir) -> None:
    """Run ``world`` gloo ranks on ``job`` (dict of config, seed, numbers, edge_index, edge_vec, w_node,
    w_edge, assignments {method: (N,) parts}); raises if any rank fails."""
    launch(_rank, (world, free_port(), job, str(out_dir)), world)
