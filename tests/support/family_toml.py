"""The images.toml text that tests write: one small family, shared by the config and lock tests.

``images_toml()`` is the family (registry, user, the linkerd-await component) with
tag 3.13 (CPython 3.13.15 on Debian 13); further ``[[tag]]`` tables are appended
after it, in order. ``write_images_toml(directory, text)`` writes it as
``directory/images.toml``, where ``load_family`` then puts ``images.lock`` too.
"""

from __future__ import annotations

from pathlib import Path

from bink_python.family.config import User

#: The family user of every test family (the published family's user).
TEST_USER = User("apps", 10000, 10000, "/home/apps")

FAMILY_TABLE = """\
[family]
registry = "ghcr.io/binkhq/python"
title = "Bink Python"
description = "test"
source = "https://github.com/binkhq/python"
vendor = "Bink"
licenses = "PSF-2.0"
arches = ["amd64", "arm64"]
"""

#: The family's default components line (with ``[components.linkerd-await]`` below).
DEFAULT_COMPONENTS = """\
components = ["linkerd-await"]
"""

USER_TABLE = """
[family.user]
name = "apps"
uid = 10000
gid = 10000
home = "/home/apps"
"""

LINKERD_AWAIT_TABLE = """
[components.linkerd-await]
version = "0.3.3"
path = "/usr/local/bin/linkerd-await"
homepage = "https://github.com/linkerd/linkerd-await"
"""

#: Tag 3.13: CPython 3.13.15 on Debian 13, supported.
TAG_3_13 = """
[[tag]]
name = "3.13"
python = "3.13.15"
os = "debian"
release = "13"
eol = "2029-04"
status = "supported"
"""


def images_toml(*extra_tags: str, components: bool = True) -> str:
    """The family with tag 3.13, then ``extra_tags``; without components if not ``components``."""
    parts = [FAMILY_TABLE]
    if components:
        parts.append(DEFAULT_COMPONENTS)
    parts.append(USER_TABLE)
    if components:
        parts.append(LINKERD_AWAIT_TABLE)
    parts.append(TAG_3_13)
    parts.extend(extra_tags)
    return "".join(parts)


def write_images_toml(directory: Path, text: str) -> Path:
    """Write ``text`` as ``directory/images.toml`` and return that path."""
    path = directory / "images.toml"
    path.write_text(text)
    return path


#: Tag 3.13-distroless: the same CPython and OS, distroless variant, evaluation.
TAG_3_13_DISTROLESS = """
[[tag]]
name = "3.13-distroless"
python = "3.13.15"
os = "debian"
release = "13"
variant = "distroless"
eol = "2029-04"
status = "evaluation"
"""
