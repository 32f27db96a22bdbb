"""Single-arch builds never move a multi-arch tag: they go to a
layout of their own, marked partial, which push and export refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from bink_python.errors import BuildError, PublishError
from bink_python.family.config import load_family
from bink_python.oci.layout import Layout
from bink_python.oci.partial import mark_partial, partial_arches
from bink_python.oci.types import MEDIA_INDEX, Descriptor
from bink_python.pipeline.plan import BuildOptions, check_output, partial_plan
from bink_python.publish.publish import push
from tests.support.family_toml import images_toml, write_images_toml

AMD64_ONLY_TAG = """
[[tag]]
name = "3.12"
python = "3.12.15"
os = "debian"
release = "13"
arches = ["amd64"]
eol = "2029-04"
status = "supported"
"""


def _family(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_family(write_images_toml(tmp_path, images_toml(AMD64_ONLY_TAG)))


def test_partial_plan(tmp_path: Path) -> None:
    family = _family(tmp_path)
    both, amd64_only = family.tags
    assert partial_plan([both], BuildOptions()) == ()
    assert partial_plan([both], BuildOptions(arches=("amd64",))) == ("amd64",)
    # a tag that lists only amd64 is complete when built for amd64
    assert partial_plan([amd64_only], BuildOptions(arches=("amd64",))) == ()
    assert partial_plan([both, amd64_only], BuildOptions(arches=("amd64",))) == ("amd64",)


def _layout_with_a_ref(path: Path) -> Layout:
    layout = Layout(path).init()
    blob = layout.write_blob(b'{"schemaVersion":2,"manifests":[]}')
    layout.set_refs({"3.13": Descriptor(MEDIA_INDEX, blob.digest, blob.size)})
    return layout


def test_partial_build_never_writes_into_a_layout_with_complete_tags(tmp_path: Path) -> None:
    complete = _layout_with_a_ref(tmp_path / "oci")
    with pytest.raises(BuildError, match=r"amd64-only build .* holds complete tags: .*--output"):
        check_output(complete.path, ("amd64",))
    check_output(complete.path, ())  # a complete build may
    check_output(tmp_path / "new", ("amd64",))  # a new layout may take a partial build
    partial = _layout_with_a_ref(tmp_path / "oci-amd64")
    mark_partial(partial.path, ("amd64",))
    assert partial_arches(partial.path) == ("amd64",)
    check_output(partial.path, ("amd64",))  # rebuilding the same arch into it
    with pytest.raises(BuildError, match=r"holds a partial amd64 layout"):
        check_output(partial.path, ("arm64",))
    with pytest.raises(BuildError, match=r"is a partial layout \(amd64 only"):
        check_output(partial.path, ())


def test_push_refuses_a_partial_layout_before_any_network(tmp_path: Path) -> None:
    partial = _layout_with_a_ref(tmp_path / "oci-amd64")
    mark_partial(partial.path, ("amd64",))
    # port 9 on loopback: nothing listens; the refusal comes before any connection
    with pytest.raises(PublishError, match=r"partial layout \(amd64 only"):
        push(partial.path, ["3.13"], "127.0.0.1:9/bink/x", tls_verify=False)


def test_runtime_hosts_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """`build --runtime-host ARCH=HOST`: named arches as given, the others this machine."""
    import platform

    from bink_python.cli.build import runtime_hosts
    from bink_python.errors import UsageError

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert runtime_hosts([]) == (("amd64", "amd64"), ("arm64", "amd64"))
    assert runtime_hosts(["arm64=arm64"]) == (("amd64", "amd64"), ("arm64", "arm64"))
    for bad in ("arm64", "arm64=riscv64", "x=amd64"):
        with pytest.raises(UsageError, match="expected ARCH=HOST"):
            runtime_hosts([bad])
