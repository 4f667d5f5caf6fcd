//! TaskStarter: how an app loop turns a request's coroutine into an asyncio task (`Task` with
//! the right options for this Python, or the app's task factory), each in a fresh context when
//! asked (`--reset-contextvars`).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// How a request's coroutine becomes a task: `start(coro, **options)`.
pub struct TaskStarter {
    start: Py<PyAny>,
    /// Keyword arguments, the same dict for every call (neither `Task` nor a factory keeps it).
    options: Py<PyDict>,
    /// Name each task `Task-<n>` (set in `options`): on Python 3.11, `Task` formats that name
    /// itself with a printf-style call that costs more than the rest of its setup.
    numbered: bool,
    /// Makes each task's `context` (set in `options`): `contextvars.Context`, so no request sees
    /// context variables set at import time or by an earlier request's leak.
    new_context: Option<Py<PyAny>>,
    started: AtomicU64,
}

impl TaskStarter {
    /// `options` are `start`'s keyword arguments (none if None), to which `numbered` adds `name`
    /// and `new_context` adds `context`.
    pub fn new(
        py: Python<'_>,
        start: Py<PyAny>,
        options: Option<Py<PyDict>>,
        numbered: bool,
        new_context: Option<Py<PyAny>>,
    ) -> Self {
        let options = options.unwrap_or_else(|| PyDict::new(py).unbind());
        Self { start, options, numbered, new_context, started: AtomicU64::new(0) }
    }

    /// Start `coro` as a task on the loop; the task.
    pub fn start<'py>(&self, py: Python<'py>, coro: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let options = self.options.bind(py);
        if self.numbered {
            let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
            let mut name = [0u8; 25]; // "Task-" and the 20 digits of u64::MAX
            let len = {
                let mut cursor = std::io::Cursor::new(&mut name[..]);
                write!(cursor, "Task-{n}").expect("a u64 fits");
                cursor.position() as usize
            };
            let name = std::str::from_utf8(&name[..len]).expect("ASCII");
            options.set_item(intern!(py, "name"), PyString::new(py, name))?;
        }
        if let Some(new_context) = &self.new_context {
            options.set_item(intern!(py, "context"), new_context.bind(py).call0()?)?;
        }
        self.start.bind(py).call((coro,), Some(options))
    }
}
