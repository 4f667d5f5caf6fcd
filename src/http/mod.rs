//! HTTP front end: request heads, the hyper service that hands requests to app loops, and the
//! response body that streams what the app sends.

mod body;
mod head;
mod service;

pub use body::ResponseBody;
pub use head::{HttpVersion, RequestHead};
pub use service::{ConnectionInfo, RequestRouter};
