"""moto's internals are reached in one place: ``scenarios/moto_patches.py``, where each patch says
what it works around and which moto version needs it. Tests, benches, the sandbox and the other
scenarios use moto's public doors only (``mock_aws``, ``moto.server``, ``/moto-api/``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THE_ONE_PLACE = ROOT / "scenarios" / "moto_patches.py"
PUBLIC = {"moto", "moto.server"}
MODELS = re.compile(r"moto\.\w+\.models")


def moto_internals(path: Path) -> list[str]:
    """The moto modules ``path`` imports beyond the public ones, and dotted moto paths it names
    in a string (``monkeypatch.setattr("moto.sqs.models.unix_time_millis", ...)``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules = [node.value] if MODELS.match(node.value) else []
        else:
            continue
        found += [
            module
            for module in modules
            if (module == "moto" or module.startswith("moto.")) and module not in PUBLIC
        ]
    return found


def test_only_the_moto_patches_module_reaches_into_moto():
    # This file is left out: it names moto's modules as test data below.
    offenders = {
        str(path.relative_to(ROOT)): internals
        for folder in ("tests", "bench", "sandbox", "scenarios")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in (THE_ONE_PLACE, Path(__file__)) and (internals := moto_internals(path))
    }

    assert offenders == {}


def test_the_check_sees_a_patch_outside_the_one_place(tmp_path):
    patched = tmp_path / "patched.py"
    patched.write_text(
        "from moto.awslambda.models import LambdaBackend\n"
        "import moto.sqs.models\n"
        "monkeypatch.setattr('moto.ecr.models.ecr_backends', {})\n"
        "from moto import mock_aws\n"
        "from moto.server import ThreadedMotoServer\n"
    )

    assert moto_internals(patched) == [
        "moto.awslambda.models",
        "moto.sqs.models",
        "moto.ecr.models.ecr_backends",
    ]
    assert moto_internals(THE_ONE_PLACE)
