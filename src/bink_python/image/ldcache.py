"""The dynamic loader's cache of a regular image, made over its base and its runtime.

The base's ``/etc/ld.so.cache`` was written before the runtime existed, so without a
new one the loader does not know ``/usr/local/lib/libpython3.X.so.1.0`` (the
interpreter does not need it -- its core is linked in -- but embedders such as uwsgi
and mod_wsgi link the library) and ``ldconfig -p`` does not list it. The official
images run ``ldconfig`` after ``make install`` for the same reason.

The cache is made by the image's own ``ldconfig`` (natively, or under qemu-user for
another architecture) in a scratch root holding the two layers, with ``-X`` (no
symbolic links are made: only the cache changes); the result depends only on the two
layers, is kept in the store under ``ld-caches/<key>`` (key: both diff_ids, the arch
and :data:`RECIPE`) and ships as a one-file layer above the runtime. ``ldconfig``
sorts what it writes: two runs over the same layers give the same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BuildError, cleanup
from ..host.binfmt import emulation_env, ensure_binfmt
from ..host.distro import LDCONFIG
from ..host.proc import run
from ..oci.rootfs import resolve_in_root
from ..store.kinds import LD_CACHES
from ..store.store import Store, atomic_write_bytes, cache_key, read_json, write_json
from .assemble import LayerFile, LayerSource, files_layer

KIND = LD_CACHES.name
#: Bumped when how the cache is made changes (the store key includes it).
RECIPE = 1
#: What ldconfig does not read, left out of the scratch root (most of the files).
_SKIP = ("dev/*", "usr/share/*", "usr/include/*", "usr/local/include/*", "usr/local/lib/python3*")


def ld_cache(base: LayerSource, runtime: LayerSource, arch: str, store: Store) -> bytes:
    """The ``/etc/ld.so.cache`` of an image made of ``base`` and ``runtime`` (cached)."""
    key = cache_key(
        {"recipe": RECIPE, "base": base.diff_id, "runtime": runtime.diff_id, "arch": arch}
    )
    with store.lock(KIND, key):
        entry = store.lookup(KIND, key)
        if entry is None or not (entry / "ld.so.cache").is_file():
            with store.building(KIND, key) as tmp:
                # the scratch root inside the entry being built: busy for `cache prune`
                # while the builder's lock is held, gone before the entry is committed
                data = _run_ldconfig(base, runtime, arch, tmp / "root")
                atomic_write_bytes(tmp / "ld.so.cache", data)
                write_json(
                    tmp / "meta.json",
                    {"base": base.diff_id, "runtime": runtime.diff_id, "arch": arch},
                )
            entry = store.path(KIND, key)
        meta = read_json(entry / "meta.json")
        if meta.get("base") != base.diff_id or meta.get("runtime") != runtime.diff_id:
            raise BuildError(f"{entry} is not the loader cache of its key: remove it")
        return (entry / "ld.so.cache").read_bytes()


def ld_cache_layer(
    base: LayerSource, runtime: LayerSource, arch: str, store: Store, *, epoch: int
) -> LayerSource:
    """The one-file layer ``etc/ld.so.cache`` for an image of ``base`` and ``runtime``."""
    data = ld_cache(base, runtime, arch, store)
    return files_layer(
        [LayerFile("etc/ld.so.cache", data=data, mode=0o644)],
        store,
        epoch=epoch,
        created_by=f"bink-python ld.so.cache {arch} (the image's ldconfig over base and runtime)",
    )


def _run_ldconfig(base: LayerSource, runtime: LayerSource, arch: str, root: Path) -> bytes:
    ensure_binfmt(arch)
    root.mkdir()
    with cleanup(lambda: shutil.rmtree(root), f"removing {root}"):
        excludes = [f"--exclude={pattern}" for pattern in _SKIP]
        for layer in (base, runtime):
            if not layer.tar.is_file():
                raise BuildError(f"layer tar {layer.tar} is missing ({layer.created_by})")
            run(
                ["tar", "-x", "-f", str(layer.tar), "-C", str(root), *excludes],
                error=BuildError,
                what=f"unpacking {layer.tar.name} for ldconfig",
            )
        ldconfig = resolve_in_root(root, LDCONFIG)
        if ldconfig is None or not ldconfig.is_file():
            raise BuildError(f"{LDCONFIG} is not in the base ({base.created_by})")
        run(
            ["chroot", str(root), LDCONFIG, "-X"],
            error=BuildError,
            what=f"ldconfig in the {arch} image",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **emulation_env(arch)},
            kind="probe",
        )
        written = resolve_in_root(root, "/etc/ld.so.cache")
        if written is None or not written.is_file():
            raise BuildError(f"ldconfig in the {arch} image wrote no /etc/ld.so.cache")
        return written.read_bytes()
