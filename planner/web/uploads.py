"""Uploads run in child processes that can be killed: a time limit per file, a clean shutdown.

The web service never reads an uploaded file in its own process. Each upload is spooled to a
folder of its own (``planner-upload-<pid>-…`` under the upload directory) and handed to one of a
few long-lived worker processes (started with ``spawn``), which runs the same
:func:`planner.ingest.ingest` as the CLI. Everything the worker writes to disk, zip members
included, goes into that folder (the worker's :data:`tempfile.tempdir` points there), and the
folder is removed when the job ends, however it ends.

A job that runs past its time limit is stopped by killing its worker (SIGKILL): the import is
one store transaction, which the database rolls back when its writer dies, so the store is
unchanged. The next job gets a fresh worker. :meth:`UploadWorkers.close` kills every worker at
once; the app calls it on shutdown and when the server receives SIGTERM, so an upload in
progress never holds the server up.

Folders left behind by a server that was killed are removed by :func:`remove_stale_folders`
when the next server starts (those whose process is gone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from planner.errors import PlannerError, Problem, StoreBusyError, TooLargeError, ValidationError
from planner.ingest import IngestOptions
from planner.layers import LayerName
from planner.store import Retraction

logger = logging.getLogger(__name__)

#: Name prefix of every upload folder; the process id follows, then a random part.
FOLDER_PREFIX = "planner-upload-"
_FOLDER = re.compile(rf"^{re.escape(FOLDER_PREFIX)}(\d+)-")
#: How long a fresh worker may take to start (import the libraries) [s].
START_SECONDS = 120.0
#: How often a waiting request looks whether it was cancelled or the pool closed [s].
_POLL_SECONDS = 0.1


class ShuttingDownError(StoreBusyError):
    """The service is stopping: the upload was stopped, nothing was imported; send it again."""


@dataclass(frozen=True)
class UploadJob:
    """One file to import, as the worker receives it."""

    layer: LayerName
    path: str
    options: IngestOptions
    folder: str
    #: an import this file corrects, retracted in the same transaction
    replaces: Retraction | None = None


@dataclass(frozen=True)
class UploadOutcome:
    """What the worker sends back for an import that landed (not the features themselves)."""

    import_id: int
    layer: str
    sha256: str
    rows: int
    problems: list[Problem]


# -- folders -----------------------------------------------------------------------------------
def upload_root(configured: str | Path | None) -> Path:
    """The directory upload folders go in: the configured one, else the system temp dir."""
    root = Path(configured) if configured else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_folder(root: Path) -> Path:
    """A new, private upload folder ``planner-upload-<pid>-<random>`` under ``root``."""
    return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=root))


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str | None) -> str:
    """A plain file name from whatever a client sent (no folders, no odd characters).

    Examples
    --------
    >>> safe_file_name("../../etc/passwd"), safe_file_name("C:\\\\x\\\\survey 2019.zip")
    ('passwd', 'survey_2019.zip')
    """
    base = (name or "").replace("\\", "/").split("/")[-1]
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    return cleaned[-120:]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True     # someone else's live process
    return True


def remove_stale_folders(root: Path) -> list[Path]:
    """Remove upload folders whose server process is gone; return what was removed.

    Folders of live processes (another server sharing the directory, or this one) are kept.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = new_folder(root)
    >>> remove_stale_folders(root)    # this process is alive: nothing removed
    []
    """
    removed = []
    for entry in sorted(root.glob(f"{FOLDER_PREFIX}*")):
        match = _FOLDER.match(entry.name)
        if match is None or not entry.is_dir() or _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    if removed:
        logger.info("removed %d upload folder(s) left by a stopped server", len(removed))
    return removed


# -- the worker process ------------------------------------------------------------------------
def _error_state(exc: PlannerError) -> dict[str, Any]:
    cls = type(exc)
    state: dict[str, Any] = {"module": cls.__module__, "name": cls.__qualname__,
                             "message": str(exc), "argument": exc.argument}
    if isinstance(exc, ValidationError):
        state.update(source=exc.source, problems=exc.problems)
    return state


def _scrub(state: dict[str, Any], folder: str) -> dict[str, Any]:
    """The error state without the upload folder's path (the server's layout is private)."""
    def clean(text: str) -> str:
        return text.replace(folder + os.sep, "").replace(folder, "the upload")

    out = {**state, "message": clean(str(state["message"]))}
    if "source" in out:
        out["source"] = clean(str(out["source"]))
    if "problems" in out:
        out["problems"] = [dataclasses.replace(p, feature=clean(p.feature),
                                               message=clean(p.message))
                           for p in out["problems"]]
    return out


def rebuild_error(state: dict[str, Any]) -> PlannerError:
    """The :class:`PlannerError` a worker raised, rebuilt from :func:`_error_state`.

    (Exceptions with keyword-only arguments do not survive pickling; this keeps class, message,
    argument and problems.)

    Examples
    --------
    >>> from planner.errors import CRSMissingError
    >>> err = rebuild_error(_error_state(CRSMissingError("no CRS", argument="crs")))
    >>> type(err).__name__, str(err), err.argument
    ('CRSMissingError', 'no CRS', 'crs')
    """
    cls: Any = PlannerError
    with contextlib.suppress(ImportError, AttributeError):
        found = getattr(importlib.import_module(state["module"]), state["name"])
        if isinstance(found, type) and issubclass(found, PlannerError):
            cls = found
    if issubclass(cls, ValidationError) and "problems" in state:
        err: PlannerError = cls(state["source"], state["problems"])
        err.argument = state["argument"]
        return err
    try:
        return cls(state["message"], argument=state["argument"])
    except TypeError:
        return PlannerError(state["message"], argument=state["argument"])


def _worker_main(conn: Connection, store_location: str) -> None:
    """Body of a worker process: import the jobs it receives, one at a time."""
    import signal

    from planner.ingest import ingest
    from planner.store import Store, open_store

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C is the server's to handle
    store: Store | None = None
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job: UploadJob | None = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        tempfile.tempdir = str(Path(job.folder) / "work")
        Path(tempfile.tempdir).mkdir(exist_ok=True)
        try:
            if store is None:
                store = open_store(store_location)
            result = ingest(store, job.layer, job.path, job.options, replaces=job.replaces)
            reply: tuple[str, Any] = ("ok", UploadOutcome(
                result.import_id, result.record.layer, result.record.sha256,
                result.record.rows, list(result.problems)))
        except PlannerError as exc:
            reply = ("error", _error_state(exc))
        except Exception:
            traceback.print_exc()
            reply = ("crash", None)
        finally:
            tempfile.tempdir = None
        conn.send(reply)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context: Any, store_location: str) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, store_location),
                                       name="planner-upload-worker", daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self._kill_lock = threading.Lock()

    def kill(self) -> None:
        """Kill the process and close the pipe; safe to call from two threads at once (a
        request giving up on its worker while the server's shutdown kills them all)."""
        with self._kill_lock:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)
            self.conn.close()


