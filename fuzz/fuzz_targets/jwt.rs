//! Chat tokens: `TokenKeys::verify` on any string a client sends as its token, and on
//! any claims JSON behind a valid HS256 signature (what a broken or hostile token
//! issuer could sign).
//!
//! Input: the first byte picks the mode. Even: the rest is the token. Odd: the rest is
//! `header JSON` newline `claims JSON`, signed with the server's key.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use streamhub::chat::server::TokenKeys;
use streamhub_fuzz::chat::SECRET;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = TokenKeys::hs256(SECRET);
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
        };
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let key = EncodingKey::from_secret(SECRET);
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
            .expect("HMAC signing");
        format!("{message}.{signature}")
    };
    if let Ok(claims) = keys.verify(&token) {
        // What verifies is a usable identity.
        assert!(!claims.sub.is_empty());
        assert!((1..=40).contains(&claims.name.chars().count()));
        let _ = (
            claims.user(),
            claims.allows_room("a"),
            claims.may_moderate("a"),
        );
    }
});
