"""Kill trials: SIGKILL `run`, `refresh`, `score` and `load` at random moments, then check what readers see and that
the same command, run again, succeeds.

One small warehouse is built first (simulated leads, a full run, so a run is published). Each trial copies it,
starts one command as a separate process, kills it with SIGKILL after a random delay (up to the command's own
uninterrupted duration, measured first), and then checks:

- the published warehouse: byte for byte the run published before, or (when the kill came after the publish's
  rename) a whole new run: its score table and worklist from one scoring run, matching its recorded row counts;
- that no half-written copy is left once the next publish has run;
- that the same command run again exits 0 and publishes a whole run.

    python benchmarks/kill_trials.py [--trials 20] [--leads 2000] [--seed 3]

A script, not a test: it prints a Markdown table of the trials.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb

SCOREHOUSE = [sys.executable, "-m", "scorehouse.cli"]


def _cli(root: Path, args: list[str]) -> list[str]:
    return [*SCOREHOUSE, "--warehouse", str(root / "warehouse.duckdb"), "--raw-dir", str(root / "raw"),
            "--artifacts", str(root / "artifacts"), *args]


def _published(root: Path) -> Path:
    return root / "published" / "warehouse.duckdb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _whole_run(path: Path) -> str | None:
    """None when the published warehouse holds one whole run, else what is wrong."""
    with duckdb.connect(str(path), read_only=True) as con:
        counts = json.loads(con.execute("select row_counts from meta.published_runs "
                                        "order by published_at desc, run_id desc limit 1").fetchone()[0])
        scores = con.execute("select count(*), count(distinct scored_at), max(scored_at) from scores.lead_scores"
                             ).fetchone()
        worklist = con.execute("select count(distinct scored_at), max(scored_at) from marts.rpt_lead_worklist"
                               ).fetchone()
    if scores[1] != 1 or worklist[0] != 1 or scores[2] != worklist[1]:
        return f"mixed runs: scores {scores}, worklist {worklist}"
    if counts.get("scores.lead_scores") != scores[0]:
        return f"row count {scores[0]} differs from the recorded {counts.get('scores.lead_scores')}"
    return None


def _inputs(base: Path) -> dict[str, list[str]]:
    """The commands tried, with their input files written once beside the base warehouse."""
    new = base.parent / "inputs" / "new" / "crm_activities"
    new.mkdir(parents=True)
    with duckdb.connect(str(base / "warehouse.duckdb"), read_only=True) as con:
        latest = con.execute("select max(_loaded_at) from raw.crm_activities").fetchone()[0]
        con.execute("copy (select * replace ('new-' || activity_id as activity_id, "
                    f"timestamp '{latest}' + interval 1 hour as _loaded_at) from raw.crm_activities "
                    f"order by activity_id limit 200) to '{new}/rows.parquet' (format parquet)")
        leads = base.parent / "inputs" / "leads.csv"
        con.execute("copy (select 'X' || lead_id as lead_id, created_at, lead_source, "
                    f"timestamp '{latest}' + interval 1 hour as _loaded_at from raw.crm_leads limit 2000) "
                    f"to '{leads}' (header)")
    return {"run": ["run"], "refresh": ["refresh", str(new.parent)], "score": ["score", "--model", "lead"],
            "load": ["load", "crm_leads", str(leads)]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="scorehouse-kill-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        print(f"building the base warehouse ({args.leads:,} leads) ...", flush=True)
        subprocess.run(_cli(base, ["run", "--leads", str(args.leads), "--seed", str(args.seed)]), env=env,
                       check=True, capture_output=True)
        commands = _inputs(base)
        durations = {}
        for name, command in commands.items():  # each command's uninterrupted time, on its own copy
            trial = Path(tmp) / f"time-{name}"
            shutil.copytree(base, trial)
            started = time.perf_counter()
            subprocess.run(_cli(trial, command), env=env, check=True, capture_output=True)
            durations[name] = time.perf_counter() - started
            shutil.rmtree(trial)
        print("uninterrupted: " + ", ".join(f"{k} {v:.0f}s" for k, v in durations.items()), flush=True)
        names = list(commands)
        for k in range(args.trials):
            name = names[k % len(names)]
            trial = Path(tmp) / f"trial-{k:02d}"
            shutil.copytree(base, trial)
            before = _digest(_published(trial))
            delay = rng.uniform(0.3, durations[name])
            process = subprocess.Popen(_cli(trial, commands[name]), env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(delay)
            finished_first = process.poll() is not None
            if not finished_first:
                process.send_signal(signal.SIGKILL)
            process.wait()
            after = _digest(_published(trial))
            published = "unchanged" if after == before else ("new whole run" if _whole_run(_published(trial)) is None
                                                             else f"BROKEN: {_whole_run(_published(trial))}")
            rerun = subprocess.run(_cli(trial, commands[name]), env=env, capture_output=True, text=True, check=False)
            problem = _whole_run(_published(trial))
            stale = [p.name for p in (trial / "published").glob(".publishing-*")]
            rows.append({"trial": k + 1, "command": name, "killed after": f"{delay:.1f}s of {durations[name]:.0f}s",
                         "killed": not finished_first, "published after the kill": published,
                         # a command killed after taking the run lock leaves its record; the re-run names it
                         "lock note": "yes" if "did not finish" in rerun.stdout else "no",
                         "re-run": "ok" if rerun.returncode == 0 else f"FAILED: {rerun.stderr.strip()[-200:]}",
                         "published after the re-run": "whole run" if problem is None else f"BROKEN: {problem}",
                         "stale copies": len(stale)})
            print(f"  trial {k + 1}: {name} killed at {delay:.1f}s -> {published}; re-run "
                  f"{rows[-1]['re-run']}", flush=True)
            shutil.rmtree(trial)
    header = list(rows[0])
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in header) + " |")
    bad = [r for r in rows if r["re-run"] != "ok" or "BROKEN" in r["published after the kill"]
           or r["published after the re-run"] != "whole run" or r["stale copies"]]
    print(f"\n{len(rows)} trials, {sum(r['killed'] for r in rows)} killed before finishing: {len(bad)} with a problem")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
