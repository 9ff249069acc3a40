"""pyproject.toml states what the code needs, and the requirements files agree with it."""

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"aecore", "app_pages", "bench", "experiments", "tests"}
DISTRIBUTION = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "pywt": "pywavelets",
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _imported(paths: list[Path], top_level_only: bool = False) -> set[str]:
    """Third-party distributions the files import: at module level, or anywhere (lazy imports
    inside functions too)."""
    found = set()
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body if top_level_only else ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    third = found - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}
    return {DISTRIBUTION.get(m, m).lower() for m in third}


def _extras() -> set[str]:
    return {_name(r) for reqs in PROJECT["optional-dependencies"].values() for r in reqs}


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            pins[_name(line)] = line
    return pins


def test_every_module_the_library_and_app_import_is_declared():
    code = [*(ROOT / "aecore").rglob("*.py"), *(ROOT / "app_pages").rglob("*.py")]
    code.append(ROOT / "streamlit_app.py")
    declared = {_name(r) for r in PROJECT["dependencies"]}
    top = _imported(code, top_level_only=True)
    assert {"torch", "numpy", "pandas"} <= top  # the reader sees real imports
    assert top - declared == set(), "imported on load but not in pyproject.toml's dependencies"
    anywhere = _imported(code)
    assert {"threadpoolctl", "scipy", "scikit-learn"} <= anywhere & declared
    assert anywhere - declared - _extras() == set(), "imported but declared nowhere"
    # PyWavelets is imported by scikit-image's wavelet denoiser, which lists it as optional.
    assert declared - anywhere == {"pywavelets"}, "declared but imported nowhere"


def test_the_extras_hold_what_tests_and_bench_import():
    needed = _imported([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")])
    assert needed - {_name(r) for r in PROJECT["dependencies"]} - _extras() == set()


def test_requirements_pin_exactly_the_declared_dependencies():
    pins = _pins("requirements.txt")
    assert set(pins) == {_name(r) for r in PROJECT["dependencies"]}
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()


def test_the_cpu_requirements_pin_the_same_torch_as_cpu_wheels():
    cpu, pins = _pins("requirements-cpu.txt"), _pins("requirements.txt")
    for name in ("torch", "torchvision"):
        assert cpu[name] == pins[name] + "+cpu"
    text = (ROOT / "requirements-cpu.txt").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "-r requirements.txt" in text


def test_python_version_and_console_script():
    assert PROJECT["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)
    module, _, function = PROJECT["scripts"]["aecore"].partition(":")
    cli = __import__(module, fromlist=["main"])
    assert module == "aecore.cli" and callable(getattr(cli, function))


def test_bench_and_experiments_leave_sys_path_alone():
    for path in [*(ROOT / "bench").glob("*.py"), *(ROOT / "experiments").glob("*.py")]:
        assert "sys.path.insert" not in path.read_text(), path
    assert "sys.path" not in (ROOT / "aecore" / "cli.py").read_text()


def test_no_function_in_the_cli_is_over_60_lines():
    tree = ast.parse((ROOT / "aecore" / "cli.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno - node.lineno + 1 <= 60, node.name
