"""The xAPI outbox: every learning event kept in the database until the LRS has it.

Queued where the event is stored. A room record's statements (server.xapi) are written
into ``xapi_outbox`` in the transaction that stores the record (server.store
``add_records`` calls ``enqueue_record`` for each new one), and a badge's in the
transaction that awards it (server.learners ``award``, only for a new award). So a
stored record always has its statements queued, across a crash or a restart, and a
replayed record, stored once, is queued once. A statement's id is deterministic, and
the table is unique by it: the second placement of a student at a station (the same
"joined") adds nothing.

Off unless ``AMALIY_XAPI_URL`` is set. The node says so at start (``Outbox.start``) in
``xapi_settings``: the node's address (the accounts' homePage) when on, nothing when
off, and with nothing there nothing is queued (a node without an LRS keeps no outbox).

Sent by ``Outbox``, a task on the node's event loop: it takes up to ``batch`` due
pending statements in the order they were queued, POSTs them as one JSON array to
``<url>/statements`` (HTTP basic auth, ``X-Experience-API-Version: 1.0.3``) with
httpx's async client, and does the database work on a thread of its own, with its own
SQLite connection, so the loop that ticks rooms never waits for either. What the LRS
answers decides what follows (``verdict``):

==========================================  =============================================
200 with a list of ids, 204                 sent
409 (it holds another statement by an id)   sent (a batch is sent again one by one first)
400, 413, 422 (a statement it refuses)      a batch: each statement alone; one alone: set
                                            aside with the reason (logged, in /healthz),
                                            never tried again by itself
401, 403                                    kept; retried (the credentials are wrong)
404, 405, other 1xx/3xx/4xx, 2xx that is    kept; retried (the URL is not an LRS's xAPI
not a list of ids                           endpoint)
429, 5xx, timeout, no connection            kept; retried
==========================================  =============================================

Retried means: after the n-th failure in a row the sender waits
``min(max_backoff, 2 ** (n - 1))`` seconds times a factor drawn in [0.5, 1) (jitter, so
nodes that lost the same LRS do not come back in step), then tries again; the first
success resets it. The error is logged once when it changes (then once a minute) and
shown in /healthz (``Outbox.health``).

Limits: pending statements are kept however long the LRS is away (about 1-2 KB each;
a class of 30 doing a ten-step lab makes about 400); sent ones are deleted after
``KEEP_SENT`` seconds; set-aside ones stay until an operator deals with them
(docs/operations.md, "xAPI").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from server import xapi

if TYPE_CHECKING:
    from server.store import Store

log = logging.getLogger("amaliy.xapi")

T = TypeVar("T")

MIGRATION = """
CREATE TABLE xapi_outbox (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    statement TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'set_aside')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created REAL NOT NULL,
    done REAL
);
CREATE INDEX xapi_outbox_state ON xapi_outbox(state, seq);
CREATE TABLE xapi_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: sent statements are deleted this long after they were sent (seconds)
KEEP_SENT = 24 * 3600.0
#: how often the sender looks for new statements while it has none, and deletes old sent ones
_POLL = 1.0
_PRUNE_EVERY = 600.0
#: a repeated error is logged again at most this often
_LOG_AGAIN = 60.0
#: set-aside statements listed in /healthz, newest first
_RECENT = 5
_REASON_CHARS = 500


# ------------------------------------------------------------------ queueing (inside the store's transaction)


def enqueue_record(db: sqlite3.Connection, session_id: str, record_id: str, kind: str, at: float, data: Mapping[str, Any]) -> None:
    """Queue the statements of one new room record (the caller holds the transaction)."""
    home = home_of(db)
    if home is None or kind not in xapi.VERBS:
        return
    practical = _practical(db, session_id)
    if practical is None:
        return
    pids = xapi.actors(kind, data)
    names = _names(db, session_id, pids)
    if kind == "station" and isinstance(data.get("name"), str):
        names.setdefault(data["participant"], data["name"])
    _insert(db, xapi.Statements(home).record(practical, record_id, kind, at, data, names), at)


def enqueue_badge(
    db: sqlite3.Connection, award_id: str, course_id: str, student: str, badge_key: str, name: str, description: str,
    session_id: str | None, at: float,
) -> None:
    """Queue "earned" for a new badge award (the caller holds the transaction)."""
    home = home_of(db)
    if home is None:
        return
    practical = _practical(db, session_id) if session_id else None
    course = db.execute("SELECT name FROM courses WHERE id = ?", (course_id,)).fetchone()
    names = _names(db, session_id or "", [student])
    statement = xapi.Statements(home).badge(
        award_id, student, names.get(student), badge_key, name, description, at, practical, course_id, course[0] if course else None
    )
    _insert(db, [statement], at)


