"""Unit tests of the benchmark harness (bench/): figures, ratios, results, sizing, workloads."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from bench import __main__ as bench_main
from bench import (
    instructions,
    interpreter_results,
    registry,
    release_builds,
    report,
    speed,
    variants,
)
from bench.comparisons import common, security, sizes
from bench.harness import (
    BenchError,
    Figure,
    Outcome,
    Runner,
    latest_results,
    load_results,
    machine,
    ratio,
    render_markdown,
    save_results,
)

from bink_python.errors import NoSuchTag
from bink_python.image.assemble import ImageSpec, LayerSource, build_image, rfc3339
from bink_python.oci import tarball
from bink_python.oci.layout import Layout
from bink_python.store.store import Store

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
EXAMPLE = REPO / "examples" / "offline" / "images.toml"


def test_ratio_is_per_run_pair_not_of_medians() -> None:
    # the ratio of the medians is 10/10 = 1.0; the pairs are 3.0, 0.5, 5.0 -> median 3.0
    ref = [30.0, 10.0, 5.0]
    ours = [10.0, 20.0, 1.0]
    fig = ratio("r", ref, ours)
    assert fig.values == (3.0, 0.5, 5.0)
    assert fig.median == 3.0
    assert Figure("ref", "s", tuple(ref)).median / Figure("ours", "s", tuple(ours)).median == 1.0


def test_ratio_refuses_unpaired_runs() -> None:
    with pytest.raises(BenchError, match="do not pair"):
        ratio("r", [1.0, 2.0], [1.0])


def test_figure_text_median_range_and_lower_bound() -> None:
    assert Figure("t", "s", (12.0, 10.0, 30.0)).text() == "12.0 s (10.0 s to 30.0 s)"
    assert Figure("t", "x", (2.5,), lower_bound=True).text() == "≥ 2.50x"
    data = Figure("t", "MB", (1.0, 3.0)).to_json()
    assert (data["median"], data["min"], data["max"]) == (2.0, 1.0, 3.0)


def test_save_results_merges_comparisons_and_markdown_lists_all(tmp_path: Path) -> None:
    path = tmp_path / "results" / "2026-01-01.json"
    first = Outcome(
        "8-assembly",
        "8. A",
        "measured",
        (Figure("x", "s", (1.0,)),),
        (Figure("ours / floor", "x", (1.5,)),),
        ("python -m bench --only assembly",),
    )
    second = Outcome("2-cold", "2. C", "not measured", reason="no time")
    save_results(path, machine_info={"cores": 2}, settings={"runs": 1}, outcomes=[first])
    data = save_results(path, machine_info={"cores": 2}, settings={"runs": 1}, outcomes=[second])
    assert [c["key"] for c in data["comparisons"]] == ["2-cold", "8-assembly"]
    assert json.loads(path.read_text()) == data
    text = render_markdown(
        data,
        titles={"2-cold": "2. C", "4-noop": "4. N", "8-assembly": "8. A"},
        preamble="pre",
        results_file="results/2026-01-01.json",
    )
    assert "**not measured**: no time" in text
    assert "## 4. N\n\n**not measured**: no run of this comparison has completed yet" in text
    assert "| ours / floor | **1.50x** |" in text
    assert "python -m bench --only assembly" in text
    assert "2 cores" in text


def test_a_days_first_run_keeps_the_comparisons_of_the_newest_earlier_file(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    older = Outcome("2-cold", "2. C", "not measured", reason="no time")
    newer = Outcome("4-noop", "4. N", "not measured", reason="later")
    save_results(results / "2026-01-01.json", machine_info={}, settings={}, outcomes=[older])
    save_results(results / "2026-01-02.json", machine_info={}, settings={}, outcomes=[newer])
    # a run's own raw output sorts after its day's file but is not a results file
    (results / "2026-01-02-interpreters.json").write_text("{}")
    assert latest_results(results) == results / "2026-01-02.json"
    today = Outcome("8-assembly", "8. A", "not measured", reason="today")
    data = save_results(results / "2026-01-03.json", machine_info={}, settings={}, outcomes=[today])
    assert [c["key"] for c in data["comparisons"]] == ["2-cold", "4-noop", "8-assembly"]
    # the earlier files are left as they were
    assert len(json.loads((results / "2026-01-02.json").read_text())["comparisons"]) == 2
    assert latest_results(results) == results / "2026-01-03.json"
    assert latest_results(tmp_path / "none") is None


def test_outcome_json_round_trip() -> None:
    out = Outcome(
        "5-arm64",
        "5",
        "measured",
        (Figure("a", "s", (900.0,), True),),
        (Figure("r", "x", (3.0,), True),),
        ("cmd",),
        ("note",),
        "capped",
    )
    assert Outcome.from_json(out.to_json()) == out


def test_machine_reads_cores_memory_cpu() -> None:
    info = machine()
    assert info["cores"] >= 1
    assert info["memory_gib"] > 0
    assert info["cpu_model"] != "unknown"


def test_runner_times_records_and_caps(tmp_path: Path) -> None:
    runner = Runner(tmp_path / "logs")
    done = runner.run(["sh", "-c", "echo hello"], "t")
    assert not done.capped
    assert "hello" in done.output
    capped = runner.run(["sleep", "30"], "t", cap=0.5)
    assert capped.capped
    assert capped.seconds == 0.5
    assert runner.commands == ["sh -c 'echo hello'", "sleep 30"]
    with pytest.raises(BenchError, match="exit 3"):
        runner.run(["sh", "-c", "exit 3"], "t")


def test_measure_image_counts_manifest_config_and_layers_and_unpacks(tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "data").write_bytes(b"a" * 100_000)
    sha, size = tarball.write_tree_tar_file(src, tmp_path / "layer.tar", epoch=0)
    spec = ImageSpec(
        "amd64",
        (LayerSource(tmp_path / "layer.tar", "sha256:" + sha, "t"),),
        ("LANG=C.UTF-8",),
        ("python3",),
        "",
        {},
        rfc3339(0),
    )
    layout = Layout(tmp_path / "oci")
    store = Store(tmp_path / "store")
    gz, zst = (build_image(spec, layout, store, c) for c in ("gzip", "zstd"))
    layout.set_refs({"t": gz.descriptor, "z": zst.descriptor})
    for ref, image in (("t", gz), ("z", zst)):
        measured = sizes.measure_image(tmp_path / "oci", ref, ref)
        assert measured.compressed == image.compressed_size
        assert measured.unpacked == image.config.size + size
        dest = tmp_path / f"unpacked-{ref}"
        dest.mkdir()
        subprocess.run(sizes.unpack_argv(measured, dest), check=True)
        assert (dest / "etc/data").read_bytes() == b"a" * 100_000
    with pytest.raises(NoSuchTag, match="not in the OCI layout"):
        sizes.measure_image(tmp_path / "oci", "missing", "x")


_PYPERF_JSON = json.dumps(
    {
        "benchmarks": [
            {
                "runs": [
                    {"metadata": {"calibrate_loops": 4}, "warmups": [[1, 9.0]]},
                    {"warmups": [[4, 5.0]], "values": [1.0, 2.0]},
                    {"warmups": [[4, 5.0]], "values": [3.0, 6.0]},
                ]
            }
        ],
        "metadata": {"name": "nbody"},
        "version": "1.0",
    },
    separators=(",", ":"),
)


def test_mean_seconds_averages_measured_values_only() -> None:
    # warm-ups and the calibration run are not measured values; noise lines are skipped
    assert speed.mean_seconds(f"buildah noise\n{_PYPERF_JSON}\n[bench] exit 0\n") == 3.0
    with pytest.raises(BenchError, match="no pyperf result"):
        speed.mean_seconds("nothing\n")
    empty = json.dumps({"benchmarks": [{"runs": [{"warmups": [[1, 1.0]]}]}]})
    with pytest.raises(BenchError, match="no measured values"):
        speed.mean_seconds(empty)


def test_speed_command_runs_the_pyperformance_script_and_prints_its_json() -> None:
    cmd = speed.command("/usr/bin/python3.13", "/bench/site", "nbody", "/tmp/r.json", smoke=False)
    assert "PYTHONPATH=/bench/site /usr/bin/python3.13 " in cmd
    assert "/bench/site/pyperformance/data-files/benchmarks/bm_nbody/run_benchmark.py" in cmd
    assert "--fast" in cmd and "--inherit-environ PYTHONPATH" in cmd
    assert cmd.endswith("&& cat /tmp/r.json")
    assert "--debug-single-value" in speed.command("p", "s", "go", "o", smoke=True)
    spaced = speed.command("/p y/python", "/a site", "go", "/o u.json", smoke=True)
    assert "PYTHONPATH='/a site' '/p y/python' '/a site/pyperformance/" in spaced
    assert spaced.endswith("&& cat '/o u.json'")


def test_speed_benchmarks_are_pinned_and_distinct() -> None:
    assert len(set(speed.BENCHMARKS)) == len(speed.BENCHMARKS) >= 8
    for wheel in speed.WHEELS:
        assert wheel.filename.startswith(f"{wheel.name}-{wheel.version}-")
        assert len(wheel.sha256) == 64 and int(wheel.sha256, 16) >= 0


def test_fetch_wheels_refuses_a_digest_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = speed.Wheel("demo", "1.0", "demo-1.0-py3-none-any.whl", "0" * 64)
    monkeypatch.setattr(speed, "WHEELS", (fake,))
    (tmp_path / fake.filename).write_bytes(b"not the pinned wheel")
    with pytest.raises(BenchError, match="sha256"):
        speed.fetch_wheels(Runner(tmp_path / "logs"), tmp_path)
    assert not (tmp_path / fake.filename).exists()  # deleted, so a retry downloads again


def test_unpack_installs_wheel_contents(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/__init__.py", "X = 1\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\n")
    site = speed.unpack([wheel], tmp_path / "site")
    assert (site / "demo" / "__init__.py").read_text() == "X = 1\n"


def test_security_argv_builds_with_the_extra_package_in_every_base(tmp_path: Path) -> None:
    ctx = common.Context(
        work=tmp_path,
        smoke=False,
        runs=1,
        cap=1.0,
        profile="fast",
        test_cache=tmp_path,
        bink="/x/bin/bink-python",
    )
    argv = [str(a) for a in security.security_argv(ctx, tmp_path / "c")]
    assert argv[:3] == ["/x/bin/bink-python", "build", common.TAG]
    assert argv[argv.index("--extra-package") + 1] == common.EXTRA_PACKAGE


def test_stage_breakdown_from_progress_lines() -> None:
    out = (
        "07:12:01 ==> base     Debian 13 amd64 regular\n"
        "07:14:07 <== base     Debian 13 amd64 regular done in 126.2s\n"
        "<== base     Debian 13 amd64 regular done in 126.4s\n"
        "07:13:02 --- make     CPython 3.13.15 Debian 13 amd64 (fast): compile (351 objects)\n"
        "07:26:08 <== make     CPython 3.13.15 Debian 13 amd64 (fast) done in 786.0s\n"
    )
    assert common.stage_breakdown(out) == (
        "base Debian 13 amd64 regular: 126.2 s; make CPython 3.13.15 Debian 13 amd64 (fast): 786.0 s"
    )


def test_find_base_matches_arch_variant_and_packages(tmp_path: Path) -> None:
    from bink_python.host.distro import get_distro

    runtime = sorted(get_distro("debian", "13").runtime_packages)

    def base(key: str, arch: str, packages: list[str]) -> None:
        entry = tmp_path / "bases" / key
        entry.mkdir(parents=True)
        (entry / "rootfs.tar").write_bytes(b"")
        (entry / "record.json").write_text(
            json.dumps(
                {
                    "os": "debian",
                    "release": "13",
                    "arch": arch,
                    "variant": "regular",
                    "key_parts": {"packages": packages},
                }
            )
        )

    base("plain", "amd64", runtime)
    base("extra", "amd64", sorted([*runtime, "less"]))
    base("arm", "arm64", runtime)
    assert common.find_base(tmp_path, "amd64").parent.name == "plain"
    assert common.find_base(tmp_path, "amd64", extra=("less",)).parent.name == "extra"
    assert common.find_base(tmp_path, "arm64").parent.name == "arm"
    with pytest.raises(BenchError, match="no Debian 13 arm64 distroless"):
        common.find_base(tmp_path, "arm64", "distroless")
    # the security rebuild starts without the changed base, so it times building it
    assert common.drop_bases_with(tmp_path, "less") == ["extra"]
    assert sorted(p.name for p in (tmp_path / "bases").iterdir()) == ["arm", "plain"]
    with pytest.raises(BenchError, match="extra"):
        common.find_base(tmp_path, "amd64", extra=("less",))


def interpreters_run(speed: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A bench.interpreters result: ``speed`` (name -> interpreter -> samples) and the
    fields every run has; the interpreters' versions from the first benchmark."""
    who = next(iter(speed.values()))
    return {
        "versions": dict.fromkeys(who, "3.13.x"),
        "pyperf": "--fast",
        "load_start": [1.0, 1.0, 1.0],
        "load_end": [1.0, 1.0, 1.0],
        "speed": speed,
        **more,
    }


