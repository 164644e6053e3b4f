"""Tests of hamforge.so3: CP2K harmonic conventions, Wigner-D, edge frames, CG coupling."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from hamforge import so3

L_TEST = range(7)  # the project needs l <= 6 (features l_max 4-6, orbitals up to f)


def _rand_rot(n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """(n, 3, 3) random rotations (QR of Gaussians, det fixed to +1), plus gimbal-lock cases."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 3, 3, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]
    q = q * torch.sign(torch.linalg.det(q))[..., None, None]
    special = torch.stack(
        [
            torch.eye(3, dtype=torch.float64),
            torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)),  # beta = pi
            _rz(0.7),  # beta = 0, alpha + gamma = 0.7
            _rz(0.7) @ _rx(np.arccos(0.5)),  # R[2,2] = 0.5 exactly: branch boundary
            _rx(np.pi / 2),
        ]
    )
    return torch.cat([q, special]).to(dtype)


def _rz(phi: float) -> torch.Tensor:
    c, s = np.cos(phi), np.sin(phi)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _rx(phi: float) -> torch.Tensor:
    c, s = np.cos(phi), np.sin(phi)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)


def _sphere_quadrature(n: int = 16):
    """Gauss-Legendre (cos theta) x uniform phi grid: exact for polynomials of degree < 2n on the sphere."""
    t, wt = np.polynomial.legendre.leggauss(n)
    phi = np.arange(2 * n) * (np.pi / n)
    st = np.sqrt(1 - t**2)
    xyz = np.stack(np.broadcast_arrays(st[:, None] * np.cos(phi), st[:, None] * np.sin(phi), t[:, None]), -1)
    w = np.broadcast_to(wt[:, None] * (np.pi / n), xyz.shape[:2])
    return xyz.reshape(-1, 3), w.reshape(-1)


def _eval_table(l: int, xyz: np.ndarray) -> np.ndarray:
    exps, coef = so3.cp2k_solid_harmonics(l)
    return np.prod(xyz[:, None, :] ** exps[None], axis=-1) @ coef.T


# --------------------------------------------------------------------------------------------------
# CP2K's polynomials


# Printed by CP2K 2023.1 (this machine, `&GLOBAL &PRINT SPHERICAL_HARMONICS 6`), 12 decimals:
# {m: {(lx, ly, lz): coefficient of x^lx y^ly z^lz in r^l Y_lm}}; every other coefficient printed 0.
CP2K_PRINTED = {
    2: {
        -2: {(1, 1, 0): 1.092548430592},
        -1: {(0, 1, 1): 1.092548430592},
        0: {(2, 0, 0): -0.315391565253, (0, 2, 0): -0.315391565253, (0, 0, 2): 0.630783130505},
        1: {(1, 0, 1): 1.092548430592},
        2: {(2, 0, 0): 0.546274215296, (0, 2, 0): -0.546274215296},
    },
    3: {
        -3: {(2, 1, 0): 1.770130769780, (0, 3, 0): -0.590043589927},
        -2: {(1, 1, 1): 2.890611442641},
        -1: {(2, 1, 0): -0.457045799464, (0, 3, 0): -0.457045799464, (0, 1, 2): 1.828183197858},
        0: {(2, 0, 1): -1.119528997770, (0, 2, 1): -1.119528997770, (0, 0, 3): 0.746352665180},
        1: {(3, 0, 0): -0.457045799464, (1, 2, 0): -0.457045799464, (1, 0, 2): 1.828183197858},
        2: {(2, 0, 1): 1.445305721320, (0, 2, 1): -1.445305721320},
        3: {(3, 0, 0): 0.590043589927, (1, 2, 0): -1.770130769780},
    },
}


