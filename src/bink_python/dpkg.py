"""dpkg's database, read: the status file's stanzas and dependency fields."""

from __future__ import annotations

import re


def parse_status(text: str) -> dict[str, dict[str, str]]:
    """dpkg status stanzas of installed packages, by package name (fields kept raw)."""
    packages: dict[str, dict[str, str]] = {}
    for stanza in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields.get("Package")
        if name and fields.get("Status", "").endswith(" installed"):
            fields["_stanza"] = stanza.strip() + "\n"
            packages[name] = fields
    return packages


def package_records(status: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """name, version, architecture and source package of each installed package."""
    records = []
    for name in sorted(status):
        fields = status[name]
        source = fields.get("Source", "").split(" ", 1)[0] or name
        records.append(
            {
                "name": name,
                "version": fields.get("Version", ""),
                "architecture": fields.get("Architecture", ""),
                "source": source,
            }
        )
    return records


def dep_names(value: str) -> list[list[str]]:
    """A Depends-style field as groups of alternative package names."""
    groups: list[list[str]] = []
    for group in value.split(","):
        names = []
        for alt in group.split("|"):
            name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0].strip()
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups
