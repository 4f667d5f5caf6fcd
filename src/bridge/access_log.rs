//! Access log output for one app loop. Either each line goes through the `fasterapi.access`
//! logger (any logging configuration), or, when that logger has our default format on a plain
//! stream, lines are formatted here and written to the stream once per loop iteration.

use std::fmt::Write as _;
use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;

use crate::asgi::AccessInfo;

/// uvicorn's access log format; the `fasterapi.access` formatter reads these five arguments.
const ACCESS_FORMAT: &str = "%s - \"%s %s HTTP/%s\" %d";

/// Where access log lines go.
pub enum AccessLog {
    /// `logger.info(ACCESS_FORMAT, client, method, path, version, status)` per line.
    Logger(Py<PyAny>),
    /// Lines formatted in Rust, batched, and written to a text stream (e.g. `sys.stdout`).
    Stream { stream: Py<PyAny>, buffer: Mutex<String> },
}

impl AccessLog {
    /// Log one response. Returns true when a batch was started and needs a flush scheduled.
    pub fn record(&self, py: Python<'_>, access: &AccessInfo, status: u16) -> PyResult<bool> {
        match self {
            AccessLog::Logger(info) => {
                info.bind(py).call1((
                    intern!(py, ACCESS_FORMAT),
                    &access.client,
                    access.method.as_str(),
                    &access.path_with_query,
                    access.http_version,
                    status,
                ))?;
                Ok(false)
            }
            AccessLog::Stream { buffer, .. } => {
                let mut buffer = buffer.lock().unwrap_or_else(|e| e.into_inner());
                let first = buffer.is_empty();
                format_line(&mut buffer, access, status);
                Ok(first)
            }
        }
    }

    /// Write out the batched lines, if any.
    pub fn flush(&self, py: Python<'_>) -> PyResult<()> {
        if let AccessLog::Stream { stream, buffer } = self {
            let text = std::mem::take(&mut *buffer.lock().unwrap_or_else(|e| e.into_inner()));
            if !text.is_empty() {
                let stream = stream.bind(py);
                stream.call_method1(intern!(py, "write"), (text,))?;
                stream.call_method0(intern!(py, "flush"))?;
            }
        }
        Ok(())
    }
}

/// One line exactly as `fasterapi.logging.AccessFormatter` writes it without colours.
fn format_line(out: &mut String, access: &AccessInfo, status: u16) {
    let phrase = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
    let _ = write!(
        out,
        "INFO:     {} - \"{} {} HTTP/{}\" {status}",
        access.client,
        access.method.as_str(),
        access.path_with_query,
        access.http_version
    );
    if let Some(phrase) = phrase {
        out.push(' ');
        out.push_str(phrase);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_matches_uvicorns_access_format() {
        let access = AccessInfo {
            client: "127.0.0.1:47290".into(),
            method: http::Method::GET,
            path_with_query: "/a%20b?x=1".into(),
            http_version: "1.1",
        };
        let mut out = String::new();
        format_line(&mut out, &access, 200);
        format_line(&mut out, &access, 599);
        assert_eq!(
            out,
            "INFO:     127.0.0.1:47290 - \"GET /a%20b?x=1 HTTP/1.1\" 200 OK\n\
             INFO:     127.0.0.1:47290 - \"GET /a%20b?x=1 HTTP/1.1\" 599\n"
        );
    }
}
