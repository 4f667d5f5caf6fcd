//! AppLoop: the loop-thread side of one app event loop. It drains the loop's job queue, starts
//! an ASGI task per request or WebSocket, and owns the Python handles that the HTTP cycles share.
//!
//! Jobs run in slices of at most `SLICE`: a big batch (hundreds of connections sending at once)
//! would otherwise create every request's scope, cycle and task before any of them runs, and the
//! garbage collector, triggered by that many live new objects, would walk them all, again and
//! again. Between slices the loop runs the tasks started so far, whose objects then die young.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{AccessLog, TaskStarter};
use super::{Exchange, JobQueue, LoopJob, NewRequest, NewWebSocket, Verdict};
use crate::asgi::{AccessInfo, HttpCycle, ScopeBuilder, WsCycle};
use crate::http::{HttpVersion, Peer};

/// Hashes the exchange ids that key the loop's maps. They are unique sequential integers, so a
/// multiply by an odd constant spreads them; SipHash's flooding resistance buys nothing here.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0 ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by exchange id.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The most jobs run before the loop gets to run the tasks they started. A request starts about
/// a dozen container objects; 32 of them stay under the collector's young-generation threshold
/// (700).
const SLICE: usize = 32;

/// A cycle waiting for its exchange to change.
enum Parked {
    Http(Py<HttpCycle>),
    WebSocket(Py<WsCycle>),
}

/// One app event loop as Rust sees it. Created by `Server.add_loop`; lives on its loop thread.
#[pyclass(frozen, module = "fasterapi._fasterapi")]
pub struct AppLoop {
    queue: Arc<JobQueue>,
    app: Py<PyAny>,
    /// `dispatch(app, scope, cycle)`: the coroutine function that runs the app for a request.
    dispatch: Py<PyAny>,
    /// Starts a coroutine as a task on this loop (eagerly where Python supports it).
    start_task: TaskStarter,
    create_future: Py<PyAny>,
    call_soon: Py<PyAny>,
    /// A completed future, returned by every `send` that had room.
    done_future: Py<PyAny>,
    scopes: ScopeBuilder,
    access_log: Option<AccessLog>,
    /// `logging.getLogger("fasterapi.error")`, for the WebSocket lines uvicorn logs there.
    error_log: Py<PyAny>,
    /// Cycles with a pending receive or send, by exchange id.
    waiting: Mutex<IdMap<Parked>>,
    /// Running app tasks, by exchange id, so shutdown can cancel them.
    tasks: Mutex<IdMap<Py<PyAny>>>,
    /// Exchanges whose response head waits for the end of this loop iteration.
    deferred: Mutex<Vec<Arc<Exchange>>>,
    flush_scheduled: AtomicBool,
    /// Jobs taken from the queue and not run yet (see `SLICE`).
    backlog: Mutex<VecDeque<LoopJob>>,
    /// `run_backlog` is scheduled with `call_soon`.
    backlog_scheduled: AtomicBool,
}

