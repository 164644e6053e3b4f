"""Basis registry: CP2K basis-file parsing and the orbital table (the index authority)."""

import numpy as np
import pytest
from hamforge.basis import BasisError, ElementBasis, orbital_table, read_cp2k_basis, resolve_cp2k_data_file


def test_reads_shells_of_molopt_sets():
    path = resolve_cp2k_data_file("BASIS_MOLOPT")
    assert read_cp2k_basis(path, "Si", "SZV-MOLOPT-SR-GTH").shells == (0, 1)
    hf_szv = read_cp2k_basis(path, "Hf", "SZV-MOLOPT-SR-GTH")
    assert (
        hf_szv.shells == (0, 0, 1, 2) and hf_szv.n_orbitals == 10
    )  # Hf SZV-MOLOPT-SR-GTH: 2 s + 1 p + 1 d shells, 10 orbitals
    hf_dzvp = read_cp2k_basis(path, "Hf", "DZVP-MOLOPT-SR-GTH")
    assert hf_dzvp.shells == (0, 0, 0, 1, 1, 2, 2, 3) and hf_dzvp.l_max == 3
    # aliases on the header line match too
    assert read_cp2k_basis(path, "O", "SZV-MOLOPT-SR-GTH-q6").n_orbitals == 4


def test_multi_set_basis_file_order(tmp_path):
    # two sets: set 1 holds s and p, set 2 holds a d shell: order is set by set, l ascending inside a set
    f = tmp_path / "BASIS_TEST"
    f.write_text(
        "# comment\nX TEST-B\n 2\n 2 0 1 2 1 2\n 1.0 0.1 0.2 0.3\n 0.5 0.1 0.2 0.3\n 3 2 3 1 1 1\n 0.8 1.0 1.0\n"
    )
    b = read_cp2k_basis(f, "X", "TEST-B")
    assert b.shells == (0, 1, 1, 2, 3)
    assert b.n_orbitals == 1 + 3 + 3 + 5 + 7


@pytest.mark.parametrize(
    "text, match",
    [
        ("X TEST-B\n 1\n 2 0 1 2 1\n 1.0 0.1\n 0.5 0.1\n", "shell counts"),
        ("X TEST-B\n 1\n 2 0 1 2 1 1\n 1.0 0.1 0.2\n", "ends early"),
        ("X TEST-B\n 1\n 2 0 1 2 1 1\n 1.0 0.1\n 0.5 0.1 0.2\n", "coefficients"),
    ],
)
def test_malformed_basis_names_file_and_line(tmp_path, text, match):
    f = tmp_path / "BASIS_BAD"
    f.write_text(text)
    with pytest.raises(BasisError, match=match) as err:
        read_cp2k_basis(f, "X", "TEST-B")
    assert str(f) in str(err.value)


def test_missing_basis_or_file():
    path = resolve_cp2k_data_file("BASIS_MOLOPT")
    with pytest.raises(BasisError, match="no basis set 'NOPE'"):
        read_cp2k_basis(path, "Si", "NOPE")
    with pytest.raises(BasisError, match="not found"):
        resolve_cp2k_data_file("NO_SUCH_BASIS_FILE")


def test_orbital_table_mixed_kinds():
    basis = {
        "Hf": ElementBasis("Hf", "SZV", (0, 0, 1, 2)),
        "O": ElementBasis("O", "SZV", (0, 1)),
        "X": ElementBasis("O", "ghost", (0, 1)),
    }
    t = orbital_table(["O", "Hf", "X"], basis)
    assert t.n_orbitals == 4 + 10 + 4
    np.testing.assert_array_equal(t.offset, [0, 4, 14, 18])
    np.testing.assert_array_equal(t.n_orb, [4, 10, 4])
    # CP2K order inside an atom: shells in basis order, m = -l..l
    np.testing.assert_array_equal(t.l[4:14], [0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(t.m[4:14], [0, 0, -1, 0, 1, -2, -1, 0, 1, 2])
    np.testing.assert_array_equal(t.shell[4:14], [0, 1, 2, 2, 2, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(t.atom, np.repeat([0, 1, 2], [4, 10, 4]))
    with pytest.raises(BasisError, match="no basis set given for kind"):
        orbital_table(["Si"], basis)
