"""The command line: a thin layer that parses options and calls the stage modules.

``build_parser()`` is the single definition of every command line; tests parse
the workflows' invocations with it. Handlers return an exit code; errors are
raised as ``BinkError`` and mapped to exit codes in ``__main__``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..base.base import build_base
from ..base.spec import BaseSpec
from ..errors import FetchError, PublishError, UsageError, VerifyError, reported_as
from ..family import matrix
from ..family.config import STATUSES, VARIANTS, Family, Tag, config_path, load_family
from ..family.policy import check_buildable, select_tags, system_clock
from ..host import doctor
from ..host.arch import ARCHES, host_arch
from ..host.distro import get_distro
from ..host.progress import Progress
from ..host.text import human
from ..image import diff, sbom, sizes
from ..inputs.cache import Cache, cache_add, cache_ls
from ..inputs.fetch import FetchSettings, fetch_artifact
from ..inputs.lockfile import Lock, cpython_name, parse_pin, require_pinned, source_date_epoch
from ..inputs.update import run_lock, run_update
from ..oci.layout import Layout
from ..oci.partial import partial_arches
from ..oci.types import Descriptor
from ..pipeline.build import BuildOptions, build_family
from ..pipeline.housekeeping import (
    Item,
    inventory,
    needs,
    parse_size,
    remove,
    select,
    usage,
    usage_table,
    verify_entries,
)
from ..publish import readme
from ..publish.publish import export, push
from ..runtime.runtime import PROFILES, RuntimeSpec, build_runtime, runtime_key
from ..store.kinds import ENTRY_KINDS
from ..store.store import Store, cache_root
from ..verify import VerifyReport, verify_layout
from ..verify.report import ChecksFailed
from . import ci


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def family_from(args: argparse.Namespace) -> Family:
    return load_family(config_path(args.config))


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="images.toml to use (default ./images.toml or $BINK_PYTHON_CONFIG); "
        "images.lock is read beside it",
    )
    common.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache directory (default $BINK_PYTHON_CACHE or ~/.cache/bink-python)",
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error (also BINK_PYTHON_DEBUG=1)",
    )
    return common


# -- matrix -----------------------------------------------------------------


def _cmd_matrix(args: argparse.Namespace) -> int:
    family = family_from(args)
    today = system_clock()
    tags = select_tags(family, args.tags, statuses=args.status or (), arch=args.arch)
    if args.github:
        result = check_buildable(tags, today=today, allow_eol=args.allow_eol, explicit=False)
        print(matrix.as_github(result.tags, (args.arch,) if args.arch else ()))
    elif args.json:
        sys.stdout.write(matrix.as_json(tags, family, today))
    else:
        sys.stdout.write(matrix.as_table(tags, family, today))
    return 0


# -- readme -----------------------------------------------------------------


def _cmd_readme(args: argparse.Namespace) -> int:
    family = family_from(args)
    path = Path(args.readme) if args.readme else readme.readme_path(family)
    if args.check:
        if readme.is_stale(family, path):
            print(
                f"{path} is stale: run `bink-python readme` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{path} is up to date")
        return 0
    changed = readme.write_readme(family, path)
    print(f"{path} {'updated' if changed else 'already up to date'}")
    return 0


# -- shared helpers -----------------------------------------------------------


def _progress(args: argparse.Namespace) -> Progress:
    return Progress(quiet=bool(getattr(args, "quiet", False) or getattr(args, "json", False)))


def _store(args: argparse.Namespace) -> Store:
    return Store(cache_root(args.cache_dir))


def _cache(args: argparse.Namespace) -> Cache:
    """The fetch cache under the same root as the store (--cache-dir)."""

    return Cache(cache_root(args.cache_dir))


def _print_built(
    args: argparse.Namespace, out: Mapping[str, object], path: Path, cached: bool
) -> None:
    """A stage's result: ``out`` as JSON with --json, else ``PATH (cached|built)``."""
    print(json.dumps(out) if args.json else f"{path} ({'cached' if cached else 'built'})")


def _epoch(args: argparse.Namespace, family: Family | None = None) -> int:
    """SOURCE_DATE_EPOCH: --source-date-epoch, $SOURCE_DATE_EPOCH, else images.lock."""

    def from_lock() -> int:
        return Lock.load((family or family_from(args)).lock_path).source_date_epoch

    return source_date_epoch(getattr(args, "source_date_epoch", None), fallback=from_lock)


# -- base / runtime -----------------------------------------------------------


