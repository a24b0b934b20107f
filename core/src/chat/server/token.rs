//! Chat tokens: JWTs (HS256) carrying who the user is, their role and their rooms.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::chat::protocol::{ErrorBody, ErrorCode, Role, UserInfo};

/// The claims of a chat token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The stable user id.
    pub sub: String,
    /// Display name, 1–40 characters.
    pub name: String,
    /// The role.
    pub role: Role,
    /// Rooms the token may join; `"*"` for every room.
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

/// Signs and checks tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(HS256, secret hidden)")
    }
}

impl TokenKeys {
    /// Keys for HS256 with `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs claims into a token.
    pub fn issue(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| format!("signing the token: {e}"))
    }

    /// Checks a token: `token_expired` when only its time ran out, `unauthorized` for
    /// anything else (bad signature, malformed, missing or bad claims).
    pub fn verify(&self, token: &str) -> Result<Claims, ErrorBody> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ErrorBody::new(ErrorCode::TokenExpired, "the token expired; refresh it")
                }
                _ => ErrorBody::new(ErrorCode::Unauthorized, format!("bad token: {e}")),
            })?;
        let claims = data.claims;
        let name_chars = claims.name.chars().count();
        if claims.sub.is_empty() || !(1..=40).contains(&name_chars) {
            return Err(ErrorBody::new(
                ErrorCode::Unauthorized,
                "bad token: sub must be set and name be 1-40 characters",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify() {
        let keys = TokenKeys::hs256(b"secret");
        let claims = Claims::new("ada", Role::Moderator, vec!["cam1".into()], 60);
        let token = keys.issue(&claims).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert!(claims.may_moderate("cam1") && !claims.may_moderate("cam2"));
    }

    #[test]
    fn expired_is_told_apart_from_forged() {
        let keys = TokenKeys::hs256(b"secret");
        let mut claims = Claims::new("ada", Role::Viewer, vec!["*".into()], 60);
        claims.exp -= 120;
        let expired = keys.issue(&claims).unwrap();
        assert_eq!(
            keys.verify(&expired).unwrap_err().code,
            ErrorCode::TokenExpired
        );
        // The same expired token signed with another secret is forged, not expired.
        let forged = TokenKeys::hs256(b"other").issue(&claims).unwrap();
        assert_eq!(
            keys.verify(&forged).unwrap_err().code,
            ErrorCode::Unauthorized
        );
        assert_eq!(
            keys.verify("not.a.jwt").unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn empty_names_are_refused() {
        let keys = TokenKeys::hs256(b"secret");
        let mut claims = Claims::new("ada", Role::Viewer, vec!["*".into()], 60);
        claims.name = String::new();
        let token = keys.issue(&claims).unwrap();
        assert_eq!(
            keys.verify(&token).unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }
}
