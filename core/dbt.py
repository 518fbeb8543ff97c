"""Run dbt in-process against the project at the repository root."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from core.config import Settings


class DbtError(RuntimeError):
    pass


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(settings: Settings, command: str, args: Sequence[str] = (), quiet: bool = False,
            extra_vars: dict[str, object] | None = None, target_path: Path | None = None) -> None:
    """Invoke `dbt <command>` with the project's profile, vars (and `extra_vars`) and warehouse; raise DbtError
    on failure."""
    from dbt.cli.main import dbtRunner  # imported here: dbt takes seconds to import, and not every command runs it

    cli_args = [
        command,
        "--project-dir", str(settings.project_root),
        "--profiles-dir", str(settings.dbt_profiles_dir),
        "--target-path", str(target_path or settings.artifacts_dir / "dbt_target"),
        "--log-path", str(settings.artifacts_dir / "dbt_logs"),
        "--vars", json.dumps({**settings.dbt_vars(), **(extra_vars or {})}),
        *(["--quiet"] if quiet else []),
        *args,
    ]
    env = {**settings.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with _environment(env):
        result = dbtRunner().invoke(cli_args)
    if not result.success:
        detail = ""
        if result.exception is not None:
            detail = f": {result.exception}"
        elif result.result is not None and hasattr(result.result, "results"):
            failed = [r for r in result.result.results if str(r.status) not in ("success", "pass", "skipped")]
            detail = ": " + "; ".join(f"{r.node.name} -> {r.status} ({r.message})" for r in failed[:10])
        raise DbtError(f"dbt {command} failed{detail}")
