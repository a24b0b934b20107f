//! Where a JWK Set comes from: a file, or an `http(s)` URL fetched with a timeout.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::public_key::{KeyError, PublicKey, parse_jwks};

/// Largest JWK Set read (a set holds a few keys of a few hundred bytes each).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where a JWK Set is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file, read again at each refresh.
    File(PathBuf),
    /// An `http://` or `https://` URL (an auth service's `jwks_uri`).
    Url(Url),
}

impl KeySource {
    /// `http://…` or `https://…` is a URL, anything else a file path.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.starts_with("http://") || text.starts_with("https://") {
            let url = Url::parse(text).map_err(|e| KeyError::Fetch {
                url: text.to_string(),
                reason: e.to_string(),
            })?;
            Ok(KeySource::Url(url))
        } else if text.is_empty() {
            Err(KeyError::Read {
                path: String::new(),
                reason: "empty path".into(),
            })
        } else {
            Ok(KeySource::File(PathBuf::from(text)))
        }
    }

    /// Reads and parses the set.
    pub async fn load(&self, timeout: Duration) -> Result<Vec<PublicKey>, KeyError> {
        let bytes = match self {
            KeySource::File(path) => read_file(path).await?,
            KeySource::Url(url) => fetch(url, timeout).await?,
        };
        parse_jwks(&bytes)
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Url(url) => write!(f, "{url}"),
        }
    }
}

async fn read_file(path: &PathBuf) -> Result<Vec<u8>, KeyError> {
    let error = |reason: String| KeyError::Read {
        path: path.display().to_string(),
        reason,
    };
    // A small local file: read in place.
    let len = std::fs::metadata(path)
        .map_err(|e| error(e.to_string()))?
        .len();
    if len > MAX_JWKS_BYTES as u64 {
        return Err(error(format!("larger than {MAX_JWKS_BYTES} bytes")));
    }
    std::fs::read(path).map_err(|e| error(e.to_string()))
}

async fn fetch(url: &Url, timeout: Duration) -> Result<Vec<u8>, KeyError> {
    let error = |reason: String| KeyError::Fetch {
        url: url.to_string(),
        reason,
    };
    let client = crate::whep::http::client(timeout).map_err(|e| error(e.to_string()))?;
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(error(format!("HTTP {}", response.status())));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error(e.to_string()))? {
        if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(error(format!("larger than {MAX_JWKS_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert!(matches!(
            KeySource::parse("https://auth.example/.well-known/jwks.json"),
            Ok(KeySource::Url(_))
        ));
        assert_eq!(
            KeySource::parse("keys/jwks.json"),
            Ok(KeySource::File(PathBuf::from("keys/jwks.json")))
        );
        assert!(KeySource::parse("").is_err());
        assert!(KeySource::parse("http://").is_err());
    }
}
