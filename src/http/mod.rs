//! HTTP front end: request heads, the hyper service that hands requests to app loops, and the
//! response body that streams what the app sends.

mod body;
mod file_chunks;
mod head;
mod proxy;
mod service;

pub use body::ResponseBody;
pub use head::{HttpVersion, Peer, RequestHead};
pub use proxy::TrustedHosts;
pub use service::{ConnectionInfo, RequestRouter};
