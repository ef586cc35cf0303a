//! Which event a worker applies next: one lane per key (a network, a
//! project), first in first out, one event of a lane at a time, lanes in
//! parallel. An event that fails transiently holds back its own lane only: it
//! stays at the lane's head, to be retried after a backoff, and the other
//! lanes keep flowing. Pure bookkeeping: no I/O, no broker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An event taken from a lane, with its history there.
pub struct Ticket<J> {
    pub key: String,
    pub job: J,
    pub received: Instant,
    /// Failed attempts so far (0 for the first try).
    pub attempts: u32,
    /// When it first failed, if it did.
    pub failing_since: Option<Instant>,
}

/// Held events: how many (the failing ones and those waiting behind them)
/// and when the oldest of them was received.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Held {
    pub events: usize,
    pub oldest: Option<Instant>,
}

struct Entry<J> {
    job: J,
    received: Instant,
    session: u64,
}

struct Lane<J> {
    jobs: VecDeque<Entry<J>>,
    /// A worker has the head (received then).
    busy: Option<Instant>,
    /// The head failed: (attempts, first failure, retry not before).
    hold: Option<(u32, Instant, Instant)>,
}

struct State<J> {
    lanes: HashMap<String, Lane<J>>,
    ready: VecDeque<String>,
    stopping: bool,
}

pub struct Scheduler<J> {
    state: Mutex<State<J>>,
    wake: Condvar,
}

impl<J> Default for Scheduler<J> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                lanes: HashMap::new(),
                ready: VecDeque::new(),
                stopping: false,
            }),
            wake: Condvar::new(),
        }
    }
}

impl<J> Scheduler<J> {
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // A worker that panicked holding the lock leaves consistent data:
        // every change below is made in one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event at the end of its lane.
    pub fn push(&self, key: &str, job: J, session: u64) {
        let mut state = self.lock();
        let lane = state.lanes.entry(key.to_owned()).or_insert_with(|| Lane {
            jobs: VecDeque::new(),
            busy: None,
            hold: None,
        });
        lane.jobs.push_back(Entry {
            job,
            received: Instant::now(),
            session,
        });
        let startable = lane.busy.is_none() && lane.hold.is_none() && lane.jobs.len() == 1;
        if startable {
            state.ready.push_back(key.to_owned());
            self.wake.notify_one();
        }
    }

