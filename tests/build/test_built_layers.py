"""Checks of `sam build` output: run by `make build-check` right after `make build`.

The point of building without Docker is to get Lambda's arm64 wheels anyway; these tests read the ELF
header of every compiled extension in the built layers instead of trusting file names.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183  # e_machine of ARM 64-bit ELF objects
EM_X86_64 = 62


def _build_dir() -> Path:
    value = os.environ.get("EMR_TRIAGE_BUILD_DIR")
    if not value:
        pytest.fail("set EMR_TRIAGE_BUILD_DIR to the `sam build` output (make build-check does)")
    path = Path(value)
    if not (path / "template.yaml").is_file():
        pytest.fail(f"{path} has no template.yaml: run `make build` first")
    return path


def _machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == ELF_MAGIC, f"{path} is not an ELF object"
    little_endian = header[5] == 1
    return int.from_bytes(header[18:20], "little" if little_endian else "big")


def test_dependencies_layer_has_only_aarch64_extensions() -> None:
    # Given the built dependencies layer
    layer = _build_dir() / "DependenciesLayer" / "python"
    # When we read every compiled extension's ELF header
    extensions = sorted(layer.rglob("*.so"))
    # Then there are some (pydantic_core at least) and every one is for AArch64
    assert any("pydantic_core" in str(p) for p in extensions), "pydantic_core's compiled module is missing"
    wrong = [str(p.relative_to(layer)) for p in extensions if _machine(p) != EM_AARCH64]
    assert not wrong, f"extensions not built for arm64: {wrong}"


def test_dependencies_layer_matches_the_pins() -> None:
    # Given the pinned requirements and the built layer
    pins = {}
    for line in Path("layers/dependencies/requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    layer = _build_dir() / "DependenciesLayer" / "python"
    # When we list the installed distributions
    installed = {}
    for dist in layer.glob("*.dist-info"):
        name, _, version = dist.name[: -len(".dist-info")].rpartition("-")
        installed[name.lower().replace("_", "-")] = version
    # Then every pin is installed at its version, and no test tooling slipped in
    for name, version in pins.items():
        assert installed.get(name) == version, f"{name}: pinned {version}, built {installed.get(name)}"
    assert not {"moto", "pytest", "mypy"} & set(installed)


def test_charts_layer_is_pillow_at_its_pin_for_arm64_and_small() -> None:
    # Given the charts layer (only the digest function carries it)
    (pin,) = [line for line in Path("layers/charts/requirements.txt").read_text().splitlines() if "==" in line]
    name, _, version = pin.partition("==")
    layer = _build_dir() / "ChartsLayer" / "python"
    # Then it is Pillow at its pin, its extensions built for AArch64, well inside Lambda's 250 MB
    assert (layer / "PIL" / "ImageDraw.py").is_file()
    assert [d.name for d in layer.glob("pillow-*.dist-info")] == [f"{name.strip()}-{version.strip()}.dist-info"]
    extensions = sorted(layer.rglob("*.so*"))
    assert any("_imaging" in p.name for p in extensions)
    assert not [str(p) for p in extensions if p.is_file() and _machine(p) != EM_AARCH64]
    size = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
    assert size < 40 << 20, f"the charts layer is {size >> 20} MB"


def test_common_layer_ships_the_package_and_its_catalogue() -> None:
    layer = _build_dir() / "CommonLayer" / "python" / "emr_triage"
    assert (layer / "__init__.py").is_file()
    for data in ("catalogue.yaml", "benign.yaml", "exit_codes.yaml"):
        assert (layer / "analysis" / "rules" / data).is_file(), data
    assert (layer / "analysis" / "redaction" / "secrets.yaml").is_file(), "the redaction catalogue"
    assert not list(layer.rglob("*.egg-info")), "packaging metadata leaked into the layer"
    assert not list(layer.rglob("__pycache__")), "bytecode of the build machine's Python leaked into the layer"
    # What runs on people's machines stays out of Lambda (it needs moto, which the layer does not have).
    assert not (layer / "cli.py").exists(), "the command line is in the Lambda layer"
    assert not (layer / "local").exists(), "the replay runner and scenario loader are in the Lambda layer"
    assert (layer / "incidents" / "emr_events.py").is_file() and (layer / "ports.py").is_file()
    assert (layer / "interactive" / "gate.py").is_file(), "the interactive function's package"


def test_built_functions_use_both_layers_on_arm64() -> None:
    build = _build_dir()
    template = yaml.load((build / "template.yaml").read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {
        "EmrEventFunction",
        "LogArrivalFunction",
        "FollowUpFunction",
        "SlackInteractionsFunction",
        "DigestFunction",
    }
    for name in functions:
        assert (build / name / "handler.py").is_file()
    function_globals = template["Globals"]["Function"]
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Runtime"] == "python3.13"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
