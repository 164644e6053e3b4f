"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["float32", "float64"])
def dtype_tol(request):
    """(torch dtype, absolute tolerance) pairs for numerics tested in both precisions.

    The tolerances are a few hundred ulps of O(1) quantities: float32 eps is 1.2e-7, float64 2.2e-16.
    """
    import torch

    if request.param == "float32":
        return torch.float32, 2e-5
    return torch.float64, 1e-12
