"""The image description is made once from images.toml and feeds base, assemble and
verify: changing the user's UID in images.toml changes the base's key and its user,
the image config, and what verify expects."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bink_python.base import base
from bink_python.base.spec import BaseSpec
from bink_python.cli.commands import build_parser
from bink_python.family.config import load_family
from bink_python.image.assemble import ImageSpec, LayerSource, build_image
from bink_python.image.description import IMAGE_CMD, ImageDescription, describe_image
from bink_python.oci.layout import Layout
from bink_python.oci.tarball import write_tree_tar_file
from bink_python.pipeline import plan
from bink_python.pipeline.plan import BuildOptions
from bink_python.settings import Mirrors, Settings
from bink_python.store.store import Store, cache_key
from bink_python.verify.imagerun import Container
from bink_python.verify.registry import CheckFailed, Probe
from bink_python.verify.static import check_apt_sources, check_image_config, static_user_problems
from tests.support.family_toml import (
    TAG_3_13_DISTROLESS,
    USER_TABLE,
    images_toml,
    write_images_toml,
)

STATE = {"trixie": "a" * 64}
EPOCH = 1_700_000_000


def _image(tmp_path: Path, uid: int) -> ImageDescription:
    text = images_toml(TAG_3_13_DISTROLESS).replace(
        USER_TABLE, USER_TABLE.replace("10000\ngid", f"{uid}\ngid")
    )
    directory = tmp_path / str(uid)
    directory.mkdir()
    family = load_family(write_images_toml(directory, text))
    assert family.user.uid == uid
    return describe_image(family, family.tag("3.13-distroless"), "amd64", mirrors=Mirrors())


def _config(tmp_path: Path, image: ImageDescription) -> tuple[dict[str, object], dict[str, object]]:
    """Assemble a one-layer image from the description; its (config, manifest)."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True, exist_ok=True)
    tar = tmp_path / f"layer-{image.user.uid}.tar"
    sha, _ = write_tree_tar_file(tree, tar, epoch=EPOCH)
    spec = ImageSpec(
        arch=image.arch,
        layers=(LayerSource(tar, "sha256:" + sha, "test"),),
        env=image.env,
        cmd=image.cmd,
        user=image.default_user,
        labels=image.labels(epoch=EPOCH, revision="test"),
    )
    layout = Layout(tmp_path / f"oci-{image.user.uid}")
    built = build_image(spec, layout, Store(tmp_path / "cache"))
    manifest = layout.read_json(built.descriptor.digest)
    return layout.read_json(manifest["config"]["digest"]), manifest


def _probe(
    image: ImageDescription, root: Path, config: dict[str, object], manifest: dict[str, object]
) -> Probe:
    container = Container(buildah=None, name="test", rootfs=root)  # type: ignore[arg-type]
    return Probe(image, container, config, manifest)


def test_the_users_uid_flows_into_base_config_and_verify(tmp_path: Path) -> None:
    apps, other = _image(tmp_path, 10000), _image(tmp_path, 12345)

    # base: the user is part of the key, and of what mmdebstrap is told to create
    assert cache_key(base.key_parts(apps.base_spec, mirror_state=STATE, epoch=1)) != cache_key(
        base.key_parts(other.base_spec, mirror_state=STATE, epoch=1)
    )
    command = " ".join(
        base._mmdebstrap_command(
            other.base_spec, [], tmp_path, tmp_path, other.base_spec.distro.keyring
        )
    )
    assert "useradd --uid 12345 --gid 10000 --home-dir /home/apps" in command
    assert "--uid 10000" not in command

    # assemble: the image config carries the description's user, Env, Cmd and labels
    config, manifest = _config(tmp_path, other)
    inner = config["config"]
    assert isinstance(inner, dict)
    assert inner["User"] == "12345:10000"
    assert inner["Env"] == list(other.env)
    assert inner["Cmd"] == list(IMAGE_CMD)
    apps_config, apps_manifest = _config(tmp_path, apps)
    assert apps_config["config"]["User"] == "10000:10000"  # type: ignore[index]

    # verify: expects what the description says, so each image passes only its own
    root = tmp_path / "root"
    root.mkdir()
    assert check_image_config(_probe(other, root, config, manifest)).startswith("linux/amd64")
    with pytest.raises(CheckFailed, match="User '10000:10000', expected 12345:10000"):
        check_image_config(_probe(other, root, apps_config, apps_manifest))

    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("apps:x:10000:10000:apps:/home/apps:/usr/sbin/nologin\n")
    (root / "etc/group").write_text("apps:x:10000:\n")
    (root / "home/apps").mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(root / "home/apps", 10000, 10000)
        assert static_user_problems(_probe(apps, root, config, manifest)) == []
    problems = static_user_problems(_probe(other, root, config, manifest))
    assert "/etc/passwd: apps has 10000:10000, expected 12345:10000" in problems


def test_labels_the_build_writes_are_the_ones_verify_expects(tmp_path: Path) -> None:
    image = _image(tmp_path, 10000)
    labels = image.labels(epoch=EPOCH, revision="abc")
    fixed = image.fixed_labels()
    assert {k: v for k, v in labels.items() if k in fixed} == fixed
    assert set(labels) - set(fixed) == {
        "org.opencontainers.image.created",
        "org.opencontainers.image.revision",
    }
    assert fixed["com.bink.python.eol"] == "2029-04"
    assert json.dumps(fixed)  # plain strings


