"""The Great Expectations file data context: `expectations/gx/`, in the repository.

It holds one suite, validation definition and checkpoint per gated table (`raw.<table>`, `scores.<table>`), over a
pandas datasource named `warehouse`: the gates hand GX DataFrames read from DuckDB, because GX's SQL datasource
returns empty results on DuckDB. `scorehouse contract --write` writes it from `expectations/suites.py`.

A run never writes into the repository: the gates copy the context to `<artifacts>/gx/context/` and run there, so
validation results and the Data Docs site (`<artifacts>/gx/context/gx/uncommitted/data_docs/local_site/`) collect
under the artifacts folder, one history per warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from expectations.suites import suite_definitions

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave the machine

CONTEXT_ROOT = PROJECT_ROOT / "expectations"
CONTEXT_DIR = CONTEXT_ROOT / "gx"
COMMITTED = ("great_expectations.yml", "expectations", "validation_definitions", "checkpoints", ".gitignore")
DATASOURCE = "warehouse"
SITE = "local_site"


def suite_path(folder: Path, name: str) -> Path:
    """GX stores suite `a.b` as expectations/a/b.json."""
    return folder / "expectations" / Path(*name.split(".")).with_suffix(".json")


def _canonical(checks) -> list[str]:
    return sorted(json.dumps([kind, kwargs], sort_keys=True) for kind, kwargs in checks)


def stale_suites(folder: Path = CONTEXT_DIR) -> list[str]:
    """Suites whose committed expectations differ from expectations/suites.py, are missing, or are left over."""
    wanted = suite_definitions()
    stale = []
    for name, checks in wanted.items():
        path = suite_path(folder, name)
        if not path.exists():
            stale.append(f"{name}: missing")
            continue
        saved = [(e["type"], e["kwargs"]) for e in json.loads(path.read_text(encoding="utf-8"))["expectations"]]
        if _canonical(saved) != _canonical(checks):  # GX saves a suite's expectations in its own order
            stale.append(f"{name}: differs")
    present = {".".join(p.relative_to(folder / "expectations").with_suffix("").parts)
               for p in (folder / "expectations").rglob("*.json")} if (folder / "expectations").exists() else set()
    stale += [f"{name}: not defined any more" for name in sorted(present - set(wanted))]
    return stale


def _build(root: Path) -> None:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.save()
    source = context.data_sources.add_pandas(DATASOURCE)
    for name, checks in suite_definitions().items():
        suite = gx.ExpectationSuite(name)
        for kind, kwargs in checks:
            suite.add_expectation(ExpectationConfiguration(type=kind, kwargs=kwargs).to_domain_obj())
        suite = context.suites.add(suite)
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole table")
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        context.checkpoints.add(gx.Checkpoint(name=name, validation_definitions=[definition]))


def write_context(target: Path = CONTEXT_DIR) -> None:
    """Write the context's committed files from expectations/suites.py, replacing the previous ones."""
    with tempfile.TemporaryDirectory() as scratch:
        _build(Path(scratch))
        for name in COMMITTED:
            old = target / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for name in COMMITTED:
            built = Path(scratch) / "gx" / name
            if built.is_dir():
                shutil.copytree(built, target / name)
            else:
                shutil.copyfile(built, target / name)


def open_context(settings: Settings):
    """The committed context, copied under the artifacts folder (its earlier validation results kept)."""
    import great_expectations as gx

    root = settings.artifacts_dir / "gx" / "context"
    for name in COMMITTED:
        source, copy = CONTEXT_DIR / name, root / "gx" / name
        if source.is_dir():
            shutil.copytree(source, copy, dirs_exist_ok=True)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
    return gx.get_context(mode="file", project_root_dir=root)


def docs_index(settings: Settings) -> Path:
    return settings.artifacts_dir / "gx" / "context" / "gx" / "uncommitted" / "data_docs" / SITE / "index.html"
