"""skopeo's fatal messages become one line that names the cause, whatever the address holds."""

from __future__ import annotations

import pytest

from bink_python.publish.publish import _classify


def fatal(msg: str) -> str:
    escaped = msg.replace('"', '\\"')
    return f'time="2026-12-07T19:27:18Z" level=fatal msg="{escaped}"\n'


@pytest.mark.parametrize("port", ["5000", "35401", "40300", "401", "4013"])
def test_connection_refused_is_unreachable_whatever_the_port(port: str) -> None:
    host = f"127.0.0.1:{port}"
    stderr = fatal(
        f'Error parsing image name "docker://{host}/bink/x:3.13": pinging container registry '
        f'{host}: Get "http://{host}/v2/": dial tcp {host}: connect: connection refused'
    )
    error = _classify(f"{host}/bink/x", "reading tag 3.13", stderr)
    assert str(error).startswith(f"registry {host} unreachable while reading tag 3.13 (")
    assert "connection refused" in str(error)


@pytest.mark.parametrize(
    "msg",
    [
        "reading manifest 3.13 in {host}/bink/x: unauthorized: authentication required",
        "requesting bearer token: invalid status code from registry 401 (Unauthorized)",
        "trying to reuse blob: received unexpected HTTP status: 403 Forbidden",
        "writing manifest: denied: requested access to the resource is denied",
    ],
)
@pytest.mark.parametrize("port", ["5000", "35401"])
def test_refused_authentication_is_named(msg: str, port: str) -> None:
    host = f"registry.example:{port}"
    error = _classify(f"{host}/bink/x", "pushing 3.13", fatal(msg.format(host=host)))
    assert str(error).startswith(f"registry {host} refused authentication while pushing 3.13")


def test_an_unknown_failure_keeps_skopeo_s_words() -> None:
    error = _classify("127.0.0.1:5000/bink/x", "pushing 3.13", fatal("manifest invalid: 4013"))
    assert str(error) == "skopeo failed while pushing 3.13: manifest invalid: 4013"
