"""Dataset releases: manifest, data card, verify (changed / missing / extra files) and byte-reproducibility.

The results folder is built from the real CP2K fixture (12-atom HfO2 run) with the real writers (matrix,
targets, partition files), laid out as the workflow lays out results/<material>/.
"""

import argparse
import json
import shutil
from pathlib import Path

import ase
import ase.io
import pytest
from hamforge._cli_release import add_release_parsers
from hamforge.config import config_hash, load_config
from hamforge.dft import parse_cp2k_run
from hamforge.io import (
    ReleaseError,
    file_sha256,
    make_release,
    read_matrix_file,
    verify_release,
    write_matrix_file,
)
from hamforge.stages import make_targets_file

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "cp2k" / "hfo2_dzvp_rot0"
STRUCT = "q0_f00010"


def _partition(targets: Path, out: Path) -> None:
    from hamforge.cli import add_partition_parser

    run_cli(add_partition_parser, ["partition", str(targets), "--parts", "2", "--method", "lownn", "-o", str(out)])


def run_cli(add, argv) -> int:
    ap = argparse.ArgumentParser()
    add(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return int(args.func(args) or 0)


@pytest.fixture(scope="module")
def config():
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    cfg["release"].update(title="HfO2 test set", license="CC0-1.0")
    return cfg


@pytest.fixture(scope="module")
def material_dir(tmp_path_factory):
    """results/a-Si/ with one structure through every stage (content: the HfO2 fixture)."""
    mdir = tmp_path_factory.mktemp("results") / "a-Si"
    data = parse_cp2k_run(DATA, provenance={"material": "a-Si", "structure": STRUCT})
    atoms = ase.Atoms(numbers=data.numbers, positions=data.positions, cell=data.cell, pbc=data.pbc)
    (mdir / "snapshots" / "q0").mkdir(parents=True)
    ase.io.write(mdir / "snapshots" / "q0" / "f00010.extxyz", atoms, format="extxyz")
    write_matrix_file(mdir / "dft" / f"{STRUCT}.h5", data)
    make_targets_file(mdir / "dft" / f"{STRUCT}.h5", 4.0, mdir / "targets" / f"{STRUCT}.h5")
    _partition(mdir / "targets" / f"{STRUCT}.h5", mdir / "partitions" / f"{STRUCT}.h5")
    (mdir / "index").mkdir()
    entry = {"structure": STRUCT, "matrices": f"../dft/{STRUCT}.h5", "targets": f"../targets/{STRUCT}.h5"}
    (mdir / "index" / "q0.json").write_text(json.dumps({"quench": 0, "split": "train", "structures": [entry]}))
    (mdir / "md" / "q0").mkdir(parents=True)
    (mdir / "md" / "q0" / "summary.json").write_text(json.dumps({"quench": 0, "seed": 2083679833}))
    return mdir


@pytest.fixture()
def release(material_dir, config, tmp_path):
    out = tmp_path / "release"
    return out, make_release(material_dir, out, config)


def test_manifest_lists_every_file_with_its_checksum_config_seeds_and_versions(release, config):
    out, manifest = release
    expected = {
        "snapshots/q0/f00010.extxyz",
        f"dft/{STRUCT}.h5",
        f"targets/{STRUCT}.h5",
        f"partitions/{STRUCT}.h5",
        "index/q0.json",
        "config.yaml",
        "README.md",
    }
    assert set(manifest["files"]) == expected  # coverage CSV/PNG and md/ are not part of a release
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == file_sha256(out / rel) and entry["deterministic"] is True
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["config"]["hash"] == config_hash(config)
    assert manifest["config"]["material_hash"] == config_hash(config["materials"]["a-Si"])
    assert manifest["seeds"] == {"decorrelate.seed": 0, "md.quench_seeds.q0": 2083679833, "md.seed": 7, "train.seed": 0}
    sw = manifest["software"]
    assert sw["cp2k"] == "CP2K version 2023.1" or sw["cp2k"].startswith("2023.1")
    assert sw["numpy"] and sw["h5py"] and sw["hamforge"] and sw["snakemake"]
    assert manifest["license"] == "CC0-1.0"
    card = (out / "README.md").read_text()
    assert card.startswith("# HfO2 test set") and "CC0-1.0" in card and "Hartree" in card and "p_y, p_z, p_x" in card
    assert "1 (12 atoms each)" in card and "train 1" in card
    # the released index's relative links still resolve inside the release
    assert (out / "index" / "../dft" / f"{STRUCT}.h5").is_file()


def test_verify_ok_then_one_flipped_byte_is_named(release, capsys):
    out, _ = release
    assert verify_release(out).ok
    assert run_cli(add_release_parsers, ["verify", str(out)]) == 0
    target = out / "dft" / f"{STRUCT}.h5"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    check = verify_release(out)
    assert not check.ok and check.changed == [f"dft/{STRUCT}.h5"] and not check.missing and not check.extra
    capsys.readouterr()
    assert run_cli(add_release_parsers, ["verify", str(out)]) == 1
    assert f"changed: dft/{STRUCT}.h5" in capsys.readouterr().out


def test_verify_names_missing_and_extra_files(release):
    out, _ = release
    (out / "targets" / f"{STRUCT}.h5").unlink()
    (out / "notes.txt").write_text("not in the manifest\n")
    check = verify_release(out)
    assert check.missing == [f"targets/{STRUCT}.h5"] and check.extra == ["notes.txt"] and not check.changed
    assert "missing: targets/" in check.report() and "extra:   notes.txt" in check.report()


def test_same_inputs_give_a_byte_identical_release(material_dir, config, tmp_path):
    a = make_release(material_dir, tmp_path / "a", config)
    b = make_release(material_dir, tmp_path / "b", config)
    assert a == b  # every checksum, and the manifest itself (no dates, no absolute paths)
    assert file_sha256(tmp_path / "a" / "manifest.json") == file_sha256(tmp_path / "b" / "manifest.json")


def test_rerun_of_each_writer_gives_the_same_checksum(material_dir, tmp_path):
    """Matrix, targets and partition writers are byte-reproducible (no HDF5 timestamps, no timings stored)."""
    m = tmp_path / "m.h5"
    write_matrix_file(m, read_matrix_file(material_dir / "dft" / f"{STRUCT}.h5"))
    assert file_sha256(m) == file_sha256(material_dir / "dft" / f"{STRUCT}.h5")
    t = tmp_path / "t.h5"
    make_targets_file(m, 4.0, t)
    assert file_sha256(t) == file_sha256(material_dir / "targets" / f"{STRUCT}.h5")
    p = tmp_path / "p.h5"
    _partition(material_dir / "targets" / f"{STRUCT}.h5", p)  # same input path: the CLI records it
    assert file_sha256(p) == file_sha256(material_dir / "partitions" / f"{STRUCT}.h5")


def test_optional_model_files_are_released_and_marked_non_deterministic(material_dir, config, tmp_path):
    mdir = tmp_path / "a-Si"
    shutil.copytree(material_dir, mdir)
    (mdir / "model").mkdir()
    (mdir / "model" / "checkpoint.pt").write_bytes(b"\x00weights")
    manifest = make_release(mdir, tmp_path / "rel", config)
    entry = manifest["files"]["model/checkpoint.pt"]
    assert entry["deterministic"] is False and "bitwise" in entry["reason"]
    assert manifest["files"][f"dft/{STRUCT}.h5"]["deterministic"] is True


def test_release_errors_name_the_problem(material_dir, config, tmp_path):
    mdir = tmp_path / "a-Si"
    shutil.copytree(material_dir, mdir)
    shutil.rmtree(mdir / "targets")
    with pytest.raises(ReleaseError, match=r"required pattern 'targets/q\*_f\*.h5'"):
        make_release(mdir, tmp_path / "rel", config)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("keep me")
    with pytest.raises(ReleaseError, match="not a hamforge release; refusing"):
        make_release(material_dir, busy, config)
    assert (busy / "thesis.tex").read_text() == "keep me"
    with pytest.raises(ReleaseError, match="no such manifest"):
        verify_release(busy)
    with pytest.raises(ReleaseError, match="no entry 'a-Ge'"):
        make_release(material_dir, tmp_path / "x", config, material="a-Ge")


def test_cli_release_then_rerun_replaces_the_release(material_dir, tmp_path):
    out = tmp_path / "rel"
    argv = ["release", str(material_dir), "--config", str(ROOT / "config" / "smoke.yaml"), "-o", str(out)]
    assert run_cli(add_release_parsers, argv) == 0
    (out / "stale.txt").write_text("from an older release")
    assert run_cli(add_release_parsers, argv) == 0  # an existing release is replaced as a whole
    assert verify_release(out).ok and not (out / "stale.txt").exists()


def _rewrite_manifest(out, fn):
    m = json.loads((out / "manifest.json").read_text())
    fn(m)
    (out / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def test_verify_confines_every_path_to_the_release(release, tmp_path):
    """A released file or the manifest that is a symlink out of the release, and manifest entries with '..' or an
    absolute path, are reported unsafe (issue 22: verify passed them)."""
    out, _ = release
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the release\n")
    target = out / "dft" / f"{STRUCT}.h5"
    target.unlink()
    target.symlink_to(outside)
    _rewrite_manifest(out, lambda m: m["files"].update({"../../etc/hostname": {"sha256": "0" * 64, "bytes": 1}}))
    _rewrite_manifest(out, lambda m: m["files"].update({"/etc/hostname": {"sha256": "0" * 64, "bytes": 1}}))
    check = verify_release(out)
    assert not check.ok
    assert {f"dft/{STRUCT}.h5", "../../etc/hostname", "/etc/hostname"} <= set(check.unsafe)
    assert "unsafe:  ../../etc/hostname" in check.report()
    moved = out / "manifest.real.json"
    (out / "manifest.json").rename(moved)
    (out / "manifest.json").symlink_to(moved)
    assert "manifest.json" in verify_release(out).unsafe


def test_verify_checks_bytes_config_hash_and_seeds(release):
    out, _ = release
    _rewrite_manifest(out, lambda m: m["files"]["config.yaml"].update(bytes=m["files"]["config.yaml"]["bytes"] + 1))
    assert verify_release(out).changed == ["config.yaml"]
    _rewrite_manifest(out, lambda m: m["files"]["config.yaml"].update(bytes=m["files"]["config.yaml"]["bytes"] - 1))
    assert verify_release(out).ok
    _rewrite_manifest(out, lambda m: m["config"].update(hash="0" * 16))
    assert verify_release(out).inconsistent == ["config.hash: does not match the released config.yaml"]
    _rewrite_manifest(out, lambda m: m.update(config={**m["config"], "hash": config_hash_of(out)}))
    key = next(k for k in json.loads((out / "manifest.json").read_text())["seeds"] if not k.startswith("md.quench"))
    _rewrite_manifest(out, lambda m: m["seeds"].update({key: 12345}))
    assert verify_release(out).inconsistent == [
        f"seeds.{key}: 12345 in the manifest, " + repr(seed_in(out, key)) + " in the released files"
    ]


def config_hash_of(out):
    import yaml

    return config_hash(yaml.safe_load((out / "config.yaml").read_text()))


def seed_in(out, key):
    import yaml

    cfg = yaml.safe_load((out / "config.yaml").read_text())
    mat = cfg["materials"][json.loads((out / "manifest.json").read_text())["material"]]
    for part in key.split("."):
        mat = mat[part]
    return mat


def test_release_refuses_files_made_with_another_config_and_dangling_index_entries(material_dir, config, tmp_path):
    """A config other than the one the files were made with (their provenance's config_hash) would publish a data
    card and hashes that do not describe the files; an index naming a file the release lacks would publish a
    dangling link (issue 22)."""
    import copy

    import h5py
    from hamforge.io import ReleaseError

    mdir = tmp_path / "a-Si"
    shutil.copytree(material_dir, mdir)
    dft = mdir / "dft" / f"{STRUCT}.h5"
    with h5py.File(dft, "r+") as f:
        prov = json.loads(f.attrs["provenance"])
        f.attrs["provenance"] = json.dumps({**prov, "config_hash": config_hash(config["materials"]["a-Si"])})
    make_release(mdir, tmp_path / "ok", config)  # the files' own config: fine
    other = copy.deepcopy(config)
    other["materials"]["a-Si"]["decorrelate"]["seed"] = 99
    with pytest.raises(ReleaseError, match=rf"{STRUCT}.h5: provenance config_hash .* another configuration"):
        make_release(mdir, tmp_path / "r1", other)
    index = json.loads((mdir / "index" / "q0.json").read_text())
    index["structures"].append({"structure": "q0_f00020", "matrices": "../dft/q0_f00020.h5"})  # never computed
    (mdir / "index" / "q0.json").write_text(json.dumps(index))
    with pytest.raises(ReleaseError, match=r"q0.json: structures.q0_f00020.matrices: ../dft/q0_f00020.h5 is not in"):
        make_release(mdir, tmp_path / "r2", config)
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