@pytest.mark.parametrize("l", [2, 3])
def test_cp2k_table_matches_printed_cp2k_values(l):
    exps, coef = so3.cp2k_solid_harmonics(l)
    ref = np.zeros_like(coef)
    col = {tuple(e): k for k, e in enumerate(exps.tolist())}
    for m, terms in CP2K_PRINTED[l].items():
        for e, v in terms.items():
            ref[l + m, col[e]] = v
    # 1e-11: CP2K prints 12 decimals (rounding <= 5e-13); sign or convention errors would be O(0.1)
    np.testing.assert_allclose(coef, ref, rtol=0, atol=1e-11)


def _parse_cp2k_spherical_harmonics(text: str) -> dict[int, np.ndarray]:
    """CP2K's printed 'SPHERICAL HARMONICS' tables -> {l: coef (2l+1, K)} in cp2k_solid_harmonics' column order."""
    out = {}
    for block in re.split(r"\n SPHERICAL HARMONICS\n", text)[1:]:
        block = block.split("INVERSE SPHERICAL HARMONICS")[0]
        rows: dict[str, dict[tuple, float]] = {}
        header: list[str] = []
        for line in block.splitlines():
            tok = line.split()
            if not tok:
                continue
            if all(re.fullmatch(r"[spdfghi](x\d*)?(y\d*)?(z\d*)?", t) for t in tok):
                header = tok
                continue
            for name, val in zip(header, tok[1:]):
                e = [0, 0, 0]
                for ax, p in re.findall(r"([xyz])(\d*)", name[1:]):
                    e["xyz".index(ax)] = int(p) if p else 1
                rows.setdefault(tok[0], {})[tuple(e)] = float(val)
        l = (len(rows) - 1) // 2
        exps, _ = so3.cp2k_solid_harmonics(l)
        out[l] = np.array([[r[tuple(e)] for e in exps.tolist()] for r in rows.values()])  # rows in m = -l..l order
    return out


_CP2K_INPUT = """&GLOBAL
  PROJECT sh
  RUN_TYPE NONE
  PRINT_LEVEL LOW
  &PRINT
    SPHERICAL_HARMONICS 6
  &END
&END
&FORCE_EVAL
  METHOD QS
  &DFT
    BASIS_SET_FILE_NAME BASIS_MOLOPT
    POTENTIAL_FILE_NAME GTH_POTENTIALS
    &XC
      &XC_FUNCTIONAL PBE
      &END
    &END
  &END
  &SUBSYS
    &CELL
      ABC 6 6 6
    &END
    &COORD
      H 0 0 0
      H 0 0 0.74
    &END
    &KIND H
      BASIS_SET SZV-MOLOPT-SR-GTH
      POTENTIAL GTH-PBE-q1
    &END
  &END
&END
"""


@pytest.mark.slow
@pytest.mark.cp2k
def test_cp2k_table_matches_live_cp2k(tmp_path):
    exe = shutil.which("cp2k.psmp") or shutil.which("cp2k")
    # install.sh always installs Debian's cp2k: a missing CP2K is a broken setup, not a reason to skip
    assert exe is not None, "cp2k not on PATH (run bash install.sh)"
    (tmp_path / "sh.inp").write_text(_CP2K_INPUT)
    proc = subprocess.run(
        [exe, "-i", "sh.inp", "-o", "sh.out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    tables = _parse_cp2k_spherical_harmonics((tmp_path / "sh.out").read_text())
    assert sorted(tables) == list(range(7))
    for l, ref in tables.items():
        # 1e-11: 12 printed decimals; covers every sign and normalisation of l = 0..6
        np.testing.assert_allclose(so3.cp2k_solid_harmonics(l)[1], ref, rtol=0, atol=1e-11, err_msg=f"l={l}")


def test_cp2k_print_order_is_p_y_p_z_p_x_and_d_signs():
    """The measured CP2K orbital order: p = (p_y, p_z, p_x); d = (xy, yz, z2, xz, x2-y2) with + signs."""
    s = 1 / np.sqrt(2)
    pts = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [s, s, 0], [0, s, s], [s, 0, s]])
    y1 = so3.real_spherical_harmonics(1, pts[:3])
    c1 = np.sqrt(3 / (4 * np.pi))
    # exact up to rounding of the constants: 1e-14
    np.testing.assert_allclose(y1, c1 * np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]]), atol=1e-14)
    y2 = so3.real_spherical_harmonics(2, pts)
    assert y2[3, 0] > 0.5 and y2[4, 1] > 0.5 and y2[2, 2] > 0.5 and y2[5, 3] > 0.5 and y2[0, 4] > 0.5
    assert y2[1, 4] < -0.5  # d_x2-y2 at y_hat
    # m = 0 of each l is the component along z: at e_z only m = 0 is non-zero, value sqrt((2l+1)/4pi)
    for l in L_TEST:
        y = so3.real_spherical_harmonics(l, np.array([0.0, 0.0, 2.5]))
        expect = np.zeros(2 * l + 1)
        expect[l] = np.sqrt((2 * l + 1) / (4 * np.pi))
        np.testing.assert_allclose(y, expect, atol=1e-13)  # 1e-13: O(1) values, ~10 flops in float64