impl AppLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        py: Python<'_>,
        queue: Arc<JobQueue>,
        event_loop: &Bound<'_, PyAny>,
        app: Py<PyAny>,
        dispatch: Py<PyAny>,
        start_task: TaskStarter,
        state: Option<Py<PyDict>>,
        root_path: &str,
        access_log: Option<AccessLog>,
    ) -> PyResult<Self> {
        let create_future = event_loop.getattr(intern!(py, "create_future"))?;
        let error_log = py.import("logging")?.call_method1("getLogger", ("fasterapi.error",))?;
        let done_future = create_future.call0()?;
        done_future.call_method1(intern!(py, "set_result"), (py.None(),))?;
        Ok(Self {
            queue,
            app,
            dispatch,
            start_task,
            create_future: create_future.unbind(),
            call_soon: event_loop.getattr(intern!(py, "call_soon"))?.unbind(),
            done_future: done_future.unbind(),
            scopes: ScopeBuilder::new(py, root_path, state)?,
            access_log,
            error_log: error_log.unbind(),
            waiting: Mutex::default(),
            tasks: Mutex::default(),
            deferred: Mutex::new(Vec::new()),
            flush_scheduled: AtomicBool::new(false),
            backlog: Mutex::new(VecDeque::with_capacity(64)),
            backlog_scheduled: AtomicBool::new(false),
        })
    }

    /// A new pending future on this loop.
    pub fn create_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.create_future.bind(py).call0()?.unbind())
    }

    /// The shared already-completed awaitable (result `None`).
    pub fn done(&self, py: Python<'_>) -> Py<PyAny> {
        self.done_future.clone_ref(py)
    }

    /// An already-completed awaitable with `value` as its result.
    pub fn ready(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let fut = self.create_future.bind(py).call0()?;
        fut.call_method1(intern!(py, "set_result"), (value,))?;
        Ok(fut.unbind())
    }

    /// Wake `cycle` when its exchange changes.
    pub fn park(&self, id: u64, cycle: Py<HttpCycle>) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Parked::Http(cycle));
    }

    /// Wake the WebSocket `cycle` when its exchange changes.
    pub fn park_ws(&self, id: u64, cycle: Py<WsCycle>) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Parked::WebSocket(cycle));
    }

    /// Log `message` at INFO on `fasterapi.error`.
    pub fn log_info(&self, py: Python<'_>, message: &str) -> PyResult<()> {
        self.error_log.bind(py).call_method1(intern!(py, "info"), (message,)).map(drop)
    }

    /// Stop waking the cycle of exchange `id` (its app finished).
    pub fn unpark(&self, id: u64) {
        let cycle = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        drop(cycle);
    }

    /// The app for exchange `id` finished; shutdown no longer needs to cancel it.
    pub fn forget_task(&self, id: u64) {
        let task = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        drop(task);
    }

    /// Log one response on the access log, if it is on.
    pub fn log_access(slf: &Bound<'_, Self>, access: &AccessInfo, status: u16) -> PyResult<()> {
        if let Some(log) = &slf.get().access_log {
            if log.record(slf.py(), access, status)? {
                Self::schedule_flush(slf)?;
            }
        }
        Ok(())
    }

    /// Run `flush` at the end of this loop iteration, once however many ask.
    fn schedule_flush(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        if !this.flush_scheduled.swap(true, Ordering::AcqRel) {
            this.call_soon.bind(slf.py()).call1((slf.getattr(intern!(slf.py(), "flush"))?,))?;
        }
        Ok(())
    }

    /// Wake the stream of `exchange` at the end of this loop iteration (one call_soon per batch).
    pub fn defer_wake(slf: &Bound<'_, Self>, exchange: Arc<Exchange>) -> PyResult<()> {
        slf.get().deferred.lock().unwrap_or_else(|e| e.into_inner()).push(exchange);
        Self::schedule_flush(slf)
    }

    /// Run the app for a new request or WebSocket (`cycle`) as a task on this loop.
    fn start_app<T>(
        slf: &Bound<'_, Self>,
        id: u64,
        scope: Bound<'_, PyDict>,
        cycle: T,
        finished: impl Fn(&T) -> bool,
    ) -> PyResult<()>
    where
        T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>,
    {
        let py = slf.py();
        let this = slf.get();
        let cycle = Bound::new(py, cycle)?;
        let coro = this.dispatch.bind(py).call1((this.app.bind(py), scope, &cycle))?;
        let task = this.start_task.start(py, coro)?;
        if !finished(&cycle.borrow()) {
            this.tasks.lock().unwrap_or_else(|e| e.into_inner()).insert(id, task.unbind());
        }
        Ok(())
    }

    fn start_websocket(slf: &Bound<'_, Self>, socket: NewWebSocket) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let NewWebSocket { head, subprotocols, exchange } = socket;
        let scope = this.scopes.websocket(py, &head, &subprotocols)?;
        let client = head.client.as_ref().map(Peer::display).unwrap_or_default();
        let id = exchange.link.id;
        let cycle = WsCycle::new(exchange, slf.clone().unbind(), &client, &head.path_with_query());
        Self::start_app(slf, id, scope, cycle, |cycle| cycle.finished)
    }

    fn start_request(slf: &Bound<'_, Self>, request: NewRequest) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let NewRequest { head, exchange } = request;
        let scope = this.scopes.http(py, &head)?;
        let access = this.access_log.as_ref().map(|_| AccessInfo {
            client: head.client.as_ref().map(Peer::display).unwrap_or_default(),
            method: head.method.clone(),
            path_with_query: head.path_with_query(),
            http_version: head.version.as_str(),
        });
        let id = exchange.link.id;
        let cycle = HttpCycle::new(
            exchange,
            slf.clone().unbind(),
            access,
            head.method == http::Method::HEAD,
            head.version == HttpVersion::Http2,
        );
        Self::start_app(slf, id, scope, cycle, |cycle| cycle.finished)
    }

    /// Run up to `SLICE` jobs from the backlog: start new requests, wake waiting cycles. If jobs
    /// are left, run them after the tasks just started have had their turn.
    fn run_slice(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        for _ in 0..SLICE {
            let job = this.backlog.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            match job {
                Some(job) => Self::run_job(slf, job),
                None => return Ok(()),
            }
        }
        let more = !this.backlog.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        if more && !this.backlog_scheduled.swap(true, Ordering::AcqRel) {
            let py = slf.py();
            this.call_soon.bind(py).call1((slf.getattr(intern!(py, "run_backlog"))?,))?;
        }
        Ok(())
    }

    /// Run one job; a failure is the job's own (answered or logged), never the loop's.
    fn run_job(slf: &Bound<'_, Self>, job: LoopJob) {
        let py = slf.py();
        let result = match job {
            LoopJob::Request(request) => {
                let exchange = request.exchange.clone();
                Self::start_request(slf, request).inspect_err(|_| exchange.fail_before_start())
            }
            LoopJob::WebSocket(socket) => {
                let exchange = socket.exchange.clone();
                Self::start_websocket(slf, *socket)
                    .inspect_err(|_| exchange.decide(&mut exchange.lock(), Verdict::Fail))
            }
            LoopJob::Wake(id) => {
                let cycle = slf.get().waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                match cycle {
                    Some(Parked::Http(cycle)) => HttpCycle::wake(cycle.bind(py)),
                    Some(Parked::WebSocket(cycle)) => WsCycle::wake(cycle.bind(py)),
                    None => Ok(()),
                }
            }
        };
        if let Err(err) = result {
            err.print(py);
        }
    }
}