class UploadWorkers:
    """A few killable worker processes that import uploads, each under a time limit.

    Parameters
    ----------
    store_location : str
        The store (path or URL), opened by each worker.
    size : int
        How many imports run at once; more wait their turn.
    seconds : float
        Longest time one import may run [s]; past it the worker is killed.
    """

    def __init__(self, store_location: str, size: int, seconds: float) -> None:
        self.store_location = store_location
        self.seconds = seconds
        self._context = multiprocessing.get_context("spawn")
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (no more jobs are taken)."""
        return self._closed.is_set()

    def run(self, job: UploadJob, cancelled: threading.Event) -> UploadOutcome:
        """Run ``job`` in a worker and return its outcome (blocking; call it from a thread).

        Raises
        ------
        TooLargeError
            The import took longer than :attr:`seconds`; the worker was killed.
        ShuttingDownError
            The pool was closed (the server is stopping) or ``cancelled`` was set.
        PlannerError
            Whatever the import raised (rebuilt in this process).
        """
        while not self._slots.acquire(timeout=_POLL_SECONDS):
            self._stop_if_asked(cancelled)
        try:
            self._stop_if_asked(cancelled)
            worker = self._checkout()
            try:
                kind, payload = self._exchange(worker, job, cancelled)
            except BaseException:
                self._discard(worker)
                raise
            self._checkin(worker)
        finally:
            self._slots.release()
        if kind == "ok":
            return payload
        if kind == "error":
            raise rebuild_error(_scrub(payload, job.folder))
        raise RuntimeError("the upload worker failed; its traceback is in the service log")

    def close(self) -> None:
        """Kill every worker now; jobs in progress end with :class:`ShuttingDownError`."""
        self._closed.set()
        with self._lock:
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.kill()

    # -- internals ------------------------------------------------------------------------
    def _stop_if_asked(self, cancelled: threading.Event) -> None:
        if self._closed.is_set() or cancelled.is_set():
            raise ShuttingDownError("the service is stopping, so the upload was stopped and "
                                    "nothing was imported; send the file again in a minute")

    def _checkout(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    self._busy.add(worker)
                    return worker
                worker.kill()
            worker = _Worker(self._context, self.store_location)
            self._busy.add(worker)
            return worker

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if self._closed.is_set():
                worker.kill()
            else:
                self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.kill()

    def _wait(self, worker: _Worker, seconds: float, cancelled: threading.Event) -> bool:
        """Wait for a message from ``worker``; False when ``seconds`` passed first."""
        deadline = time.monotonic() + seconds
        while True:
            self._stop_if_asked(cancelled)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if worker.conn.poll(min(_POLL_SECONDS, left)):
                    return True
                died = not worker.process.is_alive() and not worker.conn.poll(0)
            except (EOFError, OSError):   # the pipe was closed: the pool is being closed
                self._stop_if_asked(cancelled)
                raise
            if died:
                self._stop_if_asked(cancelled)
                raise RuntimeError(f"the upload worker stopped (exit code "
                                   f"{worker.process.exitcode})")

    def _landed(self, job: UploadJob) -> UploadOutcome | None:
        """The import of ``job``'s file if it is in the store (after its worker was killed).

        A worker killed on the time limit may have committed a moment before: the store then
        holds the import, and the upload must be reported as landed, not as refused.
        """
        from planner.io.readers import sha256_of
        from planner.store import open_store

        try:
            digest = sha256_of(Path(job.path))
            found = open_store(self.store_location).find_import(digest)
        except (OSError, PlannerError):
            return None
        if found is None:
            return None
        return UploadOutcome(int(found["import_id"]), str(found.get("layer") or job.layer),
                             digest, int(found.get("rows") or 0),
                             [Problem("file", "the import reached the time limit as it "
                                      "finished; it landed whole", "warning")])

    def _exchange(self, worker: _Worker, job: UploadJob,
                  cancelled: threading.Event) -> tuple[str, Any]:
        if not worker.ready:
            if not self._wait(worker, START_SECONDS, cancelled):
                raise RuntimeError("an upload worker did not start in time")
            worker.conn.recv()
            worker.ready = True
        started = time.monotonic()
        worker.conn.send(job)
        if not self._wait(worker, self.seconds, cancelled):
            worker.kill()
            landed = self._landed(job)
            if landed is not None:   # it committed just before the kill: say so, truly
                logger.warning("upload %s reached the time limit as it committed; it landed",
                               Path(job.path).name)
                return "ok", landed
            name = Path(job.path).name
            logger.warning("upload %s stopped after %.1f s (limit %g s)", name,
                           time.monotonic() - started, self.seconds)
            raise TooLargeError(
                f"{name}: reading and checking the file took longer than the limit of "
                f"{self.seconds:g} s, so it was stopped; nothing was imported. Split the file "
                "into smaller ones (or simplify its polygons) and upload them one by one.",
                argument="file")
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError) as exc:    # the worker died: killed on shutdown, or crashed
            self._stop_if_asked(cancelled)
            raise RuntimeError(f"the upload worker stopped (exit code "
                               f"{worker.process.exitcode})") from exc
        return str(kind), payload


__all__ = ["FOLDER_PREFIX", "ShuttingDownError", "UploadJob", "UploadOutcome",
           "UploadWorkers", "new_folder", "rebuild_error", "remove_stale_folders", "safe_file_name",
           "upload_root"]
