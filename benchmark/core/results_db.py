"""Every run's rows, kept: an SQLite database (`results.sqlite`, WAL mode) in the results folder.

`results.csv` and `results.json` are exports of the latest row per key
(`KEY_COLUMNS`: the same backbone, size, precision, head, weights and data,
and regime),
in the order each key first appeared. A run adds its rows and supersedes only
its own keys, so a second run into the same folder, or two runs at once,
lose nothing. Each run gets a `runs` record with its environment, settings,
host and git sha. A `results.csv` written before this store existed is
imported once.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import sqlite3
import time

import pandas as pd

from .atomic import sha256_file
from .results import (KEY_COLUMNS, ResultsSchemaError, _plain, load_results, row_key,  # noqa: F401
                      to_frame, write_results)

DB_FILE = "results.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT, host TEXT, git_sha TEXT,
                                 environment TEXT);
CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER REFERENCES runs(id),
                                 key TEXT NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rows_key ON rows(key);
CREATE TABLE IF NOT EXISTS exports (name TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
"""

# Per key, its first and its newest row's id: the exports hold the newest row of every key.
LATEST_IDS = "SELECT key, MIN(id) AS first, MAX(id) AS last FROM rows GROUP BY key"


class ResultsDB:
    """The results folder's database; `add()` stores rows and re-exports results.csv/json."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, DB_FILE)
        self.conn = sqlite3.connect(path, timeout=120, isolation_level=None)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            with self.locked():
                for statement in filter(str.strip, SCHEMA.split(";")):
                    self.conn.execute(statement)
                self._import_legacy()
            self._check_exports()
        except sqlite3.DatabaseError as err:  # not a database, or a damaged one
            self.conn.close()
            raise ResultsSchemaError(f"{path} is not a readable results database ({err}); move it away (the "
                                     f"results.csv beside it holds the latest rows, and is imported into a new "
                                     f"one), or pass --fresh to start the folder anew") from None
        except BaseException:
            self.conn.close()
            raise

    @contextlib.contextmanager
    def locked(self):
        """One writer at a time, across processes: SQLite's write lock for the whole block."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:  # SQLite may have rolled back by itself (disk full): keep the real error
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _import_legacy(self) -> None:
        """A results.csv from before this store, into run 'imported', once (inside the lock)."""
        csv = os.path.join(self.out_dir, "results.csv")
        if self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] or not os.path.exists(csv):
            return
        frame = to_frame(load_results(self.out_dir).to_dict("records"))  # validated, migrated, integer columns
        run_id = self._insert_run({"imported_from": os.path.abspath(csv)})
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
        self._insert_rows(run_id, rows)

    def _check_exports(self) -> None:
        """Refuses a results.csv edited by hand since its last export: the next export would undo the edit."""
        for name, sha in self.conn.execute("SELECT name, sha256 FROM exports"):
            path = os.path.join(self.out_dir, name)
            if os.path.exists(path) and sha256_file(path) != sha:
                raise ResultsSchemaError(
                    f"{path} changed since this tool wrote it: it is an export of {DB_FILE}, and this run would "
                    f"overwrite the edit. Keep your edits in another file, or delete {name} to have it exported "
                    f"again, then rerun")

    def _insert_run(self, environment: dict) -> int:
        cursor = self.conn.execute(
            "INSERT INTO runs (started, host, git_sha, environment) VALUES (?, ?, ?, ?)",
            (time.strftime("%Y-%m-%dT%H:%M:%S%z"), socket.gethostname(), environment.get("git_sha"),
             json.dumps(environment, default=_plain)))
        return int(cursor.lastrowid)

    def _insert_rows(self, run_id: int, rows: list[dict]) -> tuple[int, int]:
        added = replaced = 0
        for row in rows:
            key = row_key(row)
            seen = self.conn.execute("SELECT 1 FROM rows WHERE key = ? LIMIT 1", (key,)).fetchone()
            self.conn.execute("INSERT INTO rows (run_id, key, row) VALUES (?, ?, ?)",
                              (run_id, key, json.dumps({k: _plain(v) for k, v in row.items()}, default=str)))
            replaced, added = (replaced + 1, added) if seen else (replaced, added + 1)
        return added, replaced

    def start_run(self, environment: dict) -> int:
        with self.locked():
            return self._insert_run(environment)

    def latest(self) -> list[dict]:
        """The newest row of every key, in the order the keys first appeared."""
        query = f"SELECT r.row FROM rows AS r JOIN ({LATEST_IDS}) AS k ON r.id = k.last ORDER BY k.first"
        return [json.loads(row) for (row,) in self.conn.execute(query)]

    def add(self, run_id: int, rows: list[dict], environment: dict | None = None) -> tuple[int, int, pd.DataFrame]:
        """Stores `rows` and re-exports the tables; returns `(added, replaced, the exported frame)`."""
        with self.locked():
            added, replaced = self._insert_rows(run_id, rows)
            n_runs = self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            env = None if environment is None else {**environment, "results_db": {"file": DB_FILE, "runs": n_runs}}
            frame = write_results(self.latest(), self.out_dir, env)
            self.conn.execute("INSERT OR REPLACE INTO exports (name, sha256) VALUES (?, ?)",
                              ("results.csv", sha256_file(os.path.join(self.out_dir, "results.csv"))))
        return added, replaced, frame

    def close(self) -> None:
        self.conn.close()


RUN_LOCK = ".run.lock"  # every run holds it shared while it writes into the folder; --fresh needs it alone


@contextlib.contextmanager
def run_lock(out_dir: str, fresh: bool = False):
    """Held for a whole run into `out_dir`: shared, so concurrent runs go on together. With `fresh`, the
    folder's results are deleted first, under the lock held alone.

    Raises:
        ValueError: for `fresh` while another run writes into the folder (it would go on writing into a
            deleted database, and its exports would overwrite this run's).
    """
    import fcntl

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, RUN_LOCK), "a+") as lock:
        if fresh:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"--fresh would delete the results of another run that is writing into {out_dir} "
                                 f"now; wait for it to finish, or pass another --out") from None
            remove_results(out_dir)
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


def remove_results(out_dir: str) -> None:
    """`--fresh`: deletes the folder's results (database, exports, environment, every dataset's examples)."""
    import glob

    examples = [os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(out_dir), "examples-*.npz"))]
    for name in (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", "results.csv", "results.json", "environment.json",
                 "examples.npz", *examples):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out_dir, name))


def live_runs(out_dir: str) -> list[dict]:
    """The environments of the runs whose rows the exports still hold (not superseded), oldest first; [] for a
    folder without a database or with an unreadable one. Opened read-only: a reader never writes a results folder."""
    path = os.path.join(out_dir, DB_FILE)
    if not os.path.exists(path):
        return []
    query = (f"SELECT environment FROM runs WHERE id IN (SELECT DISTINCT r.run_id FROM rows AS r JOIN ({LATEST_IDS}) "
             f"AS k ON r.id = k.last) ORDER BY id")
    try:
        conn = sqlite3.connect(pathlib.Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            found = conn.execute(query).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return []
    return [json.loads(env) for (env,) in found]
