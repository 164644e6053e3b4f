"""One reader per file format: header checks (format and version), errors naming file and field, and the
periodic geometry shared by the rooms (exact minimum image on a strongly skewed cell)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.basis import ElementBasis, orbital_table
from hamforge.geometry import lattice, minimum_image
from hamforge.graph import build_targets, coverage_report, load_structure_graph
from hamforge.io import (
    FileFormatError,
    MatrixData,
    MatrixFileError,
    PartitionFileError,
    StructureFileError,
    TargetsFileError,
    read_matrix_file,
    read_partitions,
    read_targets_file,
    write_matrix_file,
    write_targets_file,
)
from hamforge.partition import run_partition
from hamforge.stages import write_partition_outputs

# Strongly skewed triclinic cell: the rounded-fractional-coordinate minimum image is wrong for many pairs.
SKEWED = np.array([[7.0, 0.0, 0.0], [6.3, 1.9, 0.0], [3.1, 1.4, 2.6]])
BASIS = {"Si": ElementBasis(element="Si", name="SZV-MOLOPT-SR-GTH", shells=(0, 1))}


def _matrix_data(n=10, cell=SKEWED, seed=0, pbc=(True, True, True)) -> MatrixData:
    """A small structure with a dense random symmetric H (every block non-zero) and a diagonally dominant S."""
    rng = np.random.default_rng(seed)
    x = np.zeros((0, 3))
    while len(x) < n:  # random atoms at least 1 A apart (minimum image): a structure the readers accept
        c = rng.uniform(0, 1, 3) @ cell
        if not len(x) or np.linalg.norm(minimum_image(x - c, cell, pbc), axis=1).min() > 1.0:
            x = np.vstack([x, c])
    kinds = np.array(["Si"] * n, dtype=object)
    norb = orbital_table(kinds, BASIS).n_orbitals
    h = rng.normal(size=(norb, norb))
    s = rng.normal(size=(norb, norb)) * 0.01
    return MatrixData(
        numbers=np.full(n, 14),
        positions=x,
        cell=cell,
        pbc=np.array(pbc),
        kinds=kinds,
        basis=BASIS,
        H=sp.csr_matrix(h + h.T),
        S=sp.csr_matrix(s + s.T + np.eye(norb) * norb * 0.05),
    )


@pytest.fixture
def files(tmp_path):
    data = _matrix_data()
    write_matrix_file(tmp_path / "m.h5", data)
    t = build_targets(data, 4.0)
    write_targets_file(tmp_path / "t.h5", t, data)
    sg = read_targets_file(tmp_path / "t.h5", graph_only=True)
    res = run_partition(sg.nl, sg.positions, "lownn", 2, 1)
    write_partition_outputs(res, sg.nl, sg.positions, tmp_path / "p.h5")
    return {
        "matrix": (tmp_path / "m.h5", read_matrix_file, MatrixFileError),
        "targets": (tmp_path / "t.h5", read_targets_file, TargetsFileError),
        "partition": (tmp_path / "p.h5", read_partitions, PartitionFileError),
    }


@pytest.mark.parametrize("kind", ["matrix", "targets", "partition"])
def test_unknown_version_names_file_and_version(files, kind):
    path, read, error = files[kind]
    read(path)  # the untouched file reads
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 99
    with pytest.raises(error, match=rf"{path.name}: version: unsupported .* version 99"):
        read(path)
    with h5py.File(path, "a") as f:
        f.attrs["version"] = "1"  # a string is not a version, even when it spells one
    with pytest.raises(error, match=rf"{path.name}: version: attribute must be an integer"):
        read(path)
    with h5py.File(path, "a") as f:
        del f.attrs["version"]
    with pytest.raises(error, match=rf"{path.name}: version: missing"):
        read(path)


@pytest.mark.parametrize("kind", ["matrix", "targets", "partition"])
def test_wrong_format_and_bad_provenance_name_the_field(files, kind):
    path, read, error = files[kind]
    with h5py.File(path, "a") as f:
        f.attrs["provenance"] = "{not json"
    with pytest.raises(error, match=rf"{path.name}: provenance: not valid JSON"):
        read(path)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = "hamforge.other"
    with pytest.raises(error, match=rf"{path.name}: format: attribute is 'hamforge.other'"):
        read(path)


def test_each_format_has_its_own_error_class(files):
    """A bad targets file is a TargetsFileError, not a MatrixFileError; all are FileFormatError (ValueError)."""
    assert not issubclass(TargetsFileError, MatrixFileError) and not issubclass(PartitionFileError, MatrixFileError)
    path, read, _ = files["targets"]
    with pytest.raises(FileFormatError) as info:
        read_matrix_file(path)
    assert isinstance(info.value, MatrixFileError) and "hamforge.matrices" in str(info.value)
    with pytest.raises(TargetsFileError):
        read_targets_file(files["matrix"][0])


def test_zero_cell_and_out_of_range_indices_name_file_and_field(files):
    path = files["matrix"][0]
    with h5py.File(path, "a") as f:
        f["structure/cell"][...] = 0.0
    with pytest.raises(MatrixFileError, match=r"m\.h5: /structure/cell: .*zero or linearly dependent"):
        read_matrix_file(path)
    path = files["targets"][0]
    with h5py.File(path, "a") as f:
        ei = f["graph/edge_index"][()]
        ei[1, 0] = 10_000
        f["graph/edge_index"][...] = ei
    with pytest.raises(TargetsFileError, match=r"t\.h5: /graph/edge_index: atom ids outside"):
        read_targets_file(path)


def test_coincident_atoms_in_a_matrix_file_name_the_file(files):
    path = files["matrix"][0]
    with h5py.File(path, "a") as f:
        x = f["structure/positions"][()]
        x[1] = x[0] + 0.1
        f["structure/positions"][...] = x
    with pytest.raises(MatrixFileError, match=r"m\.h5: atoms 1 and 2 are 0\.173 Angstrom apart"):
        read_matrix_file(path)


def test_graph_only_reader_equals_full_reader_graph(files):
    path = files["targets"][0]
    full, graph = read_targets_file(path), read_targets_file(path, graph_only=True)
    for name in ("edge_index", "shift", "vec", "dist"):
        np.testing.assert_array_equal(getattr(full.nl, name), getattr(graph.nl, name))
    assert graph.kinds == full.kinds and np.array_equal(graph.atom_kind, full.atom_kind)
    assert load_structure_graph(path).nl.n_edges == full.nl.n_edges  # stored graph used as is


def test_structure_files_errors(tmp_path):
    with pytest.raises(StructureFileError, match="no such structure file"):
        load_structure_graph(tmp_path / "missing.extxyz", 3.0)
    (tmp_path / "junk.cif").write_text("not a cif\n")
    with pytest.raises(StructureFileError, match=r"junk\.cif: ASE cannot read"):
        load_structure_graph(tmp_path / "junk.cif", 3.0)


def _brute_force_min_image(d, cell):
    """Shortest |d + R @ cell| by enumerating every R that can beat the rounded guess (a rigorous bound)."""
    lat = lattice(cell, [True] * 3)
    f = d @ lat.inverse
    guess = np.linalg.norm((f - np.round(f)) @ cell, axis=1)
    out = np.empty(len(d))
    for k, (v, g) in enumerate(zip(d, guess)):
        # |v + R@cell| <= g requires |(v @ inv + R)_a| <= g / h_a, so R_a lies in a bounded integer range.
        fv = v @ lat.inverse
        ranges = [
            np.arange(np.floor(-fv[a] - g / lat.heights[a]), np.ceil(-fv[a] + g / lat.heights[a]) + 1) for a in range(3)
        ]
        grid = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)
        out[k] = np.linalg.norm(v + grid @ cell, axis=1).min()
    return out


def test_minimum_image_is_exact_on_a_strongly_skewed_cell():
    rng = np.random.default_rng(3)
    d = rng.uniform(-20, 20, (400, 3))
    exact = _brute_force_min_image(d, SKEWED)
    got = np.linalg.norm(minimum_image(d, SKEWED, [True] * 3), axis=1)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12)  # same lattice vector: rounding only
    f = d @ np.linalg.inv(SKEWED)
    rounded = np.linalg.norm((f - np.round(f)) @ SKEWED, axis=1)
    assert np.sum(rounded > exact + 1e-6) > 20  # the shortcut the coverage report used is wrong here
    # non-periodic axes are never shifted
    v = minimum_image(d, SKEWED, [True, False, False])
    np.testing.assert_allclose((v - d) @ np.linalg.inv(SKEWED)[:, 1:], 0.0, atol=1e-9)


def test_coverage_report_on_skewed_cell_equals_brute_force():
    data = _matrix_data(n=12)
    t = build_targets(data, 4.0)
    _, blocks = coverage_report(data, t)
    assert len(blocks) == 12 * 11  # every off-site block of the dense H
    d = data.positions[blocks["atom_j"].to_numpy()] - data.positions[blocks["atom_i"].to_numpy()]
    np.testing.assert_allclose(
        blocks["min_image_distance"].to_numpy(), _brute_force_min_image(d, SKEWED), rtol=0, atol=1e-12
    )
    # covered <=> the pair has an edge <=> its minimum-image distance is within r_cut
    np.testing.assert_array_equal(blocks["covered"].to_numpy(), blocks["min_image_distance"].to_numpy() <= 4.0)