    /// The next event to apply, waiting for one; None once stopping.
    pub fn next(&self) -> Option<Ticket<J>> {
        let mut state = self.lock();
        loop {
            if state.stopping {
                return None;
            }
            let now = Instant::now();
            // Held lanes whose backoff is over can go again.
            let due: Vec<String> = state
                .lanes
                .iter()
                .filter(|(_, l)| l.busy.is_none() && l.hold.is_some_and(|(_, _, at)| at <= now))
                .map(|(k, _)| k.clone())
                .filter(|k| !state.ready.contains(k))
                .collect();
            state.ready.extend(due);
            while let Some(key) = state.ready.pop_front() {
                let Some(lane) = state.lanes.get_mut(&key).filter(|l| l.busy.is_none()) else {
                    continue;
                };
                let Some(entry) = lane.jobs.pop_front() else {
                    continue;
                };
                lane.busy = Some(entry.received);
                let (attempts, since) = lane
                    .hold
                    .map_or((0, None), |(n, since, _)| (n, Some(since)));
                return Some(Ticket {
                    key,
                    job: entry.job,
                    received: entry.received,
                    attempts,
                    failing_since: since,
                });
            }
            let next_retry = state
                .lanes
                .values()
                .filter(|l| l.busy.is_none())
                .filter_map(|l| l.hold.map(|(_, _, at)| at))
                .min();
            state = match next_retry {
                Some(at) => {
                    let wait = at
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1));
                    self.wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// The lane's head is done (applied, or let go): the next one may start.
    pub fn done(&self, key: &str) {
        let mut state = self.lock();
        let Some(lane) = state.lanes.get_mut(key) else {
            return;
        };
        lane.busy = None;
        lane.hold = None;
        if lane.jobs.is_empty() {
            state.lanes.remove(key);
        } else {
            state.ready.push_back(key.to_owned());
            self.wake.notify_one();
        }
    }

    /// The head failed for a passing reason: it goes back to the head of its
    /// lane, which waits `wait` before it is tried again. The other lanes
    /// are not held.
    pub fn hold(&self, ticket: Ticket<J>, session: u64, wait: Duration) {
        let mut state = self.lock();
        let now = Instant::now();
        let lane = state
            .lanes
            .entry(ticket.key.clone())
            .or_insert_with(|| Lane {
                jobs: VecDeque::new(),
                busy: None,
                hold: None,
            });
        lane.jobs.push_front(Entry {
            job: ticket.job,
            received: ticket.received,
            session,
        });
        lane.busy = None;
        lane.hold = Some((
            ticket.attempts + 1,
            ticket.failing_since.unwrap_or(now),
            now + wait,
        ));
        self.wake.notify_all();
    }

    /// Forgets every event delivered on a session that ended: the broker has
    /// taken them back and will deliver them again.
    /// Returns how many were forgotten.
    pub fn forget_session(&self, session: u64) -> usize {
        let mut state = self.lock();
        let before: usize = state.lanes.values().map(|l| l.jobs.len()).sum();
        state.lanes.retain(|_, lane| {
            lane.jobs.retain(|e| e.session != session);
            lane.busy.is_some() || !lane.jobs.is_empty()
        });
        let after: usize = state.lanes.values().map(|l| l.jobs.len()).sum();
        let lanes = &state.lanes;
        let ready: VecDeque<String> = state
            .ready
            .iter()
            .filter(|k| lanes.get(*k).is_some_and(|l| !l.jobs.is_empty()))
            .cloned()
            .collect();
        state.ready = ready;
        for lane in state.lanes.values_mut() {
            if lane.jobs.is_empty() {
                lane.hold = None;
            }
        }
        before - after
    }

    /// No more events are handed out; workers waiting in `next` return.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    pub fn held(&self) -> Held {
        let state = self.lock();
        let mut held = Held::default();
        for lane in state.lanes.values().filter(|l| l.hold.is_some()) {
            held.events += lane.jobs.len() + usize::from(lane.busy.is_some());
            // The head may be out for a retry: it is still the oldest.
            let oldest = lane.busy.or(lane.jobs.front().map(|e| e.received));
            held.oldest = match (held.oldest, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn one_lane_runs_in_order_one_at_a_time_while_others_run_alongside() {
        let s = Scheduler::default();
        s.push("a", 1, 0);
        s.push("a", 2, 0);
        s.push("b", 10, 0);
        let first = s.next().unwrap();
        let second = s.next().unwrap();
        assert_eq!((first.key.as_str(), first.job), ("a", 1));
        assert_eq!(
            (second.key.as_str(), second.job),
            ("b", 10),
            "a's second waits for its first"
        );
        s.done("a");
        let third = s.next().unwrap();
        assert_eq!((third.key.as_str(), third.job), ("a", 2));
    }

    #[test]
    fn a_failing_event_holds_back_only_its_own_lane() {
        let s = Scheduler::default();
        s.push("sick", 1, 0);
        s.push("sick", 2, 0);
        s.push("well", 10, 0);
        s.push("well", 11, 0);
        let sick = s.next().unwrap();
        s.hold(sick, 0, Duration::from_secs(3600));
        let mut applied = Vec::new();
        for _ in 0..2 {
            let t = s.next().unwrap();
            applied.push(t.job);
            s.done(&t.key);
        }
        assert_eq!(applied, [10, 11]);
        let held = s.held();
        assert_eq!(held.events, 2, "the failing event and the one behind it");
        assert!(held.oldest.is_some());
    }

    #[test]
    fn a_held_event_is_retried_first_when_its_backoff_is_over() {
        let s = Arc::new(Scheduler::default());
        s.push("net", 1, 0);
        s.push("net", 2, 0);
        let t = s.next().unwrap();
        s.hold(t, 0, Duration::from_millis(20));
        let retried = s.next().unwrap();
        assert_eq!((retried.job, retried.attempts), (1, 1));
        assert!(retried.failing_since.is_some());
        s.done("net");
        assert_eq!(s.next().unwrap().attempts, 0);
    }

    #[test]
    fn a_held_event_being_retried_still_counts_as_the_oldest() {
        // Before: while its retry ran, the held lane's oldest event was
        // taken for none, and the "held too old" alert's clock restarted.
        let s = Scheduler::default();
        s.push("net", 1, 0);
        let t = s.next().unwrap();
        s.hold(t, 0, Duration::ZERO);
        let retry = s.next().unwrap();
        let held = s.held();
        assert_eq!(held.events, 1);
        assert_eq!(held.oldest, Some(retry.received));
    }

    #[test]
    fn a_lost_session_is_forgotten_and_stop_wakes_the_workers() {
        let s = Arc::new(Scheduler::default());
        s.push("a", 1, 1);
        s.push("b", 2, 1);
        s.push("b", 3, 2);
        s.forget_session(1);
        let t = s.next().unwrap();
        assert_eq!((t.key.as_str(), t.job), ("b", 3));
        let waiter = {
            let s = s.clone();
            std::thread::spawn(move || s.next().map(|t| t.job))
        };
        std::thread::sleep(Duration::from_millis(20));
        s.stop();
        assert_eq!(waiter.join().unwrap(), None);
    }
}