def _cmd_base_build(args: argparse.Namespace) -> int:
    spec = BaseSpec(
        distro=get_distro(args.os, args.release),
        arch=args.arch,
        variant=args.variant,
        user=family_from(args).user,
        extra_packages=tuple(args.extra_package or ()),
    )
    progress = _progress(args)
    result = build_base(
        spec,
        _store(args),
        epoch=_epoch(args),
        mirror=args.mirror,
        progress=progress,
        force=args.force,
    )
    record = {k: result.record[k] for k in ("sha256", "size") if k in result.record}
    out = {"key": result.key, "rootfs": str(result.rootfs), "cached": result.cached, **record}
    _print_built(args, out, result.rootfs, result.cached)
    return 0


def _runtime_spec(args: argparse.Namespace) -> RuntimeSpec:
    family = family_from(args)
    artifact = Lock.load(family.lock_path).entry(cpython_name(args.version))
    return RuntimeSpec(
        version=args.version,
        source_sha256=require_pinned(artifact),
        distro=get_distro(args.os, args.release),
        arch=args.arch,
        profile=args.profile,
    )


def _cmd_runtime_key(args: argparse.Namespace) -> int:
    print(runtime_key(_runtime_spec(args), args.build_host))
    return 0


def _cmd_runtime_build(args: argparse.Namespace) -> int:
    spec = _runtime_spec(args)
    family = family_from(args)
    store = _store(args)
    progress = _progress(args)
    source = fetch_artifact(
        Lock.load(family.lock_path).entry(cpython_name(spec.version)),
        Cache(store.root),
        offline=args.offline,
        progress=progress,
    )
    result = build_runtime(
        spec,
        source,
        store,
        epoch=_epoch(args, family),
        mirror=args.mirror,
        progress=progress,
        jobs=args.jobs,
        force=args.force,
        build_host=args.build_host,
    )
    out = {"key": result.key, "tarball": str(result.tarball), "cached": result.cached}
    _print_built(args, out, result.tarball, result.cached)
    return 0


# -- build ----------------------------------------------------------------------


