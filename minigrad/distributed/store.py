"""A file store: how ranks that share a file system exchange small values (the NCCL id).

``set`` writes ``key`` atomically (temporary file + rename); ``get`` polls until the key
exists or the timeout passes. PyTorch's ``FileStore`` plays the same part.
"""

from __future__ import annotations

import os
import time

__all__ = ["FileStore"]


class FileStore:
    def __init__(self, path: str, timeout: float = 300.0):
        self.path = os.path.abspath(path)
        self.timeout = float(timeout)
        os.makedirs(self.path, exist_ok=True)

    def _file(self, key: str) -> str:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"FileStore: bad key {key!r}")
        return os.path.join(self.path, key)

    def set(self, key: str, value: bytes) -> None:
        path = self._file(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(bytes(value))
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        path = self._file(key)
        start = time.monotonic()
        while not os.path.exists(path):
            if time.monotonic() - start > self.timeout:
                raise TimeoutError(
                    f"FileStore: key {key!r} did not appear in {self.path} "
                    f"within {self.timeout:g} s (did rank 0 start?)"
                )
            time.sleep(0.01)
        with open(path, "rb") as f:
            return f.read()
