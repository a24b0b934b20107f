//! The claims of a chat token: who the user is, their role and their rooms.

use serde::{Deserialize, Serialize};

use crate::chat::protocol::{Role, UserInfo};

/// The `sub` prefix of guests: users of the hub's development tokens (`POST /api/token`),
/// who are not known to any auth service. An app's auth service must not issue it.
pub const GUEST_PREFIX: &str = "guest:";

/// The mark appended to a guest's display name.
pub const GUEST_MARK: &str = " (guest)";

/// True for the user id of a guest ([`GUEST_PREFIX`]).
pub fn is_guest_id(id: &str) -> bool {
    id.starts_with(GUEST_PREFIX)
}

/// The claims of a chat token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The stable user id.
    pub sub: String,
    /// Display name, 1–40 characters.
    pub name: String,
    /// The role.
    pub role: Role,
    /// Rooms the token may join (for a stream: also watch it when the hub asks for watch
    /// tokens); `"*"` for every room.
    pub rooms: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    /// Claims for `name` (also the user id) valid for `ttl_secs` from now.
    pub fn new(user: &str, role: Role, rooms: Vec<String>, ttl_secs: u64) -> Self {
        let now = crate::chat::protocol::unix_ms() / 1000;
        Claims {
            sub: user.to_string(),
            name: user.to_string(),
            role,
            rooms,
            exp: now + ttl_secs,
            iat: Some(now),
        }
    }

    /// A guest viewer of one room: id `guest:NAME`, display name `NAME (guest)`.
    pub fn guest(name: &str, room: &str, ttl_secs: u64) -> Self {
        let mut claims = Claims::new(name, Role::Viewer, vec![room.to_string()], ttl_secs);
        claims.sub = format!("{GUEST_PREFIX}{name}");
        claims.name = format!("{name}{GUEST_MARK}");
        claims
    }

    /// Whether this is a guest's token ([`Claims::guest`]).
    pub fn is_guest(&self) -> bool {
        is_guest_id(&self.sub)
    }

    /// The user as other members see them.
    pub fn user(&self) -> UserInfo {
        UserInfo {
            id: self.sub.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }

    /// Whether the token may join `room`.
    pub fn allows_room(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r == "*" || r == room)
    }

    /// Whether the token may moderate `room`: moderators in any room they may join,
    /// broadcasters in the rooms their token names.
    pub fn may_moderate(&self, room: &str) -> bool {
        match self.role {
            Role::Moderator => self.allows_room(room),
            Role::Broadcaster => self.allows_room(room),
            Role::Viewer => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_are_marked_and_scoped() {
        let guest = Claims::guest("ada", "cam1", 60);
        assert_eq!(guest.sub, "guest:ada");
        assert_eq!(guest.name, "ada (guest)");
        assert_eq!(guest.role, Role::Viewer);
        assert!(guest.is_guest());
        assert!(guest.allows_room("cam1") && !guest.allows_room("cam2"));
        assert!(!Claims::new("ada", Role::Viewer, vec!["*".into()], 60).is_guest());
    }
}