def test_interpreters_outcomes_pair_runs_and_name_each_comparison() -> None:
    result = interpreters_run(
        versions={"ours": "3.13.15", "debian": "3.13.5", "reference": "3.13.15"},
        speed={
            "nbody": {
                "ours": [1.0, 2.0],
                "debian": [1.1, 2.2],
                "reference": [1.2, 2.4],
                "ours-prebolt": [1.05, 2.1],
                "ours-shared": [1.1, 2.2],
                "ours-recipe3": [1.26, 2.52],
            },
            "go": {
                "ours": [1.0, 1.0],
                "debian": [1.1, 1.1],
                "reference": [1.2, 1.2],
                "ours-prebolt": [1.05, 1.05],
                "ours-shared": [1.1, 1.1],
                "ours-recipe3": [1.26, 1.26],
            },
        },
        startup={"pass": {"ours": [0.01, 0.012], "debian": [0.011, 0.012]}},
    )
    by_key = {o.key: o for o in interpreter_results.outcomes(result, ["cmd"])}
    assert set(by_key) == {"7-speed", "9-startup", "10-changes"}
    geo = {f.label: f.values for f in by_key["7-speed"].ratios}
    assert geo["geometric mean: debian / ours"] == pytest.approx((1.1, 1.1))
    assert geo["geometric mean: reference / ours"] == pytest.approx((1.2, 1.2))
    changes = {f.label.split(":")[0]: f.values for f in by_key["10-changes"].ratios}
    assert changes["BOLT"] == pytest.approx((1.05, 1.05))
    assert changes["static core"] == pytest.approx((1.1 / 1.05, 1.1 / 1.05))
    assert changes[
        "built-in start-up modules with BOLT's link flags (non-PIE, --emit-relocs, -fno-reorder-blocks-and-partition)"
    ] == pytest.approx((1.2, 1.2))
    startup = {f.label: f.values for f in by_key["9-startup"].ratios}
    assert startup["`pass`: debian / ours (>1: ours faster)"] == pytest.approx((1.1, 1.0))


