"""``save`` / ``load``: checkpoints as ``.npz`` files that never need pickle.

Format (version 1): a zip written by ``numpy.savez`` holding

* ``a0``, ``a1``, ... : every array and tensor, as ``.npy`` members (host arrays; no object
  dtypes);
* ``minigrad_header`` : a uint8 array holding UTF-8 JSON
  ``{"format": "minigrad-checkpoint", "version": 1, "root": <node>}``.

A node is a JSON scalar (null, true/false, a string, a finite float, an int within int64) or
an object tagged with ``"__mg__"``: ``dict`` (``items``: [[key, value], ...], so keys keep
their type), ``tuple``, ``int`` (a big int, as a decimal string), ``float`` (nan/inf as a
string), ``ndarray`` / ``scalar`` / ``tensor`` (``key`` of the array member).  Lists are JSON
arrays.  The same Tensor or array object saved twice is stored once and loads as one object.

Guarantees: loading uses ``numpy.load(allow_pickle=False)`` only, so no file can run code;
anything that is not a well-formed checkpoint raises ``ValueError`` naming the path.  Writing
goes to a temporary file in the target's directory, is flushed and fsync'ed, then renamed over
the target with ``os.replace``; if anything fails (KeyboardInterrupt included) the temporary
file is removed and an existing checkpoint is left untouched.
"""

from __future__ import annotations

import json
import math
import os
import secrets

import numpy as np

from minigrad.backend import CPU, Device, to_device
from minigrad.tensor import Tensor, data_of

FORMAT_TAG = "minigrad-checkpoint"
FORMAT_VERSION = 1
HEADER_KEY = "minigrad_header"
_TAG = "__mg__"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip starts with a local header (or is empty)
_ARRAY_KINDS = "biufc"  # bool, signed, unsigned, float, complex: no objects, no strings


