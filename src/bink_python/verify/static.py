"""Checks that read the image's files and config only (they run before anything runs in it)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath

from ..oci.compression import UNPACK_ERRORS, algorithm_of, uncompressed_digest
from ..oci.rootfs import MAX_TEXT, lexists_in_root, read_bounded, read_text_in_root, resolve_in_root
from .loader import image_paths, unresolved_needed
from .registry import CheckFailed, NotApplicable, Probe, check, fail_on, listing


@check(
    "image-config",
    "The image config and manifest are what the image description made from images.toml "
    "says: platform; `Env` (`PATH`, `LANG=C.UTF-8`, `PYTHON_VERSION`); `Cmd`; user root "
    "(regular) or the `[family.user]` UID:GID (distroless); every label and manifest "
    "annotation except the build's time and revision (title, version, EOL, status, ...).",
    static=True,
)
def check_image_config(p: Probe) -> str:
    e = p.expect
    problems: list[str] = []
    plat = e.platform
    if p.config.get("architecture") != plat.architecture or p.config.get("os") != plat.os:
        problems.append(
            f"platform {p.config.get('os')}/{p.config.get('architecture')}, expected {plat}"
        )
    if plat.variant and p.config.get("variant") != plat.variant:
        problems.append(f"variant {p.config.get('variant')!r}, expected {plat.variant!r}")
    cfg = p.config.get("config") or {}
    env = dict(item.split("=", 1) for item in cfg.get("Env") or [] if "=" in item)
    for item in e.env:
        key, value = item.split("=", 1)
        if env.get(key) != value:
            problems.append(f"{key}={env.get(key)!r}, expected {value!r}")
    if (cfg.get("Cmd") or []) != list(e.cmd):
        problems.append(f"Cmd {cfg.get('Cmd')!r}, expected {list(e.cmd)!r}")
    if (cfg.get("User") or "") != e.default_user:
        want = e.default_user or "root (empty)"
        problems.append(f"User {cfg.get('User')!r}, expected {want}")
    labels = cfg.get("Labels") or {}
    annotations = p.manifest.get("annotations") or {}
    for key, value in e.fixed_labels().items():
        if labels.get(key) != value:
            problems.append(f"label {key}={labels.get(key)!r}, expected {value!r}")
        if annotations.get(key) != value:
            problems.append(f"annotation {key}={annotations.get(key)!r}, expected {value!r}")
    if problems:
        raise CheckFailed("; ".join(problems[:3]), "\n".join(problems))
    return f"{plat}, PYTHON_VERSION={e.version}, user {e.default_user or 'root'}, EOL {e.eol}"


_COMPILER_RE = re.compile(
    r"^(?:[a-z0-9_]+-linux-gnu-)?(?:gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|ld|as|make)"
    r"(?:-\d+(?:\.\d+)*)?$"
)
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})


@check(
    "no-build-tools",
    "No compilers or build tools (`gcc`, `cc`, `c++`, `cpp`, `ld`, `as`, `make`, ...), no "
    "system development headers (`/usr/include/python*`, any `*.h` under `/usr/include`), "
    "no `*.pyo` files, no `test`/`tests`/`idle_test` directories under "
    "`/usr/local/lib/python3.*`, no `libpython*.a`. (The stdlib's `*.pyc` ship: "
    "`stdlib-bytecode`.)",
    static=True,
)
def check_no_build_tools(p: Probe) -> str:
    found: list[str] = []
    counted = 0
    for inner, host in image_paths(p.root):
        counted += 1
        name = host.name
        parent = str(PurePosixPath(inner).parent)
        is_dir = stat.S_ISDIR(host.lstat().st_mode)  # never follows an image's symlink
        if parent in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin"):
            if _COMPILER_RE.match(name):
                found.append(f"compiler/build tool: {inner}")
        elif inner.startswith("/usr/include/") and (
            inner.startswith("/usr/include/python") or (name.endswith(".h") and not is_dir)
        ):
            found.append(f"header: {inner}")
        if name.endswith(".pyo") and not is_dir:
            found.append(f"Python 2 bytecode: {inner}")
        if name.startswith("libpython") and name.endswith(".a"):
            found.append(f"static library: {inner}")
        if is_dir and name in _TEST_DIRS and re.match(r"^/usr/local/lib/python3\.\d+/", inner):
            found.append(f"test directory: {inner}")
    fail_on(found, "forbidden file(s), first")
    return f"{counted} paths scanned, none forbidden"


@check(
    "elf-needed",
    "Every ELF executable and shared object's `NEEDED` libraries and program interpreter "
    "resolve inside the image, to a file of the image's architecture (searching "
    "`RUNPATH`/`RPATH` with `$ORIGIN`, ld.so.conf when `/etc/ld.so.cache` exists, and the "
    "loader's default directories).",
    static=True,
)
def check_elf_needed(p: Probe) -> str:
    scanned, problems = unresolved_needed(p.root, p.expect.multiarch, p.expect.machine)
    if scanned == 0:
        raise CheckFailed("no ELF executables or libraries found in the image")
    fail_on(problems, "unresolved")
    return f"{scanned} ELF objects, all NEEDED libraries resolve"


def _passwd_entry(root: Path, inner: str, name: str) -> list[str] | None:
    text = read_text_in_root(root, inner)
    if text is None:
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if fields and fields[0] == name:
            return fields
    return None


def static_user_problems(p: Probe) -> list[str]:
    u = p.expect.user
    problems: list[str] = []
    pw = _passwd_entry(p.root, "/etc/passwd", u.name)
    if pw is None or len(pw) < 7:
        problems.append(f"user {u.name} missing from /etc/passwd")
    else:
        if pw[2] != str(u.uid) or pw[3] != str(u.gid):
            problems.append(f"/etc/passwd: {u.name} has {pw[2]}:{pw[3]}, expected {u.uid}:{u.gid}")
        if pw[5] != u.home:
            problems.append(f"/etc/passwd: {u.name} home {pw[5]}, expected {u.home}")
    gr = _passwd_entry(p.root, "/etc/group", u.name)
    if gr is None or len(gr) < 3:
        problems.append(f"group {u.name} missing from /etc/group")
    elif gr[2] != str(u.gid):
        problems.append(f"/etc/group: {u.name} has GID {gr[2]}, expected {u.gid}")
    home = p.host_path(u.home)
    if home is None or not home.is_dir():
        problems.append(f"home {u.home} does not exist")
    else:
        st = home.stat()
        if (st.st_uid, st.st_gid) != (u.uid, u.gid):
            problems.append(
                f"home {u.home} is owned by {st.st_uid}:{st.st_gid}, expected {u.uid}:{u.gid}"
            )
    return problems


_DISTROLESS_FORBIDDEN = (
    "/bin/sh",
    "/usr/bin/sh",
    "/bin/bash",
    "/usr/bin/bash",
    "/bin/dash",
    "/usr/bin/dash",
    "/usr/bin/apt",
    "/usr/bin/apt-get",
    "/usr/bin/dpkg",
    "/usr/bin/dpkg-deb",
    "/usr/bin/dpkg-query",
    "/sbin/ldconfig",
    "/usr/sbin/ldconfig",
)


@check(
    "distroless",
    "Distroless images only: no shell (`/bin/sh`, `bash`, `dash`), no `apt`/`dpkg` "
    "binaries, default user the `[family.user]` UID:GID, and a dpkg status record per installed "
    "package in `/var/lib/dpkg/status.d` (so scanners see the packages).",
    static=True,
)
def check_distroless(p: Probe) -> str:
    if not p.expect.distroless:
        raise NotApplicable("regular image")
    problems: list[str] = []
    for inner in _DISTROLESS_FORBIDDEN:
        if lexists_in_root(p.root, inner):
            problems.append(f"{inner} is present")
    user = ((p.config.get("config") or {}).get("User")) or ""
    if user != p.expect.default_user:
        problems.append(f"default user {user or 'root'!r}, expected {p.expect.default_user}")
    status_d = p.host_path("/var/lib/dpkg/status.d")
    records: list[str] = []
    if status_d is not None and status_d.is_dir():
        for entry in sorted(status_d.iterdir()):
            if entry.suffix == ".md5sums":
                continue
            data = read_bounded(entry, limit=MAX_TEXT, name=f"/var/lib/dpkg/status.d/{entry.name}")
            if data is not None and re.search(rb"^Package: ", data, re.M):
                records.append(entry.name)
    if not records:
        problems.append("/var/lib/dpkg/status.d has no package records")
    elif "libc6" not in records:
        problems.append("/var/lib/dpkg/status.d has no record for libc6")
    if problems:
        raise CheckFailed("; ".join(problems[:3]), "\n".join(problems))
    return f"no shell or package manager, user {user}, {len(records)} dpkg status records"


@check(
    "apt-sources",
    "Regular images: `/etc/apt/sources.list` is exactly the configured image archive "
    "(`BINK_PYTHON_IMAGE_*`, else the build mirror) for the release, `-updates` and "
    "`-security` suites, and no other list is in `/etc/apt/sources.list.d`, so derived "
    "images' `apt-get` reaches the archive users can reach, never a build host's mirror.",
    static=True,
)
def check_apt_sources(p: Probe) -> str:
    e = p.expect
    if e.distroless:
        raise NotApplicable("distroless images have no apt")
    want = e.apt_sources()
    have = read_text_in_root(p.root, "/etc/apt/sources.list")
    extra = []
    lists = resolve_in_root(p.root, "/etc/apt/sources.list.d")
    if lists is not None and lists.is_dir():
        extra = sorted(x.name for x in lists.iterdir() if x.name.endswith((".list", ".sources")))
    problems = []
    if have is None:
        problems.append("/etc/apt/sources.list is missing")
    elif have != want:
        deb = [line.split() for line in have.splitlines() if line.startswith("deb ")]
        uris = sorted({fields[1] for fields in deb if len(fields) > 1})
        problems.append(f"/etc/apt/sources.list names {', '.join(uris) or 'nothing'}")
    if extra:
        problems.append(f"extra lists in /etc/apt/sources.list.d: {', '.join(extra)}")
    if problems:
        detail = "; ".join(problems) + f"; expected:\n{want}"
        raise CheckFailed("; ".join(problems), detail + (f"found:\n{have}" if have else ""))
    suites = [line.split()[2] for line in want.splitlines()]
    return f"{len(suites)} suites ({', '.join(suites)})"


_PYC_NAME = re.compile(r"^(?P<stem>.+?)\.(?P<tag>[a-z]+-\d+)(?:\.opt-(?P<opt>\d+))?\.pyc$")


@check(
    "stdlib-bytecode",
    "Every standard-library source under `/usr/local/lib/python3.X` (site-packages aside) "
    "has its bytecode `__pycache__/<name>.cpython-3X.pyc` at the default optimisation level, "
    "timestamp-based and matching its source (the source's mtime and size in the header), "
    "all of one magic number; no orphan bytecode (without its source, of another cache tag, "
    "or an `.opt-N` level) and none outside `__pycache__`.",
    static=True,
)
def check_stdlib_bytecode(p: Probe) -> str:
    minor = ".".join(p.expect.version.split(".")[:2])
    inner_lib = f"/usr/local/lib/python{minor}"
    lib = p.host_path(inner_lib)
    if lib is None or not lib.is_dir():
        raise CheckFailed(f"{inner_lib} is missing")
    tag = f"cpython-{minor.replace('.', '')}"
    problems: list[str] = []
    sources = 0
    magics: set[bytes] = set()
    for dirpath, dirnames, filenames in os.walk(lib):  # never follows symlinks
        here = Path(dirpath)
        rel = here.relative_to(lib)
        if rel.parts[:1] == ("site-packages",):
            dirnames[:] = []
            continue
        dirnames.sort()
        inner_dir = f"{inner_lib}/{rel}" if rel.parts else inner_lib
        if here.name == "__pycache__":
            for name in sorted(filenames):
                match = _PYC_NAME.match(name)
                where = f"{inner_dir}/{name}"
                if match is None:
                    problems.append(f"unexpected file in __pycache__: {where}")
                elif match["tag"] != tag or match["opt"] is not None:
                    problems.append(f"bytecode of another interpreter or level: {where}")
                elif not (here.parent / f"{match['stem']}.py").is_file():
                    problems.append(f"orphan bytecode (no source): {where}")
            continue
        for name in sorted(filenames):
            where = f"{inner_dir}/{name}"
            if name.endswith(".pyc"):
                problems.append(f"bytecode outside __pycache__: {where}")
            if not name.endswith(".py"):
                continue
            source = here / name
            if source.is_symlink():
                problems.append(f"source is a symlink: {where}")
                continue
            sources += 1
            pyc = here / "__pycache__" / f"{name[:-3]}.{tag}.pyc"
            if pyc.parent.is_symlink() or pyc.is_symlink() or not pyc.is_file():
                problems.append(f"no bytecode: {where}")
                continue
            with open(pyc, "rb") as handle:  # a regular file inside the image (checked above)
                header = handle.read(16)
            if len(header) < 16:
                problems.append(f"truncated bytecode: {where}")
                continue
            magics.add(header[:4])
            st = source.lstat()
            if int.from_bytes(header[4:8], "little") != 0:
                problems.append(f"hash-based bytecode, expected timestamp-based: {where}")
            elif (
                int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF
            ):
                problems.append(f"stale bytecode (the source's mtime or size differ): {where}")
    if len(magics) > 1:
        problems.append(f"bytecode of {len(magics)} different magic numbers")
    if sources == 0:
        problems.append(f"no sources under {inner_lib}")
    fail_on(problems, "problem(s), first")
    return f"{sources} sources, each with its bytecode, no orphans"


@check(
    "compression-instances",
    "Where the index publishes the platform's image twice (gzip and zstd layers, "
    '`[family] compression = ["gzip", "zstd"]`), every other instance is the checked '
    "image: the same config, each of its layer blobs matches its digest and unpacks to "
    "exactly the config's `diff_id` (so every check above holds for it too).",
    static=True,
)
def check_compression_instances(p: Probe) -> str:
    if not p.instances or p.layout is None:
        raise NotApplicable("the index holds one instance of this platform")
    config_digest = p.manifest["config"]["digest"]
    diff_ids = list(p.config.get("rootfs", {}).get("diff_ids") or [])
    problems: list[str] = []
    algorithms: list[str] = []
    for desc in p.instances:
        short = desc.digest[7:19]
        other = p.layout.read_json(desc.digest)
        if other.get("config", {}).get("digest") != config_digest:
            problems.append(
                f"{short}: config {other.get('config', {}).get('digest')}, not the checked image's"
            )
            continue
        layers = other.get("layers") or []
        if len(layers) != len(diff_ids):
            problems.append(f"{short}: {len(layers)} layers for {len(diff_ids)} diff_ids")
            continue
        for number, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True), 1):
            digest, media = str(layer.get("digest")), str(layer.get("mediaType"))
            blob = p.layout.blob_path(digest)
            if not p.layout.blob_ok(digest, layer.get("size")):
                problems.append(f"{short}: layer {number} is not the blob its digest names")
                continue
            try:
                got, _ = uncompressed_digest(blob, media)
            except UNPACK_ERRORS as exc:  # truncated, or not in that format
                problems.append(f"{short}: layer {number} does not unpack ({media}): {exc}")
                continue
            if got != diff_id:
                problems.append(f"{short}: layer {number} unpacks to {got}, not {diff_id}")
        algorithms.append(algorithm_of(str(layers[0].get("mediaType"))) if layers else "empty")
    if problems:
        raise CheckFailed(problems[0], listing(problems))
    return (
        f"{len(p.instances)} other instance(s) ({', '.join(algorithms)}): the same config, "
        f"all {len(diff_ids)} layers unpack to its diff_ids"
    )
