"""The transport device's tiling keeps kinds (hamforge.stages.tile_snapshot_file, rule tile_snapshot)."""

from __future__ import annotations

import numpy as np


def test_tiling_a_snapshot_keeps_ghost_and_dopant_kinds(tmp_path):
    """The transport device of a material with vacancies: the tiled snapshot must keep the ghost kind (atomic
    number 0) and dopant kinds, or its DFT reference would put real atoms where the ghosts were (issue 23)."""
    import ase
    import ase.io
    from hamforge.io import read_structure
    from hamforge.stages import tile_snapshot_file

    atoms = ase.Atoms("Ge3Sb", positions=[[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 2]], cell=np.eye(3) * 4, pbc=True)
    atoms.numbers[1] = 0  # a ghost vacancy site
    atoms.new_array("kinds", np.array(["Ge", "Ge_vac", "Ge", "Sb_dop"]))
    ase.io.write(tmp_path / "f.extxyz", atoms, format="extxyz")
    s = tile_snapshot_file(tmp_path / "f.extxyz", (3, 1, 1), tmp_path / "t.extxyz")
    back = read_structure(tmp_path / "t.extxyz")
    assert back.kinds.tolist() == ["Ge", "Ge_vac", "Ge", "Sb_dop"] * 3 == s.kinds.tolist()
    assert back.numbers.tolist() == [32, 0, 32, 51] * 3
    np.testing.assert_allclose(back.positions[4], [4.0, 0, 0])  # copy-major: copy 1 of atom 0