# ----------------------------------------------------------------------------- encoding
class _Encoder:
    """Turns a Python structure into (JSON node, {member name: host array})."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._key_of: dict[int, str] = {}  # id(object) -> member name, for shared objects
        self._keep: list = []  # keeps encoded objects alive so their ids stay unique

    def _add_array(self, obj, host: np.ndarray, where: str) -> str:
        if id(obj) in self._key_of:
            return self._key_of[id(obj)]
        if host.dtype.kind not in _ARRAY_KINDS or host.dtype.fields is not None:
            raise TypeError(
                f"save: can't store an array of dtype {host.dtype} at {where} (only bool, "
                "integer, float and complex arrays)"
            )
        key = f"a{len(self.arrays)}"
        # (np.ascontiguousarray would turn a 0-d array into shape (1,))
        self.arrays[key] = host if host.flags.c_contiguous else host.copy(order="C")
        self._key_of[id(obj)] = key
        self._keep.append(obj)
        return key

    def encode(self, obj, where: str):
        if obj is None or isinstance(obj, bool | str):
            return obj
        if isinstance(obj, Tensor):
            host = to_device(data_of(obj), CPU)
            key = self._add_array(obj, host, where)
            return {
                _TAG: "tensor",
                "key": key,
                "device": str(obj.device),
                "requires_grad": obj.requires_grad,
            }
        if isinstance(obj, np.ndarray):
            return {_TAG: "ndarray", "key": self._add_array(obj, obj, where)}
        if isinstance(obj, np.generic):  # numpy scalars keep their dtype
            return {_TAG: "scalar", "key": self._add_array(obj, np.asarray(obj), where)}
        if hasattr(obj, "__cuda_array_interface__"):  # a bare CuPy array
            host = to_device(obj, CPU)
            return {_TAG: "ndarray", "key": self._add_array(obj, host, where)}
        if isinstance(obj, int):
            if _INT64_MIN <= obj <= _INT64_MAX:
                return int(obj)
            return {_TAG: "int", "value": str(int(obj))}
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {_TAG: "float", "value": repr(float(obj))}
        if isinstance(obj, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {
                _TAG: "tuple",
                "items": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)],
            }
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not _is_key(k):
                    raise TypeError(
                        f"save: dict key {k!r} at {where} has type {type(k).__name__}; keys "
                        "must be str, int, float, bool, None or tuples of those"
                    )
                items.append([self.encode(k, where), self.encode(v, f"{where}[{k!r}]")])
            return {_TAG: "dict", "items": items}
        raise TypeError(
            f"save: can't store an object of type {type(obj).__name__} at {where}; "
            "checkpoints hold dicts, lists, tuples, Tensors, NumPy arrays, numbers, bools, "
            "strings and None"
        )


def _is_key(k) -> bool:
    if k is None or isinstance(k, bool | int | float | str):
        return True
    return isinstance(k, tuple) and all(_is_key(v) for v in k)


# ----------------------------------------------------------------------------- saving
def save(obj, path) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of Tensors, arrays and Python scalars) to
    ``path`` atomically: the old file survives any failure, and no temporary file is left."""
    path = os.fspath(path)
    encoder = _Encoder()
    root = encoder.encode(obj, "obj")
    header = json.dumps(
        {"format": FORMAT_TAG, "version": FORMAT_VERSION, "root": root},
        allow_nan=False,
        separators=(",", ":"),
    )
    members = dict(encoder.arrays)
    members[HEADER_KEY] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)

    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    try:
        with open(tmp, "xb") as f:  # 'x': never clobber; the mode follows the umask
            np.savez(f, allow_pickle=False, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- loading
def load(path, map_location=None):
    """Read a checkpoint written by :func:`save`.

    Tensors come back as Tensors (on ``map_location``, e.g. ``"cpu"`` or ``"cuda:0"``, or else
    on the device they were saved from), arrays as NumPy arrays.  Raises ValueError when
    ``path`` is not a minigrad checkpoint or is corrupt; never unpickles anything.
    """
    path = os.fspath(path)
    device = None if map_location is None else Device(map_location)
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic not in _ZIP_MAGIC:
            raise ValueError(
                f"{path} is not a minigrad checkpoint (it is not an .npz/zip file; first bytes "
                f"{magic!r})"
            )
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                if HEADER_KEY not in npz.files:
                    raise _NotCheckpoint(f"no '{HEADER_KEY}' member; members: {npz.files[:8]}")
                header = _read_header(npz[HEADER_KEY])
                decoder = _Decoder(npz, device)
                return decoder.decode(header["root"])
        except _NotCheckpoint as e:
            raise ValueError(f"{path} is not a minigrad checkpoint: {e}") from None
        except _DeviceUnavailable as e:
            raise RuntimeError(
                f"{path}: {e}; pass map_location='cpu' to load it on the host"
            ) from e.__cause__
        except Exception as e:  # zip, npy, json or structure errors: all mean corrupt
            raise ValueError(
                f"{path}: corrupt minigrad checkpoint ({type(e).__name__}: {e})"
            ) from e


class _NotCheckpoint(Exception):
    pass


class _Corrupt(Exception):
    pass


class _DeviceUnavailable(Exception):
    pass


def _read_header(arr) -> dict:
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 1:
        raise _Corrupt(f"header member is not a uint8 vector ({getattr(arr, 'dtype', arr)})")
    header = json.loads(arr.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT_TAG:
        raise _NotCheckpoint("the header has no minigrad format tag")
    version = header.get("version")
    if version != FORMAT_VERSION:
        raise _Corrupt(
            f"format version {version!r} is not supported (this minigrad reads version "
            f"{FORMAT_VERSION})"
        )
    if "root" not in header:
        raise _Corrupt("header has no 'root'")
    return header


class _Decoder:
    def __init__(self, npz, device: Device | None):
        self.npz = npz
        self.device = device
        self._loaded: dict[tuple[str, str], object] = {}  # (kind, key) -> shared object

    def _array(self, key) -> np.ndarray:
        if not isinstance(key, str) or key == HEADER_KEY or key not in self.npz.files:
            raise _Corrupt(f"array member {key!r} is missing")
        arr = self.npz[key]  # allow_pickle=False: an object array raises here
        if arr.dtype.kind not in _ARRAY_KINDS:
            raise _Corrupt(f"member {key!r} has unsupported dtype {arr.dtype}")
        if not arr.dtype.isnative:  # e.g. big-endian, written elsewhere: ops need native
            arr = arr.astype(arr.dtype.type)
        return arr

    def decode(self, node):
        if node is None or isinstance(node, bool | str):
            return node
        if isinstance(node, int | float):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or _TAG not in node:
            raise _Corrupt(f"unexpected node {str(node)[:80]}")
        tag = node[_TAG]
        if tag == "dict":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in node["items"]}
        if tag == "tuple":
            return tuple(self.decode(v) for v in node["items"])
        if tag == "int":
            return int(node["value"])
        if tag == "float":
            return float(node["value"])
        if tag in ("ndarray", "scalar", "tensor"):
            memo = (tag, node["key"])
            if memo not in self._loaded:
                self._loaded[memo] = self._make(tag, node)
            return self._loaded[memo]
        raise _Corrupt(f"unknown node tag {tag!r}")

    def _make(self, tag: str, node: dict):
        arr = self._array(node["key"])
        if tag == "ndarray":
            return arr
        if tag == "scalar":
            return arr[()]
        device = self.device if self.device is not None else Device(node.get("device", "cpu"))
        try:
            data = to_device(arr, device)
        except RuntimeError as e:
            raise _DeviceUnavailable(f"a tensor was saved on {device} ({e})") from e
        t = Tensor(data)
        if node.get("requires_grad") and arr.dtype.kind == "f":
            t.requires_grad_(True)
        return t


def _hashable(key):
    if isinstance(key, list):  # defensive: a hand-edited header
        return tuple(_hashable(k) for k in key)
    return key
