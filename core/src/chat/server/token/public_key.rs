//! Public keys that verify chat tokens an app's auth service signs: RSA (RS256) and
//! Ed25519 (EdDSA), read from PEM or from a JWK Set (RFC 7517).
//!
//! Each key is pinned to one algorithm, decided by the key itself (its type, and the JWK's
//! `alg` when it names one): a token is only checked with keys of its header's `alg`, so
//! a token cannot pick how the hub reads a key (no HS256 with an RSA key as the secret).

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Why keys could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM is not a public key, or not RSA or Ed25519.
    #[error("bad public key PEM: {0}")]
    Pem(String),
    /// The JWK Set is not JSON of the expected shape.
    #[error("bad JWK Set: {0}")]
    Jwks(String),
    /// The JWK Set holds no key this hub can use.
    #[error("the JWK Set holds no RS256 or Ed25519 (EdDSA) signing key")]
    NoUsableKey,
    /// A key file could not be read.
    #[error("reading {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A JWK Set could not be fetched.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// One public key, pinned to its algorithm.
#[derive(Clone)]
pub struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// A PEM public key: RSA (`PUBLIC KEY` or `RSA PUBLIC KEY`) verifies RS256, Ed25519
    /// verifies EdDSA. It has no key id: it is tried for tokens with any `kid`.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| KeyError::Pem("not UTF-8".into()))?;
        let begin = text
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("-----BEGIN "))
            .ok_or_else(|| KeyError::Pem("no -----BEGIN line".into()))?;
        if !begin.ends_with("PUBLIC KEY-----") {
            return Err(KeyError::Pem(format!(
                "{begin}: give the public key (openssl pkey -pubout), never the private one"
            )));
        }
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(PublicKey {
                kid: None,
                alg: Algorithm::RS256,
                key,
            });
        }
        if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            if key.try_get_as_bytes().map(<[u8]>::len) != Ok(32) {
                return Err(KeyError::Pem("an Ed25519 public key is 32 bytes".into()));
            }
            return Ok(PublicKey {
                kid: None,
                alg: Algorithm::EdDSA,
                key,
            });
        }
        Err(KeyError::Pem(
            "neither an RSA nor an Ed25519 public key".into(),
        ))
    }

    /// A JWK: `kty` `RSA` (RS256) or `OKP` with `crv` `Ed25519` (EdDSA). `Ok(None)` for
    /// a key this hub does not use: an encryption key, another algorithm (the JWK's
    /// `alg`), another key type, and every symmetric (`oct`) key.
    pub fn from_jwk(jwk: &Jwk) -> Result<Option<Self>, KeyError> {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            return Ok(None);
        }
        let declared = jwk.common.key_algorithm;
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => match declared {
                None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(_) => return Ok(None),
            },
            AlgorithmParameters::OctetKeyPair(params) => {
                if params.curve != EllipticCurve::Ed25519 {
                    return Ok(None);
                }
                match declared {
                    None | Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                    Some(_) => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| {
            KeyError::Jwks(format!(
                "key {:?}: {e}",
                jwk.common.key_id.as_deref().unwrap_or("(no kid)")
            ))
        })?;
        if alg == Algorithm::EdDSA && key.try_get_as_bytes().map(<[u8]>::len) != Ok(32) {
            return Err(KeyError::Jwks("an Ed25519 key's x is 32 bytes".into()));
        }
        Ok(Some(PublicKey {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        }))
    }

    /// The key id (`kid`), if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether this key may check a token whose header names `alg` and `kid`: same
    /// algorithm, and same key id unless the key has none.
    pub fn fits(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        self.alg == alg
            && match (&self.kid, kid) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The usable keys of a JWK Set (`{"keys": [...]}`); the others are skipped. Refused when
/// none is usable.
pub fn parse_jwks(json: &[u8]) -> Result<Vec<PublicKey>, KeyError> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        match PublicKey::from_jwk(jwk)? {
            Some(key) => keys.push(key),
            None => tracing::debug!(
                kid = jwk.common.key_id.as_deref().unwrap_or(""),
                "JWK skipped: not an RS256 or Ed25519 signing key"
            ),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::NoUsableKey);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Ed25519 public key (RFC 8037 appendix A.2), as JWK and as SPKI PEM.
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const ED_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
        -----END PUBLIC KEY-----\n";

    fn jwks(keys: &str) -> Vec<u8> {
        format!("{{\"keys\": [{keys}]}}").into_bytes()
    }

    #[test]
    fn ed25519_from_pem_and_jwk() {
        let pem = PublicKey::from_pem(ED_PEM.as_bytes()).expect("pem");
        assert_eq!(pem.algorithm(), Algorithm::EdDSA);
        assert_eq!(pem.kid(), None);
        let keys = parse_jwks(&jwks(&format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"ed1"}}"#
        )))
        .expect("jwks");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].algorithm(), Algorithm::EdDSA);
        assert_eq!(keys[0].kid(), Some("ed1"));
        assert!(keys[0].fits(Algorithm::EdDSA, Some("ed1")));
        assert!(keys[0].fits(Algorithm::EdDSA, None));
        assert!(!keys[0].fits(Algorithm::EdDSA, Some("other")));
        assert!(!keys[0].fits(Algorithm::HS256, Some("ed1")));
        assert!(pem.fits(Algorithm::EdDSA, Some("any")));
    }

    #[test]
    fn private_keys_and_garbage_are_refused() {
        let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            PublicKey::from_pem(private.as_bytes()),
            Err(KeyError::Pem(_))
        ));
        assert!(PublicKey::from_pem(b"hello").is_err());
        assert!(parse_jwks(b"{").is_err());
        assert_eq!(parse_jwks(&jwks("")).unwrap_err(), KeyError::NoUsableKey);
    }

    #[test]
    fn symmetric_encryption_and_other_algorithm_keys_are_skipped() {
        let set = jwks(&format!(
            r#"{{"kty":"oct","k":"c2VjcmV0","kid":"hs"}},
               {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","use":"enc","kid":"enc"}},
               {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","alg":"RS256","kid":"mislabelled"}},
               {{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"ec"}},
               {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","alg":"EdDSA","kid":"good"}}"#
        ));
        let keys = parse_jwks(&set).expect("jwks");
        let kids: Vec<_> = keys.iter().map(|k| k.kid()).collect();
        assert_eq!(kids, vec![Some("good")]);
    }
}
