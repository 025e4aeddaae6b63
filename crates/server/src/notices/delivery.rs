//! Webhook deliveries: claimed like tasks (any number of servers, each delivery sent by one),
//! POSTed with Renderjuice's signature, retried on a schedule for more than a day.
//!
//! Schedule (`RETRY_SCHEDULE`, in multiples of `--webhook-first-retry`, 10 s by default):
//! after a failed attempt the next comes 1, 3, 6, 12, 30, 60, 180, 360, 720, 1440 and then
//! every 2160 units later (10 s, 30 s, 1 min, 2 min, 5 min, 10 min, 30 min, 1 h, 2 h, 4 h,
//! then every 6 h), each ±20 % at random so that a recovering receiver is not hit by every
//! retry at once; once `GIVE_UP_AFTER` units (25 h by default) have passed since the event
//! the delivery is dead. A non-2xx answer or no answer within 7 s is a failure; redirects
//! are not followed; at most 1 KiB of the answer is read and kept.
//!
//! Targets are checked when the request is made, after DNS resolution (a name that later
//! resolves inward is refused too): loopback, private, link-local, shared, multicast and other
//! non-public addresses are refused unless `--webhooks-allow-private`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

/// How long a receiver has to answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(7);
/// Waits after each failed attempt, in units of the first retry; the last repeats.
pub(crate) const RETRY_SCHEDULE: &[u32] = &[1, 3, 6, 12, 30, 60, 180, 360, 720, 1440, 2160];
/// Units after the event past which a delivery is given up (25 h at 10 s).
pub(crate) const GIVE_UP_AFTER: u32 = 9000;
/// Bytes of an answer kept in the delivery log.
pub(crate) const RESPONSE_KEPT: usize = 1024;
/// Deliveries one server sends at once.
pub(crate) const BATCH: u32 = 16;
/// How long a claimed delivery is this server's: longer than an attempt can take.
pub(crate) const LEASE: Duration = Duration::from_secs(60);
/// Signed frame URLs in `onRenderComplete` live this long: a receiver that was down for a day
/// and gets the event on a late retry can still fetch the frames (S3's longest presigned URL).
pub(crate) const FRAME_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Polls for due deliveries when nothing wakes the loop (another server's events, retries).
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// The HTTP client deliveries go out with.
pub(crate) fn client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // Straight to the target: through a proxy, the checked resolver would not be the one
        // that decides where the request goes.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent(concat!("Orchard-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings builds")
}

/// Resolves names as the system does, keeping only addresses a webhook may target.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|it| allow_private || is_public(it.ip())).collect();
            if allowed.is_empty() {
                let reason = if found.is_empty() {
                    format!("{host} does not resolve")
                } else {
                    format!(
                        "{host} resolves to a private or local address (the server allows it with --webhooks-allow-private)"
                    )
                };
                return Err(reason.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private, link-local,
/// shared (CGNAT), multicast, unspecified, broadcast, documentation or otherwise reserved.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// Milliseconds before attempt `attempt + 1`, with ±20 % jitter.
pub(crate) fn retry_delay(attempt: i64, unit: i64) -> i64 {
    let index = usize::try_from(attempt - 1).unwrap_or(0).min(RETRY_SCHEDULE.len() - 1);
    let base = unit * i64::from(RETRY_SCHEDULE[index]);
    let jitter = rand::rng().random_range(0.8..1.2);
    (base as f64 * jitter) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_targets() {
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(inward.parse().unwrap()), "{inward}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn retries_back_off_for_more_than_a_day() {
        let unit = 10_000;
        let mut at = 0i64;
        let mut attempts = 0;
        while at < unit * i64::from(GIVE_UP_AFTER) {
            attempts += 1;
            let delay = retry_delay(attempts, unit);
            let base = unit * i64::from(RETRY_SCHEDULE[(attempts as usize - 1).min(RETRY_SCHEDULE.len() - 1)]);
            assert!(delay >= base * 8 / 10 && delay <= base * 12 / 10, "{attempts}: {delay}");
            at += delay;
        }
        assert!(GIVE_UP_AFTER as i64 * unit >= 24 * 3600 * 1000, "at least a day");
        assert!((12..=20).contains(&attempts), "{attempts} attempts");
    }
}
