//! The bridge between tokio and the Python app loops: per-loop mailboxes, the per-request and
//! per-WebSocket shared state, and the loop-side driver that turns jobs into running ASGI tasks.

mod access_log;
mod app_loop;
mod chunks;
mod exchange;
mod link;
mod queue;
mod task_starter;
mod wake_batch;
mod ws_exchange;

use std::sync::Arc;

pub use access_log::AccessLog;
pub use app_loop::AppLoop;
pub use chunks::Chunks;
pub use exchange::{AppAborted, Exchange, ExchangeState, InFlight, ResponseHead};
pub use link::Link;
pub use queue::LoopQueue;
pub use task_starter::TaskStarter;
pub use wake_batch::WakeBatch;
pub use ws_exchange::{Outbound, Verdict, WsExchange, WsMessage, WsState};

use crate::http::RequestHead;

/// A unit of work for an app loop, plain Rust data only.
pub enum LoopJob {
    /// A new request: build its scope and start the app. Not boxed: the job queues keep their
    /// capacity, so a bigger job costs a copy, where a box would cost an allocation on the I/O
    /// thread freed on the loop thread (the slow case for the allocator).
    Request(NewRequest),
    /// A new WebSocket: build its scope and start the app.
    WebSocket(Box<NewWebSocket>),
    /// Something changed on the exchange with this id while the loop waited on it.
    Wake(u64),
}

/// A request ready for the app.
pub struct NewRequest {
    pub head: RequestHead,
    pub exchange: Arc<Exchange>,
}

/// A WebSocket request ready for the app.
pub struct NewWebSocket {
    pub head: RequestHead,
    /// The subprotocols the client offered.
    pub subprotocols: Vec<String>,
    pub exchange: Arc<WsExchange>,
}

/// The queue type every loop uses.
pub type JobQueue = LoopQueue<LoopJob>;
