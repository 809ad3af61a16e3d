//! A circuit breaker per node, shared by every worker group and connection kind to that node.
//!
//! Closed: requests go through and failures are counted. After `breaker_failures` consecutive
//! failures (a connect error, a lost connection, a request timeout: one per event, not one per
//! request that event failed) it opens: the node's requests fail at once, without a connection
//! attempt or a wait for a timeout, so a dead node costs its clients nothing but an error. After
//! `breaker_open` one request is let through as a probe (half-open); its reply closes the breaker,
//! its failure opens it again for another period. Any reply from the node resets the count.
//!
//! The hot path (closed) is one relaxed atomic load per request and two per batch of replies;
//! the mutex is taken only on state changes and while the breaker is not closed.

use crate::cluster::topology::Addr;
use crate::errors;
use crate::proxy::Options;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The word INFO and the metrics show.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    state: AtomicU8,
    failures: AtomicU32,
    /// When the breaker last opened, or when the probe went out (half-open).
    since: Mutex<Instant>,
    /// 0: never opens.
    threshold: u32,
    open_for: Duration,
    /// A probe whose outcome never came (it cannot happen, every request is answered, but a lost
    /// probe must not keep the node shut forever) is replaced after this long.
    probe_for: Duration,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker::new(&Options::default())
    }
}

impl Breaker {
    pub fn new(opts: &Options) -> Breaker {
        Breaker {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            since: Mutex::new(Instant::now()),
            threshold: opts.breaker_failures,
            open_for: opts.breaker_open,
            probe_for: opts.breaker_open + opts.connect_timeout + opts.request_timeout,
        }
    }

    fn like(&self) -> Breaker {
        Breaker {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            since: Mutex::new(Instant::now()),
            threshold: self.threshold,
            open_for: self.open_for,
            probe_for: self.probe_for,
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Whether a request would be let through now: closed, or open long enough that the next
    /// request is the probe.
    pub fn healthy(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN => self.since().elapsed() >= self.open_for,
            _ => self.since().elapsed() >= self.probe_for,
        }
    }

    /// Lets a request through, or says why not (the `why` of the client's error). The request
    /// that turns an expired open breaker half-open is the probe.
    pub fn admit(&self) -> Result<(), String> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(());
        }
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        let wait = match self.state.load(Ordering::Acquire) {
            CLOSED => return Ok(()),
            OPEN => self.open_for,
            _ => self.probe_for,
        };
        if since.elapsed() < wait {
            return Err(self.refusal());
        }
        *since = Instant::now();
        self.state.store(HALF_OPEN, Ordering::Release);
        Ok(())
    }

    /// The `why` of a request refused because the breaker is open.
    pub fn refusal(&self) -> String {
        errors::proxy_circuit_open(self.threshold)
    }

    /// A reply came: the node works.
    pub fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.state.load(Ordering::Relaxed) != CLOSED {
            let _since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            self.failures.store(0, Ordering::Relaxed);
            self.state.store(CLOSED, Ordering::Release);
        }
    }

    /// A connect error, a lost connection or a request timeout. Returns true if this opened the
    /// breaker (the caller logs it, naming the node).
    pub fn failure(&self) -> bool {
        let n = self.failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if self.threshold == 0 {
            return false;
        }
        let state = self.state.load(Ordering::Acquire);
        if state == OPEN || (state == CLOSED && n < self.threshold) {
            return false;
        }
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        match self.state.load(Ordering::Acquire) {
            OPEN => false,
            CLOSED if self.failures.load(Ordering::Relaxed) < self.threshold => false,
            _ => {
                *since = Instant::now();
                self.state.store(OPEN, Ordering::Release);
                true
            }
        }
    }

    fn since(&self) -> Instant {
        *self.since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The breakers by node address: one per node for the whole proxy, created on first use.
#[derive(Debug)]
pub struct Breakers {
    /// The settings every new breaker copies.
    template: Breaker,
    map: Mutex<HashMap<Addr, Arc<Breaker>>>,
}

impl Breakers {
    pub fn new(opts: &Options) -> Breakers {
        Breakers { template: Breaker::new(opts), map: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, addr: &Addr) -> Arc<Breaker> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(addr.clone()).or_insert_with(|| Arc::new(self.template.like())).clone()
    }

    /// Closed for a node never connected to.
    pub fn state(&self, addr: &Addr) -> BreakerState {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(addr).map_or(BreakerState::Closed, |b| b.state())
    }

    /// See [`Breaker::healthy`]; true for a node never connected to.
    pub fn healthy(&self, addr: &Addr) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(addr).is_none_or(|b| b.healthy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, open_ms: u64) -> Breaker {
        let opts = Options {
            breaker_failures: failures,
            breaker_open: Duration::from_millis(open_ms),
            connect_timeout: Duration::from_millis(20),
            request_timeout: Duration::from_millis(20),
            ..Options::default()
        };
        Breaker::new(&opts)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 10_000);
        assert!(!b.failure());
        assert!(!b.failure());
        b.success();
        assert!(!b.failure());
        assert!(!b.failure());
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
        assert!(b.failure());
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.healthy());
        let why = b.admit().unwrap_err();
        assert!(why.contains("circuit breaker open"), "{why}");
        // Further failures of requests admitted before it opened change nothing.
        assert!(!b.failure());
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn one_probe_after_the_open_period() {
        let b = breaker(1, 200);
        assert!(b.failure());
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(250));
        assert!(b.healthy());
        assert!(b.admit().is_ok(), "the probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_err(), "only one probe");
        // The probe failed: open again for a full period.
        assert!(b.failure());
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(250));
        assert!(b.admit().is_ok());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok() && b.admit().is_ok());
    }

    #[test]
    fn a_lost_probe_is_replaced() {
        let b = breaker(1, 200);
        b.failure();
        std::thread::sleep(Duration::from_millis(250));
        assert!(b.admit().is_ok());
        assert!(b.admit().is_err());
        // probe_for = 200 + 20 + 20 ms
        std::thread::sleep(Duration::from_millis(300));
        assert!(b.admit().is_ok());
    }

    #[test]
    fn zero_threshold_never_opens() {
        let b = breaker(0, 10);
        for _ in 0..100 {
            assert!(!b.failure());
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn registry_shares_per_address() {
        let r = Breakers::new(&Options { breaker_failures: 1, ..Options::default() });
        let a = Addr::new("127.0.0.1", 7000);
        let other = Addr::new("127.0.0.1", 7001);
        assert!(r.healthy(&a));
        r.get(&a).failure();
        assert_eq!(r.get(&a).state(), BreakerState::Open);
        assert_eq!(r.state(&a), BreakerState::Open);
        assert!(!r.healthy(&a));
        assert_eq!(r.state(&other), BreakerState::Closed);
    }
}
