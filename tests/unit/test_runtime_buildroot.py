"""Unit tests of the build root: apt sources per distribution, key inputs."""

from __future__ import annotations

import argparse

from bink_python.host.distro import get_distro
from bink_python.runtime.buildroot import (
    BuildRootSpec,
    apt_sources,
    buildroot_key,
    buildroot_store_key,
)
from bink_python.runtime.plan import runtime_key
from bink_python.runtime.spec import RuntimeSpec
from bink_python.settings import Mirrors, Settings


def test_debian_root_uses_one_archive_for_every_arch() -> None:
    spec = BuildRootSpec(get_distro("debian", "13"), "amd64")
    assert apt_sources(spec, Mirrors(build="http://mirror.invalid/debian/")) == [
        "deb http://mirror.invalid/debian trixie main"
    ]


def test_ubuntu_root_takes_arm64_from_the_ports_archive() -> None:
    given = Settings.resolve(
        argparse.Namespace(mirror="http://archive.invalid/ubuntu"),
        {"BINK_PYTHON_UBUNTU_PORTS_MIRROR": "http://ports.invalid/ubuntu-ports"},
    )
    spec = BuildRootSpec(get_distro("ubuntu", "22.04"), "amd64")
    assert apt_sources(spec, given.mirrors) == [
        "deb [arch=amd64] http://archive.invalid/ubuntu jammy main universe",
        "deb [arch=arm64] http://ports.invalid/ubuntu-ports jammy main universe",
    ]


def test_buildroot_key_depends_on_release_and_host() -> None:
    keys = {
        buildroot_key(BuildRootSpec(get_distro(os_name, release), host))
        for os_name, release in (("debian", "13"), ("debian", "12"), ("ubuntu", "22.04"))
        for host in ("amd64", "arm64")
    }
    assert len(keys) == 6


def test_buildroot_store_key_follows_the_archive_state_but_the_runtime_key_does_not() -> None:
    spec = BuildRootSpec(get_distro("debian", "13"), "amd64")
    monday = {"http://archive/debian": "a" * 64}
    tuesday = {"http://archive/debian": "b" * 64}
    assert buildroot_store_key(spec, monday) == buildroot_store_key(spec, dict(monday))
    assert buildroot_store_key(spec, monday) != buildroot_store_key(spec, tuesday)
    # the runtime key names the build root by its identity only (no archive state)
    runtime = RuntimeSpec("3.13.15", "0" * 64, get_distro("debian", "13"), "amd64", "fast")
    assert runtime_key(runtime, "amd64") == runtime_key(runtime, "amd64")
    assert buildroot_key(spec) not in (
        buildroot_store_key(spec, monday),
        buildroot_store_key(spec, tuesday),
    )
