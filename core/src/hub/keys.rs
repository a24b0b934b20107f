//! Who may publish what: stream names and stream keys.
//!
//! By default a stream's key is its name: publishing to `rtmp://hub/live/cam1` makes the
//! stream `cam1`. A keyed stream (`--stream NAME:KEY`) may only be published with its
//! key (`rtmp://hub/live/KEY`), and is played by its name; its name is reserved, so
//! publishing to `rtmp://hub/live/NAME` is refused as a wrong key.
//!
//! Names are public (`/api/streams`, WHEP paths, logs); keys are secrets: they appear in
//! no log line, error message or `Debug` output.

use std::collections::HashMap;

use super::HubError;

/// The keyed streams of a hub.
#[derive(Clone, Default)]
pub struct StreamKeys {
    by_key: HashMap<String, String>,
    names: HashMap<String, String>,
}

/// Names only: the keys are secrets.
impl std::fmt::Debug for StreamKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.names.keys().collect();
        names.sort();
        f.debug_struct("StreamKeys")
            .field("keyed_streams", &names)
            .finish_non_exhaustive()
    }
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRefusal {
    /// The name belongs to a keyed stream and the key given is not its key.
    #[error("stream {0} needs its key")]
    WrongKey(String),
    /// The key (or name) is empty or has characters streams cannot be named with. It may
    /// be a mistyped key: it is not shown.
    #[error("bad stream name or key: use 1-64 of A-Z a-z 0-9 _ - .")]
    BadName(String),
}

/// True for a name that works as a URL path segment and a chat room.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl StreamKeys {
    /// Parses `NAME:KEY` entries. Errors name the entry by its position and its name,
    /// never by its key.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, HubError> {
        let mut keys = StreamKeys::default();
        for (n, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref();
            let n = n + 1;
            let (name, key) = entry.split_once(':').ok_or_else(|| {
                HubError::Config(format!("--stream number {n}: expected NAME:KEY"))
            })?;
            if !valid_stream_name(name) {
                return Err(HubError::Config(format!(
                    "--stream number {n}: bad name (use 1-64 of A-Z a-z 0-9 _ - .)"
                )));
            }
            if key.is_empty() || key == name {
                return Err(HubError::Config(format!(
                    "--stream {name}:…: the key must be non-empty and differ from the name"
                )));
            }
            if keys.names.contains_key(name) || keys.by_key.contains_key(key) {
                return Err(HubError::Config(format!(
                    "--stream {name}:…: name or key given twice"
                )));
            }
            keys.by_key.insert(key.to_string(), name.to_string());
            keys.names.insert(name.to_string(), key.to_string());
        }
        Ok(keys)
    }

    /// The stream a publish key opens. Anything after `?` in the key is ignored.
    pub fn resolve(&self, key: &str) -> Result<String, KeyRefusal> {
        let key = key.split('?').next().unwrap_or_default();
        if let Some(name) = self.by_key.get(key) {
            return Ok(name.clone());
        }
        if self.names.contains_key(key) {
            return Err(KeyRefusal::WrongKey(key.to_string()));
        }
        if !valid_stream_name(key) {
            return Err(KeyRefusal::BadName(key.to_string()));
        }
        Ok(key.to_string())
    }

    /// Number of keyed streams.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when no stream is keyed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_names_keyed_names_and_wrong_keys() {
        let keys = StreamKeys::parse(&["studio:s3cret"]).expect("parse");
        assert_eq!(keys.resolve("cam1"), Ok("cam1".into()));
        assert_eq!(keys.resolve("s3cret"), Ok("studio".into()));
        assert_eq!(keys.resolve("s3cret?token=x"), Ok("studio".into()));
        assert_eq!(
            keys.resolve("studio"),
            Err(KeyRefusal::WrongKey("studio".into()))
        );
        assert!(matches!(keys.resolve(""), Err(KeyRefusal::BadName(_))));
        assert!(matches!(keys.resolve("a/b"), Err(KeyRefusal::BadName(_))));
    }

    #[test]
    fn keys_are_never_shown() {
        let keys = StreamKeys::parse(&["studio:s3cret"]).expect("parse");
        assert!(!format!("{keys:?}").contains("s3cret"));
        assert!(format!("{keys:?}").contains("studio"));
        let refusal = keys.resolve("s3cret!").unwrap_err();
        assert!(!refusal.to_string().contains("s3cret"), "{refusal}");
        for entries in [
            &["studio:s3cret", "other:s3cret"][..],
            &["studio:s3cret", "studio:x"][..],
            &["bad name:s3cret"][..],
        ] {
            let error = StreamKeys::parse(entries).unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(StreamKeys::parse(&["nokey"]).is_err());
        assert!(StreamKeys::parse(&["a:"]).is_err());
        assert!(StreamKeys::parse(&["a:a"]).is_err());
        assert!(StreamKeys::parse(&["a b:k"]).is_err());
        assert!(StreamKeys::parse(&["a:k", "b:k"]).is_err());
    }
}
