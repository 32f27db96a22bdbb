"""verify against real images: the example family's images pass every check on both
arches, and for each check a deliberately broken image makes exactly the expected
checks fail, with a message that says what is wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import zstandard

from bink_python.image.description import describe_image
from bink_python.oci.compression import MEDIA_TYPES, ZSTD, open_layer
from bink_python.oci.layout import Layout
from bink_python.oci.types import MEDIA_MANIFEST, Descriptor
from bink_python.verify import (
    CHECKS,
    ImageReport,
    Target,
    verify_layout,
    verify_targets,
)
from bink_python.verify.imagerun import Buildah, image_container
from tests.support.machine import machine_mirrors, machine_settings

from .fixtures_verify import GoodLayout, derive_image

PY = "usr/local/lib/python3.13"
LIB = "usr/lib/x86_64-linux-gnu"


def test_good_images_pass_every_check(good_layout: GoodLayout, tmp_path: Path) -> None:
    family = good_layout.family
    tags = [t for t in family.tags if t.buildable]
    report = verify_layout(
        good_layout.layout.path,
        family,
        tags,
        workdir=tmp_path,
        mirrors=machine_mirrors(),
        cache_dir=machine_settings().cache_dir,
    )
    print(report.table())
    assert report.ok, report.table()
    assert {(i.tag, i.arch) for i in report.images} == {
        (t.name, a) for t in tags for a in ("amd64", "arm64")
    }
    for image in report.images:
        statuses = {c.name: c.status for c in image.checks}
        assert set(statuses) == set(CHECKS)
        distroless = image.tag.endswith("-distroless")
        skipped = {n for n, s in statuses.items() if s == "skip"}
        want = {"venv", "apt-sources", "ld-cache"} if distroless else {"distroless"}
        want.add("compression-instances")  # the example family publishes gzip only
        assert skipped == want, image.checks
    # the private buildah storage is gone: nothing left mounted or on disk
    assert list(tmp_path.iterdir()) == []
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


#: Runs of the load test: buildah's relay dropped about one run's output in 190 there.
LOADED_RUNS = 250


def test_every_runs_output_arrives_with_both_cores_busy(
    good_layout: GoodLayout, buildah_for_tests: Buildah
) -> None:
    """``buildah run`` (chroot isolation) exits without waiting for the goroutine relaying
    the command's output: with both cores busy it dropped a whole run's output about once in
    190 runs, exit status 0, and a check then failed for no reason of its own. Every run's
    output is read back from a file in the container, whole, under the same load."""
    manifest = good_layout.manifest("3.13", "amd64")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        with image_container(
            buildah_for_tests, good_layout.layout.path, manifest, what="under load"
        ) as container:
            outputs = Counter(
                container.run(["python3", "--version"], user="10000:10000").output
                for _ in range(LOADED_RUNS)
            )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert outputs == {"Python 3.13.15\n": LOADED_RUNS}


# -- broken images ---------------------------------------------------------------------


def _unlink(*paths: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        for rel in paths:
            matches = sorted(root.glob(rel))
            assert matches, f"{rel} not in the image: the broken-image recipe is stale"
            for path in matches:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    return mutate


def _drop_apps(root: Path) -> None:
    for name in ("etc/passwd", "etc/group"):
        path = root / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(x for x in lines if not x.startswith("apps:")))


def _leftovers(root: Path) -> None:
    (root / f"{PY}/leftover.pyo").write_bytes(b"\0" * 16)
    (root / "usr/include/python3.13").mkdir(parents=True)
    (root / "usr/include/python3.13/Python.h").write_text("/* header */\n")
    (root / "usr/local/lib/libpython3.13.a").write_bytes(b"!<arch>\n")
    (root / f"{PY}/test").mkdir()
    shutil.copyfile(root / "usr/bin/true", root / "usr/bin/gcc")
    (root / "usr/bin/gcc").chmod(0o755)


def _stale_bytecode(root: Path) -> None:
    with open(root / f"{PY}/json/decoder.py", "a") as handle:
        handle.write("# edited after the bytecode was compiled\n")


def _orphan_bytecode(root: Path) -> None:
    (root / f"{PY}/__pycache__/leftover.cpython-313.pyc").write_bytes(b"\0" * 16)


def _no_recursion_limit(root: Path) -> None:
    (root / f"{PY}/site-packages/sitecustomize.py").write_text(
        "import sys\nsys.setrecursionlimit = lambda limit: None\n"
    )


def _shell(root: Path) -> None:
    shutil.copyfile("/bin/dash", root / "usr/bin/sh")
    (root / "usr/bin/sh").chmod(0o755)


@dataclass(frozen=True)
class Broken:
    name: str
    tag: str
    arch: str
    failing: frozenset[str]  # exactly these checks fail
    message: str  # in the detail of the first failing check named by ``name``'s prefix
    check: str  # the check the case is about
    mutate: Callable[[Path], None] | None = None
    config: tuple[str, ...] = ()
    version: str | None = None  # a wrong expectation instead of a changed image
    #: another instance of the platform made from the derived image (a zstd twin)
    instance: Callable[[Layout, Descriptor], Descriptor] | None = None


def _tampered_zstd_twin(layout: Layout, manifest: Descriptor) -> Descriptor:
    """The image published again with zstd layers, the last of which is not the checked
    image's: one more (zero) tar block, so the files look the same and the diff_id differs."""
    data = layout.read_json(manifest.digest)
    layers = []
    for number, layer in enumerate(data["layers"], 1):
        with open_layer(layout.blob_path(layer["digest"]), layer["mediaType"]) as stream:
            tar = stream.read()
        if number == len(data["layers"]):
            tar += bytes(512)
        blob = layout.write_blob(zstandard.ZstdCompressor().compress(tar))
        layers.append({"mediaType": MEDIA_TYPES[ZSTD], "digest": blob.digest, "size": blob.size})
    twin = layout.write_blob(json.dumps(dict(data, layers=layers)).encode())
    return Descriptor(MEDIA_MANIFEST, twin.digest, twin.size)


