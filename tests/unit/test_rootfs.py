"""The one resolve-inside-a-root: hostile symlinks never lead out of the root."""

from __future__ import annotations

from pathlib import Path

from bink_python.oci.rootfs import (
    canonical_in_root,
    lexists_in_root,
    make_dir_in_root,
    resolve_in_root,
    walk,
)


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc/secret").write_text("host")
    (root / "usr/lib/x").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/secret").write_text("image")
    (root / "lib").symlink_to("usr/lib")
    (root / "abs").symlink_to(str(outside / "etc"))  # absolute: means /<outside>/etc inside
    (root / "up").symlink_to("../../../../outside/etc")  # climbs: stops at the root
    (root / "loop").symlink_to("loop")
    return root, outside


def test_links_resolve_inside_the_root(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    assert resolve_in_root(root, "/lib/x") == root / "usr/lib/x"
    assert resolve_in_root(root, "/up/secret") is None  # /outside/etc inside the root: absent
    assert resolve_in_root(root, "/abs/secret") is None
    assert resolve_in_root(root, "/loop") is None
    (root / "outside/etc").mkdir(parents=True)
    (root / "outside/etc/secret").write_text("inside")
    assert resolve_in_root(root, "/up/secret") == root / "outside/etc/secret"
    assert resolve_in_root(root, "/../../etc/secret") == root / "etc/secret"


def test_canonical_keeps_the_last_component(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    assert canonical_in_root(root, "/lib/x/new") == "usr/lib/x/new"
    assert canonical_in_root(root, "/lib") == "lib"
    assert canonical_in_root(root, "/") == ""
    assert canonical_in_root(root, "/loop/x") is None
    assert lexists_in_root(root, "/lib")
    assert not lexists_in_root(root, "/abs/secret")
    assert lexists_in_root(root, "/loop")


def test_walk_over_recorded_links() -> None:
    links = {"usr/share/doc/a": "b", "usr/share/doc/b": "/usr/share/doc/c"}
    assert walk("usr/share/doc/a/copyright", links.get) == ["usr", "share", "doc", "c", "copyright"]
    assert walk("x", {"x": "x"}.get) is None


def test_make_dir_never_writes_through_the_images_links(tmp_path: Path) -> None:
    root, outside = _tree(tmp_path)
    (root / "var").symlink_to(str(outside / "etc"))  # hostile: /var -> a host path
    made = make_dir_in_root(root, "/var/bink-verify", mode=0o755)
    assert made.is_dir() and made.resolve().is_relative_to(root.resolve())
    (root / "run").symlink_to("../../../..")  # climbs: stays at the root
    assert make_dir_in_root(root, "/run/x", mode=0o755) == root / "x"
    assert sorted(p.name for p in (outside / "etc").iterdir()) == ["secret"]  # untouched
    # a planted link at the last component is replaced by a directory, inside the root
    (root / "etc/cache").symlink_to(str(outside))
    made = make_dir_in_root(root, "/etc/cache", mode=0o1777, fresh=True)
    assert made == root / "etc/cache" and made.is_dir() and not made.is_symlink()
    assert oct(made.stat().st_mode & 0o7777) == "0o1777"
    assert sorted(p.name for p in outside.iterdir()) == ["etc"]
    (made / "x").write_text("old")
    assert not (make_dir_in_root(root, "/etc/cache", mode=0o755, fresh=True) / "x").exists()
    assert (make_dir_in_root(root, "/lib/x/new", mode=0o755)) == root / "usr/lib/x/new"
