//! The pending awaitables a cycle hands to the app and completes later (at most one `receive`
//! and one `send` per cycle), with the rules both HttpCycle and WsCycle follow.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;

/// Take the future out of `slot` if it is still pending; a done one (cancelled by its caller,
/// e.g. a timeout) is dropped.
pub fn take_live<'py>(py: Python<'py>, slot: &mut Option<Py<PyAny>>) -> PyResult<Option<Bound<'py, PyAny>>> {
    match slot.take() {
        Some(fut) => {
            let fut = fut.into_bound(py);
            Ok((!fut.call_method0(intern!(py, "done"))?.is_truthy()?).then_some(fut))
        }
        None => Ok(None),
    }
}

/// Refuse a second `receive` while one is pending; a cancelled earlier one frees its slot.
pub fn ensure_receive_free(py: Python<'_>, slot: &mut Option<Py<PyAny>>) -> PyResult<()> {
    match take_live(py, slot)? {
        Some(fut) => {
            *slot = Some(fut.unbind());
            Err(PyRuntimeError::new_err("receive() called while a previous receive() is still pending"))
        }
        None => Ok(()),
    }
}

/// Complete `fut` with `value`.
pub fn resolve(fut: &Bound<'_, PyAny>, value: Bound<'_, PyAny>) -> PyResult<()> {
    fut.call_method1(intern!(fut.py(), "set_result"), (value,)).map(drop)
}

/// Settle a `send` that waited for room: raise `gone()` if the client left, complete it if the
/// queue has room, or keep it (returned) while it is still full.
pub fn settle_send(
    fut: Bound<'_, PyAny>,
    gone: Option<PyErr>,
    has_room: bool,
) -> PyResult<Option<Py<PyAny>>> {
    let py = fut.py();
    if let Some(error) = gone {
        fut.call_method1(intern!(py, "set_exception"), (error.into_value(py),))?;
    } else if has_room {
        resolve(&fut, py.None().into_bound(py))?;
    } else {
        return Ok(Some(fut.unbind()));
    }
    Ok(None)
}
