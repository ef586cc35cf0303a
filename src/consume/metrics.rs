//! Liveness and Prometheus metrics on a small HTTP port, served by one
//! plain thread: `/healthz` (200 while connected to RabbitMQ) and `/metrics`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
pub struct Metrics {
    connected: AtomicBool,
    in_flight: AtomicI64,
    queue_depth: AtomicU64,
    retries: AtomicU64,
    /// (event type, exit code) → count.
    events: Mutex<BTreeMap<(String, u8), u64>>,
    latency: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
    }

    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::SeqCst);
    }

    pub fn set_queue_depth(&self, depth: u32) {
        self.queue_depth.store(depth.into(), Ordering::SeqCst);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }

    /// One event finished with `code`, `latency` after it was received.
    pub fn event(&self, event_type: &str, code: u8, latency: Duration) {
        if let Ok(mut events) = self.events.lock() {
            *events.entry((event_type.to_owned(), code)).or_default() += 1;
        }
        if let Ok(mut h) = self.latency.lock() {
            let seconds = latency.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            ));
        };
        gauge(
            "oslo_nautobot_up",
            "1 while connected to RabbitMQ.",
            u8::from(self.connected.load(Ordering::SeqCst)).to_string(),
        );
        gauge(
            "oslo_nautobot_in_flight",
            "Messages received and not yet acknowledged.",
            self.in_flight.load(Ordering::SeqCst).to_string(),
        );
        gauge(
            "oslo_nautobot_queue_messages",
            "Messages waiting in the queue (queue lag), sampled every 5 s.",
            self.queue_depth.load(Ordering::SeqCst).to_string(),
        );
        out.push_str(
            "# HELP oslo_nautobot_retries_total Retries of events after a transient failure.\n",
        );
        out.push_str("# TYPE oslo_nautobot_retries_total counter\n");
        out.push_str(&format!(
            "oslo_nautobot_retries_total {}\n",
            self.retries.load(Ordering::SeqCst)
        ));
        out.push_str(
            "# HELP oslo_nautobot_events_total Events handled, by type and outcome (exit code).\n",
        );
        out.push_str("# TYPE oslo_nautobot_events_total counter\n");
        if let Ok(events) = self.events.lock() {
            for ((event_type, code), n) in events.iter() {
                let outcome = if *code == 0 { "applied" } else { "failed" };
                out.push_str(&format!(
                    "oslo_nautobot_events_total{{event_type=\"{event_type}\",outcome=\"{outcome}\",code=\"{code}\"}} {n}\n"
                ));
            }
        }
        out.push_str("# HELP oslo_nautobot_event_seconds Time from receiving an event to its acknowledgement.\n");
        out.push_str("# TYPE oslo_nautobot_event_seconds histogram\n");
        if let Ok(h) = self.latency.lock() {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                out.push_str(&format!(
                    "oslo_nautobot_event_seconds_bucket{{le=\"{bound}\"}} {n}\n"
                ));
            }
            out.push_str(&format!(
                "oslo_nautobot_event_seconds_bucket{{le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!("oslo_nautobot_event_seconds_sum {}\n", h.sum));
            out.push_str(&format!("oslo_nautobot_event_seconds_count {}\n", h.count));
        }
        out
    }
}

/// Serves `/healthz` and `/metrics` on `addr` from a background thread.
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => ("200 OK", metrics.render()),
                "/healthz" if metrics.connected.load(Ordering::SeqCst) => ("200 OK", "ok\n".to_owned()),
                "/healthz" => ("503 Service Unavailable", "not connected to RabbitMQ\n".to_owned()),
                _ => ("404 Not Found", "try /healthz or /metrics\n".to_owned()),
            };
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.event("subnet.create.end", 0, Duration::from_millis(70));
        m.event("subnet.create.end", 0, Duration::from_millis(700));
        m.event("-", 5, Duration::from_millis(1));
        m.retry();
        let text = m.render();
        assert!(text.contains("oslo_nautobot_events_total{event_type=\"subnet.create.end\",outcome=\"applied\",code=\"0\"} 2"));
        assert!(text.contains(
            "oslo_nautobot_events_total{event_type=\"-\",outcome=\"failed\",code=\"5\"} 1"
        ));
        assert!(text.contains("oslo_nautobot_event_seconds_bucket{le=\"0.1\"} 2"));
        assert!(text.contains("oslo_nautobot_event_seconds_count 3"));
        assert!(text.contains("oslo_nautobot_retries_total 1"));
        assert!(text.contains("oslo_nautobot_up 0"));
    }
}
