//! The session's lifecycle as a pure state machine: no I/O, no clock of its own.
//!
//! The drivers ([`super::broadcast`], [`super::watch`]) tell it what happened and when
//! (`now` is an argument everywhere), and it answers with the next state and, after a
//! failure, whether and when to try again. The unit tests drive it with a fake clock.

use std::time::{Duration, Instant};

use crate::net::{Backoff, BackoffConfig};

/// Why a session failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The configuration cannot work (bad URL, TLS settings).
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// The server refused our credentials (WHEP 401/403).
    Unauthorized {
        /// What the server said.
        detail: String,
    },
    /// The server refused the stream: wrong RTMP application, refused or busy stream
    /// key, or a WHEP 4xx other than 401/403/404/409/429.
    Rejected {
        /// What the server said.
        detail: String,
    },
    /// The stream does not exist (WHEP 404), and still did not after every retry.
    NotFound {
        /// What the server said.
        detail: String,
    },
    /// The TLS handshake failed (untrusted certificate, wrong name).
    Tls {
        /// The TLS error.
        detail: String,
    },
    /// The server could not be reached (or the connection kept failing) after every
    /// attempt the reconnect policy allows.
    Unreachable {
        /// Consecutive failed attempts.
        attempts: u32,
        /// The last error.
        detail: String,
    },
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::InvalidConfig { detail } => write!(f, "invalid configuration: {detail}"),
            FailReason::Unauthorized { detail } => write!(f, "unauthorized: {detail}"),
            FailReason::Rejected { detail } => write!(f, "rejected by the server: {detail}"),
            FailReason::NotFound { detail } => write!(f, "stream not found: {detail}"),
            FailReason::Tls { detail } => write!(f, "TLS: {detail}"),
            FailReason::Unreachable { attempts, detail } => {
                write!(f, "unreachable after {attempts} attempts: {detail}")
            }
        }
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionState {
    /// Created; nothing started yet.
    #[default]
    Idle,
    /// Opening the first connection; `attempt` counts retries (0 for the first try).
    Connecting {
        /// 0 for the first try, then 1, 2, … after transient failures.
        attempt: u32,
    },
    /// Media flows: broadcast — the ingest accepted the publish; watch — the first
    /// frame arrived.
    Live,
    /// The connection was lost (or a reconnect failed); the next attempt starts after
    /// `retry_in`.
    Reconnecting {
        /// 1 for the first attempt after a loss, then 2, 3, …
        attempt: u32,
        /// Delay before that attempt.
        retry_in: Duration,
        /// Why the last connection ended or the last attempt failed.
        reason: String,
    },
    /// The sender ended the stream (watch sessions: it said goodbye). Not an error and not
    /// a lost connection. Next, as [`OnStreamEnd`] says: the session asks for the stream
    /// again now and then and goes `Live` when it is back, or it ends (`Ended`).
    StreamEnded,
    /// Stopped by the app, or after the stream ended with [`OnStreamEnd::End`]. Terminal.
    Ended,
    /// Stopped by an error that retrying cannot fix. Terminal.
    Failed {
        /// Why.
        reason: FailReason,
    },
}

impl SessionState {
    /// The state's name without its details: "idle", "connecting", "live",
    /// "reconnecting", "stream ended", "ended" or "failed".
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::Connecting { .. } => "connecting",
            SessionState::Live => "live",
            SessionState::Reconnecting { .. } => "reconnecting",
            SessionState::StreamEnded => "stream ended",
            SessionState::Ended => "ended",
            SessionState::Failed { .. } => "failed",
        }
    }

    /// True for [`SessionState::Ended`] and [`SessionState::Failed`].
    pub fn is_terminal(&self) -> bool {
        matches!(self, SessionState::Ended | SessionState::Failed { .. })
    }
}

/// What a watch session does once the sender ended the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStreamEnd {
    /// Stay in [`SessionState::StreamEnded`] and ask for the stream again, with the
    /// reconnect backoff, until it is back (→ `Live`) or the app stops. "Not found"
    /// answers meanwhile neither leave `StreamEnded` nor use up reconnect attempts.
    #[default]
    WaitForReturn,
    /// End the session: `StreamEnded`, then `Ended`.
    End,
}

/// How a session reacts to a lost or refused connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Delays between attempts: full-jitter exponential backoff, the chat client's.
    pub backoff: BackoffConfig,
    /// Consecutive failed attempts after which the session fails
    /// ([`FailReason::Unreachable`] or the last failure's reason); `None` retries forever,
    /// `Some(0)` never reconnects.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            backoff: BackoffConfig {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(10),
                reset_after: Duration::from_secs(30),
            },
            max_attempts: Some(10),
        }
    }
}

