//! ASGI translation on the loop thread: scopes from request heads, the `receive`/`send` pair of an
//! HTTP cycle, and parsing of the messages the app sends.

mod cycle;
mod message;
mod scope;

pub use cycle::{AccessInfo, ClientDisconnected, HttpCycle};
pub use scope::http_scope;
