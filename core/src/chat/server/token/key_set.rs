//! The public keys a server checks tokens with: fixed ones (PEM files) and a JWK Set
//! that is read again periodically and when a token names a key id it does not know (the
//! auth service rotated its keys), at most once per `unknown_kid_every`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use tokio::time::Instant;
use tracing::{info, warn};

use super::public_key::{KeyError, PublicKey};
use super::source::KeySource;

/// How a JWK Set is kept fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksOptions {
    /// Time allowed for one fetch (5 s).
    pub timeout: Duration,
    /// The set is read again after this long, on the next token checked (10 min).
    pub refresh_every: Duration,
    /// A token with an unknown key id makes the server read the set again at once, but at
    /// most this often (30 s): unknown ids cannot make it hammer the auth service.
    pub unknown_kid_every: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        JwksOptions {
            timeout: Duration::from_secs(5),
            refresh_every: Duration::from_secs(600),
            unknown_kid_every: Duration::from_secs(30),
        }
    }
}

/// Why a set is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresh {
    /// `refresh_every` passed.
    Periodic,
    /// A token named a key id the set lacks.
    UnknownKid,
}

/// When the next read is due: no I/O, the time is an input.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    options: JwksOptions,
    last_attempt: Option<Instant>,
}

impl Schedule {
    fn due(&self, why: Refresh, now: Instant) -> bool {
        let every = match why {
            Refresh::Periodic => self.options.refresh_every,
            Refresh::UnknownKid => self.options.unknown_kid_every,
        };
        self.last_attempt
            .is_none_or(|last| now.saturating_duration_since(last) >= every)
    }
}

struct Remote {
    source: KeySource,
    keys: RwLock<Arc<Vec<PublicKey>>>,
    schedule: Mutex<Schedule>,
    /// One read at a time.
    fetching: tokio::sync::Mutex<()>,
    /// A periodic read is under way in the background: a burst of tokens starts one.
    background: AtomicBool,
}

#[derive(Default)]
struct Inner {
    fixed: Vec<PublicKey>,
    remote: Option<Remote>,
}

/// Public keys for chat tokens. Cheap to clone; clones share the keys.
#[derive(Clone, Default)]
pub struct PublicKeys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("PublicKeys");
        d.field("fixed", &self.inner.fixed);
        if let Some(remote) = &self.inner.remote {
            d.field("jwks", &remote.source.to_string());
        }
        d.finish()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

impl PublicKeys {
    /// These keys only.
    pub fn new(fixed: Vec<PublicKey>) -> Self {
        PublicKeys {
            inner: Arc::new(Inner {
                fixed,
                remote: None,
            }),
        }
    }

    /// `fixed` and the keys of the JWK Set at `source`, read now: this fails when the
    /// first read does.
    pub async fn with_jwks(
        fixed: Vec<PublicKey>,
        source: KeySource,
        options: JwksOptions,
    ) -> Result<Self, KeyError> {
        let keys = source.load(options.timeout).await?;
        info!(jwks = %source, keys = keys.len(), "chat token keys loaded");
        Ok(PublicKeys {
            inner: Arc::new(Inner {
                fixed,
                remote: Some(Remote {
                    source,
                    keys: RwLock::new(Arc::new(keys)),
                    schedule: Mutex::new(Schedule {
                        options,
                        last_attempt: Some(Instant::now()),
                    }),
                    fetching: tokio::sync::Mutex::new(()),
                    background: AtomicBool::new(false),
                }),
            }),
        })
    }

    /// True when there is no key at all (HS256 tokens only).
    pub fn is_empty(&self) -> bool {
        self.inner.fixed.is_empty()
            && self
                .inner
                .remote
                .as_ref()
                .is_none_or(|remote| read(&remote.keys).is_empty())
    }

    /// Every key now.
    pub fn keys(&self) -> Vec<PublicKey> {
        let mut keys = self.inner.fixed.clone();
        if let Some(remote) = &self.inner.remote {
            keys.extend(read(&remote.keys).iter().cloned());
        }
        keys
    }

    /// The keys that may check a token with this `alg` and `kid`.
    pub(super) fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .inner
            .fixed
            .iter()
            .filter(|k| k.fits(alg, kid))
            .cloned()
            .collect();
        if let Some(remote) = &self.inner.remote {
            keys.extend(
                read(&remote.keys)
                    .iter()
                    .filter(|k| k.fits(alg, kid))
                    .cloned(),
            );
        }
        keys
    }

    /// Whether a JWK Set is read again from time to time.
    pub(super) fn refreshes(&self) -> bool {
        self.inner.remote.is_some()
    }

    /// Reads the set again if `why` makes it due; `true` when it was read (and replaced).
    /// A failed read keeps the keys there were.
    pub(super) async fn refresh(&self, why: Refresh) -> bool {
        let Some(remote) = &self.inner.remote else {
            return false;
        };
        let _one = remote.fetching.lock().await;
        let timeout = {
            let mut schedule = crate::sync::lock(&remote.schedule);
            let now = Instant::now();
            if !schedule.due(why, now) {
                return false;
            }
            schedule.last_attempt = Some(now);
            schedule.options.timeout
        };
        match remote.source.load(timeout).await {
            Ok(keys) => {
                info!(jwks = %remote.source, keys = keys.len(), reason = ?why, "chat token keys read again");
                *remote
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
                true
            }
            Err(e) => {
                warn!(error = %e, "reading the chat token keys again failed; keeping the old ones");
                false
            }
        }
    }

    /// Starts a periodic read in the background when one is due.
    pub(super) fn refresh_in_background_if_due(&self) {
        let Some(remote) = &self.inner.remote else {
            return;
        };
        let due = crate::sync::lock(&remote.schedule).due(Refresh::Periodic, Instant::now());
        if !due || remote.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            remote.background.store(false, Ordering::Release);
            return;
        };
        let keys = self.clone();
        runtime.spawn(async move {
            keys.refresh(Refresh::Periodic).await;
            if let Some(remote) = &keys.inner.remote {
                remote.background.store(false, Ordering::Release);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_reads() {
        let options = JwksOptions {
            timeout: Duration::from_secs(1),
            refresh_every: Duration::from_secs(600),
            unknown_kid_every: Duration::from_secs(30),
        };
        let start = Instant::now();
        let never = Schedule {
            options,
            last_attempt: None,
        };
        assert!(never.due(Refresh::Periodic, start));
        assert!(never.due(Refresh::UnknownKid, start));
        let read = Schedule {
            options,
            last_attempt: Some(start),
        };
        let at = |secs| start + Duration::from_secs(secs);
        assert!(!read.due(Refresh::UnknownKid, at(29)));
        assert!(read.due(Refresh::UnknownKid, at(30)));
        assert!(!read.due(Refresh::Periodic, at(599)));
        assert!(read.due(Refresh::Periodic, at(600)));
    }
}
