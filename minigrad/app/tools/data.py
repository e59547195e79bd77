"""``minigrad data check|convert``: put a local CIFAR-10 copy where training finds it.

``minigrad train`` reads CIFAR-10 in the official "python version" layout::

    DATA_DIR/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    (or DATA_DIR/cifar-10-python.tar.gz, which packs that folder)

with ``DATA_DIR`` = ``./data`` unless ``--data-dir`` says otherwise.  Three ways to get it:

* ``minigrad train --download`` fetches the official archive (163 MB, MD5-checked);
* copy an official ``cifar-10-python.tar.gz`` you already have into ``DATA_DIR``;
* ``minigrad data convert SRC`` builds the layout from images sorted into class folders,
  ``SRC/{train,test}/<class>/*.png|jpg`` (a folder, or a .tar/.tar.gz of one), e.g. a copy
  exported from torchvision, Kaggle or Hugging Face.  Needs Pillow.

``minigrad data check`` runs the same structural checks as training (six batch files,
``b'data'`` uint8 (10000, 3072), ``b'labels'`` in 0..9, ten class names, 50,000 + 10,000
images) and says whether a tarball is the official one (MD5).
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import random
import shutil
import sys
import tarfile
import tempfile

import numpy as np

from minigrad.data import cifar10

__all__ = ["CLASSES", "check", "convert", "main", "build_parser"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")
DEFAULT_DIR = "data"
OFFICIAL = {"train": 50000, "test": 10000}

EXAMPLES = """\
examples:
  minigrad data check                      # is there a usable copy in ./data ?
  minigrad data check ~/datasets/cifar10   # a folder holding cifar-10-batches-py/ or the .tar.gz
  minigrad data convert ~/cifar10-png      # SRC/{train,test}/<class>/*.png -> ./data
  minigrad data convert cifar10-jpeg.tar.gz --out /tmp/cifar   # from an archive of that layout
  minigrad train --data-dir /tmp/cifar     # then train on it
"""


class DataError(Exception):
    """A user-facing problem with the data: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- check