def _wrong_arch_linkerd(standin: Path) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        shutil.copyfile(standin, root / "usr/local/bin/linkerd-await")
        (root / "usr/local/bin/linkerd-await").chmod(0o755)

    return mutate


def _stale_loader_cache(root: Path) -> None:
    """The loader cache as the base had it: made without /usr/local/lib (an empty
    configuration leaves only the built-in directories)."""
    (root / "tmp/empty.conf").write_text("")
    subprocess.run(
        ["chroot", str(root), "/usr/sbin/ldconfig", "-X", "-f", "/tmp/empty.conf"], check=True
    )
    (root / "tmp/empty.conf").unlink()


def _build_mirror_sources(root: Path) -> None:
    """A build host's proxy leaked into the image's apt sources (the defect it guards)."""
    (root / "etc/apt/sources.list").write_text(
        "deb http://build-proxy.invalid/debian trixie main\n"
        "deb http://build-proxy.invalid/debian trixie-updates main\n"
    )


def _cases(good: GoodLayout) -> list[Broken]:
    regular, distroless = "3.13", "3.13-distroless"
    return [
        Broken(
            "no-ca-bundle",
            regular,
            "amd64",
            frozenset({"tls-trust-store"}),
            "no CA certificates loaded",
            "tls-trust-store",
            mutate=_unlink("etc/ssl/certs/ca-certificates.crt"),
        ),
        Broken(
            "no-zone",
            regular,
            "amd64",
            frozenset({"stdlib-imports"}),
            "zoneinfo",
            "stdlib-imports",
            mutate=_unlink("usr/share/zoneinfo/America/New_York"),
        ),
        Broken(
            "no-libssl",
            regular,
            "amd64",
            # stdlib-no-compile imports every stdlib module: ssl does not import
            frozenset({"elf-needed", "stdlib-imports", "tls-trust-store", "stdlib-no-compile"}),
            "NEEDED libssl.so.3 not found",
            "elf-needed",
            mutate=_unlink(f"{LIB}/libssl.so.3*"),
        ),
        Broken(
            "no-libacl",
            regular,
            "amd64",
            frozenset({"elf-needed"}),
            "NEEDED libacl.so.1 not found",
            "elf-needed",
            mutate=_unlink(f"{LIB}/libacl.so.1*"),
        ),
        Broken(
            "no-pip",
            regular,
            "amd64",
            frozenset({"pip"}),
            "python3 -m pip --version failed: /usr/local/bin/python3: No module named pip",
            "pip",
            mutate=_unlink(f"{PY}/site-packages/pip", f"{PY}/site-packages/pip-*.dist-info"),
        ),
        Broken(
            "no-ensurepip-wheel",
            regular,
            "amd64",
            frozenset({"venv"}),
            "python3 -m venv failed",
            "venv",
            mutate=_unlink(f"{PY}/ensurepip/_bundled/pip-*.whl"),
        ),
        Broken(
            "no-apps-user",
            regular,
            "amd64",
            frozenset({"apps-user"}),
            "user apps missing from /etc/passwd",
            "apps-user",
            mutate=_drop_apps,
        ),
        Broken(
            "amd64-linkerd-await-in-arm64",
            regular,
            "arm64",
            frozenset({"linkerd-await"}),
            "linkerd-await: /usr/local/bin/linkerd-await is built for x86-64, not for arm64 (AArch64)",
            "linkerd-await",
            mutate=_wrong_arch_linkerd(good.standins["amd64"]),
        ),
        Broken(
            "build-leftovers",
            regular,
            "amd64",
            frozenset({"no-build-tools"}),
            "6 forbidden file(s)",
            "no-build-tools",
            mutate=_leftovers,
        ),
        Broken(
            "stale-bytecode",
            regular,
            "amd64",
            frozenset({"stdlib-bytecode", "stdlib-no-compile"}),
            "stale bytecode (the source's mtime or size differ): "
            "/usr/local/lib/python3.13/json/decoder.py",
            "stdlib-bytecode",
            mutate=_stale_bytecode,
        ),
        Broken(
            "orphan-bytecode",
            regular,
            "amd64",
            frozenset({"stdlib-bytecode"}),
            "orphan bytecode (no source): "
            "/usr/local/lib/python3.13/__pycache__/leftover.cpython-313.pyc",
            "stdlib-bytecode",
            mutate=_orphan_bytecode,
        ),
        Broken(
            "missing-bytecode",
            distroless,
            "amd64",
            frozenset({"stdlib-bytecode", "stdlib-no-compile"}),
            "compiled at run time: /usr/local/lib/python3.13/argparse.py",
            "stdlib-no-compile",
            mutate=_unlink(f"{PY}/__pycache__/argparse.cpython-313.pyc"),
        ),
        Broken(
            "shell-in-distroless",
            distroless,
            "amd64",
            frozenset({"distroless"}),
            "/bin/sh is present",
            "distroless",
            mutate=_shell,
        ),
        Broken(
            "bad-config",
            regular,
            "amd64",
            frozenset({"image-config"}),
            "PATH='/usr/bin:/bin:/usr/local/bin', expected '/usr/local/bin:",
            "image-config",
            config=(
                "--env",
                "PATH=/usr/bin:/bin:/usr/local/bin",
                "--cmd",
                "bash",
                "--annotation",
                "com.bink.python.eol=2099-01",
            ),
        ),
        Broken(
            "wrong-version",
            regular,
            "amd64",
            frozenset({"python-version", "image-config"}),
            "python3 --version printed 'Python 3.13.15', expected 'Python 3.13.14'",
            "python-version",
            version="3.13.14",
        ),
        Broken(
            "recursion-limit-ignored",
            regular,
            "amd64",
            frozenset({"recursion"}),
            "recursion stopped early",
            "recursion",
            mutate=_no_recursion_limit,
        ),
        Broken(
            "build-mirror-in-apt-sources",
            regular,
            "arm64",
            frozenset({"apt-sources"}),
            "/etc/apt/sources.list names http://build-proxy.invalid/debian",
            "apt-sources",
            mutate=_build_mirror_sources,
        ),
        Broken(
            "stale-loader-cache",
            regular,
            "amd64",
            frozenset({"ld-cache"}),
            "the loader cache does not list libpython3.13.so.1.0 in /usr/local/lib",
            "ld-cache",
            mutate=_stale_loader_cache,
        ),
        Broken(
            "tampered-zstd-instance",
            regular,
            "amd64",
            frozenset({"compression-instances"}),
            "unpacks to sha256:",
            "compression-instances",
            instance=_tampered_zstd_twin,
        ),
        Broken(
            "ascii-filesystem-encoding",
            regular,
            "amd64",
            frozenset({"utf8-filenames"}),
            "UTF-8 file name round trip failed (filesystem encoding 'ascii')",
            "utf8-filenames",
            config=("--env", "LC_ALL=C", "--env", "PYTHONUTF8=0"),
        ),
    ]


