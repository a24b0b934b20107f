//! Chat tokens: JWTs carrying who the user is, their role and their rooms ([`Claims`]).
//!
//! The server signs and checks HS256 tokens with its shared secret, and also checks RS256
//! and EdDSA tokens with public keys ([`PublicKeys`]: PEM files and a JWK Set, see
//! `docs/auth.md`), so that an app's auth service can issue tokens without sharing a
//! secret. The token's header picks the keys it is checked with: `HS256` the secret only,
//! `RS256` and `EdDSA` the public keys pinned to that algorithm (and its `kid`, when both
//! have one). No other algorithm is accepted.

mod claims;
mod key_set;
mod public_key;
mod source;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::chat::protocol::{ErrorBody, ErrorCode};
pub use claims::{Claims, GUEST_MARK, GUEST_PREFIX, is_guest_id};
use key_set::Refresh;
pub use key_set::{JwksOptions, PublicKeys};
pub use public_key::{KeyError, PublicKey, parse_jwks};
pub use source::{KeySource, MAX_JWKS_BYTES};

/// Signs tokens with a shared secret (HS256) and checks them with it and with public keys.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: PublicKeys,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("hs256", &"secret hidden")
            .field("public", &self.public)
            .finish()
    }
}

/// What checking a token found.
enum Checked {
    Valid(Claims),
    Refused(ErrorBody),
    /// No key fits the token's `alg` and `kid`: a refreshed JWK Set might have it.
    NoKey(ErrorBody),
}

fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation
}

fn unauthorized(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unauthorized, message)
}

impl TokenKeys {
    /// Keys for HS256 with `secret`, and no public key.
    pub fn hs256(secret: &[u8]) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            public: PublicKeys::default(),
        }
    }

    /// These keys, also checking RS256 and EdDSA tokens with `public`.
    pub fn with_public_keys(mut self, public: PublicKeys) -> Self {
        self.public = public;
        self
    }

    /// The public keys tokens are also checked with.
    pub fn public_keys(&self) -> &PublicKeys {
        &self.public
    }

    /// Signs claims into an HS256 token.
    pub fn issue(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| format!("signing the token: {e}"))
    }

    /// Checks a token with the keys there are now: `token_expired` when only its time ran
    /// out, `unauthorized` for anything else (bad signature, unknown key, algorithm not
    /// accepted, malformed, missing or bad claims).
    pub fn verify(&self, token: &str) -> Result<Claims, ErrorBody> {
        match self.check(token) {
            Checked::Valid(claims) => Ok(claims),
            Checked::Refused(error) | Checked::NoKey(error) => Err(error),
        }
    }

    /// Like [`TokenKeys::verify`], but a token whose key id the JWK Set lacks makes the
    /// server read the set again first (at most once per
    /// [`JwksOptions::unknown_kid_every`]), and a periodic read that is due starts in the
    /// background.
    pub async fn verify_or_refresh(&self, token: &str) -> Result<Claims, ErrorBody> {
        if !self.public.refreshes() {
            return self.verify(token);
        }
        self.public.refresh_in_background_if_due();
        match self.check(token) {
            Checked::Valid(claims) => Ok(claims),
            Checked::Refused(error) => Err(error),
            Checked::NoKey(error) => {
                if self.public.refresh(Refresh::UnknownKid).await {
                    self.verify(token)
                } else {
                    Err(error)
                }
            }
        }
    }

    fn check(&self, token: &str) -> Checked {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(e) => return Checked::Refused(unauthorized(format!("bad token: {e}"))),
        };
        let result = match header.alg {
            Algorithm::HS256 => self.decode(token, &self.decoding, Algorithm::HS256),
            alg @ (Algorithm::RS256 | Algorithm::EdDSA) => {
                let keys = self.public.candidates(alg, header.kid.as_deref());
                if keys.is_empty() {
                    return Checked::NoKey(unauthorized(match &header.kid {
                        Some(kid) => format!("bad token: no {alg:?} key with kid {kid:?}"),
                        None => format!("bad token: no {alg:?} key"),
                    }));
                }
                // Keys without a kid are tried in turn; the first that verifies wins.
                let mut last = None;
                for key in &keys {
                    match self.decode(token, key.decoding_key(), key.algorithm()) {
                        Ok(claims) => return Checked::Valid(claims),
                        Err(e) => last = Some(e),
                    }
                }
                match last {
                    Some(error) => Err(error),
                    None => Err(unauthorized("bad token: no key")),
                }
            }
            other => Err(unauthorized(format!(
                "bad token: algorithm {other:?} is not accepted (HS256, RS256 or EdDSA)"
            ))),
        };
        match result {
            Ok(claims) => Checked::Valid(claims),
            Err(error) => Checked::Refused(error),
        }
    }

    /// Decodes with one key, pinned to `alg`, and checks the claims.
    fn decode(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, ErrorBody> {
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &validation(alg)).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        ErrorBody::new(ErrorCode::TokenExpired, "the token expired; refresh it")
                    }
                    _ => unauthorized(format!("bad token: {e}")),
                }
            })?;
        let claims = data.claims;
        let name_chars = claims.name.chars().count();
        if claims.sub.is_empty() || !(1..=40).contains(&name_chars) {
            return Err(unauthorized(
                "bad token: sub must be set and name be 1-40 characters",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::Role;

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

    /// `{"alg":"none"}` and algorithms the hub does not take are refused.
    #[test]
    fn unsigned_and_other_algorithms_are_refused() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let claims = Claims::new("ada", Role::Moderator, vec!["*".into()], 60);
        let payload = b64(&serde_json::to_string(&claims).unwrap());
        let keys = TokenKeys::hs256(b"secret");
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"ES256","typ":"JWT"}"#,
        ] {
            let token = format!("{}.{payload}.", b64(header));
            assert_eq!(
                keys.verify(&token).unwrap_err().code,
                ErrorCode::Unauthorized,
                "{header}"
            );
        }
    }
}
