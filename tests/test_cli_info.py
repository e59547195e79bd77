"""``minigrad info``, ``minigrad bench`` and ``minigrad data check|convert``."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from minigrad.app import cli
from minigrad.app.tools import data as datatool
from minigrad.app.tools import info as infotool
from minigrad.data import CIFAR10

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, cwd=REPO, **env):
    return subprocess.run(
        [sys.executable, "-m", "minigrad", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


# ----------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["info", "bench", "data"])
def test_help_shows_examples(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: minigrad {command}" in out
    assert "examples:" in out and f"minigrad {command}" in out.split("examples:")[1]


def test_top_level_help_lists_the_tools(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("info", "bench", "data"):
        assert command in out


def test_tools_import_neither_torch_nor_cupy():
    code = (
        "import sys\n"
        "import minigrad.app.tools.info, minigrad.app.tools.bench, minigrad.app.tools.data\n"
        "minigrad.app.tools.info.collect()\n"
        "assert 'torch' not in sys.modules and 'cupy' not in sys.modules\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- info
def test_info_reports_build_kernels_devices_versions(capsys):
    data = infotool.collect()
    import minigrad.kernels as kernels

    assert data["native"]["_C"] == (kernels.native.load_C() is not None)
    assert set(data["kernels"]["available"]) == set(kernels.OPS)
    assert data["kernels"]["default"]["conv2d"]["cpu"] in data["kernels"]["available"]["conv2d"]
    assert data["versions"]["numpy"] == np.__version__
    assert data["devices"]["cpu"]["cores"] >= 1
    assert cli.main(["info", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["native"]["_C"] == data["native"]["_C"]
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    for heading in ("native kernels:", "build record", "devices:", "kernels", "versions:"):
        assert heading in text


# ----------------------------------------------------------------------------- bench
def test_bench_rejects_unknown_sections(capsys):
    assert cli.main(["bench", "--only", "conv,nope"]) == 2
    assert "unknown sections ['nope']" in capsys.readouterr().err


@pytest.mark.bench
def test_bench_quick_writes_only_its_run_folder(tmp_path):
    """A quick run (minigrad only) writes bench.md/json/png into the folder it names, and
    nothing into the working directory."""
    out = tmp_path / "run"
    r = _run("bench", "--quick", "--only", "pool", "--no-torch", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(os.listdir(tmp_path)) == ["run"]
    report = json.loads((out / "bench.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert "maxpool2d fwd LeNet pool1 N=32" in names and not report["errors"]
    assert all("numpy" in row["times"] for row in report["rows"])
    assert "| maxpool2d fwd LeNet pool1 N=32 |" in (out / "bench.md").read_text()


def test_bench_default_folder_is_a_new_run_folder(tmp_path, monkeypatch):
    from minigrad.app.tools import bench

    made = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        bench,
        "_run_worker",
        lambda fw, spec, out: made.append(out) or {"results": {}, "errors": [], "versions": {}},
    )
    assert bench.main(["--only", "pool", "--no-torch"]) == 0
    assert made and os.path.dirname(made[0]) == "runs"
    assert os.path.basename(made[0]).startswith("bench-")
    assert (tmp_path / made[0] / "bench.md").exists()


# ----------------------------------------------------------------------------- data
def _image_tree(root, per_class=(1, 1), size=32, classes=datatool.CLASSES):
    """root/{train,test}/<class>/<i>.png with distinct, known pixels."""
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    pixels = {}
    for split, n in zip(("train", "test"), per_class):
        for cls in classes:
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i:04d}.png")
                pixels[(split, cls.lower(), f"{i:04d}")] = arr
    return pixels


def test_convert_then_check_then_load(tmp_path, capsys):
    pixels = _image_tree(tmp_path / "imgs")
    out = tmp_path / "data"
    assert (
        cli.main(["data", "convert", str(tmp_path / "imgs"), "--out", str(out), "--any-size"]) == 0
    )
    assert "wrote 10 train and 10 test images" in capsys.readouterr().out
    assert cli.main(["data", "check", str(out), "--any-size"]) == 0
    report = capsys.readouterr().out
    assert "OK" in report and "10 train + 10 test images" in report
    # The batches hold the exact PNG pixels under the official label of their class folder.
    ds = CIFAR10(out, train=True, _expected_counts={"train_batch": 2, "test": 10})
    with open(out / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        names = pickle.load(f, encoding="bytes")[b"filenames"]
    for img, label, name in zip(ds.data[:2], ds.targets[:2], names):
        cls, stem = name.decode()[:-4].rsplit("_", 1)
        assert datatool.CLASSES[label] == cls
        np.testing.assert_array_equal(img, pixels[("train", cls, stem)])
    assert sorted(ds.targets.tolist()) == list(range(10))


def test_convert_from_a_tarball_gives_the_same_batches(tmp_path):
    _image_tree(tmp_path / "imgs")
    tar_path = tmp_path / "imgs.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(tmp_path / "imgs", arcname="cifar10")
    datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "a"), any_size=True)
    datatool.convert(str(tar_path), str(tmp_path / "b"), any_size=True)
    for f in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        a = (tmp_path / "a" / "cifar-10-batches-py" / f).read_bytes()
        assert a == (tmp_path / "b" / "cifar-10-batches-py" / f).read_bytes(), f


def test_convert_refuses_wrong_counts_bad_images_unknown_classes_and_overwrites(tmp_path):
    _image_tree(tmp_path / "imgs")
    with pytest.raises(datatool.DataError, match="found 10 train and 10 test images.*--any-size"):
        datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "out"))
    datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "out"), any_size=True)
    with pytest.raises(datatool.DataError, match="already exists.*--force"):
        datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "out"), any_size=True)
    datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "out"), any_size=True, force=True)
    assert os.listdir(tmp_path / "out") == ["cifar-10-batches-py"]  # no scratch left behind

    _image_tree(tmp_path / "big", size=28)
    with pytest.raises(datatool.DataError, match="28x28, CIFAR-10 needs 32x32"):
        datatool.convert(str(tmp_path / "big"), str(tmp_path / "o2"), any_size=True)
    _image_tree(tmp_path / "odd", classes=(*datatool.CLASSES[:9], "zebra"))
    with pytest.raises(datatool.DataError, match="unknown class folder 'zebra'"):
        datatool.convert(str(tmp_path / "odd"), str(tmp_path / "o3"), any_size=True)
    assert not (tmp_path / "o2" / "cifar-10-batches-py").exists()


def test_convert_without_pillow_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(datatool.DataError, match="needs Pillow.*pip install pillow"):
        datatool.convert(str(tmp_path), str(tmp_path / "out"))


def test_check_explains_where_files_go(tmp_path, capsys):
    assert cli.main(["data", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no CIFAR-10 copy" in err and "cifar-10-batches-py" in err
    assert "--download" in err and "minigrad data convert" in err


def test_check_rejects_a_damaged_copy_and_a_partial_one_without_any_size(tmp_path, capsys):
    _image_tree(tmp_path / "imgs")
    datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "d"), any_size=True)
    assert cli.main(["data", "check", str(tmp_path / "d")]) == 2  # 10 images, not 50000
    assert "unusable" in capsys.readouterr().err
    (tmp_path / "d" / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    assert cli.main(["data", "check", str(tmp_path / "d"), "--any-size"]) == 2
    assert "test_batch" in capsys.readouterr().err


def test_check_of_a_tarball_reports_md5_and_writes_nothing(tmp_path, capsys):
    _image_tree(tmp_path / "imgs")
    datatool.convert(str(tmp_path / "imgs"), str(tmp_path / "d"), any_size=True)
    root = tmp_path / "t"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "d" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    assert cli.main(["data", "check", str(root), "--any-size"]) == 0
    out = capsys.readouterr().out
    assert "not the official archive" in out and "MD5" in out
    assert os.listdir(root) == ["cifar-10-python.tar.gz"]
