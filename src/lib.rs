//! The `fasterapi._fasterapi` extension module: registers the server, the app-loop driver, the
//! app loops' signal relay and the exception types. Everything else lives in the modules below.

mod asgi;
mod bridge;
mod config;
mod event_fd;
mod http;
mod loop_signals;
mod os_error;
mod server;
mod shutdown;
mod signal;
mod tls;
mod ws;

use pyo3::prelude::*;

#[pymodule]
fn _fasterapi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<server::Server>()?;
    m.add_class::<server::TlsConfig>()?;
    m.add_class::<bridge::AppLoop>()?;
    m.add_class::<loop_signals::LoopSignals>()?;
    m.add_class::<asgi::HttpCycle>()?;
    m.add_class::<asgi::WsCycle>()?;
    m.add("ClientDisconnected", m.py().get_type::<asgi::ClientDisconnected>())?;
    Ok(())
}
