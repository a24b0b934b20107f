//! The live streams of a hub, by name: one publisher each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::stream::LiveStream;
use crate::sync::lock;

/// The live streams.
#[derive(Default)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<LiveStream>>>,
}

impl Registry {
    /// Makes `name` live for a new publisher; `None` if it already has one.
    pub fn claim(&self, name: &str) -> Option<Arc<LiveStream>> {
        let mut streams = lock(&self.streams);
        if streams.contains_key(name) {
            return None;
        }
        let stream = Arc::new(LiveStream::new(name));
        streams.insert(name.to_string(), stream.clone());
        Some(stream)
    }

    /// The publisher of `stream` left: it is no longer live and its viewers are told.
    pub fn release(&self, stream: &Arc<LiveStream>) {
        let mut streams = lock(&self.streams);
        if streams
            .get(stream.name())
            .is_some_and(|current| Arc::ptr_eq(current, stream))
        {
            streams.remove(stream.name());
        }
        drop(streams);
        stream.end();
    }

    /// The live stream called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LiveStream>> {
        lock(&self.streams).get(name).cloned()
    }

    /// Every live stream, by name.
    pub fn list(&self) -> Vec<Arc<LiveStream>> {
        let mut all: Vec<_> = lock(&self.streams).values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("streams", &lock(&self.streams).keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_publisher_per_name_until_it_leaves() {
        let registry = Registry::default();
        let first = registry.claim("a").expect("free");
        assert!(registry.claim("a").is_none(), "second publisher refused");
        assert!(registry.get("a").is_some());
        registry.release(&first);
        assert!(first.has_ended());
        assert!(registry.get("a").is_none());
        let second = registry.claim("a").expect("free again");
        // A late release of the old publisher leaves the new one alone.
        registry.release(&first);
        assert!(registry.get("a").is_some());
        assert!(!second.has_ended());
    }
}
