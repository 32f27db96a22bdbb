"""Small OCI images of the family's shape (a base layer with a dpkg status, a component
layer), made with the real assembler, for the diff tests."""

from __future__ import annotations

from pathlib import Path

from bink_python.image.assemble import ImageSpec, LayerFile, build_image, build_index, files_layer
from bink_python.oci.layout import Layout
from bink_python.store.store import Store

EPOCH = 1767225600


def stanza(name: str, version: str, arch: str = "amd64") -> str:
    return (
        f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\n"
        f"Version: {version}\nDescription: {name}\n multi-line\n"
    )


def make_image(
    tmp: Path,
    name: str,
    *,
    packages: dict[str, str],
    python: str = "3.13.15",
    binary: bytes = b"\x7fELF stand-in 1",
    distroless: bool = False,
    extra_layer: dict[str, bytes] | None = None,
) -> str:
    """An image of the family's shape (base with dpkg status, component), as oci:DIR:3.13."""
    store = Store(tmp / "store")
    if distroless:
        files = [
            LayerFile(f"var/lib/dpkg/status.d/{p}", data=stanza(p, v).encode())
            for p, v in packages.items()
        ]
    else:
        text = "\n".join(stanza(p, v) for p, v in packages.items())
        files = [LayerFile("var/lib/dpkg/status", data=text.encode())]
    base = files_layer(
        [*files, LayerFile("etc/os-release", data=b"ID=debian\n")],
        store,
        epoch=EPOCH,
        created_by="bink-python base debian13-amd64-regular (mmdebstrap, key x)",
    )
    comp = files_layer(
        [LayerFile("usr/local/bin/linkerd-await", data=binary, mode=0o755)],
        store,
        epoch=EPOCH,
        created_by="bink-python component linkerd-await 0.3.3 amd64",
    )
    layers = [base, comp]
    if extra_layer is not None:
        layers.append(
            files_layer(
                [LayerFile(p, data=d) for p, d in extra_layer.items()],
                store,
                epoch=EPOCH,
                created_by="bink-python files",
            )
        )
    layout = Layout(tmp / name).init()
    image = build_image(
        ImageSpec(
            arch="amd64",
            layers=tuple(layers),
            env=("PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8", f"PYTHON_VERSION={python}"),
            cmd=("python3",),
            user="10000:10000" if distroless else "",
            labels={"org.opencontainers.image.version": python},
        ),
        layout,
        store,
    )
    index = build_index([image.descriptor], {}, layout)
    layout.set_refs({"3.13": index})
    return f"oci:{layout.path}:3.13"


BASE = {"libc6": "2.41-12", "libssl3t64": "3.5.1-1", "zlib1g": "1:1.3.dfsg+really1.3.1-1+b1"}
