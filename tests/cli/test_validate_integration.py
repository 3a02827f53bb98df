"""``carepath validate`` in editors and CI, through real subprocesses: the pre-commit hook checks
only playbooks; SARIF with absolute help links and the tool's version; GitLab Code Quality; JUnit
with file and time; ``validate -``; project settings in ``pyproject.toml`` / ``.carepath.toml``;
one summary line; help texts in plain words."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from cli.test_cli_validate import BAD, GOOD, WARN

ROOT = Path(__file__).resolve().parents[2]


def _cv(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath", "validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        input=stdin,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with playbooks beside other YAML (a CI workflow, a compose file, scenarios)."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / "docker-compose.yaml").write_text("services:\n  db: {image: postgres}\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "good.yaml").write_text(GOOD)
    (tmp_path / "playbooks" / "warn.yaml").write_text(WARN)
    (tmp_path / "playbooks" / "good.test.yaml").write_text("playbook: good.yaml\nscenarios: []\n")
    (tmp_path / "README.md").write_text("hi\n")
    return tmp_path


def test_pre_commit_hook_checks_only_playbooks(repo: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    every = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    # what pre-commit passes: `files` matched, `exclude` not
    passed = [f for f in every if re.search(hook["files"], f) and not re.search(hook["exclude"], f)]
    assert "README.md" not in passed and "playbooks/good.test.yaml" not in passed
    assert ".github/workflows/ci.yml" in passed  # YAML, but not a playbook: the entry skips it
    entry = hook["entry"].split()
    assert entry[:2] == ["carepath", "validate"]
    r = _cv(*entry[2:], *passed, cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.strip() == "carepath: 2 playbook(s) checked: 0 error(s), 1 warning(s)"
    # without the option the workflow and the compose file are (wrongly) playbooks: 2+ errors
    assert _cv(*passed, cwd=repo).returncode == 1


def test_sarif_has_absolute_help_links_and_the_tool_version(repo: Path) -> None:
    (repo / "playbooks" / "bad.yaml").write_text(BAD)
    r = _cv("--format", "sarif", "playbooks", cwd=repo)
    run = json.loads(r.stdout)["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["version"] == version("carepath")
    assert driver["informationUri"].startswith("https://")
    for rule in driver["rules"]:
        assert rule["helpUri"].startswith("https://") and rule["helpUri"].endswith(
            "#" + rule["id"].lower()
        )
    assert {res["ruleId"] for res in run["results"]} == {"CP301", "CP602"}


def test_gitlab_code_quality(repo: Path) -> None:
    (repo / "playbooks" / "bad.yaml").write_text(BAD)
    r = _cv("--format", "gitlab", "playbooks", cwd=repo)
    assert r.returncode == 1
    issues = json.loads(r.stdout)
    assert {i["check_name"] for i in issues} == {"CP301", "CP602"}
    for i in issues:
        assert set(i) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert i["severity"] in ("major", "minor") and len(i["fingerprint"]) == 64
        assert (
            i["location"]["path"].startswith("playbooks/") and i["location"]["lines"]["begin"] >= 1
        )
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    # a finding keeps its fingerprint when lines above it move
    (repo / "playbooks" / "bad.yaml").write_text("# a comment\n\n" + BAD)
    moved = json.loads(_cv("--format", "gitlab", "playbooks/bad.yaml", cwd=repo).stdout)
    before = {i["fingerprint"]: i for i in issues if i["location"]["path"].endswith("bad.yaml")}
    for i in moved:
        assert i["fingerprint"] in before
        assert (
            i["location"]["lines"]["begin"]
            == before[i["fingerprint"]]["location"]["lines"]["begin"] + 2
        )


def test_junit_has_file_and_time(repo: Path) -> None:
    r = _cv("--format", "junit", "playbooks", cwd=repo)
    root = ET.fromstring(r.stdout)
    cases = root.findall(".//testcase")
    assert {c.get("file") for c in cases} == {"playbooks/good.yaml", "playbooks/warn.yaml"}
    for c in cases:
        assert float(c.get("time") or "x") >= 0
    assert float(root.find("testsuite").get("time") or "x") >= 0  # type: ignore[union-attr]


def test_validate_reads_standard_input(repo: Path) -> None:
    r = _cv("-", cwd=repo, stdin=GOOD)
    assert r.returncode == 0 and "1 playbook(s) checked: 0 error(s)" in r.stderr
    r = _cv("-", "--stdin-filename", "playbooks/x.yaml", "--format", "json", cwd=repo, stdin=BAD)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert {d["file"] for d in doc} == {"playbooks/x.yaml"} and "CP301" in {d["code"] for d in doc}


def test_one_summary_line(repo: Path) -> None:
    (repo / "playbooks" / "bad.yaml").write_text(BAD)
    r = _cv("playbooks", cwd=repo)
    assert "error(s)" not in r.stdout
    assert [line for line in r.stderr.splitlines() if "error(s)" in line] == [
        "carepath: 3 playbook(s) checked: 1 error(s), 1 warning(s)"
    ]


def test_pyproject_settings_ignore_and_per_file_severity(repo: Path) -> None:
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "desk"\n\n[tool.carepath]\nignore = ["CP602"]\n'
    )
    r = _cv("--strict", "playbooks", cwd=repo)
    assert r.returncode == 0 and "0 warning(s)" in r.stderr, r.stderr
    assert _cv("--strict", "--no-config", "playbooks", cwd=repo).returncode == 1
    (repo / "pyproject.toml").write_text(
        '[tool.carepath.per-file-severity]\n"playbooks/warn*" = {CP602 = "error"}\n'
    )
    r = _cv("playbooks", "--format", "json", cwd=repo)
    assert r.returncode == 1
    assert [(d["file"], d["severity"]) for d in json.loads(r.stdout)] == [
        ("playbooks/warn.yaml", "error")
    ]
    # from a sub-folder, the settings above are found too
    r = _cv("warn.yaml", cwd=repo / "playbooks")
    assert r.returncode == 1


def test_dot_carepath_toml_wins_and_bad_settings_are_one_line(repo: Path) -> None:
    (repo / "pyproject.toml").write_text('[tool.carepath]\nignore = ["CP602"]\n')
    (repo / ".carepath.toml").write_text('[per-file-ignores]\n"playbooks/other*" = ["CP602"]\n')
    assert _cv("--strict", "playbooks", cwd=repo).returncode == 1  # .carepath.toml is used
    for text, words in (
        ('ignore = ["CP301"]', "CP301 is an error"),
        ('ignore = ["CP999"]', "unknown code 'CP999'"),
        ('severity = {CP602 = "fatal"}', 'expected "error" or "warning"'),
        ("ignor = []", "unknown key 'ignor'"),
        ("ignore = [", "not valid TOML"),
    ):
        (repo / ".carepath.toml").write_text(text + "\n")
        r = _cv("playbooks", cwd=repo)
        assert r.returncode == 2 and words in r.stderr, (text, r.stderr)
        assert r.stderr.count("\n") == 1 and ".carepath.toml" in r.stderr
    r = _cv("--config", str(repo / "nope.toml"), "playbooks", cwd=repo)
    assert r.returncode == 2 and "cannot read" in r.stderr


@pytest.mark.parametrize(
    "command",
    [
        "",
        "validate",
        "report",
        "init",
        "test",
        "simulate",
        "schema",
        "graph",
        "generate",
        "run",
        "cases",
    ],
)
def test_help_is_plain_words(command: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "carepath", *([command] if command else []), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    for bad in ("SPEC", "§", "``", ":class:", ":func:", ":mod:"):
        assert bad not in r.stdout, (command, bad, r.stdout)