def _locate(path: str) -> tuple[str, str | None, str | None]:
    """(root, folder or None, tarball or None) for a data dir or a cifar-10-batches-py dir."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.basename(path.rstrip(os.sep)) == cifar10.FOLDER and os.path.isdir(path):
        root = os.path.dirname(path.rstrip(os.sep))
    elif os.path.isfile(path) and path.endswith((".tar.gz", ".tgz", ".tar")):
        return os.path.dirname(path), None, path
    else:
        root = path
    folder = os.path.join(root, cifar10.FOLDER)
    tarball = os.path.join(root, cifar10.TARBALL)
    return (
        root,
        folder if os.path.isdir(folder) else None,
        tarball if os.path.isfile(tarball) else None,
    )


def _not_found(path: str) -> str:
    return (
        f"no CIFAR-10 copy in {os.path.abspath(path)}: expected {cifar10.FOLDER}/ "
        f"(data_batch_1..5, test_batch, batches.meta) or {cifar10.TARBALL} there. Get it with "
        f"`minigrad train --download --data-dir {path}` (network), copy an official "
        f"{cifar10.TARBALL} into that folder, or build it from class folders of images with "
        f"`minigrad data convert SRC --out {path}`"
    )


def _infer_counts(folder: str) -> dict:
    counts = {}
    for key, fname in (("train_batch", cifar10.TRAIN_FILES[0]), ("test", cifar10.TEST_FILES[0])):
        path = os.path.join(folder, fname)
        if not os.path.isfile(path):
            raise DataError(f"{folder}: incomplete CIFAR-10 folder, missing {fname}")
        try:
            obj = cifar10.restricted_load(path)
            counts[key] = int(np.asarray(obj[b"data"] if b"data" in obj else obj["data"]).shape[0])
        except (ValueError, pickle.UnpicklingError, KeyError, TypeError) as e:
            raise DataError(f"{path}: {e}") from None
    return counts


def check(path: str = DEFAULT_DIR, any_size: bool = False) -> dict:
    """Validate the copy under ``path``; return a report dict.  Raises ``DataError``."""
    root, folder, tarball = _locate(path)
    if folder is None and tarball is None:
        raise DataError(_not_found(path))
    report: dict = {"root": root, "folder": folder, "tarball": tarball}
    with tempfile.TemporaryDirectory(prefix="minigrad-data-check-") as tmp:
        if tarball is not None:
            md5 = cifar10.file_md5(tarball)
            report["tarball_md5"] = md5
            report["official"] = md5 == cifar10.CIFAR10_MD5
        if folder is None:  # only the tarball: check what training would extract from it
            try:
                cifar10.safe_extract(tarball, tmp)
            except ValueError as e:
                raise DataError(str(e)) from None
            folder = os.path.join(tmp, cifar10.FOLDER)
            if not os.path.isdir(folder):
                raise DataError(f"{tarball}: archive has no {cifar10.FOLDER}/ folder")
        counts = _infer_counts(folder) if any_size else None
        try:
            totals = cifar10.validate_folder(folder, counts)
            train = cifar10.CIFAR10(os.path.dirname(folder), train=True, _expected_counts=counts)
            test = cifar10.CIFAR10(os.path.dirname(folder), train=False, _expected_counts=counts)
        except (ValueError, pickle.UnpicklingError, FileNotFoundError) as e:
            raise DataError(f"CIFAR-10 copy in {root} is unusable: {e}") from None
        report.update(
            {
                "train": totals["train"],
                "test": totals["test"],
                "classes": list(train.classes),
                "train_per_class": np.bincount(train.targets, minlength=10).tolist(),
                "test_per_class": np.bincount(test.targets, minlength=10).tolist(),
                "official_size": totals == OFFICIAL,
            }
        )
    return report


def format_check(r: dict) -> str:
    where = r["folder"] or r["tarball"]
    lines = [
        f"CIFAR-10 in {where}: OK (structure checked: 6 batch files, uint8 images, "
        "labels 0..9, 10 class names)",
        f"  {r['train']} train + {r['test']} test images"
        + ("" if r["official_size"] else " (not the official 50000 + 10000)"),
        f"  classes: {', '.join(r['classes'])}",
        f"  train per class: {r['train_per_class']}",
        f"  test per class:  {r['test_per_class']}",
    ]
    if r["tarball"]:
        kind = (
            "the official archive"
            if r["official"]
            else "not the official archive: accepted through the structural checks"
        )
        lines.append(f"  {r['tarball']}: MD5 {r['tarball_md5']} ({kind})")
    lines.append(f"train on it with: minigrad train --data-dir {r['root']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- convert
def _class_index(name: str, where: str) -> int:
    low = name.lower()
    if low not in CLASSES:
        raise DataError(
            f"{where}: unknown class folder {name!r}; CIFAR-10's classes are {', '.join(CLASSES)}"
        )
    return CLASSES.index(low)


def _split_parts(parts: list[str]) -> tuple[str, str, str] | None:
    """(split, class, file name) from a path ``.../{train,test}/<class>/<file>``."""
    if len(parts) < 3 or parts[-3].lower() not in ("train", "test"):
        return None
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES) or parts[-1].startswith("."):
        return None
    return parts[-3].lower(), parts[-2], parts[-1]


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _scan(src: str):
    """Yield (split, class, file name, read() -> bytes) for every image under ``src``."""
    if os.path.isdir(src):
        for split in sorted(os.listdir(src)):
            if split.lower() not in ("train", "test") or not os.path.isdir(
                os.path.join(src, split)
            ):
                continue
            for cls in sorted(os.listdir(os.path.join(src, split))):
                cdir = os.path.join(src, split, cls)
                if not os.path.isdir(cdir):
                    continue
                for name in sorted(os.listdir(cdir)):
                    found = _split_parts([split, cls, name])
                    if found:
                        path = os.path.join(cdir, name)
                        yield (*found, lambda p=path: _read_file(p))
        return
    try:
        tar = tarfile.open(src, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"{src}: not a folder or a readable tar archive ({e})") from None
    with tar:
        for m in tar:
            if not m.isfile():  # links, devices, folders: never followed
                continue
            found = _split_parts(m.name.replace("\\", "/").split("/"))
            if found:
                data = tar.extractfile(m).read()  # read in memory: nothing written from tar
                yield (*found, lambda d=data: d)


def _decode(read, where: str, Image) -> np.ndarray:
    try:
        img = Image.open(io.BytesIO(read())).convert("RGB")
    except Exception as e:  # PIL raises many kinds
        raise DataError(f"{where}: not a readable image ({type(e).__name__}: {e})") from None
    if img.size != (32, 32):
        raise DataError(f"{where}: image is {img.size[0]}x{img.size[1]}, CIFAR-10 needs 32x32")
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).reshape(-1)  # channel-major


def _write_batches(out: str, split: dict, train_per_batch: int) -> None:
    def write(fname, rows, label):
        batch = {
            b"batch_label": label.encode(),
            b"labels": [r[1] for r in rows],
            b"data": np.stack([r[2] for r in rows]),
            b"filenames": [r[0].encode() for r in rows],
        }
        with open(os.path.join(out, fname), "wb") as f:
            pickle.dump(batch, f, protocol=4)

    train = split["train"]
    for i in range(5):
        write(
            f"data_batch_{i + 1}",
            train[i * train_per_batch : (i + 1) * train_per_batch],
            f"training batch {i + 1} of 5",
        )
    write("test_batch", split["test"], "testing batch 1 of 1")
    with open(os.path.join(out, cifar10.META_FILE), "wb") as f:
        pickle.dump(
            {
                b"label_names": [c.encode() for c in CLASSES],
                b"num_cases_per_batch": train_per_batch,
                b"num_vis": 3072,
            },
            f,
            protocol=4,
        )


def convert(
    src: str, out: str = DEFAULT_DIR, any_size: bool = False, force: bool = False, seed: int = 0
) -> dict:
    """Build ``out/cifar-10-batches-py`` from ``src/{train,test}/<class>/*.png|jpg``.

    Images are ordered by ``<class>_<file stem>`` and shuffled with ``random.Random(seed)``
    (train, then test), so the same images always give the same batches.  The folder is
    written under a scratch name, checked, then renamed into place."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "`minigrad data convert` needs Pillow to read PNG/JPEG files: "
            "pip install pillow (the [plot] extra brings it too)"
        ) from None
    src = os.path.abspath(os.path.expanduser(src))
    out = os.path.abspath(os.path.expanduser(out))
    if not os.path.exists(src):
        raise DataError(f"{src} does not exist")
    dest = os.path.join(out, cifar10.FOLDER)
    if os.path.exists(dest) and not force:
        raise DataError(
            f"{dest} already exists; check it with `minigrad data check {out}`, "
            "or pass --force to replace it"
        )
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency

        def tqdm(x, **kw):
            return x

    split: dict[str, list] = {"train": [], "test": []}
    for part, cls, name, read in tqdm(_scan(src), desc="reading images", unit="img", disable=None):
        where = f"{src}: {part}/{cls}/{name}"
        label = _class_index(cls, where)
        stem = os.path.splitext(name)[0]
        split[part].append((f"{CLASSES[label]}_{stem}.png", label, _decode(read, where, Image)))
    n_train, n_test = len(split["train"]), len(split["test"])
    if n_train == 0 or n_test == 0:
        raise DataError(
            f"{src}: found {n_train} train and {n_test} test images; expected "
            "images in SRC/train/<class>/ and SRC/test/<class>/ (png or jpg)"
        )
    if not any_size and (n_train, n_test) != (OFFICIAL["train"], OFFICIAL["test"]):
        raise DataError(
            f"{src}: found {n_train} train and {n_test} test images, CIFAR-10 has "
            "50000 and 10000; pass --any-size to convert a smaller copy anyway"
        )
    if n_train % 5:
        raise DataError(f"{src}: {n_train} train images do not split into 5 equal batches")
    rng = random.Random(seed)
    for part in ("train", "test"):
        split[part].sort(key=lambda row: row[0])
        rng.shuffle(split[part])
    os.makedirs(out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".cifar10-convert-", dir=out)
    try:
        folder = os.path.join(scratch, cifar10.FOLDER)
        os.makedirs(folder)
        _write_batches(folder, split, n_train // 5)
        counts = {"train_batch": n_train // 5, "test": n_test}
        cifar10.validate_folder(folder, counts)
        if os.path.exists(dest):  # --force: swap the old copy out only now
            old = os.path.join(scratch, "old")
            os.replace(dest, old)
        os.replace(folder, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "folder": dest,
        "train": n_train,
        "test": n_test,
        "train_per_class": np.bincount([r[1] for r in split["train"]], minlength=10).tolist(),
        "official_size": (n_train, n_test) == (OFFICIAL["train"], OFFICIAL["test"]),
    }


# ----------------------------------------------------------------------------- command
def build_parser(prog: str = "minigrad data") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n", 1)[1],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="{check,convert}")
    c = sub.add_parser(
        "check",
        help="validate a CIFAR-10 copy (structure, counts, MD5)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument(
        "dir",
        nargs="?",
        default=DEFAULT_DIR,
        help="folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz "
        "(default ./data), or that folder or tarball itself",
    )
    c.add_argument(
        "--any-size",
        action="store_true",
        help="accept counts other than 50000/10000 (small test copies)",
    )
    v = sub.add_parser(
        "convert",
        help="build the layout from class folders of images",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("src", help="folder (or .tar/.tar.gz) with {train,test}/<class>/*.png|jpg")
    v.add_argument(
        "--out",
        default=DEFAULT_DIR,
        help="data dir to write cifar-10-batches-py/ into (default ./data)",
    )
    v.add_argument(
        "--any-size", action="store_true", help="allow other counts than 50000 train / 10000 test"
    )
    v.add_argument("--force", action="store_true", help="replace an existing copy")
    v.add_argument("--seed", type=int, default=0, help="shuffle seed of the batches (0)")
    return p


def main(argv: list[str] | None = None, prog: str = "minigrad data") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.action is None:
        parser.print_help()
        return 2
    try:
        if args.action == "check":
            print(format_check(check(args.dir, any_size=args.any_size)))
        else:
            r = convert(
                args.src, args.out, any_size=args.any_size, force=args.force, seed=args.seed
            )
            print(f"wrote {r['train']} train and {r['test']} test images to {r['folder']}")
            if not r["official_size"]:
                print("note: not the official 50000/10000 split; `minigrad train` expects it")
            print(f"train on it with: minigrad train --data-dir {os.path.dirname(r['folder'])}")
    except DataError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