def _runtime_hosts(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--runtime-host ARCH=HOST`` options; every arch not named is built on this machine."""

    given: dict[str, str] = {}
    for text in pairs:
        arch, sep, host = text.partition("=")
        if not sep or arch not in ARCHES or host not in ARCHES:
            raise UsageError(
                f"--runtime-host {text!r}: expected ARCH=HOST with arches from "
                f"{', '.join(ARCHES)}, e.g. arm64=arm64"
            )
        given[arch] = host
    here = host_arch()
    return tuple((arch, given.get(arch, here)) for arch in sorted(ARCHES))


def _cmd_build(args: argparse.Namespace) -> int:
    family = family_from(args)
    progress = _progress(args)
    tags = select_tags(family, args.tags, arch=args.arch)
    result = check_buildable(
        tags, today=system_clock(), allow_eol=args.allow_eol, explicit=bool(args.tags)
    )
    for warning in result.warnings:
        progress.warn(warning)
    for tag, reason in result.skipped:
        progress.info(f"skipping {tag.name}: {reason}")
    if not result.tags:
        raise UsageError("nothing to build: every selected tag is deprecated or past EOL")
    lock = Lock.load(family.lock_path)
    options = BuildOptions(
        arches=(args.arch,) if args.arch else (),
        profile=args.profile,
        output=Path(args.output) if args.output else None,
        jobs=args.jobs,
        offline=args.offline,
        verify=not args.no_verify,
        epoch=_epoch(args, family),
        mirror=args.mirror,
        runtime_hosts=_runtime_hosts(args.runtime_host or ()),
        cached_runtimes=args.cached_runtimes,
        extra_packages=tuple(args.extra_package or ()),
    )
    try:
        summary = build_family(family, result.tags, lock, _store(args), options, progress=progress)
    except ChecksFailed as failed:
        _show_report(failed.report, progress)
        raise
    if summary.report is not None:
        _show_report(summary.report, progress)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        sys.stdout.write(summary.table())
    return 0


# -- lock / update / cache ------------------------------------------------------


def _fetch_settings(args: argparse.Namespace) -> FetchSettings:
    return dataclasses.replace(
        FetchSettings.from_env(), debian_mirror=getattr(args, "mirror", None)
    )


def _cmd_lock(args: argparse.Namespace) -> int:
    family = family_from(args)
    result = run_lock(
        family,
        _cache(args),
        offline=args.offline,
        pins=dict(parse_pin(p) for p in args.pin or ()),
        progress=_progress(args),
        settings=_fetch_settings(args),
    )
    state = "updated" if result.changed else "unchanged"
    print(f"{family.lock_path} {state}: {len(result.lock.artifacts)} artifacts")
    for name in result.pinned:
        print(f"  pinned  {name}")
    for name in result.fetched:
        print(f"  fetched {name}")
    return 0


def _write_readme(family: Family) -> bool:
    """Rewrite the README beside ``family``'s images.toml; whether it changed."""
    return readme.write_readme(family, readme.readme_path(family))


def _cmd_update(args: argparse.Namespace) -> int:
    result = run_update(
        family_from(args),
        dry_run=args.dry_run,
        progress=_progress(args),
        settings=_fetch_settings(args),
        write_readme=_write_readme,
    )
    print(result.summary())
    return 0


def _cmd_cache_add(args: argparse.Namespace) -> int:
    family = family_from(args)
    added = cache_add(
        [Path(f) for f in args.files],
        _cache(args),
        lock_path=family.lock_path,
        for_=args.for_,
    )
    for item in added:
        names = ", ".join(item.artifacts) or "no lock artifact"
        pinned = " (pinned)" if item.pinned else ""
        print(f"{item.entry.sha256}  {item.entry.size:>10}  {item.source}  -> {names}{pinned}")
    return 0


def _cmd_cache_ls(args: argparse.Namespace) -> int:
    family = family_from(args)
    for item in cache_ls(_cache(args), Lock.load_or_empty(family.lock_path)):
        names = ", ".join(item.artifacts) or "-"
        print(f"{item.entry.sha256}  {item.entry.size:>10}  {names}")
    store = Store(cache_root(args.cache_dir))
    for kind in ENTRY_KINDS:  # then the build entries, kind by kind
        for entry in store.entries(kind.name):
            print(f"{kind.name}/{entry.name}")
    return 0


def _cmd_cache_verify(args: argparse.Namespace) -> int:
    root = cache_root(args.cache_dir)
    bad = verify_entries(root)
    if bad:
        raise FetchError(
            f"{len(bad)} cache entr{'y' if len(bad) == 1 else 'ies'} no longer match their "
            f"record (tampered or corrupted; remove them or run `cache prune`): " + "; ".join(bad)
        )
    print(f"{root}: every entry matches its record")
    return 0


def _cache_items(args: argparse.Namespace) -> list[Item]:
    family = family_from(args)
    lock = Lock.load(family.lock_path)
    return inventory(cache_root(args.cache_dir), needs(family, lock))


def _cmd_cache_du(args: argparse.Namespace) -> int:
    rows = usage(_cache_items(args))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(usage_table(rows))
    return 0


def _cmd_cache_prune(args: argparse.Namespace) -> int:
    try:
        budget = parse_size(args.max_size) if args.max_size is not None else None
    except ValueError as exc:
        raise UsageError(f"--max-size {exc}") from None
    if args.older_than is not None and args.older_than < 0:
        raise UsageError("--older-than: expected a number of days >= 0")
    older = args.older_than * 86400 if args.older_than is not None else None
    root = cache_root(args.cache_dir)
    items = _cache_items(args)
    doomed = select(items, older_than=older, max_bytes=budget, now=time.time())
    verb = "would remove" if args.dry_run else "removed"
    freed = 0
    count = 0
    for item in doomed:
        if args.dry_run or remove(item, root):
            print(f"{verb} {item.path} ({item.kind}, {human(item.size)})")
            freed += item.size
            count += 1
    print(f"{verb} {count} entries, {human(freed)}")
    return 0


# -- push / export ---------------------------------------------------------------


def _refs_for(args: argparse.Namespace, family: Family) -> tuple[list[str], list[Tag]]:
    """Layout refs (minor and full version) of the selected tags present in the layout.

    A tag is present when its name ref is (that is the ref verify checks); its other
    refs go with it and must name the same index (checked on the one resolution).
    """

    layout_refs = Layout(Path(args.layout)).refs()
    tags = [t for t in select_tags(family, args.tags) if t.buildable]
    if args.tags:
        missing = [t.name for t in tags if t.name not in layout_refs]
        if missing:
            raise UsageError(
                f"{args.layout} has no image for {', '.join(missing)}: "
                "run `bink-python build` first"
            )
    tags = [t for t in tags if t.name in layout_refs]
    refs = [ref for tag in tags for ref in tag.refs if ref in layout_refs]
    if not refs:
        raise UsageError(f"{args.layout} holds none of the selected tags: run `bink-python build`")
    return refs, tags


def _push_verifier(
    family: Family, tags: Sequence[Tag], progress: Progress
) -> Callable[[Path, Mapping[str, Descriptor]], None]:
    """Verify the push snapshot: each tag's refs on one index, then every check on it."""

    def run(snapshot: Path, resolved: Mapping[str, Descriptor]) -> None:
        for tag in tags:
            digests = {ref: resolved[ref].digest for ref in tag.refs if ref in resolved}
            if len(set(digests.values())) > 1:
                detail = ", ".join(f"{r}={d[:19]}" for r, d in sorted(digests.items()))
                raise PublishError(
                    f"the refs of tag {tag.name} name different indexes ({detail}): "
                    f"rebuild the tag (`bink-python build {tag.name}`) before pushing"
                )
        _verify_layout(snapshot, family, tags, (), progress)

    return run


def _cmd_push(args: argparse.Namespace) -> int:
    family = family_from(args)
    progress = _progress(args)
    refs, tags = _refs_for(args, family)
    moves = push(
        Path(args.layout),
        refs,
        args.registry,
        dry_run=args.dry_run,
        tls_verify=not args.insecure,
        progress=progress,
        verifier=None if args.no_verify else _push_verifier(family, tags, progress),
        require_arches={ref: tag.arches for tag in tags for ref in tag.refs},
    )
    for move in moves:
        print(f"{'would move' if args.dry_run else 'moved'} {move}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    family = family_from(args)
    tag = next((t for t in family.tags if t.buildable and args.tag in t.refs), None)
    if tag is None:
        published = ", ".join(r for t in family.tags if t.buildable for r in t.refs)
        raise UsageError(f"{args.tag} is not a tag of {family.path} (tags: {published})")
    export(
        Path(args.layout),
        args.tag,
        args.format,
        Path(args.file),
        arch=args.arch,
        require_arches=tag.arches,
    )
    print(f"{args.file}: {args.format} of {args.tag}")
    return 0


# -- verify ------------------------------------------------------------------------


def _verify_layout(
    layout: Path,
    family: Family,
    tags: Sequence[Tag],
    arches: Sequence[str],
    progress: Progress,
    *,
    as_json: bool = False,
    to_stdout: bool = False,
    mirror: str | None = None,
) -> None:
    """Run every check on every image; print the table (or JSON); raise on failures."""

    report = verify_layout(
        layout, family, tags, arches=tuple(arches) or None, progress=progress, mirror=mirror
    )
    _show_report(report, progress, as_json=as_json, to_stdout=to_stdout)
    report.raise_for_failures()


def _show_report(
    report: VerifyReport,
    progress: Progress,
    *,
    as_json: bool = False,
    to_stdout: bool = False,
) -> None:
    """The table (or JSON): on stdout when asked, on stderr when checks failed, else progress."""
    if as_json:
        sys.stdout.write(report.to_json())
        return
    table = report.table().rstrip("\n")
    if to_stdout:
        print(table)
    elif report.failures():
        print(table, file=sys.stderr)
    else:
        progress.info(table)


def _cmd_verify(args: argparse.Namespace) -> int:
    family = family_from(args)
    layout = Path(args.layout)
    if args.tags:
        tags = [t for t in select_tags(family, args.tags) if t.buildable]
    else:
        with reported_as(VerifyError):
            present = Layout(layout).refs()
        tags = [t for t in family.tags if t.buildable and t.name in present]
        if not tags:
            raise UsageError(
                f"{layout} holds none of the tags of {family.path}: run `bink-python build`"
            )
    # a partial layout (build --arch) holds only its arches: verify those by default
    arches = (args.arch,) if args.arch else partial_arches(layout)
    progress = _progress(args)
    _verify_layout(
        layout,
        family,
        tags,
        arches,
        progress,
        as_json=args.json,
        to_stdout=True,
        mirror=args.mirror,
    )
    return 0


# -- parser -----------------------------------------------------------------


def _os_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--os", default="debian", choices=("debian", "ubuntu"))
    p.add_argument("--release", default="13", help="13, 12 or 22.04")
    p.add_argument("--arch", required=True, choices=tuple(ARCHES))
    p.add_argument("--mirror", metavar="URL", help="archive mirror (default: apt's config)")
    p.add_argument("--source-date-epoch", type=int, metavar="N", help="default: images.lock")


#: Extra subcommands registered by stage modules: name -> function(subparsers, common).
Registrar = Callable[["argparse._SubParsersAction[_Parser]", "_Parser"], None]
_REGISTRARS: list[Registrar] = [
    sbom.register,
    diff.register,
    doctor.register,
    ci.register,
    sizes.register,
]


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="bink-python",
        description="Build, verify and publish the Bink Python container base images.",
    )
    parser.add_argument("--version", action="version", version=f"bink-python {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "matrix", parents=[common], help="show the image family (table, --json, --github)"
    )
    p.add_argument(
        "tags", nargs="*", metavar="TAG", help="tag names or patterns (3.1*, *-distroless)"
    )
    p.add_argument("--status", action="append", choices=STATUSES, help="only tags with this status")
    p.add_argument("--arch", choices=tuple(ARCHES), help="only this architecture")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON")
    fmt.add_argument(
        "--github",
        action="store_true",
        help="GitHub Actions strategy.matrix JSON: one entry per buildable tag x arch",
    )
    p.add_argument("--allow-eol", action="store_true", help="with --github: include tags past EOL")
    p.set_defaults(func=_cmd_matrix)

    p = sub.add_parser(
        "readme", parents=[common], help="regenerate the README's generated sections"
    )
    p.add_argument("--check", action="store_true", help="exit non-zero when the README is stale")
    p.add_argument(
        "--readme", metavar="PATH", help="README to update (default: beside images.toml)"
    )
    p.set_defaults(func=_cmd_readme)

    p = sub.add_parser("lock", parents=[common], help="pin every input images.toml names")
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument(
        "--pin",
        action="append",
        metavar="NAME=SHA256",
        help="pin an artifact to a known sha256 (repeatable), e.g. cpython:3.13.16=<hex>",
    )
    p.add_argument("--mirror", metavar="URL", help="Debian archive mirror (default: apt's)")
    p.set_defaults(func=_cmd_lock)

    p = sub.add_parser(
        "update", parents=[common], help="move tags to the newest releases (toml, lock, README)"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would change")
    p.add_argument("--mirror", metavar="URL", help="Debian archive mirror (default: apt's)")
    p.set_defaults(func=_cmd_update)

    p = sub.add_parser("cache", help="the content-addressed fetch cache")
    cache_sub = p.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser)
    cache_sub.required = True
    p = cache_sub.add_parser("add", parents=[common], help="seed the cache from local files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--for",
        dest="for_",
        metavar="ARTIFACT",
        help="the lock artifact the file is (e.g. linkerd-await:0.3.3:arm64): pins it "
        "when unpinned, verifies it otherwise",
    )
    p.set_defaults(func=_cmd_cache_add)
    p = cache_sub.add_parser(
        "ls", parents=[common], help="list cache entries (inputs, then each kind of build entry)"
    )
    p.set_defaults(func=_cmd_cache_ls)
    p = cache_sub.add_parser(
        "verify", parents=[common], help="check every entry (inputs, then each kind of build entry)"
    )
    p.set_defaults(func=_cmd_cache_verify)
    p = cache_sub.add_parser(
        "du", parents=[common], help="disk usage per kind (inputs, bases, runtimes, logs...)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.set_defaults(func=_cmd_cache_du)
    p = cache_sub.add_parser(
        "prune",
        parents=[common],
        help="remove what images.toml and images.lock do not need (by age / size budget)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")
    p.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="only entries unused for DAYS (default: any age)",
    )
    p.add_argument(
        "--max-size",
        metavar="SIZE",
        help="then remove the oldest unneeded entries until the cache fits SIZE (e.g. 50G)",
    )
    p.set_defaults(func=_cmd_cache_prune)

    p = sub.add_parser("base", help="base root filesystems (mmdebstrap)")
    base_sub = p.add_subparsers(dest="base_command", metavar="ACTION", parser_class=_Parser)
    base_sub.required = True
    p = base_sub.add_parser("build", parents=[common], help="build (or reuse) one base rootfs")
    _os_options(p)
    p.add_argument("--variant", choices=VARIANTS, default="regular")
    p.add_argument(
        "--extra-package",
        action="append",
        metavar="PKG",
        help="install an extra package (repeatable)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_base_build)

    p = sub.add_parser("runtime", help="CPython runtimes (compiled once, cached)")
    rt_sub = p.add_subparsers(dest="runtime_command", metavar="ACTION", parser_class=_Parser)
    rt_sub.required = True
    for action, func, text in (
        ("build", _cmd_runtime_build, "build (or reuse) one CPython runtime"),
        ("key", _cmd_runtime_key, "print the runtime cache key (for CI caches)"),
    ):
        p = rt_sub.add_parser(action, parents=[common], help=text)
        p.add_argument("version", help="exact CPython version, e.g. 3.13.16")
        _os_options(p)
        p.add_argument("--profile", choices=PROFILES, default="release")
        p.add_argument(
            "--build-host",
            choices=tuple(ARCHES),
            required=action == "key",
            metavar="ARCH",
            help="arch of the machine that compiles the runtime (part of the key: native "
            "and cross builds differ)"
            + ("" if action == "key" else "; default this machine, the only one it can build"),
        )
        if action == "build":
            p.add_argument("--jobs", type=int, metavar="N", help="parallel compile jobs")
            p.add_argument("--force", action="store_true", help="rebuild even when cached")
            p.add_argument("--offline", action="store_true", help="never use the network")
            p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=func)

    p = sub.add_parser(
        "build", parents=[common], help="build tags into an OCI layout (verified before it moves)"
    )
    p.add_argument("tags", nargs="*", metavar="TAG", help="tag names or patterns (default: all)")
    p.add_argument(
        "--arch",
        choices=tuple(ARCHES),
        help="only this architecture: a partial layout (default dist/oci-ARCH) that verify "
        "and sbom read and push and export refuse",
    )
    p.add_argument("--profile", choices=PROFILES, default="release")
    p.add_argument(
        "--output", metavar="DIR", help="OCI layout (dist/oci; with --arch: dist/oci-ARCH)"
    )
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="stages run at once (2)")
    p.add_argument("--allow-eol", action="store_true", help="build tags past their EOL")
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument("--no-verify", action="store_true", help="skip verification (not for release)")
    p.add_argument("--mirror", metavar="URL", help="Debian archive mirror (default: apt's)")
    p.add_argument("--source-date-epoch", type=int, metavar="N", help="default: images.lock")
    p.add_argument(
        "--runtime-host",
        action="append",
        metavar="ARCH=HOST",
        help="the runtimes of ARCH are (were) compiled on a HOST machine, e.g. arm64=arm64 "
        "for the native arm64 runner's (repeatable; default: this machine for every arch)",
    )
    p.add_argument(
        "--cached-runtimes",
        action="store_true",
        help="never compile a runtime: each must be in the cache (handed over by the "
        "runtime jobs); a miss fails naming the key",
    )
    p.add_argument(
        "--extra-package",
        action="append",
        metavar="PKG",
        help="install an extra package in every base (repeatable): a security rebuild",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser(
        "push", parents=[common], help="push tags to a registry (content by digest, tags last)"
    )
    p.add_argument(
        "registry", metavar="REGISTRY", help="HOST[:PORT]/REPO, e.g. ghcr.io/binkhq/python"
    )
    p.add_argument(
        "tags", nargs="*", metavar="TAG", help="tags or patterns (default: all in the layout)"
    )
    p.add_argument("--layout", default="dist/oci", metavar="DIR", help="OCI layout (dist/oci)")
    p.add_argument("--dry-run", action="store_true", help="show which tags would move")
    p.add_argument("--insecure", action="store_true", help="plain HTTP / no TLS verification")
    p.add_argument("--no-verify", action="store_true", help="push without verifying first")
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser("export", parents=[common], help="write a tag as a docker or OCI archive")
    p.add_argument("tag", metavar="TAG")
    p.add_argument("--format", required=True, choices=("docker-archive", "oci-archive"))
    p.add_argument("file", metavar="FILE")
    p.add_argument("--layout", default="dist/oci", metavar="DIR", help="OCI layout (dist/oci)")
    p.add_argument("--arch", choices=tuple(ARCHES), help="docker-archive: which architecture")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "verify", parents=[common], help="run every check inside every image of a layout"
    )
    p.add_argument(
        "tags", nargs="*", metavar="TAG", help="tags or patterns (default: all in the layout)"
    )
    p.add_argument("--layout", default="dist/oci", metavar="DIR", help="OCI layout (dist/oci)")
    p.add_argument("--arch", choices=tuple(ARCHES), help="only this architecture")
    p.add_argument(
        "--mirror", metavar="URL", help="the archive mirror the images were built from (build's)"
    )
    p.add_argument("--json", action="store_true", help="results as JSON")
    p.set_defaults(func=_cmd_verify)

    for register in _REGISTRARS:
        register(sub, common)
    return parser
