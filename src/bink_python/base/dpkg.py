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


# -- version order ------------------------------------------------------------------


def _order(char: str) -> int:
    """dpkg's sort weight of one non-digit character (``~`` before everything)."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    while a or b:
        na = re.match(r"\D*", a)[0]  # type: ignore[index]
        nb = re.match(r"\D*", b)[0]  # type: ignore[index]
        for ca, cb in zip(na.ljust(len(nb), "\0"), nb.ljust(len(na), "\0"), strict=True):
            wa = 0 if ca == "\0" else _order(ca)
            wb = 0 if cb == "\0" else _order(cb)
            if wa != wb:
                return -1 if wa < wb else 1
        a, b = a[len(na) :], b[len(nb) :]
        da = re.match(r"\d*", a)[0]  # type: ignore[index]
        db = re.match(r"\d*", b)[0]  # type: ignore[index]
        if int(da or 0) != int(db or 0):
            return -1 if int(da or 0) < int(db or 0) else 1
        a, b = a[len(da) :], b[len(db) :]
    return 0


def compare_debian_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian orders versions ``[epoch:]upstream[-revision]`` (dpkg's rules)."""

    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)
