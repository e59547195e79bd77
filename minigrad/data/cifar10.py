"""CIFAR-10 from the official python layout, loaded without trusting the files.

Layout: ``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``, or the
tarball ``root/cifar-10-python.tar.gz`` that packs it (extracted on first use).

Safety and integrity:

* batch files are pickles; they are read by ``RestrictedUnpickler``, which resolves only the
  globals a NumPy array needs (``_reconstruct``, ``ndarray``, ``dtype``); any other global
  raises ``pickle.UnpicklingError`` naming it, before anything runs;
* tarballs are extracted member by member after checking every member (no absolute paths,
  no ``..``, no links, no devices, nothing landing outside ``root``), into a scratch folder
  that is renamed into place only after the content validated;
* a tarball whose MD5 is the official one is trusted as such; any other copy (for example the
  one ``minigrad data convert`` writes) is accepted only through structural validation: six batch
  files, ``b'data'`` uint8 (10000, 3072), ``b'labels'`` 10000 values in 0..9, 50,000 train
  and 10,000 test images. Structural checks also run on every load. Problems raise
  ``ValueError`` naming the file.
* ``download=True`` streams to ``<file>.part``, checks the MD5 before use, then renames.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request

import numpy as np

from .dataset import Dataset
from .transforms import apply_transform

__all__ = ["CIFAR10", "DownloadError", "RestrictedUnpickler", "safe_extract", "CIFAR10_URL",
           "CIFAR10_MD5"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
URL_ENV = "MINIGRAD_CIFAR10_URL"
FOLDER = "cifar-10-batches-py"
TARBALL = "cifar-10-python.tar.gz"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
_OFFICIAL_COUNTS = {"train_batch": 10000, "test": 10000}


# --------------------------------------------------------------------------- unpickling
def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # noqa: PLC0415  (NumPy >= 2)
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct  # noqa: PLC0415
    return _reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can only build NumPy arrays (plus plain containers and scalars)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"global '{module}.{name}' is forbidden: CIFAR-10 batches may only reference "
                "numpy._reconstruct, numpy.ndarray and numpy.dtype"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return np.ndarray if name == "ndarray" else np.dtype


def restricted_load(path):
    """``pickle.load(f, encoding="bytes")`` through ``RestrictedUnpickler``.

    A forbidden global raises ``pickle.UnpicklingError``; a truncated or corrupt file
    raises ``ValueError`` naming the file.
    """
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="bytes").load()
        except pickle.UnpicklingError as e:
            if "is forbidden" in str(e):
                raise pickle.UnpicklingError(f"{path}: {e}") from None
            raise ValueError(f"{path}: corrupt or truncated pickle ({e})") from e
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
            msg = f"{type(e).__name__}: {e}"
            raise ValueError(f"{path}: corrupt or truncated pickle ({msg})") from e
        except MemoryError as e:  # e.g. an array header asking for terabytes
            raise ValueError(f"{path}: corrupt pickle: it asks for more memory than this "
                             f"machine has ({e})") from None


def _key(d, name):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def _read_batch(path, expected_count):
    """Load one batch file and check its structure; return (data uint8 (N, 3072), labels)."""
    obj = restricted_load(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    try:
        data, labels = _key(obj, "data"), _key(obj, "labels")
    except KeyError as e:
        raise ValueError(f"{path}: missing key b'{e.args[0]}'") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array, got {kind}")
    if data.shape != (expected_count, 3072):
        raise ValueError(
            f"{path}: b'data' has shape {data.shape}, expected ({expected_count}, 3072)"
        )
    try:
        labels = np.asarray(labels)
    except Exception as e:  # ragged or odd objects
        raise ValueError(f"{path}: b'labels' is not a list of ints ({e})") from e
    if labels.dtype.kind not in "iu" or labels.shape != (expected_count,):
        raise ValueError(
            f"{path}: b'labels' must be {expected_count} ints, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{path}: labels out of range 0..9 (min {labels.min()}, max {labels.max()})"
        )
    return data, labels.astype(np.int64)


def _read_meta(path):
    obj = restricted_load(path)
    try:
        names = _key(obj, "label_names")
    except (KeyError, TypeError):
        raise ValueError(f"{path}: missing b'label_names'") from None
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    if len(classes) != 10:
        raise ValueError(f"{path}: expected 10 label names, got {len(classes)}")
    return classes


def validate_folder(folder, counts=None, files=None):
    """Check the layout and the structure of batch ``files`` (default: all six).

    Raises ``ValueError`` naming the missing or malformed file.
    """
    counts = counts or _OFFICIAL_COUNTS
    missing = [f for f in (*TRAIN_FILES, *TEST_FILES, META_FILE)
               if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise ValueError(f"{folder}: incomplete CIFAR-10 folder, missing {', '.join(missing)}")
    total = {"train": 0, "test": 0}
    for f in files if files is not None else (*TRAIN_FILES, *TEST_FILES):
        split = "test" if f in TEST_FILES else "train"
        n = counts["test"] if split == "test" else counts["train_batch"]
        data, _ = _read_batch(os.path.join(folder, f), n)
        total[split] += data.shape[0]
    _read_meta(os.path.join(folder, META_FILE))
    return total


# --------------------------------------------------------------------------- tarballs
def file_md5(path, chunk=1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check_member(m: tarfile.TarInfo, dest: str) -> None:
    name = m.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        reason = "absolute path"
    elif ".." in parts:
        reason = "'..' in path"
    elif m.issym() or m.islnk():
        reason = f"link to {m.linkname!r}"
    elif m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        reason = "device or fifo"
    elif not (m.isfile() or m.isdir()):
        reason = "not a regular file or folder"
    else:
        target = os.path.realpath(os.path.join(dest, name))
        if os.path.commonpath([target, os.path.realpath(dest)]) != os.path.realpath(dest):
            reason = "path escapes the target folder"
        else:
            return
    raise ValueError(f"unsafe tar member {name!r}: {reason}; refusing to extract")


_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()


def safe_extract(tar_path, dest) -> None:
    """Extract ``tar_path`` into ``dest`` after checking every member; nothing goes outside.

    The whole member list is checked before the first byte is written.
    """
    os.makedirs(dest, exist_ok=True)
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, dest)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Python without PEP 706 backports
                tar.extractall(dest, members=members)
    except _FILTER_ERRORS as e:  # tarfile's own 'data' filter refused a member
        raise ValueError(f"{tar_path}: unsafe tar member ({e}); refusing to extract") from e
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{tar_path}: not a readable tar archive ({e})") from e


# --------------------------------------------------------------------------- download
class DownloadError(RuntimeError, ValueError):
    """The download failed (no network, HTTP error, MD5 mismatch); nothing was kept."""


def _download(url, path, md5) -> None:
    """Stream ``url`` to ``path + '.part'``, check the MD5, then rename into ``path``."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    part = path + ".part"
    h = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(path),
                      disable=None) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
    except BaseException as e:
        if os.path.exists(part):
            os.remove(part)
        if isinstance(e, urllib.error.URLError | OSError):
            raise DownloadError(_no_network_message(url, os.path.dirname(path), e)) from e
        raise
    actual = h.hexdigest()
    if actual != md5:
        os.remove(part)
        raise DownloadError(
            f"MD5 mismatch for {url}: expected {md5}, got {actual}; the partial download "
            f"{part} was removed, run again to restart"
        )
    os.replace(part, path)