def test_real_spherical_harmonics_orthonormal_and_equal_to_cp2k_polynomials():
    xyz, w = _sphere_quadrature()
    for l in L_TEST:
        y = so3.real_spherical_harmonics(l, xyz)
        # exact quadrature for degree <= 31: 1e-12 is float64 summation noise of ~1000 O(1) terms
        np.testing.assert_allclose((y * w[:, None]).T @ y, np.eye(2 * l + 1), atol=1e-12)
        np.testing.assert_allclose(y, _eval_table(l, xyz), atol=1e-12)
    # direction only: scaling the vector does not change Y
    v = np.array([[0.3, -1.2, 0.7]])
    np.testing.assert_allclose(so3.real_spherical_harmonics(3, 5 * v), so3.real_spherical_harmonics(3, v), atol=1e-13)


def test_real_spherical_harmonics_torch_dtype_and_grad(dtype_tol):
    dtype, tol = dtype_tol
    v = torch.tensor([[0.3, -1.2, 0.7], [1.0, 2.0, -0.5]], dtype=dtype, requires_grad=True)
    y = so3.real_spherical_harmonics(4, v)
    assert y.dtype == dtype and y.shape == (2, 9)
    ref = _eval_table(4, (v / v.norm(dim=-1, keepdim=True)).detach().double().numpy())
    np.testing.assert_allclose(y.detach().double().numpy(), ref, atol=tol)
    y.sum().backward()
    assert torch.isfinite(v.grad).all()


# --------------------------------------------------------------------------------------------------
# Change of basis from e3nn


