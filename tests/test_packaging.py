"""Packaging as a user meets it: ``carepath init`` scaffolds a working playbook from the examples
shipped inside the package; the wheel holds the examples, the schema, the report's templates and
the licence, and works without the repository; the sdist holds what its own tests need and they
pass from it. Real subprocesses, real builds (``python -m build``, without network: the build
backend is the one installed by the dev extra)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("eldercare-queue", "omnichannel-journey", "vn-retail-support", "zalo-care")
ROSTERS = ("eldercare-queue",)  # examples that allocate to agents ship their roster


def _carepath(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *(["-S"] if env else []), "-m", "carepath", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize("name", EXAMPLES)
def test_init_scaffolds_a_working_playbook(name: str, tmp_path: Path) -> None:
    r = _carepath("init", "--example", name, "desk", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = tmp_path / "desk"
    assert sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()) == sorted(
        [
            f"{name}.yaml",
            f"{name}.test.yaml",
            f"events/{name}.jsonl",
            "schemas/playbook.schema.json",
            "schemas/scenario.schema.json",
            *([f"rosters/{name}.yaml"] if name in ROSTERS else []),
        ]
    )
    assert "$schema=schemas/playbook.schema.json" in (d / f"{name}.yaml").read_text(
        encoding="utf-8"
    )
    assert "$schema=schemas/scenario.schema.json" in (d / f"{name}.test.yaml").read_text(
        encoding="utf-8"
    )
    assert (d / "schemas" / "playbook.schema.json").read_bytes() == (
        ROOT / "schemas" / "playbook.schema.json"
    ).read_bytes()
    assert _carepath("validate", "desk", cwd=tmp_path).returncode == 0
    t = _carepath("test", "desk", cwd=tmp_path)
    assert t.returncode == 0 and " 0 failed" in t.stdout, t.stdout + t.stderr
    s = _carepath("simulate", f"desk/{name}.yaml", f"desk/events/{name}.jsonl", cwd=tmp_path)
    assert s.returncode == 0, s.stderr
    rep = _carepath(
        "report", f"desk/{name}.yaml", f"desk/events/{name}.jsonl", "--format", "json", cwd=tmp_path
    )
    assert json.loads(rep.stdout)["playbook"]["id"] == name


def test_init_keeps_existing_files_and_names_unknown_examples(tmp_path: Path) -> None:
    assert _carepath("init", "desk", cwd=tmp_path).returncode == 0
    pb = tmp_path / "desk" / "vn-retail-support.yaml"
    pb.write_text("mine", encoding="utf-8")
    r = _carepath("init", "desk", cwd=tmp_path)
    assert r.returncode == 2 and "exists; nothing written (--force overwrites)" in r.stderr
    assert pb.read_text(encoding="utf-8") == "mine"
    assert _carepath("init", "desk", "--force", cwd=tmp_path).returncode == 0
    assert pb.read_text(encoding="utf-8").startswith("# yaml-language-server")
    r = _carepath("init", "--example", "nope", "x", cwd=tmp_path)
    assert r.returncode == 2 and "omnichannel-journey, vn-retail-support" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_help_text_points_at_the_repository() -> None:
    for cmd in ("generate", "init", "report", "validate"):
        r = _carepath(cmd, "--help", cwd=ROOT)
        assert r.returncode == 0 and "examples/" not in r.stdout, (cmd, r.stdout)


def _build(kind: str, out: Path) -> Path:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            f"--{kind}",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (path,) = out.glob("*.whl" if kind == "wheel" else "*.tar.gz")
    return path


@pytest.mark.slow
def test_the_wheel_carries_examples_schema_templates_and_licence(tmp_path: Path) -> None:
    wheel = _build("wheel", tmp_path / "dist")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for name in EXAMPLES:
        assert f"carepath/examples/{name}.yaml" in names
        assert f"carepath/examples/{name}.test.yaml" in names
        assert f"carepath/examples/events/{name}.jsonl" in names
    for name in ROSTERS:
        assert f"carepath/examples/rosters/{name}.yaml" in names
    assert "carepath/schemas/playbook.schema.json" in names
    assert "carepath/schemas/scenario.schema.json" in names
    assert "carepath/report/templates/report.html.j2" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: Apache-2.0" in meta
    assert 'Requires-Dist: tzdata>=2024.1; sys_platform == "win32"' in meta
    assert "Requires-Dist: holidays<" in meta and "Project-URL: " in meta
    # installed on its own (no repository beside it): init, then validate and report
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    deps = os.pathsep.join([str(target), *site.getsitepackages()])
    env = {"PYTHONPATH": deps, "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    work = tmp_path / "work"
    work.mkdir()
    # python -S: no .pth files, so not the editable install of this checkout; only the wheel
    r = subprocess.run(
        [sys.executable, "-S", "-c", "import carepath, sys; print(carepath.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=True,
    )
    assert r.stdout.startswith(str(target)), r.stdout
    assert (
        _carepath("init", "--example", "omnichannel-journey", "d", cwd=work, env=env).returncode
        == 0
    )
    assert _carepath("validate", "d", cwd=work, env=env).returncode == 0
    rep = _carepath(
        "report",
        "d/omnichannel-journey.yaml",
        "d/events/omnichannel-journey.jsonl",
        "--format",
        "html",
        "-o",
        "r.html",
        cwd=work,
        env=env,
    )
    assert rep.returncode == 0, rep.stderr
    assert (work / "r.html").read_text(encoding="utf-8").startswith("<!doctype html>")


@pytest.mark.slow
def test_the_sdist_holds_what_its_tests_need_and_they_pass(tmp_path: Path) -> None:
    sdist = _build("sdist", tmp_path / "dist")
    with tarfile.open(sdist) as tf:
        tf.extractall(tmp_path / "src", filter="data")
    (top,) = (tmp_path / "src").iterdir()
    for rel in (
        "LICENSE",
        "setup.py",
        "examples/vn-retail-support.yaml",
        "examples/events/omnichannel-journey.jsonl",
        "schemas/playbook.schema.json",
        "docs/report.md",
        "tests/conftest.py",
        "tests/report/test_report.py",
        "src/carepath/report/templates/base.html.j2",
    ):
        assert (top / rel).is_file(), rel
    assert not list(top.rglob("__pycache__"))
    # its own tests, run from the unpacked sdist against its own sources
    r = subprocess.run(
        [
            sys.executable,
            "-S",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "tests/report/test_report.py",
            "tests/model/test_schema.py",
            "tests/test_readme.py",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=top,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(top / "src"), *site.getsitepackages()]),
        },
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_the_help_names_the_shipped_examples() -> None:
    from carepath.cli.init import examples

    assert tuple(examples()) == EXAMPLES
