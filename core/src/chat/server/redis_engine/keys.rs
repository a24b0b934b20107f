//! The Redis keys of one room. They share one hash tag (`{r:ROOM}`), so a room lives on
//! one Redis Cluster slot and its scripts may touch all of them.

/// The keys of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeys {
    tag: String,
}

impl RoomKeys {
    /// The keys of `room`.
    pub fn new(room: &str) -> Self {
        // `{` and `}` would end the hash tag early: they are escaped, and so is the
        // escape, so that two rooms never share a key.
        let escaped = room
            .replace('%', "%25")
            .replace('{', "%7B")
            .replace('}', "%7D");
        RoomKeys {
            tag: format!("{{r:{escaped}}}"),
        }
    }

    /// Epoch, generation, top seq and slow mode (a hash).
    pub fn meta(&self) -> String {
        format!("{}:meta", self.tag)
    }

    /// The messages (a stream; entry ids `generation-seq`).
    pub fn stream(&self) -> String {
        format!("{}:stream", self.tag)
    }

    /// The ids of deleted entries (a set).
    pub fn deleted(&self) -> String {
        format!("{}:del", self.tag)
    }

    /// Where the room's messages are published.
    pub fn channel(&self) -> String {
        format!("{}:pub", self.tag)
    }

    /// Bans and timeouts: field `b:USER` when banned, `t:USER` the end of a timeout in
    /// ms (a hash).
    pub fn moderation(&self) -> String {
        format!("{}:mod", self.tag)
    }

    /// Each node's count of the room's audience (a hash).
    pub fn audience(&self) -> String {
        format!("{}:aud", self.tag)
    }

    /// When each node's count expires (a sorted set).
    pub fn audience_expiry(&self) -> String {
        format!("{}:aud-exp", self.tag)
    }

    /// The first reply to `user`'s `client_msg_id`.
    pub fn dedup(&self, user: &str, client_msg_id: &str) -> String {
        // The user id's length keeps ("a:b", "c") and ("a", "b:c") apart.
        format!("{}:d:{}:{user}:{client_msg_id}", self.tag, user.len())
    }

    /// `user`'s state in the room: rate bucket and last send (a string).
    pub fn sender(&self, user: &str) -> String {
        format!("{}:s:{}:{user}", self.tag, user.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag_that_no_room_name_can_break() {
        let keys = RoomKeys::new("cam}{1");
        assert_eq!(keys.meta(), "{r:cam%7D%7B1}:meta");
        assert!(keys.stream().starts_with("{r:cam%7D%7B1}"));
        assert_ne!(RoomKeys::new("a%7Db"), RoomKeys::new("a}b"));
        assert_ne!(
            RoomKeys::new("r").dedup("a:b", "c"),
            RoomKeys::new("r").dedup("a", "b:c")
        );
    }
}
