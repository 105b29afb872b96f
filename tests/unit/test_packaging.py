"""constraints.txt pins every dependency that pyproject.toml declares, inside its range: a new
dependency cannot be left to float, and a range cannot be narrowed past its pin."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def test_every_declared_dependency_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned with ==: {line}"
            pins[canonicalize_name(name)] = version
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt (make constraints)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req.specifier}"


def test_every_folder_of_files_the_code_reads_at_run_time_ships_with_the_package():
    # The console's templates were not in package-data: an installed (not editable) turnout, as
    # the compose image has it, had no console page.
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    folders = {path for name in ("templates", "static") for path in (ROOT / "connectors").rglob(name) if path.is_dir()}
    missing = []
    for folder in sorted(folders):
        package = ".".join(folder.parent.relative_to(ROOT).parts)
        if f"{folder.name}/*" not in shipped.get(package, []):
            missing.append(f"{package}: {folder.name}/*")
    assert missing == []