def set_home(db: sqlite3.Connection, home: str | None) -> None:
    """Queue statements from now on under accounts of ``home`` (the node's address), or (None) none."""
    if home is None:
        db.execute("DELETE FROM xapi_settings WHERE key = 'home'")
    else:
        db.execute("INSERT OR REPLACE INTO xapi_settings (key, value) VALUES ('home', ?)", (home,))


def home_of(db: sqlite3.Connection) -> str | None:
    """The home statements are queued under, None when none are queued."""
    row = db.execute("SELECT value FROM xapi_settings WHERE key = 'home'").fetchone()
    return row[0] if row else None


def mark(db: sqlite3.Connection, seqs: list[int], state: str, at: float, reason: str | None) -> None:
    """The LRS took statements (``sent``) or refused one for good (``set_aside``, with why)."""
    marks = ",".join("?" * len(seqs))
    db.execute(
        f"UPDATE xapi_outbox SET state = ?, attempts = attempts + 1, done = ?, last_error = ? WHERE seq IN ({marks})", (state, at, reason, *seqs)
    )


def note_failure(db: sqlite3.Connection, seqs: list[int], reason: str, next_try: float) -> None:
    """Statements not taken this time: tried again at ``next_try``."""
    marks = ",".join("?" * len(seqs))
    db.execute(f"UPDATE xapi_outbox SET attempts = attempts + 1, last_error = ?, next_try = ? WHERE seq IN ({marks})", (reason, next_try, *seqs))


def _practical(db: sqlite3.Connection, session_id: str) -> xapi.Practical | None:
    row = db.execute(
        "SELECT s.scene_id, s.preview, s.course_id, c.name, s.teacher_id, u.name, rc.challenge FROM sessions s"
        " LEFT JOIN courses c ON c.id = s.course_id LEFT JOIN users u ON u.id = s.teacher_id"
        " LEFT JOIN result_challenges rc ON rc.session_id = s.id WHERE s.id = ?",
        (session_id,),
    ).fetchone()
    if row is None or row[1]:  # a designer's preview keeps no records, and exports none
        return None
    scene_id, _, course_id, course_name, teacher_id, teacher_name, challenge = row
    return xapi.Practical(session_id, scene_id, json.loads(challenge) if challenge else None, course_id, course_name, teacher_id, teacher_name)


def _names(db: sqlite3.Connection, session_id: str, pids: list[str]) -> dict[str, str]:
    """Display names: a roster student's from the roster, a guest's from their first placement."""
    if not pids:
        return {}
    marks = ",".join("?" * len(pids))
    names = dict(db.execute(f"SELECT id, name FROM students WHERE id IN ({marks})", pids).fetchall())
    for pid in pids:
        if pid in names:
            continue
        # record ids member:<pid>:<station>: a range on the (session, record id) index
        row = db.execute(
            "SELECT data FROM results WHERE session_id = ? AND record_id >= ? AND record_id < ? ORDER BY seq LIMIT 1",
            (session_id, f"member:{pid}:", f"member:{pid};"),
        ).fetchone()
        if row is not None:
            name = json.loads(row[0]).get("name")
            if isinstance(name, str):
                names[pid] = name
    return names


def _insert(db: sqlite3.Connection, statements: list[dict[str, Any]], at: float) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO xapi_outbox (id, statement, created) VALUES (?, ?, ?)",
        [(s["id"], json.dumps(s, separators=(",", ":"), ensure_ascii=False), at) for s in statements],
    )


# ------------------------------------------------------------------ what the LRS said


class Verdict(NamedTuple):
    """What an LRS answer means for the statements sent: ``sent``; ``conflict`` (it holds a
    statement by one of the ids: sent); ``rejected`` (a statement it will never take);
    ``retry`` (nothing was taken: try again later), with a sentence saying why."""

    kind: Literal["sent", "conflict", "rejected", "retry"]
    reason: str = ""