#: The slowest checks (pip installs a wheel, venv runs ensurepip: ~13 s of ~25 s per
#: image) run only on the broken images that target them, to keep CI time down.
SLOW = frozenset({"pip", "venv"})


def case_checks(case: Broken) -> tuple[str, ...]:
    skip = SLOW - case.failing - {case.check}
    return tuple(name for name in CHECKS if name not in skip)


@pytest.fixture(scope="session")
def broken_reports(
    good_layout: GoodLayout,
    buildah_for_tests: Buildah,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Broken, ImageReport]]:
    """Every broken image, derived from the good ones and verified in one session."""
    dest = tmp_path_factory.mktemp("broken") / "oci"
    cases = _cases(good_layout)
    targets: list[Target] = []
    for case in cases:
        tag = good_layout.family.tag(case.tag)
        manifest = good_layout.manifest(case.tag, case.arch)
        expect = describe_image(good_layout.family, tag, case.arch, mirrors=machine_mirrors())
        if case.version:
            expect = replace(expect, version=case.version)
        derived = derive_image(
            buildah_for_tests,
            good_layout.layout,
            manifest,
            dest,
            case.name,
            mutate=case.mutate,
            config=case.config,
        )
        # the tag stays the good image's: its title label names it
        twins = (case.instance(Layout(dest), derived),) if case.instance else ()
        targets.append(Target(derived, expect, case_checks(case), instances=twins))
    report = verify_targets(
        dest, targets, session=buildah_for_tests, cache_dir=machine_settings().cache_dir
    )
    print(report.table())
    return {c.name: (c, r) for c, r in zip(cases, report.images, strict=True)}


