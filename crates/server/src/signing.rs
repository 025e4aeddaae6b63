//! Signed, expiring URLs for the local storage backend.
//!
//! S3 has presigned URLs; a local directory has none, so the server mints its own: an
//! HMAC-SHA256 over the method, the path and the expiry, keyed with a secret kept in the
//! database (so every server of a deployment accepts every other's URLs).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not match.
    #[error("the URL's signature is not valid")]
    Invalid,
    /// The URL is past its expiry.
    #[error("the URL has expired")]
    Expired,
}

/// Signs and checks URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    /// A signer keyed with `secret`.
    pub fn new(secret: &[u8]) -> UrlSigner {
        UrlSigner { key: secret.to_vec() }
    }

    fn mac(&self, method: &str, path: &str, expires: i64) -> HmacSha256 {
        // Any key length is valid for HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string (`expires=…&signature=…`) that authorizes `method path` until `expires` (unix seconds).
    pub fn sign(&self, method: &str, path: &str, expires: i64) -> String {
        format!("expires={expires}&signature={}", self.signature(method, path, expires))
    }

    /// The signature alone (lowercase hex), for values other than URLs (session cookies).
    pub fn signature(&self, method: &str, path: &str, expires: i64) -> String {
        hex::encode(self.mac(method, path, expires).finalize().into_bytes())
    }

    /// Checks a signature in constant time, then the expiry against `now` (unix seconds).
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let bytes = hex::decode(signature).map_err(|_| SignatureError::Invalid)?;
        self.mac(method, path, expires).verify_slice(&bytes).map_err(|_| SignatureError::Invalid)?;
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature_of(query: &str) -> String {
        query.split("signature=").nth(1).unwrap().to_string()
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signer = UrlSigner::new(b"secret");
        let query = signer.sign("PUT", "/blobs/uploads/abc", 100);
        let signature = signature_of(&query);
        assert_eq!(signer.verify("PUT", "/blobs/uploads/abc", 100, &signature, 99), Ok(()));
        assert_eq!(signer.verify("PUT", "/blobs/uploads/abc", 100, &signature, 101), Err(SignatureError::Expired));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let signer = UrlSigner::new(b"secret");
        let signature = signature_of(&signer.sign("PUT", "/blobs/uploads/abc", 100));
        for (method, path, expires, sig) in [
            ("GET", "/blobs/uploads/abc", 100, signature.as_str()),
            ("PUT", "/blobs/uploads/abd", 100, signature.as_str()),
            ("PUT", "/blobs/uploads/abc", 1000, signature.as_str()),
            ("PUT", "/blobs/uploads/abc", 100, "00"),
            ("PUT", "/blobs/uploads/abc", 100, "not hex"),
        ] {
            assert_eq!(signer.verify(method, path, expires, sig, 0), Err(SignatureError::Invalid), "{method} {path}");
        }
        let other = UrlSigner::new(b"other");
        assert_eq!(other.verify("PUT", "/blobs/uploads/abc", 100, &signature, 0), Err(SignatureError::Invalid));
    }
}