impl ReconnectPolicy {
    /// Delays from `backoff`, failing after `max_attempts` consecutive failures (`None`:
    /// retry forever).
    pub fn new(backoff: BackoffConfig, max_attempts: Option<u32>) -> Self {
        ReconnectPolicy {
            backoff,
            max_attempts,
        }
    }
}

/// How a failed attempt is judged (the drivers map their protocol errors to this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Retrying cannot help: fail at once with this reason.
    Terminal(FailReason),
    /// Worth retrying; if the attempts run out, fail with this reason.
    Transient(FailReason),
    /// Terminal on the first connection (a wrong key stays wrong), transient on a
    /// reconnect (the server may still hold our previous, dead connection).
    Refused(FailReason),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop: the session has failed.
    Fail(FailReason),
    /// Stop: the session is over without a failure (the stream ended).
    End,
}

/// The lifecycle: state, attempt counter and time accounting.
#[derive(Debug)]
pub struct Lifecycle {
    state: SessionState,
    policy: ReconnectPolicy,
    backoff: Backoff,
    /// Consecutive failed attempts since the last success.
    failures: u32,
    /// True once the session was Live at least once.
    was_live: bool,
    /// When the current state began.
    since: Instant,
    created: Instant,
    live_total: Duration,
    reconnecting_total: Duration,
    time_to_live: Option<Duration>,
    reconnects: u32,
    live_since: Option<Instant>,
}

/// Time spent per state, and counters, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durations {
    /// Total time Live.
    pub live: Duration,
    /// Total time Reconnecting.
    pub reconnecting: Duration,
    /// From creation to the first Live.
    pub time_to_live: Option<Duration>,
    /// Since creation.
    pub total: Duration,
    /// Times the session went Live again after a loss.
    pub reconnects: u32,
}

impl Lifecycle {
    /// A session in [`SessionState::Idle`].
    pub fn new(policy: ReconnectPolicy, now: Instant) -> Self {
        Lifecycle {
            state: SessionState::Idle,
            policy,
            backoff: Backoff::new(policy.backoff),
            failures: 0,
            was_live: false,
            since: now,
            created: now,
            live_total: Duration::ZERO,
            reconnecting_total: Duration::ZERO,
            time_to_live: None,
            reconnects: 0,
            live_since: None,
        }
    }

