"""asyncio support: awaitable receives on every Flatlane endpoint, without blocking the loop.

One event loop can serve many channels::

    async def serve(sub):
        async for msg in sub:                  # flatlane.Subscriber / Puller / Replier
            ...

    sample = await flatlane.aio.receive(topic_subscriber, timeout=100)   # the runtime classes
    frame = await flatlane.aio.read(reader)                            # a channel Reader's frames
    reply = await flatlane.aio.call(service_client, b"ping", timeout=100)

How it waits. A receive first tries without waiting, on the loop thread (the common case under
load: the message is already there, no thread hop). Otherwise the wait runs in a worker thread of
that endpoint (one daemon thread per endpoint, started on demand and ended after
``IDLE_EXIT_S`` idle), inside the native call with the GIL released: the wake-up is the
runtime's own futex, so latency is the blocking wait's plus one ``call_soon_threadsafe`` hop
(no polling). The worker waits in slices of ``SLICE_MS`` and checks for cancellation between
them, so a cancelled receive stops waiting in the native call within one slice.

Cancellation never loses a message: if the worker took a message while (or after) the awaiting
task was cancelled, the message is kept on the endpoint and the next awaitable receive (or the
untyped API's ``recv``) returns it first; while such a job is still out, the next awaitable
receive queues behind it instead of trying on the loop thread, so it cannot overtake that message.
Replies to a cancelled ``call`` are dropped, as a
timed-out request's are.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from typing import Any, Callable, Deque, Dict, Optional

from ._errors import ClosedError, Errc, FlatlaneTimeoutError, with_context

SLICE_MS: float = 20.0
"""How long one native wait of a worker lasts before it checks for cancellation (ms)."""

IDLE_EXIT_S: float = 5.0
"""A worker thread with nothing to do for this long exits (a new one starts on demand)."""

Op = Callable[[Optional[float]], Any]
"""A native receive with its timeout (ms) as the only argument."""


_ENDED = object()
"""What a worker hands back for a job it stopped because the job was cancelled (nothing taken)."""


class _Job:
    __slots__ = ("op", "deadline", "cancelled", "loop", "future", "stash", "waiters", "timeout_error", "lane")

    def __init__(
        self,
        op: Op,
        deadline: Optional[float],
        loop: asyncio.AbstractEventLoop,
        future: "asyncio.Future[Any]",
        stash: Optional[Deque[Any]],
        waiters: Optional[Deque["_Job"]],
        timeout_error: Callable[[], BaseException],
        lane: Optional["_Lane"] = None,
    ) -> None:
        self.op = op
        self.deadline = deadline
        self.cancelled = False
        self.loop = loop
        self.future = future
        self.stash = stash
        self.waiters = waiters  # the jobs awaiting the same kind of message (loop thread only)
        self.timeout_error = timeout_error
        self.lane = lane


def _settle(job: _Job, ok: bool, value: Any) -> None:
    # Runs on the loop thread, like every cancellation: no race between the two. Every job
    # submitted to a worker is settled exactly once, even a cancelled one (value _ENDED).
    if job.lane is not None:
        job.lane.unsettled -= 1
    if value is _ENDED:
        return
    fut = job.future
    if not fut.done():
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
        return
    if ok:
        _rehome(job, value, front=False)


def _rehome(job: _Job, value: Any, front: bool) -> None:
    """A message taken for a task that was cancelled: hand it to the next task awaiting the same
    endpoint (whose own job may be queued behind this one, or waiting for a message that will
    not come), else keep it for the next receive. Loop thread only."""
    if job.stash is None:
        return  # a reply nobody waits for: dropped (its buffer is released with it)
    if job.waiters:
        for other in job.waiters:
            if other is not job and not other.future.done():
                other.cancelled = True  # its worker job stops (or never starts) waiting
                other.future.set_result(value)
                return
    if front:
        job.stash.appendleft(value)
    else:
        job.stash.append(value)


class _Worker:
    """The waits of one endpoint, run one after the other in a daemon thread."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._jobs: "queue.SimpleQueue[_Job]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._alive = False
        self.threads_started = 0  # for tests

    def submit(self, job: _Job) -> None:
        with self._lock:
            self._jobs.put(job)
            if not self._alive:
                self._alive = True
                self.threads_started += 1
                threading.Thread(target=self._run, name=f"flatlane-aio {self._label}", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._alive = False
                        return
                continue
            self._run_job(job)

    @staticmethod
    def _run_job(job: _Job) -> None:
        tried = False  # a job whose deadline has passed still tries once (timeout 0 behind a busy lane)
        while not job.cancelled:
            if job.deadline is None:
                t = SLICE_MS
            else:
                left = (job.deadline - time.monotonic()) * 1000.0
                if left <= 0 and tried:
                    _deliver(job, False, job.timeout_error())
                    return
                t = max(0.0, min(SLICE_MS, left))
            tried = True
            try:
                value = job.op(t)
            except FlatlaneTimeoutError as exc:
                if exc.errc == Errc.TIMEOUT and type(exc) is FlatlaneTimeoutError:
                    continue  # one slice ran out: check cancellation and the deadline
                _deliver(job, False, exc)
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                _deliver(job, False, exc)
                return
            _deliver(job, True, value)
            return
        _deliver(job, False, _ENDED)


def _deliver(job: _Job, ok: bool, value: Any) -> None:
    try:
        job.loop.call_soon_threadsafe(_settle, job, ok, value)
    except RuntimeError:
        pass  # the loop is closed: nobody can receive it any more


class _Lane:
    """The jobs of one kind of message (one stash key) that a worker has not settled yet."""

    __slots__ = ("unsettled",)

    def __init__(self) -> None:
        self.unsettled = 0


class _State:
    """What asyncio keeps per endpoint: its worker and the messages of cancelled receives."""

    __slots__ = ("worker", "stashes", "waiting", "lanes")

    def __init__(self, label: str) -> None:
        self.worker = _Worker(label)
        self.stashes: Dict[str, Deque[Any]] = {}
        self.waiting: Dict[str, Deque[_Job]] = {}
        self.lanes: Dict[str, _Lane] = {}

    def lane(self, key: str) -> _Lane:
        ln = self.lanes.get(key)
        if ln is None:
            ln = self.lanes[key] = _Lane()
        return ln

    def stash(self, key: str) -> Deque[Any]:
        d = self.stashes.get(key)
        if d is None:
            d = self.stashes[key] = collections.deque()
        return d


_STATE_ATTR = "_flatlane_aio_state"


def state_of(endpoint: Any) -> _State:
    """The asyncio state of an endpoint (created on first use, kept on the endpoint)."""
    st = getattr(endpoint, _STATE_ATTR, None)
    if st is None:
        st = _State(f"{type(endpoint).__name__} {getattr(endpoint, 'name', '?')!r}")
        setattr(endpoint, _STATE_ATTR, st)
    return st


def _check_timeout(timeout: Optional[float]) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError(f"flatlane: timeout must be >= 0 ms or None, not {timeout!r}")


async def wait_op(
    endpoint: Any,
    key: Optional[str],
    op: Op,
    timeout: Optional[float],
    timeout_error: Callable[[], BaseException],
) -> Any:
    """Awaits ``op``: tries it once without waiting, then waits in the endpoint's worker.

    ``key`` names the stash for messages taken after a cancellation (None: such results are
    dropped, e.g. replies to a cancelled call).
    """
    _check_timeout(timeout)
    st = state_of(endpoint)
    stash = st.stash(key) if key is not None else None
    if stash:
        return stash.popleft()
    if getattr(endpoint, "closed", False):
        raise with_context(
            ClosedError, Errc.CLOSED, f"flatlane: closed: {getattr(endpoint, 'name', '?')!r} is closed",
            getattr(endpoint, "name", ""), getattr(endpoint, "_role", ""),
        )
    lane = st.lane(key) if key is not None else None
    if lane is None or lane.unsettled == 0:
        # Only when no worker job of this key is still out: a cancelled job's worker may have
        # taken the next message already (its settle queued on this loop, not yet run), and a
        # try here would return the message after it first (found by the CI: 4, 6, 5).
        try:
            return op(0)
        except FlatlaneTimeoutError as exc:
            if type(exc) is not FlatlaneTimeoutError or timeout == 0:
                raise
    loop = asyncio.get_running_loop()
    fut: "asyncio.Future[Any]" = loop.create_future()
    deadline = None if timeout is None else time.monotonic() + timeout / 1000.0
    waiters = None
    if key is not None:
        waiters = st.waiting.get(key)
        if waiters is None:
            waiters = st.waiting[key] = collections.deque()
    job = _Job(op, deadline, loop, fut, stash, waiters, timeout_error, lane)
    if waiters is not None:
        waiters.append(job)
    if lane is not None:
        lane.unsettled += 1
    st.worker.submit(job)
    try:
        return await fut
    except asyncio.CancelledError:
        job.cancelled = True
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            # The message arrived, then the task was cancelled before it resumed: asyncio
            # throws CancelledError over the result. Keep the message.
            if waiters is not None:
                waiters.remove(job)
                waiters = None
            _rehome(job, fut.result(), front=True)
        raise
    finally:
        if waiters is not None:
            waiters.remove(job)


def _timeout_error(endpoint: Any, what: str, timeout: Optional[float]) -> Callable[[], BaseException]:
    def make() -> BaseException:
        name = getattr(endpoint, "name", "")
        return with_context(
            FlatlaneTimeoutError, Errc.TIMEOUT,
            f"flatlane: timeout: {what} on {name!r}: nothing arrived within {timeout:g} ms",
            name, getattr(endpoint, "_role", ""),
        )

    return make


# ------------------------------------------------------------------------------------------------
# The runtime endpoints (flatlane.TopicSubscriber, ServiceServer, ServiceClient, Reader).


async def receive(endpoint: Any, timeout: Optional[float] = None) -> Any:
    """``await`` a ``TopicSubscriber.receive`` (-> Sample) or ``ServiceServer.receive``
    (-> Request). Timeout in ms (None: forever)."""
    rcv = endpoint.receive
    return await wait_op(endpoint, "receive", lambda t: rcv(timeout=t), timeout,
                         _timeout_error(endpoint, "receive()", timeout))


async def read(reader: Any, timeout: Optional[float] = None) -> Any:
    """``await`` a ``Reader.read`` (-> Frame, zero copy)."""
    rd = reader.read
    return await wait_op(reader, "read", lambda t: rd(timeout=t), timeout,
                         _timeout_error(reader, "read()", timeout))


async def receive_reply(client: Any, request_id: int, timeout: Optional[float] = None) -> Any:
    """``await`` a ``ServiceClient.receive(request_id)`` (-> Reply). A reply taken after the
    awaiting task was cancelled is kept for the next ``receive_reply`` of the same id."""
    rcv = client.receive
    return await wait_op(client, f"reply:{request_id}", lambda t: rcv(request_id, timeout=t), timeout,
                         _timeout_error(client, f"receive({request_id})", timeout))


async def call(client: Any, data: Any, timeout: Optional[float] = None) -> Any:
    """``await`` a ``ServiceClient.call``: sends ``data`` (at once, on the loop thread), then
    awaits its reply (-> Reply). Cancelled: the request stays sent, its reply is dropped."""
    rid = client.send(data)
    rcv = client.receive
    return await wait_op(client, None, lambda t: rcv(rid, timeout=t), timeout,
                         _timeout_error(client, f"call() (request {rid})", timeout))