def test_change_of_basis_orthogonal_and_maps_e3nn():
    from e3nn import o3

    xyz, _ = _sphere_quadrature(8)
    for l in range(so3.L_MAX_SUPPORTED + 1):
        q = so3.change_of_basis(l)
        # float64 orthogonality after the polar decomposition: 1e-12 (observed ~1e-15)
        np.testing.assert_allclose(q @ q.T, np.eye(2 * l + 1), atol=1e-12)
        y_e3nn = o3.spherical_harmonics(l, torch.from_numpy(xyz), True, normalization="integral").numpy()
        # project = Q e3nn, compared to the independent CP2K polynomial table: 1e-12 (O(1) values)
        np.testing.assert_allclose(y_e3nn @ q.T, _eval_table(l, xyz), atol=1e-12)
    # signed permutation for l <= 1: e3nn's l=1 is (x, y, z), ours (y, z, x)
    np.testing.assert_array_equal(so3.change_of_basis(1), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(so3.change_of_basis(0), [[1.0]])
    # l >= 2 is NOT a signed permutation (e3nn's polar axis is y): d_z2 mixes e3nn's m=0 and m=2
    q2 = so3.change_of_basis(2)
    np.testing.assert_allclose(q2[2], [0, 0, -0.5, 0, np.sqrt(3) / 2], atol=1e-14)


def test_cached_constants_are_copies():
    q = so3.change_of_basis(2)
    q[:] = 7.0
    assert so3.change_of_basis(2)[0, 0] != 7.0
    c = so3.clebsch_gordan(1, 1, 2)
    c[:] = 7.0
    assert np.abs(so3.clebsch_gordan(1, 1, 2)).max() < 1.0
    e, t = so3.cp2k_solid_harmonics(2)
    t[:] = 0.0
    assert np.abs(so3.cp2k_solid_harmonics(2)[1]).max() > 1.0


# --------------------------------------------------------------------------------------------------
# Wigner-D


def test_wigner_D_equivariance_of_harmonics(dtype_tol):
    dtype, tol = dtype_tol
    rot = _rand_rot(64, seed=1, dtype=dtype)
    r = torch.randn(rot.shape[0], 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(dtype)
    for l in L_TEST:
        d = so3.wigner_D(l, rot)
        assert d.dtype == dtype and d.shape == (rot.shape[0], 2 * l + 1, 2 * l + 1)
        lhs = so3.real_spherical_harmonics(l, (rot @ r[..., None])[..., 0])
        rhs = (d @ so3.real_spherical_harmonics(l, r)[..., None])[..., 0]
        # dtype_tol: Y and D entries are O(1); float32 errors observed ~1e-6 at l = 6
        torch.testing.assert_close(lhs, rhs, rtol=0, atol=tol)


def test_wigner_D_is_orthogonal_representation(dtype_tol):
    dtype, tol = dtype_tol
    r1, r2 = _rand_rot(40, seed=3, dtype=dtype), _rand_rot(40, seed=4, dtype=dtype)
    for l in L_TEST:
        d1, d2 = so3.wigner_D(l, r1), so3.wigner_D(l, r2)
        eye = torch.eye(2 * l + 1, dtype=dtype)
        # dtype_tol: products of O(1) orthogonal matrices of size <= 13
        torch.testing.assert_close(so3.wigner_D(l, r1 @ r2), d1 @ d2, rtol=0, atol=tol)
        torch.testing.assert_close(so3.wigner_D(l, r1.transpose(-1, -2)), d1.transpose(-1, -2), rtol=0, atol=tol)
        torch.testing.assert_close(d1 @ d1.transpose(-1, -2), eye.expand_as(d1), rtol=0, atol=tol)
        torch.testing.assert_close(so3.wigner_D(l, torch.eye(3, dtype=dtype)), eye, rtol=0, atol=tol)


def test_wigner_D1_is_permuted_cartesian_rotation(dtype_tol):
    dtype, tol = dtype_tol
    rot = _rand_rot(20, seed=5, dtype=dtype)
    perm = torch.tensor([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=dtype)  # (x, y, z) -> (y, z, x)
    # dtype_tol: same rotation, only rounding of the angle extraction differs
    torch.testing.assert_close(so3.wigner_D(1, rot), perm @ rot @ perm.T, rtol=0, atol=tol)


@pytest.fixture
def default_float64():
    """e3nn 0.6.0 builds its so(3) generators in torch's default dtype: its float64 D_from_matrix is only
    float32-accurate (~1e-6) unless the default is float64. Set it for one test and restore it."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_wigner_D_agrees_with_e3nn(default_float64):
    from e3nn import o3

    rot = _rand_rot(30, seed=6)
    for l in L_TEST:
        q = torch.from_numpy(so3.change_of_basis(l))
        d_e3nn = o3.Irrep(l, 1).D_from_matrix(rot)
        # 1e-10: e3nn goes through matrix exponentials and angles (observed ~1e-13), ours through closed forms
        torch.testing.assert_close(so3.wigner_D(l, rot), q @ d_e3nn @ q.T, rtol=0, atol=1e-10)


def test_wigner_D_gradient_exact_at_gimbal_lock():
    """d D / d omega for R = exp([omega]_x) R0 matches finite differences, also where beta = 0 or pi."""

    def skew(w):
        z = torch.zeros_like(w[0])
        return torch.stack(
            [torch.stack([z, -w[2], w[1]]), torch.stack([w[2], z, -w[0]]), torch.stack([-w[1], w[0], z])]
        )

    weights = torch.randn(13, 13, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for r0 in _rand_rot(2, seed=8):  # 2 random + identity, beta = pi, beta = 0, branch boundary, Rx(90)

        def f(w, r0=r0):
            return (so3.wigner_D(6, torch.linalg.matrix_exp(skew(w)) @ r0) * weights).sum()

        w0 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        # gradcheck default tolerances (atol 1e-5, rtol 1e-3) against central differences in float64
        assert torch.autograd.gradcheck(f, (w0,))


def test_wigner_D_rejects_bad_input():
    with pytest.raises(ValueError, match="rotation"):
        so3.wigner_D(2, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="rotation"):
        so3.wigner_D(2, np.eye(3))
    with pytest.raises(ValueError, match=r"\bl\b"):
        so3.wigner_D(-1, torch.eye(3))
    with pytest.raises(ValueError, match=r"\bl\b"):
        so3.wigner_D(1.0, torch.eye(3))
    with pytest.raises(ValueError, match="vectors"):
        so3.real_spherical_harmonics(1, np.zeros((4, 2)))


# --------------------------------------------------------------------------------------------------
# Edge frames and the SO(2) structure


def test_edge_rotation_maps_edges_to_z(dtype_tol):
    dtype, tol = dtype_tol
    g = torch.Generator().manual_seed(9)
    v = torch.randn(200, 3, generator=g, dtype=torch.float64) * 3.0
    special = torch.tensor(
        [[0, 0, 1.0], [0, 0, -2.0], [1e-9, 0, -1], [0, 1e-9, -1], [-1e-12, 3e-12, -1], [1e-9, 0, 1], [1, 0, 0]]
        + [[1e-20, 0, -1], [1e-30, -1e-30, -1], [3e-4, -2e-4, -1]],  # rho^2 under/overflow in float32
        dtype=torch.float64,
    )
    v = torch.cat([v, special]).to(dtype)
    rot = so3.edge_rotation(v)
    assert torch.isfinite(rot).all()
    u = v / v.norm(dim=-1, keepdim=True)
    ez = torch.zeros_like(u)
    ez[:, 2] = 1
    eye = torch.eye(3, dtype=dtype).expand_as(rot)
    # dtype_tol: O(1) entries, a few flops; near -z the (1-z)/rho^2 form keeps this uniform
    torch.testing.assert_close((rot @ u[..., None])[..., 0], ez, rtol=0, atol=tol)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye, rtol=0, atol=tol)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(len(v), dtype=dtype), rtol=0, atol=tol)
    # documented special cases: +z -> identity, -z -> diag(1, -1, -1); deterministic (no random roll)
    torch.testing.assert_close(rot[200], torch.eye(3, dtype=dtype), rtol=0, atol=0)
    torch.testing.assert_close(rot[201], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype)), rtol=0, atol=0)
    torch.testing.assert_close(so3.edge_rotation(v), rot, rtol=0, atol=0)


def test_edge_rotation_gradient_finite_and_zero_vector_rejected():
    v = torch.tensor([[0, 0, 1.0], [0, 0, -1.0], [0.1, 0.2, -0.9], [1.0, -1.0, 0.0]], requires_grad=True)
    so3.edge_rotation(v).sum().backward()
    assert torch.isfinite(v.grad).all()
    # smooth (gradcheck: default tolerances vs central differences, float64) at +z, near -z, generic
    for p in ([0.0, 0.0, 2.0], [1e-3, -2e-3, -1.0], [0.3, -0.4, 0.1], [0.5, 0.2, -0.6]):
        assert torch.autograd.gradcheck(
            so3.edge_rotation, (torch.tensor([p], dtype=torch.float64, requires_grad=True),)
        )
    with pytest.raises(ValueError, match="zero-length"):
        so3.edge_rotation(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="vectors"):
        so3.edge_rotation(torch.zeros(3, 2))


def test_edge_frame_harmonics_only_m0():
    """D(R_e) Y(v) = Y(R_e v) = Y(e_z): in the edge frame the edge direction has only m = 0 components."""
    v = torch.randn(50, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    rot = so3.edge_rotation(v)
    for l in L_TEST:
        y = (so3.wigner_D(l, rot) @ so3.real_spherical_harmonics(l, v)[..., None])[..., 0]
        expect = torch.zeros_like(y)
        expect[:, l] = np.sqrt((2 * l + 1) / (4 * np.pi))
        torch.testing.assert_close(y, expect, rtol=0, atol=1e-12)  # float64, O(1) values


def test_z_rotation_acts_on_m_pairs(dtype_tol):
    dtype, tol = dtype_tol
    l_max = 6
    tables = so3.m_index_tables(l_max)
    n = (l_max + 1) ** 2
    # the tables cover every component exactly once; p_z (position 2 of l = 1) is m = 0
    allidx = np.concatenate(
        [tables.plus[0]] + [np.concatenate([p, q]) for p, q in zip(tables.plus[1:], tables.minus[1:])]
    )
    np.testing.assert_array_equal(np.sort(allidx), np.arange(n))
    assert 2 in tables.plus[0] and list(tables.l[0]) == list(range(l_max + 1))
    np.testing.assert_array_equal(tables.plus[1], [3, 7, 13, 21, 31, 43])
    np.testing.assert_array_equal(tables.minus[1], [1, 5, 11, 19, 29, 41])

    x = torch.randn(n, generator=torch.Generator().manual_seed(11), dtype=torch.float64).to(dtype)
    for phi in (0.3, -2.1, np.pi):
        rz = _rz(phi).to(dtype)
        xr = torch.cat([so3.wigner_D(l, rz) @ x[l * l : (l + 1) ** 2] for l in range(l_max + 1)])
        # dtype_tol: O(1) values, one rotation
        torch.testing.assert_close(xr[tables.plus[0]], x[tables.plus[0]], rtol=0, atol=tol)
        for m in range(1, l_max + 1):
            p, q = tables.plus[m], tables.minus[m]
            c, s = np.cos(m * phi), np.sin(m * phi)
            torch.testing.assert_close(xr[p], c * x[p] - s * x[q], rtol=0, atol=tol)
            torch.testing.assert_close(xr[q], s * x[p] + c * x[q], rtol=0, atol=tol)


def test_m_index_tables_m_max():
    t = so3.m_index_tables(4, m_max=2)
    assert len(t.plus) == 3 and list(t.l[2]) == [2, 3, 4]
    np.testing.assert_array_equal(t.minus[2], [4, 10, 18])
    with pytest.raises(ValueError, match="m_max"):
        so3.m_index_tables(2, m_max=3)


# --------------------------------------------------------------------------------------------------
# Clebsch-Gordan coupling

PAIRS = [(l1, l2) for l1 in range(4) for l2 in range(4)] + [(4, 4), (4, 2), (1, 4), (4, 0)]


@pytest.mark.parametrize("l1,l2", PAIRS)
def test_cg_equivariance(l1, l2, dtype_tol):
    dtype, tol = dtype_tol
    g = torch.Generator().manual_seed(100 * l1 + l2)
    rot = _rand_rot(8, seed=12 + l1 + 10 * l2, dtype=dtype)
    block = torch.randn(rot.shape[0], 2 * l1 + 1, 2 * l2 + 1, generator=g, dtype=torch.float64).to(dtype)
    rotated = so3.wigner_D(l1, rot) @ block @ so3.wigner_D(l2, rot).transpose(-1, -2)
    c, c_rot = so3.couple(block, l1, l2), so3.couple(rotated, l1, l2)
    start = 0
    for L in so3.irreps_of_pair(l1, l2):
        sl = slice(start, start + 2 * L + 1)
        # dtype_tol: O(1) random entries through three O(1) orthogonal maps of size <= 81
        torch.testing.assert_close(c_rot[:, sl], (so3.wigner_D(L, rot) @ c[:, sl, None])[..., 0], rtol=0, atol=4 * tol)
        cg = torch.from_numpy(so3.clebsch_gordan(l1, l2, L)).to(dtype)
        torch.testing.assert_close(c[:, sl], torch.einsum("Mab,nab->nM", cg, block), rtol=0, atol=tol)
        start += 2 * L + 1
    assert start == (2 * l1 + 1) * (2 * l2 + 1)


@pytest.mark.parametrize("l1,l2", PAIRS)
def test_cg_stacked_orthogonal_and_round_trip(l1, l2):
    u = so3.coupling_matrix(l1, l2)
    n = (2 * l1 + 1) * (2 * l2 + 1)
    # float64 constants: orthogonal to 1e-12 (observed ~1e-15)
    np.testing.assert_allclose(u @ u.T, np.eye(n), atol=1e-12)
    b = np.random.default_rng(l1 * 10 + l2).normal(size=(5, 3, 2 * l1 + 1, 2 * l2 + 1))
    c = so3.couple(b, l1, l2)
    assert c.shape == (5, 3, n)
    np.testing.assert_allclose(so3.uncouple(c, l1, l2), b, rtol=0, atol=1e-12)  # round trip, float64
    bt = torch.from_numpy(b)
    torch.testing.assert_close(so3.uncouple(so3.couple(bt, l1, l2), l1, l2), bt, rtol=0, atol=1e-12)
    np.testing.assert_allclose(so3.couple(bt, l1, l2).numpy(), c, rtol=0, atol=1e-13)  # numpy == torch path


def test_cg_sign_convention_and_known_values():
    for l in range(5):
        np.testing.assert_allclose(so3.coupling_matrix(l, 0), np.eye(2 * l + 1), atol=1e-13)
        np.testing.assert_allclose(so3.coupling_matrix(0, l), np.eye(2 * l + 1), atol=1e-13)
        b = np.random.default_rng(l).normal(size=(2 * l + 1, 2 * l + 1))
        # L = 0 of an (l, l) block is +trace / sqrt(2l+1): exact up to rounding, 1e-13
        np.testing.assert_allclose(so3.couple(b, l, l)[0], np.trace(b) / np.sqrt(2 * l + 1), atol=1e-13)
    # (1, 1) -> L = 1 is the cross product (a x b) / sqrt(2) in (y, z, x) order
    a, b = np.array([0.3, -1.0, 2.0]), np.array([1.5, 0.2, -0.7])  # (x, y, z)
    perm = [1, 2, 0]
    c1 = so3.couple(np.outer(a[perm], b[perm]), 1, 1)[1:4]
    np.testing.assert_allclose(c1, np.cross(a, b)[perm] / np.sqrt(2), atol=1e-14)
    with pytest.raises(ValueError, match="L must be"):
        so3.clebsch_gordan(1, 1, 3)


def test_irreps_helpers():
    from e3nn import o3

    assert so3.irreps_of_pair(2, 1) == [1, 2, 3]
    assert so3.irreps_of_pair(0, 3) == [3]
    assert so3.pair_irreps(1, 1) == "1x0e+1x1e+1x2e"
    assert so3.pair_irreps(1, 2) == "1x1o+1x2o+1x3o"
    assert so3.irreps_string([0, 2, 2], "o") == "1x0o+1x2o+1x2o"
    for l1, l2 in PAIRS:
        assert o3.Irreps(so3.pair_irreps(l1, l2)).dim == (2 * l1 + 1) * (2 * l2 + 1)
    with pytest.raises(ValueError, match="parity"):
        so3.irreps_string([0], 0)
    with pytest.raises(ValueError, match="block"):
        so3.couple(np.zeros((3, 4)), 1, 1)
    with pytest.raises(ValueError, match="coupled"):
        so3.uncouple(np.zeros(8), 1, 1)
