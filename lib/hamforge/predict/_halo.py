"""Inference of one graph spread over the torchrun/srun ranks with halo exchange (``--parallel halo``).

One part per rank (``hamforge.partition``), each rank runs :class:`hamforge.parallel.HaloModel` under
``torch.no_grad()`` on its owned atoms and edges; rank 0 gathers the coupled-basis outputs of all ranks.
"""

from __future__ import annotations

import numpy as np
import torch

from hamforge.model import EDGE_OUT, NODE_OUT
from hamforge.parallel import HaloModel, build_halo_plan
from hamforge.partition import partition_atoms

__all__ = ["halo_outputs", "world_size"]


def world_size() -> int:
    """Ranks of the default process group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def halo_outputs(model, nl, atom_kind, positions, method: str, device) -> tuple[np.ndarray, np.ndarray] | None:
    """``(node_c (N, Dn), edge_c (E, De))`` float64 of the whole graph on rank 0, None on the other ranks.
    Collective over the default process group (every rank passes the same structure and model)."""
    import torch.distributed as dist

    world = world_size()
    rank = dist.get_rank() if world > 1 else 0
    if world > nl.n_atoms:
        raise ValueError(f"--parallel halo: {world} ranks but only {nl.n_atoms} atoms (one part per rank)")
    assignment = np.zeros(nl.n_atoms, np.int64) if world == 1 else partition_atoms(nl, positions, method, world)
    plan = build_halo_plan(nl.edge_index, assignment, rank)
    graph = plan.local_graph(torch.as_tensor(np.asarray(atom_kind, np.int64)), torch.as_tensor(np.array(nl.vec)))
    graph = {k: v.to(device) for k, v in graph.items()}
    with torch.no_grad():
        out = HaloModel(model, plan, stats=False)(graph)
    mine = (plan.owned, plan.edges, *(out[k].to("cpu", torch.float64).numpy() for k in (NODE_OUT, EDGE_OUT)))
    parts = [mine]
    if world > 1:
        parts = [None] * world if rank == 0 else None
        dist.gather_object(mine, parts, dst=0)
    if rank != 0:
        return None
    node_c = np.empty((nl.n_atoms, parts[0][2].shape[1]))
    edge_c = np.empty((nl.n_edges, parts[0][3].shape[1]))
    for owned, edges, n_c, e_c in parts:
        node_c[owned], edge_c[edges] = n_c, e_c
    return node_c, edge_c
