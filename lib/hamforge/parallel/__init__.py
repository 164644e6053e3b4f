"""hamforge.parallel: one graph over several ranks, halo-exchanged every layer (``docs/parallel.md``).

Incoming-edge ownership (:func:`build_halo_plan`): rank ``r`` owns the atoms of part ``r`` of a
``hamforge.partition`` assignment and every edge into them. :class:`HaloModel` runs a
``hamforge.model.HamiltonianModel`` on the rank's atoms plus ghosts (the remote sources of its edges);
before each layer :class:`HaloExchange` replaces the ghost rows of the node embeddings by their owners'
values (point-to-point, one packed buffer per neighbouring rank, gloo or NCCL), and its backward sends
the ghost gradients back. :func:`all_reduce_gradients` sums parameter gradients over ranks;
:func:`write_halo_report` writes the per-rank timing/bytes CSVs and the topology plot.
"""

from hamforge._dist import DistContext, distributed
from hamforge.parallel._exchange import HaloExchange, all_reduce_gradients
from hamforge.parallel._halo import HaloModel
from hamforge.parallel._plan import HaloPlan, build_halo_plan
from hamforge.parallel._report import REPORT_FILES, plot_topology, write_halo_report
from hamforge.parallel._stats import LAYER_COLUMNS, HaloStats

__all__ = [
    "DistContext",
    "distributed",
    "HaloPlan",
    "build_halo_plan",
    "HaloExchange",
    "HaloModel",
    "HaloStats",
    "LAYER_COLUMNS",
    "all_reduce_gradients",
    "write_halo_report",
    "plot_topology",
    "REPORT_FILES",
]
