"""Regenerate the CP2K fixtures in tests/data/cp2k/ with real CP2K runs (the project's own code paths).

    python tests/data/make_cp2k_fixtures.py [--only NAME ...] [--tasks 2]

Each fixture directory holds what a user's run directory would hold: the CP2K input, the KS and S CSR
files CP2K wrote, and cp2k.out (its MO eigenvalues are the reference). Cases:

- ``hfo2_szv``: 12-atom monoclinic HfO2, SZV-MOLOPT-SR-GTH on Hf (s, s, p, d) and O (s, p), text CSR
  (full matrices, FILENAME =KS.csr). Cell ~5 A, smaller than 2 r_cut: periodic images are folded.
- ``hfo2_dzvp_rot0`` / ``hfo2_dzvp_rot1``: the same structure with DZVP-MOLOPT-SR-GTH on Hf (up to an f
  shell) and SZV on O, unrotated and rigidly rotated (cell and positions), binary upper-triangular CSR with
  CP2K's default file naming. Tight screening (EPS_DEFAULT 1e-12, EPS_PPL 1e-10, EPS_PPNL 1e-14) so that the
  rotated run reproduces the unrotated one to ~1e-9 Ha.
- ``si_szv`` / ``si_dzvp``: an 8-atom diamond Si cell (slightly rattled), SZV-MOLOPT-SR-GTH (s, p; text CSR)
  and DZVP-MOLOPT-SR-GTH (s, s, p, p, d; binary upper-triangular CSR): the overlap references for s, p and d
  shells in a cell much smaller than the overlap range (tests/test_overlap.py).
Runtime: a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hamforge.dft import (
    CP2KSettings,
    KindSettings,
    cp2k_input_schema,
    cp2k_input_tree,
    render_cp2k_input,
    run_cp2k,
)

HERE = Path(__file__).resolve().parent / "cp2k"

# A fixed proper rotation (axis (1, 2, 3)/|.|, angle 0.7 rad) used for the rotated fixture.
ROTATION_AXIS = np.array([1.0, 2.0, 3.0])
ROTATION_ANGLE = 0.7


def rotation_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' formula: rotation by ``angle`` (rad) about ``axis``, acting as x' = R @ x."""
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def monoclinic_hfo2():
    """Monoclinic HfO2 (P2_1/c, 12 atoms), experimental lattice, slightly rattled (seeded) to lift degeneracy."""
    from ase.spacegroup import crystal

    atoms = crystal(
        ["Hf", "O", "O"],
        basis=[(0.2759, 0.0412, 0.2078), (0.0742, 0.3316, 0.3461), (0.4488, 0.7581, 0.4795)],
        spacegroup=14,
        cellpar=[5.1170, 5.1754, 5.2915, 90.0, 99.216, 90.0],
    )
    atoms.rattle(stdev=0.02, seed=3)
    return atoms


def diamond_si():
    """8-atom conventional diamond Si cell (a = 5.431 A), rattled (seeded) so that no block is symmetric by accident."""
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(stdev=0.03, seed=5)
    return atoms


def si_settings(basis: str) -> CP2KSettings:
    return CP2KSettings(
        kinds={"Si": KindSettings("Si", basis, "GTH-PBE-q4")},
        cutoff_ry=200.0,
        rel_cutoff_ry=30.0,
        smearing_temperature_k=300.0,
        added_mos=20,
        eps_scf=1e-8,
    )


def settings(hf_basis: str, csr_extra: dict | None = None) -> CP2KSettings:
    return CP2KSettings(
        kinds={
            "Hf": KindSettings("Hf", hf_basis, "GTH-PBE-q12"),
            "O": KindSettings("O", "SZV-MOLOPT-SR-GTH", "GTH-PBE-q6"),
        },
        cutoff_ry=200.0,
        rel_cutoff_ry=30.0,
        smearing_temperature_k=300.0,
        added_mos=20,
        eps_scf=1e-8,
    )


def write_case(name: str, atoms, st: CP2KSettings, *, binary_upper_default_names: bool, tasks: int) -> None:
    schema = cp2k_input_schema()
    tree = cp2k_input_tree(atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, st)
    if binary_upper_default_names:
        prn = tree["+force_eval"][0]["+dft"]["+print"]
        for key in ("+ks_csr_write", "+s_csr_write"):
            prn[key] = {"binary": True, "upper_triangular": True}
    text = render_cp2k_input(tree, schema)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "cp2k.inp"
        inp.write_text(text)
        run_cp2k(inp, launcher="/usr/bin/mpirun --allow-run-as-root -np {tasks}", tasks=tasks)
        dest = HERE / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for f in sorted(Path(tmp).iterdir()):
            if f.suffix in (".inp", ".csr", ".out"):
                shutil.copy(f, dest / f.name)
    print(f"wrote {dest}: {sorted(p.name for p in dest.iterdir())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--tasks", type=int, default=2)
    args = ap.parse_args()
    base = monoclinic_hfo2()
    rot = base.copy()
    R = rotation_matrix(ROTATION_AXIS, ROTATION_ANGLE)
    rot.set_cell(base.cell.array @ R.T, scale_atoms=False)
    rot.positions = base.positions @ R.T
    cases = {
        "hfo2_szv": (base, settings("SZV-MOLOPT-SR-GTH"), False),
        "hfo2_dzvp_rot0": (base, settings("DZVP-MOLOPT-SR-GTH"), True),
        "hfo2_dzvp_rot1": (rot, settings("DZVP-MOLOPT-SR-GTH"), True),
        "si_szv": (diamond_si(), si_settings("SZV-MOLOPT-SR-GTH"), False),
        "si_dzvp": (diamond_si(), si_settings("DZVP-MOLOPT-SR-GTH"), True),
    }
    for name, (atoms, st, binary) in cases.items():
        if args.only and name not in args.only:
            continue
        write_case(name, atoms, st, binary_upper_default_names=binary, tasks=args.tasks)


if __name__ == "__main__":
    main()