def _detail(body: bytes) -> str:
    """The reason an LRS gave: its JSON ``detail``/``message``/``error``, or the text itself, cut short."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("detail", "message", "error"):
            if key in parsed:
                value = parsed[key]
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                break
    return " ".join(text.split())[:_REASON_CHARS]


def verdict(status: int, body: bytes, endpoint: str) -> Verdict:
    """The meaning of the LRS's answer ``status``/``body`` to a POST to ``endpoint`` (the table above)."""
    phrase = _phrase(status)
    if status == 204:
        return Verdict("sent")
    if status == 200:
        try:
            ids = json.loads(body)
        except ValueError:
            ids = None
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            return Verdict("sent")
        return Verdict("retry", f"POST {endpoint} answered 200 but not with the list of statement ids an xAPI LRS answers: "
                                "AMALIY_XAPI_URL must be the LRS's xAPI endpoint, the address /statements is added to")
    if status == 409:
        return Verdict("conflict", f"{status} {phrase}: {_detail(body)}")
    if status in (400, 413, 422):
        return Verdict("rejected", f"the LRS answered {status} {phrase}: {_detail(body)}")
    if status in (401, 403):
        return Verdict("retry", f"the LRS refused the credentials ({status} {phrase}): check AMALIY_XAPI_USERNAME and AMALIY_XAPI_PASSWORD")
    if status == 429 or status >= 500:
        return Verdict("retry", f"the LRS answered {status} {phrase}: {_detail(body)}".rstrip(": "))
    return Verdict("retry", f"POST {endpoint} answered {status} {phrase}: this is not an xAPI LRS; AMALIY_XAPI_URL must be the "
                            "LRS's xAPI endpoint, the address /statements is added to (e.g. https://lrs.example.org/xAPI)")


def _phrase(status: int) -> str:
    return httpx.codes.get_reason_phrase(status)