    #[cfg(test)]
    /// The current state.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    fn enter(&mut self, state: SessionState, now: Instant) -> Option<SessionState> {
        if self.state.is_terminal() {
            return None;
        }
        let spent = now.saturating_duration_since(self.since);
        match self.state {
            SessionState::Live => self.live_total += spent,
            SessionState::Reconnecting { .. } => self.reconnecting_total += spent,
            _ => {}
        }
        self.since = now;
        self.live_since = matches!(state, SessionState::Live).then_some(now);
        self.state = state.clone();
        Some(state)
    }

    /// Idle → Connecting. Returns the new state (`None` if nothing changed).
    pub fn start(&mut self, now: Instant) -> Option<SessionState> {
        if self.state != SessionState::Idle {
            return None;
        }
        self.enter(SessionState::Connecting { attempt: 0 }, now)
    }

    /// A connection is up and media flows: → Live.
    pub fn live(&mut self, now: Instant) -> Option<SessionState> {
        if self.state == SessionState::Live {
            return None;
        }
        self.failures = 0;
        if self.was_live {
            self.reconnects += 1;
        } else {
            self.time_to_live = Some(now.saturating_duration_since(self.created));
        }
        self.was_live = true;
        self.enter(SessionState::Live, now)
    }

    /// An attempt failed (`unit_random` in `[0, 1)` draws the jitter).
    pub fn attempt_failed(
        &mut self,
        failure: Failure,
        unit_random: f64,
        now: Instant,
    ) -> (Next, Option<SessionState>) {
        if self.state == SessionState::StreamEnded
            && matches!(failure, Failure::Transient(FailReason::NotFound { .. }))
        {
            // Still gone: keep waiting, without using up attempts.
            return (
                Next::RetryAfter(self.backoff.next_delay(unit_random, None)),
                None,
            );
        }
        let reason = match failure {
            Failure::Terminal(reason) => return self.fail(reason, now),
            Failure::Refused(reason) if !self.was_live => return self.fail(reason, now),
            Failure::Refused(reason) | Failure::Transient(reason) => reason,
        };
        self.failures = self.failures.saturating_add(1);
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.failures > max)
        {
            let reason = match reason {
                FailReason::Unreachable { detail, .. } => FailReason::Unreachable {
                    attempts: self.failures,
                    detail,
                },
                other => other,
            };
            return self.fail(reason, now);
        }
        let delay = self.backoff.next_delay(unit_random, None);
        let state = if self.was_live {
            SessionState::Reconnecting {
                attempt: self.failures,
                retry_in: delay,
                // Not "unreachable after 0 attempts": attempts have not run out yet.
                reason: match &reason {
                    FailReason::Unreachable { detail, .. } => detail.clone(),
                    other => other.to_string(),
                },
            }
        } else {
            SessionState::Connecting {
                attempt: self.failures,
            }
        };
        (Next::RetryAfter(delay), self.enter(state, now))
    }

    /// The live connection was lost: → Reconnecting, or Failed when the policy allows
    /// no reconnect.
    pub fn lost(
        &mut self,
        reason: &str,
        unit_random: f64,
        now: Instant,
    ) -> (Next, Option<SessionState>) {
        self.connection_ended(now);
        self.attempt_failed(
            Failure::Transient(FailReason::Unreachable {
                attempts: 0,
                detail: reason.to_string(),
            }),
            unit_random,
            now,
        )
    }

    /// The sender ended the stream: → StreamEnded, then retry later or end, as `policy`
    /// says.
    pub fn stream_ended(
        &mut self,
        policy: OnStreamEnd,
        unit_random: f64,
        now: Instant,
    ) -> (Next, Option<SessionState>) {
        self.connection_ended(now);
        self.failures = 0;
        let next = match policy {
            OnStreamEnd::End => Next::End,
            OnStreamEnd::WaitForReturn => {
                Next::RetryAfter(self.backoff.next_delay(unit_random, None))
            }
        };
        (next, self.enter(SessionState::StreamEnded, now))
    }

    /// A live connection ended: the backoff learns how long it lasted.
    fn connection_ended(&mut self, now: Instant) {
        if let Some(since) = self.live_since {
            self.backoff
                .connection_ended(now.saturating_duration_since(since));
        }
    }

    fn fail(&mut self, reason: FailReason, now: Instant) -> (Next, Option<SessionState>) {
        let changed = self.enter(
            SessionState::Failed {
                reason: reason.clone(),
            },
            now,
        );
        (Next::Fail(reason), changed)
    }

    /// The app stopped the session: → Ended (a failed session stays failed).
    pub fn stop(&mut self, now: Instant) -> Option<SessionState> {
        self.enter(SessionState::Ended, now)
    }

    /// Time accounting at `now`.
    pub fn durations(&self, now: Instant) -> Durations {
        let spent = now.saturating_duration_since(self.since);
        let (mut live, mut reconnecting) = (self.live_total, self.reconnecting_total);
        match self.state {
            SessionState::Live => live += spent,
            SessionState::Reconnecting { .. } => reconnecting += spent,
            _ => {}
        }
        Durations {
            live,
            reconnecting,
            time_to_live: self.time_to_live,
            total: now.saturating_duration_since(self.created),
            reconnects: self.reconnects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: Option<u32>) -> ReconnectPolicy {
        ReconnectPolicy {
            backoff: BackoffConfig {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(1),
                reset_after: Duration::from_secs(10),
            },
            max_attempts,
        }
    }

    fn unreachable(detail: &str) -> FailReason {
        FailReason::Unreachable {
            attempts: 0,
            detail: detail.into(),
        }
    }

    /// A fake clock: an origin and an offset.
    struct Clock(Instant, Duration);
    impl Clock {
        fn now(&self) -> Instant {
            self.0 + self.1
        }
        fn advance(&mut self, by: Duration) -> Instant {
            self.1 += by;
            self.now()
        }
    }

    #[test]
    fn idle_connecting_live_ended() {
        let mut clock = Clock(Instant::now(), Duration::ZERO);
        let mut lc = Lifecycle::new(policy(Some(3)), clock.now());
        assert_eq!(lc.state(), &SessionState::Idle);
        assert_eq!(
            lc.start(clock.now()),
            Some(SessionState::Connecting { attempt: 0 })
        );
        assert_eq!(lc.start(clock.now()), None, "start twice changes nothing");
        let t = clock.advance(Duration::from_millis(300));
        assert_eq!(lc.live(t), Some(SessionState::Live));
        let t = clock.advance(Duration::from_secs(2));
        assert_eq!(lc.stop(t), Some(SessionState::Ended));
        let d = lc.durations(clock.advance(Duration::from_secs(5)));
        assert_eq!(d.time_to_live, Some(Duration::from_millis(300)));
        assert_eq!(d.live, Duration::from_secs(2));
        assert_eq!(d.reconnects, 0);
        // Terminal states are final.
        assert_eq!(lc.live(clock.now()), None);
        assert_eq!(lc.state(), &SessionState::Ended);
    }

    #[test]
    fn a_loss_reconnects_with_growing_delays_and_counts_the_time() {
        let mut clock = Clock(Instant::now(), Duration::ZERO);
        let mut lc = Lifecycle::new(policy(None), clock.now());
        lc.start(clock.now());
        lc.live(clock.now());
        let t = clock.advance(Duration::from_secs(1));
        let (next, state) = lc.lost("reset", 0.999, t);
        assert_eq!(next, Next::RetryAfter(Duration::from_micros(99_900)));
        assert!(matches!(
            state,
            Some(SessionState::Reconnecting { attempt: 1, ref reason, .. }) if reason.contains("reset")
        ));
        let t = clock.advance(Duration::from_millis(100));
        let (next, _) = lc.attempt_failed(Failure::Transient(unreachable("refused")), 0.999, t);
        assert_eq!(next, Next::RetryAfter(Duration::from_micros(199_800)));
        let (next, state) = lc.attempt_failed(Failure::Transient(unreachable("refused")), 0.999, t);
        assert_eq!(next, Next::RetryAfter(Duration::from_micros(399_600)));
        assert!(matches!(
            state,
            Some(SessionState::Reconnecting { attempt: 3, .. })
        ));
        let t = clock.advance(Duration::from_millis(400));
        assert_eq!(lc.live(t), Some(SessionState::Live));
        let d = lc.durations(clock.advance(Duration::from_secs(1)));
        assert_eq!(d.reconnects, 1);
        assert_eq!(d.live, Duration::from_secs(2));
        assert_eq!(d.reconnecting, Duration::from_millis(500));
    }

    #[test]
    fn attempts_run_out_into_failed_with_the_count() {
        let now = Instant::now();
        let mut lc = Lifecycle::new(policy(Some(2)), now);
        lc.start(now);
        for attempt in 1..=2 {
            let (next, state) =
                lc.attempt_failed(Failure::Transient(unreachable("refused")), 0.5, now);
            assert!(matches!(next, Next::RetryAfter(_)));
            // Before the first Live, retries stay in Connecting.
            assert_eq!(state, Some(SessionState::Connecting { attempt }));
        }
        let (next, state) = lc.attempt_failed(Failure::Transient(unreachable("refused")), 0.5, now);
        let reason = FailReason::Unreachable {
            attempts: 3,
            detail: "refused".into(),
        };
        assert_eq!(next, Next::Fail(reason.clone()));
        assert_eq!(state, Some(SessionState::Failed { reason }));
    }

    #[test]
    fn a_transient_reason_other_than_unreachable_is_kept_when_attempts_run_out() {
        let now = Instant::now();
        let mut lc = Lifecycle::new(policy(Some(0)), now);
        lc.start(now);
        let not_found = FailReason::NotFound {
            detail: "404".into(),
        };
        let (next, _) = lc.attempt_failed(Failure::Transient(not_found.clone()), 0.5, now);
        assert_eq!(next, Next::Fail(not_found));
    }

    #[test]
    fn refusals_are_terminal_only_before_the_first_live() {
        let now = Instant::now();
        let refused = FailReason::Rejected {
            detail: "BadName".into(),
        };
        let mut first = Lifecycle::new(policy(None), now);
        first.start(now);
        let (next, _) = first.attempt_failed(Failure::Refused(refused.clone()), 0.5, now);
        assert_eq!(next, Next::Fail(refused.clone()));

        let mut again = Lifecycle::new(policy(None), now);
        again.start(now);
        again.live(now);
        again.lost("reset", 0.5, now);
        let (next, _) = again.attempt_failed(Failure::Refused(refused), 0.5, now);
        assert!(matches!(next, Next::RetryAfter(_)));
    }

    #[test]
    fn terminal_failures_fail_at_once_and_stop_keeps_failed() {
        let now = Instant::now();
        let mut lc = Lifecycle::new(policy(None), now);
        lc.start(now);
        let reason = FailReason::Unauthorized {
            detail: "401".into(),
        };
        let (next, state) = lc.attempt_failed(Failure::Terminal(reason.clone()), 0.5, now);
        assert_eq!(next, Next::Fail(reason.clone()));
        assert_eq!(state, Some(SessionState::Failed { reason }));
        assert_eq!(lc.stop(now), None);
        assert!(lc.state().is_terminal());
    }

    #[test]
    fn no_reconnect_policy_fails_on_the_first_loss() {
        let now = Instant::now();
        let mut lc = Lifecycle::new(policy(Some(0)), now);
        lc.start(now);
        lc.live(now);
        let (next, _) = lc.lost("reset", 0.5, now);
        assert!(matches!(
            next,
            Next::Fail(FailReason::Unreachable { attempts: 1, .. })
        ));
    }

    fn not_found(detail: &str) -> Failure {
        Failure::Transient(FailReason::NotFound {
            detail: detail.into(),
        })
    }

    #[test]
    fn a_stream_that_ends_waits_for_its_return_without_using_attempts() {
        let mut clock = Clock(Instant::now(), Duration::ZERO);
        let mut lc = Lifecycle::new(policy(Some(2)), clock.now());
        lc.start(clock.now());
        lc.live(clock.advance(Duration::from_secs(5)));
        let (next, state) = lc.stream_ended(OnStreamEnd::WaitForReturn, 0.5, clock.now());
        assert_eq!(state, Some(SessionState::StreamEnded));
        assert!(matches!(next, Next::RetryAfter(_)));
        // Far more "not found" answers than the policy's 2 attempts: still waiting.
        for _ in 0..10 {
            let (next, state) =
                lc.attempt_failed(not_found("404"), 0.5, clock.advance(Duration::from_secs(1)));
            assert_eq!(state, None, "no state change while the stream is away");
            assert!(matches!(next, Next::RetryAfter(_)));
        }
        assert_eq!(lc.state(), &SessionState::StreamEnded);
        // Back: Live again, counted as a reconnect.
        assert_eq!(lc.live(clock.now()), Some(SessionState::Live));
        assert_eq!(lc.durations(clock.now()).reconnects, 1);
    }

    #[test]
    fn a_network_failure_while_waiting_is_a_reconnect() {
        let mut clock = Clock(Instant::now(), Duration::ZERO);
        let mut lc = Lifecycle::new(policy(Some(1)), clock.now());
        lc.start(clock.now());
        lc.live(clock.now());
        lc.stream_ended(OnStreamEnd::WaitForReturn, 0.5, clock.now());
        let (_, state) = lc.attempt_failed(
            Failure::Transient(unreachable("refused")),
            0.5,
            clock.advance(Duration::from_secs(1)),
        );
        assert!(matches!(
            state,
            Some(SessionState::Reconnecting { attempt: 1, .. })
        ));
        let (next, _) = lc.attempt_failed(
            Failure::Transient(unreachable("refused")),
            0.5,
            clock.advance(Duration::from_secs(1)),
        );
        assert!(matches!(next, Next::Fail(FailReason::Unreachable { .. })));
    }

    #[test]
    fn a_stream_that_ends_can_end_the_session() {
        let mut clock = Clock(Instant::now(), Duration::ZERO);
        let mut lc = Lifecycle::new(policy(None), clock.now());
        lc.start(clock.now());
        lc.live(clock.now());
        let (next, state) =
            lc.stream_ended(OnStreamEnd::End, 0.5, clock.advance(Duration::from_secs(3)));
        assert_eq!((next, state), (Next::End, Some(SessionState::StreamEnded)));
        assert!(!lc.state().is_terminal());
        assert_eq!(lc.stop(clock.now()), Some(SessionState::Ended));
        assert_eq!(lc.durations(clock.now()).live, Duration::from_secs(3));
    }

    #[test]
    fn a_long_live_period_resets_the_backoff() {
        let mut clock = Clock(Instant::now(), Duration::ZERO);
        let mut lc = Lifecycle::new(policy(None), clock.now());
        lc.start(clock.now());
        lc.live(clock.now());
        for _ in 0..3 {
            lc.attempt_failed(Failure::Transient(unreachable("x")), 0.999, clock.now());
        }
        lc.live(clock.now());
        // Up for 10 s (reset_after): the next loss starts again at the base window.
        let t = clock.advance(Duration::from_secs(10));
        let (next, _) = lc.lost("reset", 0.999, t);
        assert_eq!(next, Next::RetryAfter(Duration::from_micros(99_900)));
    }
}