def _case_names() -> list[str]:
    return [
        "no-ca-bundle",
        "no-zone",
        "no-libssl",
        "no-libacl",
        "no-pip",
        "no-ensurepip-wheel",
        "no-apps-user",
        "amd64-linkerd-await-in-arm64",
        "build-leftovers",
        "stale-bytecode",
        "orphan-bytecode",
        "missing-bytecode",
        "shell-in-distroless",
        "bad-config",
        "wrong-version",
        "recursion-limit-ignored",
        "ascii-filesystem-encoding",
        "tampered-zstd-instance",
        "stale-loader-cache",
        "build-mirror-in-apt-sources",
    ]


@pytest.mark.parametrize("name", _case_names())
def test_broken_image_fails_exactly_its_check(
    name: str, broken_reports: dict[str, tuple[Broken, ImageReport]]
) -> None:
    case, report = broken_reports[name]
    failed = {c.name: c for c in report.failed}
    details = {c.name: f"{c.detail}\n{c.output[-3000:]}" for c in report.failed}
    assert set(failed) == case.failing, details
    assert case.message in failed[case.check].detail, failed[case.check]


def test_every_check_has_a_broken_image(
    broken_reports: dict[str, tuple[Broken, ImageReport]],
) -> None:
    assert {case.check for case, _ in broken_reports.values()} == set(CHECKS)
    assert sorted(broken_reports) == sorted(_case_names())
