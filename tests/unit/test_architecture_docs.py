"""docs/ARCHITECTURE.md names every module under mmos_core/ and workers/ (in the spirit of datasette's
tests/test_docs.py): a new module without a line there fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _modules() -> list[str]:
    out = []
    for root in ("mmos_core", "workers"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.name == "__init__.py" and path.stat().st_size == 0:
                continue
            out.append(path.relative_to(REPO).as_posix())
    return out


def _named(module: str) -> bool:
    """A module is named by its path (`mmos_core/jobs/spec.py`), its folder plus file
    (`jobs/spec.py`), or a brace list in its folder's row (`jobs/{spec, catalog}`)."""
    if module.endswith("/__init__.py"):  # a package's __init__ is named by its folder
        folder = module.removesuffix("/__init__.py")
        short = folder.removeprefix("mmos_core/")
        return any(f"`{f}/" in DOC or f"`{f}`" in DOC for f in (folder, short))
    path = module.removesuffix(".py")
    parts = path.split("/")
    stem, folder = parts[-1], "/".join(parts[:-1])
    short_folder = "/".join(parts[1:-1]) if parts[0] == "mmos_core" else folder
    candidates = {path, f"{path}.py", "/".join(parts[1:]), "/".join(parts[1:]) + ".py"}
    if any(f"`{c}`" in DOC or f"`{c}/`" in DOC for c in candidates if c):
        return True
    for f in {folder, short_folder}:
        for m in re.finditer(re.escape(f"{f}/{{") + r"([^}]*)\}", DOC):
            if stem in {n.strip().removesuffix(".py") for n in m.group(1).split(",")}:
                return True
    return False


@pytest.mark.parametrize("module", _modules())
def test_module_is_in_architecture_doc(module):
    assert _named(module), f"{module} is not named in docs/ARCHITECTURE.md"


def test_architecture_doc_names_no_missing_module():
    """Every `mmos_core/…/x.py` path the doc names exists (the doc does not describe deleted code)."""
    missing = [p for p in re.findall(r"`((?:mmos_core|workers)/[\w/]+\.py)`", DOC) if not (REPO / p).exists()]
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"
