"""dpkg's database, read: the status file's stanzas and dependency fields."""

from __future__ import annotations

import re


def parse_stanzas(text: str, *, installed_only: bool = True) -> list[dict[str, str]]:
    """The stanzas of a dpkg status file (or a status.d record), fields kept raw.

    Continuation lines are joined with newlines; ``_stanza`` is the stanza's own text.
    With ``installed_only``, stanzas whose ``Status`` is present and does not end in
    ``installed`` are dropped (distroless ``status.d`` records may have no Status
    field: they are installed by definition).
    """
    stanzas: list[dict[str, str]] = []
    for chunk in re.split(r"\n[ \t]*\n", text.strip()):
        fields: dict[str, str] = {}
        key = ""
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t"):
                if key:
                    fields[key] += "\n" + line.strip()
                continue
            if ":" in line:
                key, _, value = line.partition(":")
                key = key.strip()
                fields[key] = value.strip()
        if "Package" not in fields:
            continue
        status = fields.get("Status")
        if installed_only and status is not None and not status.endswith(" installed"):
            continue
        fields["_stanza"] = chunk.strip() + "\n"
        stanzas.append(fields)
    return stanzas


def parse_status(text: str) -> dict[str, dict[str, str]]:
    """The installed packages of a dpkg status file, by name (see :func:`parse_stanzas`)."""
    return {
        fields["Package"]: fields
        for fields in parse_stanzas(text)
        if fields.get("Status", "").endswith(" installed")
    }


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
