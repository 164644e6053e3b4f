"""Transmission against kwant 1.5, an independent scattering solver (wave matching, no Green's functions).

kwant does not build in the main environment (numpy 2): the session fixture builds it once into
``<repo>/.venv-kwant`` (``pip install "numpy<2" "scipy<1.14" tinyarray`` then ``pip install
--no-build-isolation kwant``, ~1.5 min, built by this test) and runs a kwant script there,
exchanging matrices through .npz files. kwant has no overlap matrix: E is folded into the matrix elements
(onsite H - E S, hoppings H - E S) and the scattering problem solved at energy 0.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.validate import layered_device, leads_from_device, transmission
from test_validate_transport import band_channels, random_device, random_lead, tridiagonal

REPO = Path(__file__).resolve().parents[1]
KWANT_VENV = REPO / ".venv-kwant"

KWANT_SCRIPT = r"""
import sys
import numpy as np
import kwant

d = np.load(sys.argv[1])
n, nl = d["H_diag"].shape[1], d["H_diag"].shape[0]
lat = kwant.lattice.chain(a=1, norbs=n)


def onsite(h, s):  # kwant value functions may not have default arguments: close over the blocks
    return lambda site, E: h - E * s


def hopping(h, s):
    return lambda s1, s2, E: h - E * s


syst = kwant.Builder()
for i in range(nl):
    syst[lat(i)] = onsite(d["H_diag"][i], d["S_diag"][i])
for i in range(nl - 1):
    # kwant: syst[a, b] is the matrix element H_ab (b -> a); the conjugate transpose is set automatically
    syst[lat(i), lat(i + 1)] = hopping(d["H_up"][i], d["S_up"][i])
for side, direction in (("L", -1), ("R", 1)):
    lead = kwant.Builder(kwant.TranslationalSymmetry((direction,)))
    lead[lat(0)] = onsite(d[f"{side}_H00"], d[f"{side}_S00"])
    lead[lat(0), lat(1)] = hopping(d[f"{side}_H01"], d[f"{side}_S01"])  # H_{c, c+1}
    syst.attach_lead(lead)
fsyst = syst.finalized()
t = [kwant.smatrix(fsyst, 0.0, params=dict(E=float(e))).transmission(1, 0) for e in d["energies"]]
np.save(sys.argv[2], np.array(t))
"""


def _kwant_works(python: Path) -> bool:
    return (
        python.is_file()
        and subprocess.run([str(python), "-c", "import kwant"], check=False, capture_output=True).returncode == 0
    )


@pytest.fixture(scope="session")
def kwant_python():
    """Python of the separate kwant venv, built on first use (never installs into the main environment)."""
    python = KWANT_VENV / "bin" / "python"
    if not _kwant_works(python):
        steps = [
            [sys.executable, "-m", "venv", str(KWANT_VENV)],
            [str(python), "-m", "pip", "install", "-q", "numpy<2", "scipy<1.14", "tinyarray", "packaging", "cython",
             "setuptools", "wheel"],
            [str(python), "-m", "pip", "install", "-q", "--no-build-isolation", "kwant==1.5.0"],
        ]  # fmt: skip
        for cmd in steps:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.fail(
                    f"building the kwant venv failed at {' '.join(cmd)}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
                )
    assert _kwant_works(python), "kwant venv built but 'import kwant' fails"
    return python


def kwant_transmission(python, tmp_path, dev, left, right, energies):
    np.savez(
        tmp_path / "sys.npz",
        H_diag=np.array(dev.H_diag), S_diag=np.array(dev.S_diag), H_up=np.array(dev.H_up), S_up=np.array(dev.S_up),
        energies=np.asarray(energies),
        **{f"L_{k}": getattr(left, k) for k in ("H00", "S00", "H01", "S01")},
        **{f"R_{k}": getattr(right, k) for k in ("H00", "S00", "H01", "S01")},
    )  # fmt: skip
    script = tmp_path / "kwant_t.py"
    script.write_text(KWANT_SCRIPT)
    proc = subprocess.run([str(python), str(script), str(tmp_path / "sys.npz"), str(tmp_path / "t.npy")],
                          check=False, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "t.npy")


def _safe_energies(leads, energies, margin=0.03):
    """Energies at least ``margin`` Ha from every band extremum of both leads (where T is smooth in eta)."""
    ok = np.ones(len(energies), dtype=bool)
    for lead in leads:
        ok &= band_channels(lead, energies)[1] > margin
    return energies[ok]


@pytest.mark.slow
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("lead_kind", ["explicit", "from_device"])
def test_transmission_matches_kwant(kwant_python, tmp_path, overlap, lead_kind):
    rng = np.random.default_rng(21 + overlap)
    n, nl = 3, 7
    h, s, _ = random_device(rng, [n] * nl, overlap)
    if lead_kind == "explicit":
        left, right = random_lead(rng, n, overlap), random_lead(rng, n, overlap)
    coord = np.repeat(np.arange(nl), n).astype(float)
    dev = layered_device(sp.csr_matrix(h), sp.csr_matrix(s), coord, np.arange(n * nl), thickness=1.0)
    if lead_kind == "from_device":
        left, right = leads_from_device(dev)
    energies = _safe_energies((left, right), np.linspace(-3.5, 3.5, 121))
    assert energies.size > 60
    ours = transmission(dev, energies, 1e-9, left, right).transmission
    ref = kwant_transmission(kwant_python, tmp_path, dev, left, right, energies)
    # eta = 1e-9 Ha: the eta-induced error is ~ 2 eta L / v < 1e-7 away from band edges; kwant is exact
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert np.max(ref) > 0.1 and np.count_nonzero(ref > 1e-3) >= 5  # not a trivially closed device
    print(f"max |T_ours - T_kwant| = {np.max(np.abs(ours - ref)):.2e} over {ref.size} energies")


@pytest.mark.slow
def test_perfect_wire_matches_kwant_channel_count(kwant_python, tmp_path):
    rng = np.random.default_rng(4)
    lead = random_lead(rng, 4, overlap=True)
    h, s, _ = tridiagonal([lead.H00] * 4, [lead.S00] * 4, [lead.H01] * 3, [lead.S01] * 3)
    dev = layered_device(sp.csr_matrix(h), sp.csr_matrix(s), np.repeat(np.arange(4.0), 4), np.arange(16))
    energies = _safe_energies((lead,), np.linspace(-4, 4, 41))
    ref = kwant_transmission(kwant_python, tmp_path, dev, lead, lead, energies)
    np.testing.assert_allclose(ref, band_channels(lead, energies)[0], atol=1e-8)  # kwant's own check
    np.testing.assert_allclose(transmission(dev, energies, 1e-9, lead, lead).transmission, ref, rtol=0, atol=1e-6)
