//! Keeping a room's memory bounded: per-user state that no longer changes anything is
//! forgotten, and an empty room says when it may be dropped.

use std::time::Duration;

use tokio::time::Instant;

use super::Room;

impl Room {
    /// Forgets per-user state that has no effect any more: full rate buckets, slow-mode
    /// marks older than the interval, expired timeouts and old typing marks, of users
    /// who are not members now. Bans stay (they are the room's decisions).
    pub(crate) fn prune(&mut self, now: Instant, now_ms: u64) {
        let present: std::collections::HashSet<&str> =
            self.members.values().map(|m| m.user.id.as_str()).collect();
        let typing = self.rules.typing_interval;
        let slow = self.slow_mode;
        self.buckets
            .retain(|user, bucket| present.contains(user.as_str()) || !bucket.is_full_at(now));
        self.last_send.retain(|user, last| {
            present.contains(user.as_str()) || now.saturating_duration_since(*last) < slow
        });
        self.timeouts.retain(|_, until| *until > now_ms);
        self.typing
            .retain(|_, last| now.saturating_duration_since(*last) < typing);
    }

    /// Whether the room has had no member and no stream audience for `idle`: the
    /// server may then forget it.
    pub(crate) fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        self.members.is_empty()
            && self.stream_viewers == 0
            && self.stream_viewer_ids.is_empty()
            && now.saturating_duration_since(self.touched) >= idle
    }

    /// Users with per-user state held (rate, slow mode, timeouts, typing), for tests
    /// and benchmarks.
    pub(crate) fn per_user_entries(&self) -> usize {
        self.buckets.len() + self.last_send.len() + self.timeouts.len() + self.typing.len()
    }
}
