//! The one backoff: exponential with jitter, for retrying a request, an
//! event held by the consumer, and a lost RabbitMQ connection alike.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// The wait before retry number `attempt` (1 for the first retry): `first`
/// doubling per attempt up to `max`, then a random part of it taken off
/// ("equal jitter": between half and all of it), so that many clients
/// failing together do not retry together.
pub fn delay(first: Duration, attempt: u32, max: Duration) -> Duration {
    let ceiling = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(max);
    let random = RandomState::new().hash_one(Instant::now());
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    ceiling.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_ceiling() {
        let first = Duration::from_millis(200);
        let max = Duration::from_secs(1);
        for attempt in 1..=6 {
            let ceiling = (first * (1 << (attempt - 1))).min(max);
            let wait = delay(first, attempt, max);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
        assert!(delay(first, 10_000, max) <= max);
    }
}
