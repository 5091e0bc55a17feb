"""One writer thread per SQLite file: writes queue up and never hold the caller.

    writer = Writer(path, "assistant.db")
    future = writer.submit(lambda db: db["t"].insert(row))   # returns at once
    writer.flush(timeout=1.0)                                # tests, shutdown, read-your-writes

The thread has its own connection and commits whatever is queued in one
transaction. A locked database (another process in BEGIN EXCLUSIVE) only delays
the queue: the batch is retried until the lock goes. Any other fault (read-only
file, full disk, corrupt page) is retried a few times, then the batch is dropped.
Either way the fault is logged once when it starts and once when it ends, never
once per write: a broken disk must not bury the log, nor reach the user.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import sqlite_utils

log = logging.getLogger(__name__)

Job = Callable[[sqlite_utils.Database], Any]
MAX_QUEUED = 50_000   # beyond this (a long outage) the oldest writes are dropped, and counted
BATCH = 500
OTHER_FAULT_TRIES = 3


def is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class Health:
    """Logs a storage fault once when it starts and once when it ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing: str | None = None
        self.lost = 0
        self._lock = threading.Lock()

    def fault(self, what: str, exc: BaseException, *, lost: int = 0) -> None:
        with self._lock:
            self.lost += lost
            kind = type(exc).__name__ + ": " + str(exc)
            if self.failing == kind:
                return
            self.failing = kind
        log.error("storage %s: %s failed (%s); answers go on, this fault is logged once until it clears",
                  self.name, what, kind)

    def ok(self) -> None:
        if self.failing is None:
            return
        with self._lock:
            failing, lost, self.failing, self.lost = self.failing, self.lost, None, 0
        log.warning("storage %s: working again after %s; %d writes were lost", self.name, failing, lost)


class Writer:
    """A daemon thread owning one connection; jobs are functions of a sqlite_utils.Database."""

    def __init__(self, path: str, name: str, health: Health | None = None, *, busy_timeout: float = 1.0) -> None:
        self.path = path
        self.health = health or Health(name)
        self._busy_timeout = busy_timeout
        self._queue: queue.Queue[tuple[Job, Future] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"writer:{name}", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------------

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        with self._idle:
            if self._pending >= MAX_QUEUED:
                self.health.fault("queueing a write", RuntimeError(f"{MAX_QUEUED} writes waiting"), lost=1)
                future.set_exception(RuntimeError("write queue full"))
                return future
            self._pending += 1
        self._queue.put((job, future))
        return future

    @property
    def pending(self) -> int:
        return self._pending

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write is committed (or dropped); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        if not self.flush(timeout):
            log.error("storage %s: %d writes still queued at shutdown are lost", self.health.name, self._pending)
        self._queue.put(None)
        self._thread.join(timeout=1.0)

    # -- the thread ------------------------------------------------------------------

    def _connect(self) -> sqlite_utils.Database | None:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, check_same_thread=False,
                                   isolation_level=None)
            conn.execute("pragma synchronous=normal")  # WAL: durable across a killed process
            return sqlite_utils.Database(conn)
        except sqlite3.Error as exc:
            self.health.fault("opening the database", exc)
            return None

    def _run(self) -> None:
        db = self._connect()
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            db = self._commit(db, batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()
        if db is not None:
            db.conn.close()

    def _commit(self, db: sqlite_utils.Database | None, batch: list[tuple[Job, Future]]) -> sqlite_utils.Database | None:
        tries, delay = 0, 0.05
        while True:
            if db is None:
                db = self._connect()
            try:
                if db is None:
                    raise sqlite3.OperationalError("unable to open database file")
                results = []
                db.conn.execute("begin immediate")
                try:
                    for job, _ in batch:
                        results.append(job(db))
                    db.conn.execute("commit")
                except BaseException:
                    if db.conn.in_transaction:
                        db.conn.execute("rollback")
                    raise
            except Exception as exc:
                if is_locked(exc):  # another process holds the lock: wait, keep order, lose nothing
                    self.health.fault("writing (the database is locked; writes are queued)", exc)
                    time.sleep(delay)
                    delay = min(1.0, delay * 2)
                    continue
                tries += 1
                if tries < OTHER_FAULT_TRIES:
                    time.sleep(delay)
                    continue
                self.health.fault("writing", exc, lost=len(batch))
                for _, future in batch:
                    future.set_exception(exc)
                return db
            self.health.ok()
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
            return db
