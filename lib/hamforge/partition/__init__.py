"""hamforge.partition: slices, Low-NN recursive bisection, brick-wall layouts and METIS; k-hop augmented
partitions; metrics.

Conventions (``docs/conventions.md``, ``docs/partition.md``): edges ``(i, j, R)`` of a
:class:`hamforge.graph.NeighborList`, sorted by centre ``i`` (the receiver). A part owns its atoms and
every edge into them ("incoming-edge" ownership), so every atom and every edge is labelled in exactly
one part; a halo of ``k`` hops adds the virtual nodes and edges that make ``k`` message-passing layers
exact on the labelled nodes.
"""

from hamforge.io import (
    PARTITION_FORMAT,
    AugmentedPartition,
    PartitionFile,
    PartitionFileError,
    graph_digest,
    read_partitions,
    write_partitions,
)
from hamforge.partition._augment import augment, augment_all, iter_augment
from hamforge.partition._brick import BrickLayout, partition_brick, plan_brick
from hamforge.partition._lownn import node_degree, partition_lownn
from hamforge.partition._metis import atom_adjacency, partition_metis
from hamforge.partition._metrics import partition_metrics, plot_partition
from hamforge.partition._partition import METHODS, PartitionResult, partition_atoms, run_partition
from hamforge.partition._slices import longest_axis, partition_slices

__all__ = [
    "METHODS",
    "partition_atoms",
    "partition_slices",
    "partition_lownn",
    "partition_brick",
    "plan_brick",
    "BrickLayout",
    "partition_metis",
    "longest_axis",
    "node_degree",
    "atom_adjacency",
    "AugmentedPartition",
    "augment",
    "augment_all",
    "iter_augment",
    "partition_metrics",
    "plot_partition",
    "PartitionResult",
    "run_partition",
    "PARTITION_FORMAT",
    "PartitionFile",
    "PartitionFileError",
    "write_partitions",
    "read_partitions",
    "graph_digest",
]
