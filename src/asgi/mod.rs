//! ASGI translation on the loop thread: scopes from request heads, the `receive`/`send` pairs of
//! an HTTP request and of a WebSocket, and parsing of the messages the app sends.

mod awaitable;
mod cycle;
mod message;
mod scope;
mod websocket;

pub use cycle::{AccessInfo, ClientDisconnected, HttpCycle};
pub use scope::ScopeBuilder;
pub use websocket::WsCycle;
