//! Liveness and Prometheus metrics on a small HTTP port, served by one
//! plain thread: `/healthz` (200 "active" or "standing by" while connected
//! to RabbitMQ, 503 otherwise) and `/metrics`.
//!
//! Label values are bounded and escaped: an event type is one of those
//! handled or "other", whatever a message says, so a hostile message can
//! neither break the exposition format nor grow the label set without end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::scheduler::Held;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The label value for an event type: one of those handled (which get a
/// label value of their own), or "other".
pub fn type_label(event_type: &str) -> &'static str {
    crate::plan::HANDLED
        .into_iter()
        .find(|t| *t == event_type)
        .unwrap_or("other")
}

/// A label value as the text exposition format needs it.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Default)]
pub struct Metrics {
    connected: AtomicBool,
    /// This replica receives the queue's messages (it got a delivery on the
    /// current connection); a standby of a single-active-consumer queue
    /// receives none.
    active: AtomicBool,
    in_flight: AtomicI64,
    queue_depth: AtomicU64,
    retries: AtomicU64,
    dead_letters: AtomicU64,
    /// (event type label, exit code) → count.
    events: Mutex<BTreeMap<(&'static str, u8), u64>>,
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
        if !up {
            self.active.store(false, Ordering::SeqCst);
        }
    }

    pub fn set_active(&self) {
        self.active.store(true, Ordering::SeqCst);
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

    pub fn dead_lettered(&self) {
        self.dead_letters.fetch_add(1, Ordering::SeqCst);
    }

    /// One event finished with `code`, `latency` after it was received.
    pub fn event(&self, event_type: &str, code: u8, latency: Duration) {
        if let Ok(mut events) = self.events.lock() {
            *events.entry((type_label(event_type), code)).or_default() += 1;
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

    /// What `/healthz` answers: status line and body.
    fn health(&self) -> (&'static str, &'static str) {
        match (
            self.connected.load(Ordering::SeqCst),
            self.active.load(Ordering::SeqCst),
        ) {
            (true, true) => ("200 OK", "active\n"),
            (true, false) => ("200 OK", "standing by\n"),
            (false, _) => ("503 Service Unavailable", "not connected to RabbitMQ\n"),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, held: Held) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            );
        };
        let flag = |b: &AtomicBool| u8::from(b.load(Ordering::SeqCst)).to_string();
        gauge(
            "oslo_nautobot_up",
            "1 while connected to RabbitMQ.",
            flag(&self.connected),
        );
        gauge(
            "oslo_nautobot_active",
            "1 while this replica receives the queue's messages; 0 while it stands by.",
            flag(&self.active),
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
        gauge(
            "oslo_nautobot_held_events",
            "Events held back because an earlier event of their network keeps failing transiently.",
            held.events.to_string(),
        );
        let age = held.oldest.map_or(0.0, |t| t.elapsed().as_secs_f64());
        gauge(
            "oslo_nautobot_held_oldest_seconds",
            "Age of the oldest held event (0 when none).",
            format!("{age:.3}"),
        );
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            );
        };
        counter(
            "oslo_nautobot_retries_total",
            "Retries of events after a transient failure.",
            self.retries.load(Ordering::SeqCst),
        );
        counter(
            "oslo_nautobot_dead_letters_total",
            "Messages published to the dead-letter exchange, confirmed by the broker.",
            self.dead_letters.load(Ordering::SeqCst),
        );
        out.push_str(
            "# HELP oslo_nautobot_events_total Events handled, by type and outcome (exit code).\n",
        );
        out.push_str("# TYPE oslo_nautobot_events_total counter\n");
        if let Ok(events) = self.events.lock() {
            for ((event_type, code), n) in events.iter() {
                let outcome = if *code == 0 { "applied" } else { "failed" };
                let _ = writeln!(
                    out,
                    "oslo_nautobot_events_total{{event_type=\"{}\",outcome=\"{outcome}\",code=\"{code}\"}} {n}",
                    escape(event_type)
                );
            }
        }
        out.push_str("# HELP oslo_nautobot_event_seconds Time from receiving an event to its acknowledgement.\n");
        out.push_str("# TYPE oslo_nautobot_event_seconds histogram\n");
        if let Ok(h) = self.latency.lock() {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "oslo_nautobot_event_seconds_bucket{{le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "oslo_nautobot_event_seconds_bucket{{le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "oslo_nautobot_event_seconds_sum {}", h.sum);
            let _ = writeln!(out, "oslo_nautobot_event_seconds_count {}", h.count);
        }
        out
    }
}

/// What the held gauges are read from at each scrape.
pub type HeldSource = Arc<dyn Fn() -> Held + Send + Sync>;

/// Serves `/healthz` and `/metrics` on `addr` from a background thread.
pub fn serve(addr: &str, metrics: Arc<Metrics>, held: HeldSource) -> std::io::Result<()> {
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
                "/metrics" => ("200 OK", metrics.render(held())),
                "/healthz" => {
                    let (status, body) = metrics.health();
                    (status, body.to_owned())
                }
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
    use std::time::Instant;

    #[test]
    fn renders_counters_gauges_and_histogram() {
        let m = Metrics::default();
        m.event("subnet.create.end", 0, Duration::from_millis(70));
        m.event("subnet.create.end", 0, Duration::from_millis(700));
        m.event("-", 5, Duration::from_millis(1));
        m.retry();
        m.dead_lettered();
        let held = Held {
            events: 3,
            oldest: Some(Instant::now()),
        };
        let text = m.render(held);
        assert!(text.contains("oslo_nautobot_events_total{event_type=\"subnet.create.end\",outcome=\"applied\",code=\"0\"} 2"));
        assert!(text.contains(
            "oslo_nautobot_events_total{event_type=\"other\",outcome=\"failed\",code=\"5\"} 1"
        ));
        assert!(text.contains("oslo_nautobot_event_seconds_bucket{le=\"0.1\"} 2"));
        assert!(text.contains("oslo_nautobot_event_seconds_count 3"));
        assert!(text.contains("oslo_nautobot_retries_total 1"));
        assert!(text.contains("oslo_nautobot_dead_letters_total 1"));
        assert!(text.contains("oslo_nautobot_held_events 3"));
        assert!(text.contains("oslo_nautobot_up 0"));
        assert!(text.contains("oslo_nautobot_active 0"));
    }

    #[test]
    fn hostile_event_types_become_other_and_values_are_escaped() {
        let m = Metrics::default();
        for hostile in ["x\"} 1\nfake_metric 9", "network.create.end\n", "a\\b"] {
            m.event(hostile, 6, Duration::ZERO);
        }
        let text = m.render(Held::default());
        assert!(!text.contains("fake_metric"));
        assert_eq!(text.matches("event_type=\"other\"").count(), 1);
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn health_says_active_standing_by_or_not_connected() {
        let m = Metrics::default();
        assert_eq!(m.health().0, "503 Service Unavailable");
        m.set_connected(true);
        assert_eq!(m.health().1, "standing by\n");
        m.set_active();
        assert_eq!(m.health().1, "active\n");
        m.set_connected(false);
        m.set_connected(true);
        assert_eq!(
            m.health().1,
            "standing by\n",
            "a new connection starts standing by"
        );
    }
}