def _no_network_message(url, root, err) -> str:
    return (
        f"could not download CIFAR-10 from {url} ({err}). Without network access, put the "
        f"files in place yourself: either the extracted folder "
        f"{os.path.join(root, FOLDER)}/ (data_batch_1..5, test_batch, batches.meta) or the "
        f"tarball {os.path.join(root, TARBALL)} (copy the official archive there, or convert "
        f"images sorted into class folders with `minigrad data convert SRC --out {root}`); "
        f"or set {URL_ENV} to a reachable mirror"
    )


def _makedirs(path) -> list[str]:
    """``os.makedirs(path, exist_ok=True)``; returns the folders it created, outermost first."""
    made, p = [], os.path.abspath(path)
    while not os.path.exists(p):
        made.append(p)
        p = os.path.dirname(p)
    os.makedirs(path, exist_ok=True)
    return made[::-1]


# --------------------------------------------------------------------------- dataset
class CIFAR10(Dataset):
    """CIFAR-10 with torchvision's interface.

    ``data`` is uint8 ``(N, 32, 32, 3)`` (HWC), ``targets`` int64 ``(N,)``, ``classes`` the
    ten names. ``ds[i]`` gives ``(image HWC uint8, label int)`` after ``transform`` /
    ``target_transform``; ``get_batch(indices, rng=None)`` gives ``(images, labels)`` for an
    index array with the transforms applied to the whole batch (see ``transforms``).

    ``url`` (or env ``MINIGRAD_CIFAR10_URL``) and ``md5`` override the download source and
    its expected hash (tests serve a small fake tarball this way). ``_expected_counts``
    (``{"train_batch": n, "test": m}``) is private: it lets tests validate tiny synthetic sets.
    """

    def __init__(
        self,
        root,
        train: bool = True,
        download: bool = False,
        transform=None,
        target_transform=None,
        *,
        url: str | None = None,
        md5: str | None = None,
        _expected_counts: dict | None = None,
    ):
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self._counts = dict(_expected_counts or _OFFICIAL_COUNTS)
        self.integrity = "folder"  # how the files were accepted: folder | md5 | structure
        folder = os.path.join(self.root, FOLDER)
        tarball = os.path.join(self.root, TARBALL)
        if not os.path.isdir(folder):
            if not os.path.isfile(tarball):
                if not download:
                    raise FileNotFoundError(
                        f"CIFAR-10 not found under {self.root}: expected the folder {folder}/ "
                        f"(data_batch_1..5, test_batch, batches.meta) or the tarball {tarball} "
                        f"(the official archive, or `minigrad data convert SRC --out {self.root}` "
                        "from images in class folders), or pass download=True"
                    )
                made = _makedirs(self.root)
                url = url or os.environ.get(URL_ENV) or CIFAR10_URL
                try:
                    _download(url, tarball, md5 or CIFAR10_MD5)
                except BaseException:
                    for d in reversed(made):  # leave no empty folder behind
                        try:
                            os.rmdir(d)
                        except OSError:
                            break
                    raise
            self._extract(tarball, md5)
        files = TRAIN_FILES if train else TEST_FILES
        validate_folder(folder, self._counts, files=())  # layout + meta, cheap
        datas, labels = [], []
        for f in files:
            n = self._counts["test"] if f in TEST_FILES else self._counts["train_batch"]
            d, y = _read_batch(os.path.join(folder, f), n)
            datas.append(d)
            labels.append(y)
        data = np.concatenate(datas) if len(datas) > 1 else datas[0]
        self.data = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        self.targets = np.concatenate(labels)
        self.classes = _read_meta(os.path.join(folder, META_FILE))
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def _extract(self, tarball, md5):
        """Extract into a scratch folder in root, validate, then move into place."""
        actual = file_md5(tarball)
        trusted = md5 or CIFAR10_MD5
        self.integrity = "md5" if actual == trusted else "structure"
        scratch = tempfile.mkdtemp(prefix=".cifar10-extract-", dir=self.root)
        try:
            safe_extract(tarball, scratch)
            extracted = os.path.join(scratch, FOLDER)
            if not os.path.isdir(extracted):
                raise ValueError(f"{tarball}: archive has no {FOLDER}/ folder")
            try:
                validate_folder(extracted, self._counts)
            except ValueError as e:
                how = "" if self.integrity == "md5" else (
                    f" (MD5 {actual} is not the official {trusted}, so the copy must pass "
                    "structural validation)"
                )
                raise ValueError(f"{tarball}: {e}{how}") from e
            os.replace(extracted, os.path.join(self.root, FOLDER))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index])
        img = apply_transform(self.transform, img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def get_batch(self, indices, rng=None):
        indices = np.asarray(indices, dtype=np.int64)
        imgs, targets = self.data[indices], self.targets[indices]
        imgs = apply_transform(self.transform, imgs, rng)
        if self.target_transform is not None:
            targets = self.target_transform(targets)
        return imgs, targets

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"CIFAR10(root={self.root!r}, split={split}, n={len(self)})"
