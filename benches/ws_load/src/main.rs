//! `ws_load URL CONNECTIONS SECONDS SIZE`: open CONNECTIONS WebSockets to URL; on each, send a
//! SIZE-byte text message and wait for its echo, again and again for SECONDS. Prints one JSON line:
//! messages per second (round trips), p50/p99 round-trip latency in ms, and errors.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
}

async fn connection(url: String, until: Instant, payload: String) -> Outcome {
    let mut outcome = Outcome { latencies: Vec::new(), errors: 0 };
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
        outcome.errors += 1;
        return outcome;
    };
    while Instant::now() < until {
        let sent = Instant::now();
        if ws.send(Message::text(payload.clone())).await.is_err() {
            outcome.errors += 1;
            return outcome;
        }
        match ws.next().await {
            Some(Ok(Message::Text(echo))) if echo.len() == payload.len() => {
                outcome.latencies.push(sent.elapsed())
            }
            _ => {
                outcome.errors += 1;
                return outcome;
            }
        }
    }
    let _ = ws.close(None).await;
    outcome
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, connections, seconds, size] = &args[..] else {
        eprintln!("usage: ws_load URL CONNECTIONS SECONDS SIZE");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("CONNECTIONS is a number");
    let seconds: f64 = seconds.parse().expect("SECONDS is a number");
    let payload = "x".repeat(size.parse().expect("SIZE is a number"));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> =
        (0..connections).map(|_| tokio::spawn(connection(url.clone(), until, payload.clone()))).collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let outcome = task.await.expect("connection task");
        latencies.extend(outcome.latencies);
        errors += outcome.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"messages_per_s\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"errors\": {}}}",
        latencies.len() as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        errors
    );
}
