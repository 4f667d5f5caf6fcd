//! `fasterapi._fasterapi.TlsConfig`: the `--ssl-*` options, checked when built so a bad file or
//! password is reported before anything binds. The server builds its acceptor from it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::config::HttpMode;
use crate::tls::{self, ClientCerts, TlsSettings};

/// Validated TLS settings.
#[pyclass(frozen, module = "fasterapi._fasterapi")]
pub struct TlsConfig {
    pub settings: TlsSettings,
}

#[pymethods]
impl TlsConfig {
    #[new]
    #[pyo3(signature = (
        certfile, *, keyfile = None, password = None, ca_certs = None, cert_reqs = 0,
        ciphers = "TLSv1".to_string(), tls12_only = false, http = "auto"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        certfile: String,
        keyfile: Option<String>,
        password: Option<String>,
        ca_certs: Option<String>,
        cert_reqs: i32,
        ciphers: String,
        tls12_only: bool,
        http: &str,
    ) -> PyResult<Self> {
        let cert_reqs = ClientCerts::from_ssl_value(cert_reqs).ok_or_else(|| {
            PyValueError::new_err(format!(
                "--ssl-cert-reqs: must be 0 (none), 1 (optional) or 2 (required), got {cert_reqs}"
            ))
        })?;
        let settings = TlsSettings {
            certfile,
            keyfile,
            password,
            ca_certs,
            cert_reqs,
            ciphers,
            tls12_only,
            http: HttpMode::parse(http).map_err(|e| PyValueError::new_err(e.to_string()))?,
        };
        tls::load(&settings).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { settings })
    }
}
