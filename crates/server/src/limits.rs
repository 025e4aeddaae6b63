//! Rate limits: requests per API key, and failed authentications per client address (so that
//! keys cannot be guessed at hundreds a second). Worker tokens' normal traffic is never
//! limited: a farm's own workers must not be slowed by a client's burst.
//!
//! An address over its failed-authentication budget is refused everything for a while —
//! including a right key, or a guesser would still learn which key was right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::error::Error;
use crate::policy::{FAILED_AUTH_BURST, MAX_CALLERS};

/// The server's rate limiters.
pub(crate) struct Limits {
    /// Requests per API key; `None` when limits are off.
    per_key: Option<DefaultKeyedRateLimiter<Uuid>>,
    /// Failed authentications per client address; `None` when that limit is off.
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses refused until then, having spent their failures.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Whether `blocked` may hold anything: most of the time it holds nothing, and every
    /// request asks, so the answer must not take a lock.
    any_blocked: AtomicBool,
    clock: DefaultClock,
}

impl Limits {
    /// `per_second` requests a second per API key (bursts of twice that), and
    /// `failures_per_minute` failed authentications per address (after a burst of
    /// [`FAILED_AUTH_BURST`]); 0: no such limit.
    pub(crate) fn new(per_second: u32, failures_per_minute: u32) -> Limits {
        let per_key = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
            DefaultKeyedRateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst))
        });
        let failures = NonZeroU32::new(failures_per_minute)
            .map(|rate| DefaultKeyedRateLimiter::dashmap(Quota::per_minute(rate).allow_burst(FAILED_AUTH_BURST)));
        Limits {
            per_key,
            failures,
            blocked: Mutex::default(),
            any_blocked: AtomicBool::new(false),
            clock: DefaultClock::default(),
        }
    }

    /// Refuses a request from `address` while it is blocked for failed authentications.
    pub(crate) fn check_address(&self, address: Option<IpAddr>) -> Result<(), Error> {
        let Some(address) = address else { return Ok(()) };
        if !self.any_blocked.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        match blocked.get(&address) {
            Some(until) if *until > Instant::now() => Err(limited(*until - Instant::now(), "failed authentications")),
            Some(_) => {
                blocked.remove(&address);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`; past the budget, the address is
    /// blocked until it has one again, and this answer is already the refusal.
    pub(crate) fn failed(&self, address: Option<IpAddr>, refusal: Error) -> Error {
        let (Some(address), Some(failures)) = (address, &self.failures) else { return refusal };
        match failures.check_key(&address) {
            Ok(()) => refusal,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
                if blocked.len() >= MAX_CALLERS {
                    blocked.retain(|_, until| *until > Instant::now());
                }
                blocked.insert(address, Instant::now() + wait);
                self.any_blocked.store(true, Ordering::Release);
                limited(wait, "failed authentications")
            }
        }
    }

    /// Counts a request of the API key `key_id`.
    pub(crate) fn check_key(&self, key_id: Uuid) -> Result<(), Error> {
        let Some(per_key) = &self.per_key else { return Ok(()) };
        per_key.check_key(&key_id).map_err(|not_until| limited(not_until.wait_time_from(self.clock.now()), "requests"))
    }

    /// Forgets keys and addresses whose budget is full again (the limiters keep one entry
    /// per key or address seen).
    pub(crate) fn forget_idle(&self) {
        if let Some(per_key) = &self.per_key {
            per_key.retain_recent();
        }
        if let Some(failures) = &self.failures {
            failures.retain_recent();
        }
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        blocked.retain(|_, until| *until > now);
        if blocked.is_empty() {
            self.any_blocked.store(false, Ordering::Release);
        }
    }
}

/// The refusal of a request over a limit of `what`, to be tried again after `wait`.
fn limited(wait: Duration, what: &str) -> Error {
    let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Error::TooManyRequests {
        message: format!("too many {what}: try again in {retry_after} s"),
        retry_after: retry_after.max(1),
    }
}
