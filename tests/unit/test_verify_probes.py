"""verify's probes are real modules: each runs on the host Python, imported and as
``python3 -c <text>`` exactly as verify sends it into an image."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bink_python.verify import probe_wheel, probes
from bink_python.verify.probes import (
    imports,
    recursion,
    tls,
    user,
    utf8,
    venv,
    version,
)


def _run_text(name: str, *args: str) -> dict[str, object]:
    """The probe's text run by a fresh host interpreter the way verify runs it."""
    out = subprocess.run(
        [sys.executable, "-c", probes.source(name), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    return data


def test_every_probe_is_shipped_and_runs_as_a_program() -> None:
    assert set(probes.NAMES) == {
        p.stem for p in Path(probes.__file__).parent.glob("*.py") if p.stem != "__init__"
    }
    for name in probes.NAMES:
        if name == "pip_import":
            continue  # needs an installed target (below)
        assert _run_text(name, json.dumps({"find_library": False}) if name == "imports" else "")
    with pytest.raises(KeyError):
        probes.source("nope")


def test_version_probe() -> None:
    data = version.main([])
    assert data["prefix"] == sys.prefix
    assert data["machine"] == os.uname().machine


def test_imports_probe_reports_each_module() -> None:
    data = imports.main([json.dumps({"find_library": False})])
    names = {"ssl", "sqlite3", "ctypes", "lzma", "bz2", "zlib", "decimal", "zoneinfo", "hashlib"}
    assert names <= set(data)
    for name in names:
        result = data[name]
        assert isinstance(result, list) and result[0] is True, (name, result)


def test_imports_probe_fails_a_broken_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lzma", None)  # import lzma raises ImportError
    data = imports.main([json.dumps({"find_library": False})])
    assert data["lzma"] == [
        False,
        "ModuleNotFoundError: import of lzma halted; None in sys.modules",
    ]


def test_tls_probe() -> None:
    data = tls.main([])
    assert isinstance(data["stats"], dict) and "x509_ca" in data["stats"]


def test_pip_import_probe_imports_the_wheel_package(tmp_path: Path) -> None:
    name, wheel = probe_wheel()
    (tmp_path / name).write_bytes(wheel)
    with zipfile.ZipFile(tmp_path / name) as zf:
        zf.extractall(tmp_path / "target")
    data = _run_text("pip_import", str(tmp_path / "target"))
    assert data["value"] == "bink-verify-ok"


def test_venv_user_recursion_utf8_probes() -> None:
    assert venv.main([]) == {"prefix": sys.prefix, "base": sys.base_prefix}
    me = user.main([])
    assert (me["uid"], me["gid"]) == (os.getuid(), os.getgid())
    assert me["tmp"] is True
    depth = recursion.main([])
    assert isinstance(depth["main"], int) and depth["main"] > 9000
    assert isinstance(depth["thread"], int) and depth["thread"] > 9000
    text = utf8.main([])
    assert text["roundtrip"] is True and text["bytes"] is True, text


def test_no_compile_probe_reports_sources_compiled_at_run_time(tmp_path: Path) -> None:
    """A module without bytecode is compiled (reported); one with fresh bytecode is not."""

    (tmp_path / "bink_fresh.py").write_text("X = 1\n")
    (tmp_path / "bink_nobytecode.py").write_text("Y = 2\n")
    py_compile.compile(str(tmp_path / "bink_fresh.py"), doraise=True)
    # every stdlib module counts as left out here: the probe imports only the two modules
    everything = sorted(sys.stdlib_module_names)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            probes.source("no_compile"),
            json.dumps(everything),
            json.dumps(["bink_fresh", "bink_nobytecode", "bink_missing_module"]),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["compiled"] == [str(tmp_path / "bink_nobytecode.py")]
    assert data["imported"] == 2  # bink_missing_module: no spec, skipped
    assert data["failed"] == []
    assert data["stale"] == []
    # every stdlib module "left out" that exists is reported as still there
    assert "json" in data["removed_found"]