#: Manifest and index digests the code before the image description (build.image_env,
#: image_user, tag_labels; commit b63aa21) assembled for the offline example's tags
#: from the one-file layer below: the description must give the same bytes. Re-recorded
#: once, when gzip layers moved from zlib -6 to libdeflate -12 (the layer blob's bytes
#: changed; the configs, which hold the description, did not: they name diff_ids only).
GOLDEN = {
    ("3.13", "amd64"): "sha256:d5374a933d20f6858baf50c97c8ae045c86aa7e0b175925b78971b51d4c6d4ea",
    ("3.13", "arm64"): "sha256:499b1d27bf5ff2c38c2ca209d640c6ed22f1660ff52e4887ba813cab2bd0c5a4",
    ("3.13", "index"): "sha256:9d86f49991de2d0b688265cbf144b367832bfb933f602012930fc29599077754",
    ("3.13-distroless", "amd64"): (
        "sha256:b04cb134da5f5d1a7a560e6647f40f4e23cd3448e5c314da98fd7eae91a09404"
    ),
    ("3.13-distroless", "arm64"): (
        "sha256:dfdc458e9a4d53c8b0dbcb225c52c6aa4d59c81b8c2f3e8fa2bf0fbb0d894797"
    ),
    ("3.13-distroless", "index"): (
        "sha256:7be6db711881f8f03ad31ff7376f8d3a6f562161eb329b48bd18cbbb0954e532"
    ),
}


def test_described_images_are_byte_identical_to_before(tmp_path: Path) -> None:
    from bink_python.image.assemble import build_index, rfc3339

    epoch = 1_767_225_600
    family = load_family(Path(__file__).resolve().parents[2] / "examples/offline/images.toml")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=test\n")
    sha, _ = write_tree_tar_file(tree, tmp_path / "l.tar", epoch=epoch)
    layer = LayerSource(tmp_path / "l.tar", "sha256:" + sha, "test layer")
    store, layout = Store(tmp_path / "cache"), Layout(tmp_path / "oci")
    got = {}
    for tag in family.tags:
        manifests = []
        for arch in tag.arches or family.arches:
            image = describe_image(family, tag, arch, mirrors=Mirrors())
            spec = ImageSpec(
                arch=arch,
                layers=(layer,),
                env=image.env,
                cmd=image.cmd,
                user=image.default_user,
                labels=image.labels(epoch=epoch, revision="r"),
                created=rfc3339(epoch),
            )
            manifests.append(build_image(spec, layout, store).descriptor)
            got[(tag.name, arch)] = manifests[-1].digest
        labels = describe_image(family, tag, "amd64", mirrors=Mirrors()).labels(
            epoch=epoch, revision="r"
        )
        got[(tag.name, "index")] = build_index(manifests, labels, layout).digest
    assert got == GOLDEN


def test_a_build_from_a_mirror_writes_and_expects_that_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``build --mirror URL``: the description carries the mirror, the base writes the
    list the description names, and verify's apt-sources check expects that list."""

    machine = {  # no image archive setting: images name the build mirror
        "BINK_PYTHON_DEBIAN_MIRROR": "http://127.0.0.1:9/machine/debian",
        "BINK_PYTHON_DEBIAN_SECURITY_MIRROR": "http://127.0.0.1:9/machine/sec",
    }
    family = load_family(write_images_toml(tmp_path, images_toml()))
    tag = family.tag("3.13")
    mirror = "http://127.0.0.1:9/company/debian"
    given = Settings.resolve(argparse.Namespace(mirror=mirror), machine).mirrors
    configured = Settings.resolve(None, machine).mirrors
    image = describe_image(family, tag, "amd64", mirrors=given)
    assert image.mirrors.build == mirror
    assert f"deb {mirror} trixie main\n" in image.apt_sources()
    assert mirror not in describe_image(family, tag, "amd64", mirrors=configured).apt_sources()

    # the base built from that mirror writes exactly the description's list
    def fake_regular(
        spec: BaseSpec, sources: object, state: object, work: Path, **_: object
    ) -> tuple[Path, dict[str, dict[str, str]]]:
        tree = work / "tree"
        (tree / "etc/apt").mkdir(parents=True)
        return tree, {}

    monkeypatch.setattr(base, "mirror_state", lambda sources: dict(STATE))
    monkeypatch.setattr(base, "_build_regular", fake_regular)
    built = base.build_base(image.base_spec, Store(tmp_path / "cache"), epoch=1, mirrors=given)
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-xf", str(built.rootfs), "-C", str(root)], check=True)
    assert (root / "etc/apt/sources.list").read_text() == image.apt_sources()

    # verify expects it from the description that carries the mirror, and only from that
    probe = _probe(image, root, {}, {})
    assert check_apt_sources(probe) == "3 suites (trixie, trixie-updates, trixie-security)"
    elsewhere = describe_image(family, tag, "amd64", mirrors=configured)
    with pytest.raises(CheckFailed, match="company"):
        check_apt_sources(_probe(elsewhere, root, {}, {}))


def test_build_extra_packages_reach_every_base_and_nothing_else(tmp_path: Path) -> None:
    """``build --extra-package``: the option, not a patched function, changes the bases."""
    family = load_family(write_images_toml(tmp_path, images_toml()))
    image = describe_image(family, family.tag("3.13"), "amd64", mirrors=Mirrors())
    assert plan.base_spec(image, BuildOptions()) == image.base_spec  # same key as before
    extra = plan.base_spec(image, BuildOptions(extra_packages=("less",)))
    assert extra == replace(image.base_spec, extra_packages=("less",))
    assert "less" in extra.packages
    args = build_parser().parse_args(["build", "3.13", "--extra-package", "less"])
    assert tuple(args.extra_package) == ("less",)
