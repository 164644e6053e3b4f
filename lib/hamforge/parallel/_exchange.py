"""Halo exchange of node embeddings between ranks, differentiable: the ``node_exchange`` hook of
``HamiltonianModel.forward``.

Forward of layer ``t``: every rank packs, per neighbouring rank, the rows of its owned node tensor that the
neighbour needs (``HaloPlan.send_index``) into one contiguous buffer, posts all sends and receives at once
(``torch.distributed.batch_isend_irecv``: point-to-point, one buffer per neighbour, gloo on CPU and NCCL
on GPU with the same code; tensors stay on their device) and unpacks the received buffers into the ghost
rows. Backward (the same exchange in reverse): the gradient rows of the ghosts are sent back to their
owners, which add them (``index_add_``, fixed neighbour order) to the gradient of the rows they sent.
Parameter gradients of every rank then hold its share of the full-graph gradient: their sum over ranks
(``all_reduce_gradients``) is the gradient of the summed loss.
"""

from __future__ import annotations

import torch

from hamforge.parallel._plan import HaloPlan
from hamforge.parallel._stats import HaloStats

__all__ = ["HaloExchange", "all_reduce_gradients"]

_TAG_FORWARD, _TAG_BACKWARD = 0, 1


class HaloExchange:
    """Callable ``(t, h_n (n_local, K, C)) -> h_n`` with the ghost rows replaced by their owners' values.

    ``plan`` of this rank, ``group`` a torch.distributed process group (None: the default one, whose
    ranks the plan uses), ``stats`` an optional :class:`HaloStats` recording times and bytes. Collective:
    every rank of the plan must call it for the same layers, forward and backward alike.
    """

    def __init__(self, plan: HaloPlan, group=None, stats: HaloStats | None = None):
        self.plan, self.group, self.stats = plan, group, stats
        self._index: dict[torch.device, list[torch.Tensor]] = {}
        self._started = False

    def send_index(self, device: torch.device) -> list[torch.Tensor]:
        if device not in self._index:
            self._index[device] = [torch.from_numpy(ix).to(device) for ix in self.plan.send_index]
        return self._index[device]

    def __call__(self, t: int, h: torch.Tensor) -> torch.Tensor:
        n = self.plan.n_owned
        if h.shape[0] != n + self.plan.n_ghost:
            raise ValueError(
                f"halo exchange: node tensor has {h.shape[0]} rows, the plan of rank {self.plan.rank} has "
                f"{n} owned + {self.plan.n_ghost} ghost atoms"
            )
        owned = h[:n]
        return torch.cat([owned, _HaloFunction.apply(owned, self, int(t))], dim=0)

    def _peer(self, q: int) -> int:
        import torch.distributed as dist

        return q if self.group is None else dist.get_global_rank(self.group, q)

    def _p2p(self, sends: list[tuple[int, torch.Tensor]], recvs: list[tuple[int, torch.Tensor]], tag: int) -> None:
        import torch.distributed as dist

        if not self._started and self.plan.world > 1:
            # NCCL: the first batched point-to-point call must involve every rank of the group, which a rank
            # without neighbours would skip; one barrier (a collective) sets the communicator up for all.
            if dist.get_backend(self.group) == "nccl":
                dist.barrier(group=self.group)
            self._started = True
        ops = [dist.P2POp(dist.isend, buf, self._peer(q), self.group, tag) for q, buf in sends]
        ops += [dist.P2POp(dist.irecv, buf, self._peer(q), self.group, tag) for q, buf in recvs]
        if ops:
            for work in dist.batch_isend_irecv(ops):
                work.wait()

    def _clock(self) -> float:
        return self.stats.clock() if self.stats is not None else 0.0

    def _record(self, t: int, times: list[float], sends) -> None:
        if self.stats is not None:
            self.stats.exchanged(t, *times, {q: buf.numel() * buf.element_size() for q, buf in sends})

    def forward_rows(self, owned: torch.Tensor, t: int) -> torch.Tensor:
        """Ghost rows ``(n_ghost, K, C)`` for layer ``t`` from this rank's owned rows."""
        p, tail = self.plan, owned.shape[1:]
        c0 = self._clock()
        sends = [(q, owned.index_select(0, ix)) for q, ix in zip(p.send_ranks, self.send_index(owned.device))]
        recvs = [(q, owned.new_empty((m, *tail))) for q, m in zip(p.recv_ranks, p.recv_counts)]
        c1 = self._clock()
        self._p2p(sends, recvs, _TAG_FORWARD)
        c2 = self._clock()
        ghost = torch.cat([buf for _, buf in recvs], dim=0) if recvs else owned.new_empty((0, *tail))
        self._record(t, [c0, c1, c2, self._clock()], sends)
        return ghost

    def backward_rows(self, grad_ghost: torch.Tensor, n_owned: int, t: int) -> torch.Tensor:
        """Gradient of the owned rows from the ghost-row gradients of all ranks (the reverse exchange)."""
        p, tail = self.plan, grad_ghost.shape[1:]
        c0 = self._clock()
        sends = list(zip(p.recv_ranks, grad_ghost.contiguous().split(list(p.recv_counts), dim=0)))
        index = self.send_index(grad_ghost.device)
        recvs = [(q, grad_ghost.new_empty((ix.shape[0], *tail))) for q, ix in zip(p.send_ranks, index)]
        c1 = self._clock()
        self._p2p(sends, recvs, _TAG_BACKWARD)
        c2 = self._clock()
        grad = grad_ghost.new_zeros((n_owned, *tail))
        for ix, (_, buf) in zip(index, recvs):
            grad.index_add_(0, ix, buf)
        self._record(t, [c0, c1, c2, self._clock()], sends)
        return grad


class _HaloFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, owned: torch.Tensor, exchange: HaloExchange, t: int) -> torch.Tensor:
        ctx.exchange, ctx.t, ctx.n_owned = exchange, t, owned.shape[0]
        return exchange.forward_rows(owned.detach(), t)

    @staticmethod
    def backward(ctx, grad_ghost: torch.Tensor):
        return ctx.exchange.backward_rows(grad_ghost, ctx.n_owned, ctx.t), None, None


def all_reduce_gradients(module: torch.nn.Module, group=None) -> None:
    """Sum the parameter gradients of ``module`` over the ranks of ``group`` (in place; a missing
    gradient counts as zero). After a halo-exchanged backward of each rank's share of the loss this is the
    gradient of the total loss, as if one process had run the whole graph."""
    import torch.distributed as dist

    for p in module.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM, group=group)
