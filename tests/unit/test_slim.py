"""The base removals (slim.py): matching, md5sums of what is there, dpkg filters, README."""

from __future__ import annotations

from pathlib import Path

from bink_python.base import slim
from bink_python.base.base import _mmdebstrap_command
from bink_python.base.spec import BaseSpec
from bink_python.host.distro import get_distro
from tests.support.family_toml import TEST_USER


def _tree(root: Path) -> None:
    for rel in (
        "usr/lib/x86_64-linux-gnu/gconv/IBM1390.so",
        "usr/lib/x86_64-linux-gnu/gconv/IBM437.so",
        "usr/lib/x86_64-linux-gnu/gconv/gconv-modules",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "usr/bin/openssl",
        "usr/lib/ssl/misc/CA.pl",
        "etc/ssl/openssl.cnf",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "usr/lib/ssl/certs").symlink_to("/etc/ssl/certs")


def test_regular_removes_only_the_ebcdic_double_byte_converters(tmp_path: Path) -> None:
    _tree(tmp_path)
    removed = slim.remove_from_tree(tmp_path, "regular")
    assert removed == ["usr/lib/x86_64-linux-gnu/gconv/IBM1390.so"]
    assert (tmp_path / "usr/lib/x86_64-linux-gnu/gconv/IBM437.so").is_file()
    assert (tmp_path / "usr/bin/openssl").is_file()


def test_distroless_removes_gconv_and_the_openssl_tool_but_not_the_ssl_links(
    tmp_path: Path,
) -> None:
    _tree(tmp_path)
    removed = slim.remove_from_tree(tmp_path, "distroless")
    assert removed == [
        "usr/bin/openssl",
        "usr/lib/ssl/misc",
        "usr/lib/x86_64-linux-gnu/gconv",
    ]
    assert (tmp_path / "usr/lib/x86_64-linux-gnu/libc.so.6").is_file()
    assert (tmp_path / "usr/lib/ssl/certs").is_symlink()
    assert (tmp_path / "etc/ssl/openssl.cnf").is_file()


def test_md5sums_list_only_present_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    slim.remove_from_tree(tmp_path, "distroless")
    text = (
        "aaa  usr/lib/x86_64-linux-gnu/gconv/IBM437.so\n"
        "bbb  usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "ccc  usr/share/doc/libc6/changelog.gz\n"
    )
    assert slim.present_md5sums(text, tmp_path) == "bbb  usr/lib/x86_64-linux-gnu/libc.so.6\n"


def test_regular_removals_are_dpkg_filters_of_the_mmdebstrap_command(tmp_path: Path) -> None:
    spec = BaseSpec(get_distro("debian", "13"), "amd64", "regular", TEST_USER)
    cmd = _mmdebstrap_command(spec, [], tmp_path / "t", tmp_path / "i", spec.distro.keyring)
    opts = {c.removeprefix("--dpkgopt=") for c in cmd if c.startswith("--dpkgopt=")}
    assert "path-exclude=/usr/lib/*/gconv/IBM1390.so" in opts
    assert not any("openssl" in o or o.endswith("/gconv") for o in opts)
    assert len(slim.dpkg_options()) == 10


def test_every_removal_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for removal in slim.REMOVALS:
        assert removal.what in readme
