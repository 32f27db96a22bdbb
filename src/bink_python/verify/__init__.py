"""The ``verify`` stage: prove every image of every arch works before it is published.

Each image (one tag, one arch) is taken from the OCI layout into a private buildah
storage (:mod:`bink_python.verify.imagerun`), mounted on the host, and put through the
named checks of :data:`CHECKS`, comparing it with its
:class:`~bink_python.image.description.ImageDescription` -- the same description, made once from
images.toml, that built the base and wrote the image config (so nothing here
hard-codes the user, ``PATH``, ``LANG`` or ``Cmd``). The package's rooms:

- ``registry.py`` -- what a check sees (:class:`~.registry.Probe`), how it fails, the registry
- ``static.py``   -- checks that read the mounted tree and the image config; they run
  first, before anything runs inside the image (a root Python would otherwise write
  ``__pycache__`` into the very tree that is checked for ``.pyc`` files)
- ``loader.py``   -- the dynamic loader emulated on the tree (``elf-needed``)
- ``inimage.py``  -- checks that run programs inside the image with
  ``buildah run --isolation chroot`` (arm64 through qemu-user), never needing a shell
- ``probes/``     -- the Python programs those checks run with the image's ``python3``,
  real modules (linted, type-checked, unit-tested on the host)
- ``pycache.py``  -- the probes' bytecode kept between verifications (speed only)
- ``runner.py``   -- orchestration: :func:`verify_layout`, :func:`verify_targets`
- ``report.py``   -- :class:`VerifyReport` (``table()``, ``to_json()``,
  ``raise_for_failures()`` raising :class:`~bink_python.errors.VerifyError`)

verify treats the image as untrusted: paths inside it are resolved with
:mod:`bink_python.oci.rootfs`, never by the host following the image's symlinks; its
files are read bounded and without blocking (:func:`~bink_python.oci.rootfs.read_bounded`);
the host writes only the scratch and bytecode directories, made afresh inside the
container's copy; the image's programs run as the family's unprivileged user.
"""

from __future__ import annotations

from .inimage import probe_wheel
from .loader import library_dirs, unresolved_needed
from .report import CheckResult, ImageReport, VerifyReport
from .runner import (
    CHECKS,
    Target,
    instances_for,
    manifest_for,
    target_for,
    verify_layout,
    verify_targets,
)

__all__ = [
    "CHECKS",
    "CheckResult",
    "ImageReport",
    "Target",
    "VerifyReport",
    "instances_for",
    "library_dirs",
    "manifest_for",
    "probe_wheel",
    "target_for",
    "unresolved_needed",
    "verify_layout",
    "verify_targets",
]