#[pymethods]
impl AppLoop {
    /// The descriptor to watch with `loop.add_reader(fd, app_loop.drain)`.
    fn fileno(&self) -> i32 {
        self.queue.fileno()
    }

    /// Take every queued job and run the first slice of the backlog.
    fn drain(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        this.queue.take_batch(&mut this.backlog.lock().unwrap_or_else(|e| e.into_inner()));
        Self::run_slice(slf)
    }

    /// Run the next slice of the backlog (scheduled by the slice before it).
    fn run_backlog(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().backlog_scheduled.store(false, Ordering::Release);
        Self::run_slice(slf)
    }

    /// End of a loop iteration: wake the streams whose head was deferred, write the access log.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.flush_scheduled.store(false, Ordering::Release);
        let deferred = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
        for exchange in deferred {
            exchange.wake_stream(&mut exchange.lock());
        }
        match &self.access_log {
            Some(log) => log.flush(py),
            None => Ok(()),
        }
    }

    /// Cancel every app task still running (graceful shutdown timed out); returns how many.
    fn cancel_all(&self, py: Python<'_>) -> PyResult<usize> {
        let tasks: Vec<_> = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        for (_, task) in &tasks {
            task.bind(py).call_method0(intern!(py, "cancel"))?;
        }
        Ok(tasks.len())
    }

    /// How many app tasks are running on this loop.
    fn __len__(&self) -> usize {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