def backoff(failures: int, cap: float, rng: random.Random) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 1 s doubling up to ``cap``, times [0.5, 1)."""
    return min(cap, 2.0 ** min(failures - 1, 30)) * (0.5 + 0.5 * rng.random())


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class SenderSettings:
    """Where and how statements go (server.config's ``xapi_*`` settings)."""

    url: str
    username: str = ""
    password: str = ""
    #: statements per POST
    batch: int = 50
    #: seconds one request may take
    timeout: float = 10.0
    #: longest wait between tries while the LRS fails, seconds
    max_backoff: float = 300.0

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/statements"

    @property
    def shown_url(self) -> str:
        """The URL without any user:password in it, for logs and /healthz."""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class _Row(NamedTuple):
    seq: int
    id: str
    statement: str


class Outbox:
    """The node's side of the outbox: says at start whether statements are queued, and, when an
    LRS is configured, sends them (module docstring). It reads ``store``'s file on a
    connection of its own and writes through the store, so with shared records every node
    knows what was sent; ``may_send`` says whether this node is the deployment's one sender
    (always, on its own)."""

    def __init__(
        self, store: Store, settings: SenderSettings | None, rng: random.Random | None = None, may_send: Callable[[], bool] = lambda: True
    ) -> None:
        self.store = store
        self.settings = settings
        self.may_send = may_send
        self._rng = rng or random.Random()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="amaliy-xapi")
        self._conn: sqlite3.Connection | None = None  # used on the executor's thread only
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._pruned = 0.0
        #: failures in a row, the last error and when; the last time the LRS took statements
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_success: float | None = None
        self._logged: tuple[str, float] | None = None
        #: whether this node sent the last round (in a deployment, one node at a time does)
        self.sender = False

    # ------------------------------------------------------------------ life cycle

    async def start(self, home: str) -> None:
        """Record whether statements are queued (and under which homePage), then start sending."""
        await self._run_db(self.store.xapi_home, home if self.settings else None)
        if self.settings is None:
            return
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per POST in the node's log
        auth = httpx.BasicAuth(self.settings.username, self.settings.password) if self.settings.username else None
        self._client = httpx.AsyncClient(
            auth=auth, timeout=self.settings.timeout, follow_redirects=False,
            headers={"X-Experience-API-Version": xapi.XAPI_VERSION, "Content-Type": "application/json"},
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="amaliy-xapi")
        log.info("xAPI: sending learning events to %s", self.settings.shown_url)

    async def stop(self) -> None:
        """Stop sending (what is pending stays for the next start) and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        with contextlib.suppress(Exception):
            await self._run_db(self._close)
        self._executor.shutdown(wait=True)

    async def health(self) -> dict[str, Any]:
        """The /healthz section: on or off, counts by state, the newest set-aside statements with
        their reasons, the last error and the last success."""
        counts, recent = await self._run_db(self._counts)
        out: dict[str, Any] = {
            "enabled": self.settings is not None,
            "url": self.settings.shown_url if self.settings else None,
            "status": "off" if self.settings is None else ("retrying" if self.failures else "ok"),
            "sender": self.sender,
            "pending": counts.get("pending", 0),
            "set_aside": counts.get("set_aside", 0),
            "sent": counts.get("sent", 0),
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_success": self.last_success,
            "set_aside_recent": recent,
        }
        return out

    # ------------------------------------------------------------------ the sending loop

    async def _run(self) -> None:
        while True:
            try:
                wait = await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a database error: say so (with the traceback), and keep the task alive
                wait = self._failed(f"the sender failed: {exc!r}", exc)
            await asyncio.sleep(wait)

    async def _round(self) -> float:
        """Send one batch of due statements; returns seconds to wait before the next round."""
        assert self.settings is not None
        self.sender = await self._run_db(self.may_send)
        if not self.sender:
            return _POLL
        now = time.time()
        if now - self._pruned > _PRUNE_EVERY:
            self._pruned = now
            await self._run_db(self.store.xapi_prune, now - KEEP_SENT)
        rows = await self._run_db(self._due, now, self.settings.batch)
        if not rows:
            return _POLL
        answer = await self._post(rows)
        if answer.kind == "retry":
            return await self._retry(rows, answer.reason)
        if answer.kind == "sent" or (answer.kind == "conflict" and len(rows) == 1):
            await self._run_db(self.store.xapi_sent, [r.seq for r in rows], time.time())
        elif len(rows) == 1:
            await self._set_aside(rows[0], answer.reason)
        else:  # one (or more) of the batch is refused: send each alone, so the others still go
            for row in rows:
                alone = await self._post([row])
                if alone.kind == "retry":
                    return await self._retry([row], alone.reason)
                if alone.kind == "rejected":
                    await self._set_aside(row, alone.reason)
                else:
                    if alone.kind == "conflict":
                        log.warning("xAPI: the LRS already holds a different statement with id %s (%s); counted as sent", row.id, alone.reason)
                    await self._run_db(self.store.xapi_sent, [row.seq], time.time())
        self._succeeded()
        return 0.0

    async def _post(self, rows: list[_Row]) -> Verdict:
        assert self._client is not None and self.settings is not None
        body = ("[" + ",".join(r.statement for r in rows) + "]").encode()
        endpoint = self.settings.shown_url.rstrip("/") + "/statements"
        try:
            response = await self._client.post(self.settings.endpoint, content=body)
        except httpx.TimeoutException:
            return Verdict("retry", f"no answer from the LRS at {self.settings.shown_url} within {self.settings.timeout:g} s")
        except httpx.HTTPError as exc:
            return Verdict("retry", f"cannot reach the LRS at {self.settings.shown_url}: {type(exc).__name__} {exc}".rstrip())
        return verdict(response.status_code, response.content, endpoint)

    async def _retry(self, rows: list[_Row], reason: str) -> float:
        wait = self._failed(reason)
        await self._run_db(self.store.xapi_failed, [r.seq for r in rows], reason, time.time() + wait)
        return wait

    async def _set_aside(self, row: _Row, reason: str) -> None:
        statement = json.loads(row.statement)
        actor = statement.get("actor", {})
        log.error(
            "xAPI: statement %s (%s %s %s) set aside, not sent again: %s",
            row.id, actor.get("name") or actor.get("account", {}).get("name"), xapi.verb_of(statement), statement.get("object", {}).get("id"), reason,
        )
        await self._run_db(self.store.xapi_set_aside, row.seq, reason, time.time())

    def _failed(self, reason: str, exc: BaseException | None = None) -> float:
        assert self.settings is not None
        self.failures += 1
        now = time.time()
        self.last_error, self.last_error_at = reason, now
        wait = backoff(self.failures, self.settings.max_backoff, self._rng)
        if self._logged is None or self._logged[0] != reason or now - self._logged[1] >= _LOG_AGAIN:
            self._logged = (reason, now)
            log.error(
                "xAPI: %s; the statements stay in the outbox, trying again in %.1f s (failure %d in a row)", reason, wait, self.failures, exc_info=exc
            )
        return wait

    def _succeeded(self) -> None:
        if self.failures:
            assert self.settings is not None
            log.info("xAPI: the LRS at %s takes statements again, after %d failed tries", self.settings.shown_url, self.failures)
        self.failures = 0
        self._logged = None
        self.last_success = time.time()

    # ------------------------------------------------------------------ database work (the executor's thread)

    async def _run_db(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.store.path, isolation_level=None, timeout=30)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _due(self, now: float, limit: int) -> list[_Row]:
        rows = self._db().execute(
            "SELECT seq, id, statement FROM xapi_outbox WHERE state = 'pending' AND next_try <= ? ORDER BY seq LIMIT ?", (now, limit)
        )
        return [_Row(*row) for row in rows]

    def _counts(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        db = self._db()
        counts = dict(db.execute("SELECT state, count(*) FROM xapi_outbox GROUP BY state").fetchall())
        recent = []
        for sid, statement, reason, done in db.execute(
            "SELECT id, statement, last_error, done FROM xapi_outbox WHERE state = 'set_aside' ORDER BY done DESC, seq DESC LIMIT ?", (_RECENT,)
        ).fetchall():
            parsed = json.loads(statement)
            recent.append({"id": sid, "verb": parsed.get("verb", {}).get("id"), "object": parsed.get("object", {}).get("id"), "at": done, "reason": reason})
        return counts, recent
