"""Reading image layers: a blob's tar stream, member paths, whiteouts and layer roles."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from .compression import open_layer
from .types import MEDIA_LAYER_ZSTD

#: The history entry of a component layer: ``bink-python component NAME VERSION ...``.
COMPONENT_HISTORY = re.compile(r"^bink-python component (\S+) (\S+)")

_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."


@contextmanager
def layer_tar(path: Path, media_type: str) -> Iterator[tarfile.TarFile]:
    """A layer blob as a streamed tar: zstd by media type, else gzip or plain as found."""
    if media_type.endswith("+zstd") or media_type.endswith(".zstd"):
        with (
            open_layer(path, MEDIA_LAYER_ZSTD) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            yield tar
        return
    with tarfile.open(path, mode="r|*") as tar:
        yield tar


def member_path(name: str) -> str:
    """A tar member name relative to the root (``./etc/x/``, ``/etc/x`` -> ``etc/x``)."""
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/").rstrip("/")


def apply_whiteout(name: str, files: MutableMapping[str, Any]) -> bool:
    """Whether ``name`` is a whiteout; if so, drop the ``files`` it hides from lower layers."""
    path = PurePosixPath(name)
    if path.name == _OPAQUE:
        parent = str(path.parent)
        for key in [k for k in files if k.startswith(parent + "/")]:
            del files[key]
        return True
    if path.name.startswith(_WHITEOUT):
        gone = str(path.parent / path.name.removeprefix(_WHITEOUT))
        for key in [k for k in files if k == gone or k.startswith(gone + "/")]:
            del files[key]
        return True
    return False


def layer_role(created_by: str) -> str:
    """A layer's role from its history entry: ``base``, ``component NAME``, ... or ``layer``."""
    match = COMPONENT_HISTORY.match(created_by)
    if match:
        return f"component {match[1]}"
    words = created_by.split()
    if len(words) > 1 and words[0] == "bink-python":
        return words[1]
    return "layer"


def layer_roles(history: Sequence[Mapping[str, Any]], count: int) -> list[str]:
    """The role of each of ``count`` layers, from the non-empty entries of ``history``."""
    return [
        layer_role(str(history[i].get("created_by", ""))) if i < len(history) else "layer"
        for i in range(count)
    ]