def test_runtime_variant_swaps_the_interpreter_and_drops_bytecode(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime.tar"
    with tarfile.open(runtime, "w") as tar:
        for name, data in (
            ("usr/local/bin/python3.13", b"static"),
            ("usr/local/lib/python3.13/json/__init__.py", b"x = 1\n"),
            ("usr/local/lib/python3.13/json/__pycache__/__init__.cpython-313.pyc", b"pyc"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    shared = tmp_path / "python-shared"
    shared.write_bytes(b"shared!")
    out = tmp_path / "out.tar"
    assert variants.make_variant(runtime, out, python=shared, no_bytecode=True) == 2
    with tarfile.open(out) as tar:
        names = tar.getnames()
        stream = tar.extractfile("usr/local/bin/python3.13")
        assert stream is not None and stream.read() == b"shared!"
    assert names == ["usr/local/bin/python3.13", "usr/local/lib/python3.13/json/__init__.py"]


def test_release_builds_compare_the_two_records_and_refuse_unlike_builds(tmp_path: Path) -> None:
    def entry(name: str, **fields: object) -> Path:
        record = {
            "arch": "amd64",
            "version": "3.13.15",
            "recipe": 3,
            "release": "13",
            "key": name,
            "profile": "release",
            "pgo": True,
            "lto": True,
            "cross_compiled": False,
            "build_seconds": 3000.0,
            **fields,
        }
        path = tmp_path / name
        path.mkdir()
        (path / "record.json").write_text(json.dumps(record))
        return path

    amd64 = release_builds.read_entry(entry("a"))
    arm64 = release_builds.read_entry(
        entry("b", arch="arm64", cross_compiled=True, build_seconds=3600.0)
    )
    result = release_builds.outcome(amd64, arm64, "cmd")
    assert result.key == "11-release-builds"
    assert [f.values for f in result.figures] == [(3000.0,), (3600.0,)]
    assert "under qemu-user" in result.figures[1].label
    assert result.ratios[0].values == pytest.approx((1.2,))
    with pytest.raises(BenchError, match="recipe"):
        release_builds.outcome(amd64, {**arm64, "recipe": 4}, "cmd")
    with pytest.raises(BenchError, match="without PGO"):
        release_builds.outcome({**amd64, "pgo": False}, {**arm64, "pgo": False}, "cmd")
    with pytest.raises(BenchError, match="not a release"):
        release_builds.read_entry(entry("c", profile="fast"))


def test_a_frame_pointer_run_is_its_own_comparison() -> None:
    result = interpreters_run(
        {
            "nbody": {"ours": [1.1, 2.2], "ours-nofp": [1.0, 2.0]},
            "go": {"ours": [1.0, 1.0], "ours-nofp": [1.0, 1.0]},
        },
        ours_profile="fast",
        startup={"pass": {"ours": [0.01], "ours-nofp": [0.01]}},
    )
    (only,) = interpreter_results.outcomes(result, ["cmd"])
    assert only.key == "12-frame-pointers"
    ratios = {f.label: f.values for f in only.ratios}
    assert ratios["geometric mean: with / without"] == pytest.approx((1.1**0.5, 1.1**0.5))
    assert "12-frame-pointers" in registry.BY_KEY
    assert [f.label for f in only.figures][:2] == [
        "nbody: ours (fast)",
        "nbody: ours without frame pointers",
    ]


def test_a_run_beside_a_clang_build_records_the_compiler_on_its_own() -> None:
    per = {"ours": [1.0, 1.2], "ours-clang": [1.1, 1.0], "debian": [1.0, 1.0]}
    result = interpreters_run({"nbody": per, "go": per})
    (only,) = interpreter_results.outcomes(result, ["cmd"])  # 7 and 9 keep theirs: no reference
    assert only.key == "16-compiler" and only.key in registry.BY_KEY
    ratios = {f.label: f.values for f in only.ratios}
    assert ratios["geometric mean: GCC / clang"] == pytest.approx((1.0 / 1.1, 1.2))
    assert ratios["nbody: GCC / clang (>1: clang faster)"] == pytest.approx((1.0 / 1.1, 1.2))
    assert ratios["geometric mean: debian / ours-clang (>1: ours-clang faster)"] == (
        pytest.approx((1.0 / 1.1, 1.0))
    )
    assert "nbody: ours built with clang 19 (full LTO), not GCC 14" in {
        f.label for f in only.figures
    }


def test_a_run_beside_recipe_8_records_the_eval_loop_without_gcse_on_its_own() -> None:
    per = {"ours": [1.0, 1.0], "ours-gcse": [1.1, 1.21], "debian": [1.05, 1.1]}
    result = interpreters_run(
        {"nbody": per, "go": per},
        startup={"imports": {"ours": [0.07, 0.08], "ours-gcse": [0.07, 0.08], "debian": [0.07]}},
    )
    (only,) = interpreter_results.outcomes(result, ["cmd"])  # 7 and 9 keep theirs: no reference
    assert only.key == "15-eval-loop-gcse" and only.key in registry.BY_KEY
    ratios = {f.label: f.values for f in only.ratios}
    what = "with / without GCSE in the eval loop's file"
    assert ratios[f"geometric mean: {what}"] == pytest.approx((1.1, 1.21))
    assert ratios[f"nbody: {what} (>1: without faster)"] == pytest.approx((1.1, 1.21))
    assert ratios[f"`imports` as uid 10000: {what} (>1: without faster)"] == pytest.approx(
        (1.0, 1.0)
    )
    assert ratios["geometric mean: debian / ours (>1: ours faster)"] == pytest.approx((1.05, 1.1))
    assert ratios["geometric mean: debian / ours-gcse (>1: ours-gcse faster)"] == pytest.approx(
        (1.05 / 1.1, 1.1 / 1.21)
    )
    assert "nbody: ours with GCSE in the eval loop's file (recipe 8)" in [
        f.label for f in only.figures
    ]
    assert "-fno-gcse" in only.notes[0]


def test_frame_pointers_measured_beside_debian_and_the_choices_keep_every_comparison() -> None:
    per = {
        "ours": [1.0, 1.0],
        "ours-nofp": [0.9, 0.9],
        "ours-nopie": [1.0, 1.0],
        "debian": [0.95, 0.95],
        "reference": [1.1, 1.1],
    }
    result = interpreters_run({"nbody": per, "go": per})
    by_key = {o.key: o for o in interpreter_results.outcomes(result, ["cmd"])}
    assert set(by_key) == {"12-frame-pointers", "13-choices", "7-speed"}
    fp = {f.label: f.values for f in by_key["12-frame-pointers"].ratios}
    assert fp["geometric mean: with / without"] == pytest.approx((1 / 0.9, 1 / 0.9))
    assert fp["geometric mean: debian / ours (>1: ours faster)"] == pytest.approx((0.95, 0.95))
    assert fp["geometric mean: debian / ours-nofp (>1: ours-nofp faster)"] == pytest.approx(
        (0.95 / 0.9, 0.95 / 0.9)
    )
    assert "nbody: Debian python3.13" in [f.label for f in by_key["12-frame-pointers"].figures]
    # comparison 7 is ours against Debian and the reference only
    assert not any("nofp" in f.label for f in by_key["7-speed"].figures)
    # without the reference, comparison 7 keeps its figures
    no_ref = {n: {k: v for k, v in per.items() if k != "reference"} for n in ("nbody", "go")}
    keys = [o.key for o in interpreter_results.outcomes(interpreters_run(no_ref), ["cmd"])]
    assert keys == ["12-frame-pointers", "13-choices"]


def test_a_run_with_build_choices_records_comparison_13() -> None:
    result = interpreters_run(
        {
            "nbody": {
                "ours": [1.0, 2.0],
                "ours-sp-strong": [1.1, 2.2],
                "ours-builtins": [0.5, 1.0],
            },
            "go": {"ours": [1.0, 1.0], "ours-sp-strong": [1.0, 1.0], "ours-builtins": [1.0, 1.0]},
        },
        startup={"imports": {"ours": [0.07, 0.07, 0.08], "ours-builtins": [0.06, 0.07, 0.07]}},
    )
    # without Debian's python3.13 and the reference, only comparison 13: 7 and 9 keep theirs
    (built,) = interpreter_results.outcomes(result, ["cmd"])
    assert built.key == "13-choices"
    assert "13-choices" in registry.BY_KEY
    ratios = {f.label: f.values for f in built.ratios}
    # both read >1 when the choice Debian's python3.13 has is the faster one
    strong = interpreter_results.CHOICES["ours-sp-strong"][2]
    builtin = interpreter_results.CHOICES["ours-builtins"][2]
    assert ratios[f"geometric mean: {strong}"] == pytest.approx((1.1**0.5, 1.1**0.5))
    assert ratios[f"geometric mean: {builtin}"] == pytest.approx((2**0.5, 2**0.5))
    assert ratios[f"`imports` as uid 10000: {builtin}"] == pytest.approx(
        (0.07 / 0.06, 1.0, 0.08 / 0.07)
    )
    assert f"`imports` as uid 10000: {strong}" not in ratios  # it ran no start-up
    assert "nbody: ours with -fstack-protector-strong (recipe 6)" in [
        f.label for f in built.figures
    ]
    # a run with Debian's python3.13 and the reference also records comparisons 7 and 9
    both = {
        name: {**per, "debian": per["ours"], "reference": per["ours"]}
        for name, per in result["speed"].items()
    }
    keys = [o.key for o in interpreter_results.outcomes(interpreters_run(both), ["cmd"])]
    assert keys == ["13-choices", "7-speed"]


ANNOTATE = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
1,000,000 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                 file:function
--------------------------------------------------------------------------------
400,000 (40.00%)  ???:_PyEval_EvalFrameDefault [/usr/local/bin/python3.13]
 50,000 ( 5.00%)  ???:_PyEval_EvalFrameDefault'2 [/usr/local/bin/python3.13]
 30,000 ( 3.00%)  ???:_PyEval_EvalFrameDefaultX [/usr/local/bin/python3.13]
200,000 (20.00%)  ???:0x00000000001f4980 [/usr/local/lib/libpython3.13.so.1.0]
100,000 (10.00%)  ???:memcpy [/usr/lib/x86_64-linux-gnu/libc.so.6]
"""


def test_instruction_counts_from_callgrind_annotate() -> None:
    counts = instructions.parse_annotate(ANNOTATE, core=("/usr/local/bin/python3.13", "libpython"))
    # the eval loop's recursion levels count, a longer name that starts with it does not
    assert counts == {"total": 1_000_000, "core": 680_000, "eval": 450_000}
    with pytest.raises(ValueError, match="PROGRAM TOTALS"):
        instructions.parse_annotate("no totals here", core=("python3.13",))


def test_instruction_outcome_takes_every_interpreter_against_ours() -> None:
    result = {
        "versions": {"ours": "3.13.15", "debian": "3.13.5"},
        "runs": 1,
        "instructions": {
            "kernels": {
                "ours": {"total": 110, "core": 100, "eval": 50},
                "debian": {"total": 99, "core": 90, "eval": 40},
            }
        },
    }
    (outcome,) = instructions.outcomes(result, ["cmd"])
    assert outcome.key == "14-instructions"
    got = {f.label: f.values for f in outcome.ratios}
    assert got["`kernels`, the whole process: debian / ours (>1: ours executes fewer)"] == (0.9,)
    assert got[
        "`kernels`, _PyEval_EvalFrameDefault: debian / ours (>1: ours executes fewer)"
    ] == pytest.approx((0.8,))
    assert len(outcome.figures) == 6


def test_every_comparison_is_registered_once_with_number_key_title_and_runner() -> None:
    numbers = [c.number for c in registry.COMPARISONS]
    keys = [c.key for c in registry.COMPARISONS]
    assert len(set(numbers)) == len(numbers) and len(set(keys)) == len(keys)
    for c in registry.COMPARISONS:
        assert c.number > 0 and c.name and callable(c.runner)
        assert c.key == f"{c.number}-{c.name}"
        assert c.title.startswith(f"{c.number}. ")
    assert list(registry.titles()) == sorted(keys, key=lambda k: int(k.split("-")[0]))
    assert {c.name for c in registry.RUN_ORDER} == {
        c.name for c in registry.COMPARISONS if c.harnessed
    }


def test_readme_lists_every_harnessed_comparison_with_its_number() -> None:
    readme = (BENCH / "README.md").read_text()
    listed = readme.split("Comparisons (names for `--only`):", 1)[1].split(". `cold` leaves")[0]
    for c in registry.RUN_ORDER:
        assert f"`{c.name}` ({c.number}" in " ".join(listed.split()), c.name
    assert listed.count("`") == 2 * len(registry.RUN_ORDER)


def test_results_md_is_regenerated_from_the_committed_results() -> None:
    shown = latest_results(BENCH / "results")
    assert shown is not None
    rendered = report.render(load_results(shown), shown.relative_to(BENCH).as_posix(), REPO)
    assert rendered == (BENCH / "RESULTS.md").read_text()
    assert str(REPO) not in rendered and "/.venv/" not in rendered


def test_results_md_shows_paths_into_the_repository_relative_to_it() -> None:
    repo = Path("/src/checkout")
    text = "/elsewhere/main/.venv/bin/bink-python build --config /src/checkout/examples/x.toml"
    assert (
        report.repo_relative(text, repo) == ".venv/bin/bink-python build --config examples/x.toml"
    )


#: The start of an absolute path of the machine a run was on (its scratch and home trees,
#: the checkout's own tree): RESULTS.md must name none ("a tmpfs /tmp" is a sandbox's).
_MACHINE_PATH = re.compile(r"(?<![\w.$-])/(?:(?:var/tmp|home|root|work)\b|tmp/)")


def test_results_md_names_no_path_of_the_machine_it_ran_on() -> None:
    shown = latest_results(BENCH / "results")
    assert shown is not None
    recorded = shown.read_text()
    assert "/var/tmp/bink-bench/work/" in recorded and "/var/tmp/cand-cache/" in recorded
    rendered = report.render(load_results(shown), shown.relative_to(BENCH).as_posix(), REPO)
    assert _MACHINE_PATH.findall(rendered) == []
    assert "$WORK/config/images.toml" in rendered


def test_machine_paths_become_the_placeholders_the_preamble_names() -> None:
    repo = Path("/work/main")
    text = (
        "build --output /var/tmp/bink-bench/work/cold-0/oci --config /work/main/x.toml "
        "--base /var/tmp/c/store/bases/fb456689d2a4eee445e76fc4d19aeaef/rootfs.tar "
        "--out /var/tmp/c7.json --interp r=/home/someone/ref.tar /var/tmp/bink-bench/workx"
    )
    assert report.machine_free(text, repo) == (
        "build --output $WORK/cold-0/oci --config x.toml "
        "--base $CACHE/bases/fb456689d2a4eee445e76fc4d19aeaef/rootfs.tar "
        "--out $SCRATCH/c7.json --interp r=$SCRATCH/ref.tar $SCRATCH/bink-bench/workx"
    )
    for placeholder in ("$WORK", "$CACHE", "$SCRATCH"):
        assert f"`{placeholder}`" in report.PREAMBLE


def test_a_failed_run_is_not_measured_under_its_registered_title(tmp_path: Path) -> None:
    def fails(ctx: common.Context) -> Outcome:
        raise BenchError("no buildah")

    broken = registry.Comparison(2, "cold", "2. Cold", fails)
    ctx = common.Context(
        tmp_path,
        smoke=True,
        runs=1,
        cap=1.0,
        profile="fast",
        test_cache=tmp_path,
        bink="bink-python",
    )
    outcome, failed = bench_main.run_comparison(broken, ctx)
    assert failed and outcome.key == "2-cold" and outcome.title == "2. Cold"
    assert outcome.status == "not measured" and outcome.reason == "the run failed: no buildah"
