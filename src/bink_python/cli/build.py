"""``bink-python build``, ``base build`` and ``runtime build|key``: the pipeline and its stages."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..base.base import build_base
from ..base.spec import BaseSpec
from ..errors import UsageError
from ..family.config import VARIANTS
from ..family.policy import check_buildable, select_tags
from ..host.arch import ARCHES, host_arch
from ..host.distro import get_distro
from ..inputs.cache import Cache
from ..inputs.fetch import FetchSettings, fetch_artifact
from ..inputs.lockfile import Lock, cpython_name, require_pinned
from ..pipeline.build import build_family
from ..pipeline.plan import BuildOptions
from ..runtime.build import BuildMode, build_runtime
from ..runtime.plan import runtime_key
from ..runtime.spec import RuntimeSpec
from ..settings import settings_of
from ..verify.report import ChecksFailed
from .args import epoch_for, family_from, print_built, progress_for, store_for
from .parser import (
    Parser,
    Subparsers,
    add_command,
    add_extra_package,
    add_force,
    add_group,
    add_json,
    add_mirror,
    add_offline,
    add_os_options,
    add_profile,
    add_source_date_epoch,
    add_tags,
)
from .verify import show_report


def _cmd_base_build(args: argparse.Namespace) -> int:
    spec = BaseSpec(
        distro=get_distro(args.os, args.release, error=UsageError),
        arch=args.arch,
        variant=args.variant,
        user=family_from(args).user,
        extra_packages=tuple(args.extra_package or ()),
    )
    progress = progress_for(args)
    result = build_base(
        spec,
        store_for(args),
        epoch=epoch_for(args),
        mirrors=settings_of(args).mirrors,
        progress=progress,
        force=args.force,
    )
    record = {k: result.record[k] for k in ("sha256", "size") if k in result.record}
    out = {"key": result.key, "rootfs": str(result.rootfs), "cached": result.cached, **record}
    print_built(args, out, result.rootfs, result.cached)
    return 0


def _runtime_spec(args: argparse.Namespace) -> RuntimeSpec:
    family = family_from(args)
    artifact = Lock.load(family.lock_path).entry(cpython_name(args.version))
    return RuntimeSpec(
        version=args.version,
        source_sha256=require_pinned(artifact),
        distro=get_distro(args.os, args.release, error=UsageError),
        arch=args.arch,
        profile=args.profile,
    )


def _cmd_runtime_key(args: argparse.Namespace) -> int:
    print(runtime_key(_runtime_spec(args), args.build_host))
    return 0


def _cmd_runtime_build(args: argparse.Namespace) -> int:
    spec = _runtime_spec(args)
    family = family_from(args)
    store = store_for(args)
    progress = progress_for(args)
    settings = settings_of(args)
    source = fetch_artifact(
        Lock.load(family.lock_path).entry(cpython_name(spec.version)),
        Cache(store.root),
        offline=args.offline,
        progress=progress,
        settings=FetchSettings.of(settings, mirror_option=False),
    )
    result = build_runtime(
        spec,
        source,
        store,
        epoch=epoch_for(args, family),
        mirrors=settings.mirrors,
        progress=progress,
        jobs=args.jobs,
        mode=BuildMode.REBUILD if args.force else BuildMode.REUSE,
        build_host=args.build_host,
    )
    out = {"key": result.key, "tarball": str(result.tarball), "cached": result.cached}
    print_built(args, out, result.tarball, result.cached)
    return 0


def runtime_hosts(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
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
    progress = progress_for(args)
    settings = settings_of(args)
    tags = select_tags(family, args.tags, arch=args.arch)
    result = check_buildable(
        tags, today=settings.clock(), allow_eol=args.allow_eol, explicit=bool(args.tags)
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
        epoch=epoch_for(args, family),
        mirrors=settings.mirrors,
        fetch=FetchSettings.of(settings, mirror_option=False),
        revision=settings.revision,
        runtime_hosts=runtime_hosts(args.runtime_host or ()),
        cached_runtimes=args.cached_runtimes,
        extra_packages=tuple(args.extra_package or ()),
    )
    try:
        summary = build_family(
            family, result.tags, lock, store_for(args), options, progress=progress
        )
    except ChecksFailed as failed:
        show_report(failed.report, progress)
        raise
    if summary.report is not None:
        show_report(summary.report, progress)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        sys.stdout.write(summary.table())
    return 0


def _register_stages(sub: Subparsers, common: Parser) -> None:
    """``base build`` and ``runtime build|key``: one stage at a time."""
    actions = add_group(sub, "base", "base root filesystems (mmdebstrap)")
    p = add_command(actions, "build", "build (or reuse) one base rootfs", _cmd_base_build, common)
    add_os_options(p)
    p.add_argument("--variant", choices=VARIANTS, default="regular", help="regular or distroless")
    add_extra_package(p, "install an extra package (repeatable)")
    add_force(p)
    add_json(p, "print the result as JSON")

    actions = add_group(sub, "runtime", "CPython runtimes (compiled once, cached)")
    for action, func, text in (
        ("build", _cmd_runtime_build, "build (or reuse) one CPython runtime"),
        ("key", _cmd_runtime_key, "print the runtime cache key (for CI caches)"),
    ):
        p = add_command(actions, action, text, func, common)
        p.add_argument("version", help="exact CPython version, e.g. 3.13.16")
        add_os_options(p)
        add_profile(p)
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
            add_force(p)
            add_offline(p)
            add_json(p, "print the result as JSON")


def register(sub: Subparsers, common: Parser) -> None:
    """``base``, ``runtime`` and ``build [TAG...]``."""
    _register_stages(sub, common)
    p = add_command(
        sub, "build", "build tags into an OCI layout (verified before it moves)", _cmd_build, common
    )
    add_tags(p, "tag names or patterns (default: all)")
    p.add_argument(
        "--arch",
        choices=tuple(ARCHES),
        help="only this architecture: a partial layout (default dist/oci-ARCH) that verify "
        "and sbom read and push and export refuse",
    )
    add_profile(p)
    p.add_argument(
        "--output", metavar="DIR", help="OCI layout (dist/oci; with --arch: dist/oci-ARCH)"
    )
    p.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="stages, then images verified, at once (2)"
    )
    p.add_argument("--allow-eol", action="store_true", help="build tags past their EOL")
    add_offline(p)
    p.add_argument("--no-verify", action="store_true", help="skip verification (not for release)")
    add_mirror(p)
    add_source_date_epoch(p)
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
    add_extra_package(p, "install an extra package in every base (repeatable): a security rebuild")
    add_json(p, "print the summary as JSON")
