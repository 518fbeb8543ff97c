"""One writing command at a time per warehouse, and a clear answer when a second one starts.

DuckDB lets one process write a file; a second writer fails with a lock error that names no command and no
start time, and a command made of several steps (land, dbt build, train, score) could interleave with another one
between its steps. Every writing `scorehouse` command therefore holds an advisory lock on `<warehouse>.lock`
(on Spark, `<spark dir>.lock`) for its whole life. The file records who holds it (pid, command, start time), so
a second command refuses at once and names the first. The operating system drops the lock when its holder
ends, however it ends (SIGKILL included), so a lock file left by a killed command never blocks the next one: the
next command finds the old record, says whose it was, and takes the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from core.config import Settings


class RunInProgress(RuntimeError):
    """Another command holds the warehouse; nothing was touched."""


def _written(settings: Settings) -> Path:
    """What a run writes: the DuckDB file, or on Spark the folder of its tables and catalog."""
    return settings.spark_dir if settings.engine == "spark" else settings.warehouse_path


def lock_path(settings: Settings) -> Path:
    return _written(settings).with_name(_written(settings).name + ".lock")


def _holder_text(record: dict) -> str:
    return (f"pid {record.get('pid', '?')}, `{record.get('command', '?')}`, started "
            f"{record.get('started_at', '?')} UTC")


def _read_record(descriptor: int) -> dict | None:
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 65_536).decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"command": "unreadable lock record"}
    return record if isinstance(record, dict) else {"command": "unreadable lock record"}


@contextmanager
def exclusive_run(settings: Settings, command: str, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the warehouse for `command` until the block ends; refuse with the holder's pid and start time when
    another command holds it."""
    path = lock_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RuntimeError(f"warehouse folder {path.parent} cannot be written ({error.strerror or error}): "
                           "scorehouse keeps the warehouse and its lock there; choose a writable folder with "
                           "--warehouse or SCOREHOUSE_WAREHOUSE") from error
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_record(descriptor) or {}
            raise RunInProgress(
                f"another scorehouse command is writing {_written(settings)}: {_holder_text(holder)}; nothing "
                "was changed. Wait for it to finish (or stop that process) and run this command again") from None
        earlier = _read_record(descriptor)
        if earlier is not None:  # its holder ended without releasing: killed, or the machine stopped
            say(f"note: the previous command on this warehouse did not finish ({_holder_text(earlier)}); its lock "
                "is cleared. What it committed stays, what it had not committed was rolled back, and running it "
                "again finishes it")
        record = {"pid": os.getpid(), "command": command,
                  "started_at": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}"}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # an empty record: this command ended normally (or with an error it reported)
    finally:
        os.close(descriptor)  # closing releases the lock
