//! Browser sessions: the dashboard's second way to present an API key.
//!
//! A person logs in with an `RJ-` key once; the server answers with a cookie that names the
//! key by its stored hash (never the key itself) and an expiry, signed with the server's
//! signing key (the one behind its signed URLs, kept in the database, so that every server of
//! a deployment accepts every other's sessions). Each request with the cookie looks the key up
//! again, as a request with the key would: a revoked key ends its sessions.
//!
//! The cookie is `HttpOnly` (page scripts never see it) and `SameSite=Strict` (no other site's
//! page sends it). State changes made with it must also carry [`CSRF_HEADER`], an HMAC of the
//! session handed to the page in a `<meta>` tag: a request forged from elsewhere cannot know it.

use crate::signing::UrlSigner;

/// The cookie's name.
pub(crate) const COOKIE: &str = "orchard_session";

/// The header a state change made with a session cookie must carry.
pub(crate) const CSRF_HEADER: &str = "x-orchard-csrf";

/// How long a session lasts (seconds): a working day, then the key is asked for again.
pub(crate) const SESSION_SECONDS: i64 = 12 * 3600;

/// What the signatures are over: a session and its CSRF token are signed under different
/// names, never those of the HTTP methods the signer's URLs use, so that no signature made for
/// one can stand for another.
const SESSION_PURPOSE: &str = "SESSION";
const CSRF_PURPOSE: &str = "CSRF";

/// A checked session: the key it names and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The stored hash of the API key the person logged in with.
    pub(crate) key_hash: String,
    /// Unix seconds.
    pub(crate) expires: i64,
}

/// Why a session cookie was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    /// Not a value this server made, or altered.
    #[error("the session is not valid: log in again")]
    Invalid,
    /// Past its expiry.
    #[error("the session has expired: log in again")]
    Expired,
}

impl Session {
    /// A session for the key with `key_hash`, from `now` (unix seconds).
    pub(crate) fn new(key_hash: String, now: i64) -> Session {
        Session { key_hash, expires: now + SESSION_SECONDS }
    }

    /// The cookie's value: `{key hash}.{expires}.{signature}`.
    pub(crate) fn cookie_value(&self, signer: &UrlSigner) -> String {
        format!(
            "{}.{}.{}",
            self.key_hash,
            self.expires,
            signer.signature(SESSION_PURPOSE, &self.key_hash, self.expires)
        )
    }

    /// Reads and checks a cookie's value.
    pub(crate) fn parse(value: &str, signer: &UrlSigner, now: i64) -> Result<Session, SessionError> {
        let mut fields = value.split('.');
        let (Some(key_hash), Some(expires), Some(signature), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(SessionError::Invalid);
        };
        let is_hash = key_hash.len() == 64 && key_hash.bytes().all(|it| it.is_ascii_hexdigit());
        let expires = expires.parse::<i64>().map_err(|_| SessionError::Invalid)?;
        if !is_hash {
            return Err(SessionError::Invalid);
        }
        signer.verify(SESSION_PURPOSE, key_hash, expires, signature, now).map_err(|e| match e {
            crate::signing::SignatureError::Invalid => SessionError::Invalid,
            crate::signing::SignatureError::Expired => SessionError::Expired,
        })?;
        Ok(Session { key_hash: key_hash.to_string(), expires })
    }

    /// The session's CSRF token: what the page sends back in [`CSRF_HEADER`].
    pub(crate) fn csrf_token(&self, signer: &UrlSigner) -> String {
        signer.signature(CSRF_PURPOSE, &self.csrf_subject(), self.expires)
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, signer: &UrlSigner, token: &str) -> bool {
        // The expiry was checked with the session; `i64::MIN` as "now" checks only the MAC.
        signer.verify(CSRF_PURPOSE, &self.csrf_subject(), self.expires, token, i64::MIN).is_ok()
    }

    /// What a CSRF token signs: the session itself.
    fn csrf_subject(&self) -> String {
        format!("{}.{}", self.key_hash, self.expires)
    }
}

/// The value of the cookie `name` in a `Cookie` header (`a=1; b=2`).
pub(crate) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|it| it.trim().split_once('=')).find(|(key, _)| *key == name).map(|(_, value)| value)
}

/// The `Set-Cookie` value that stores `value` for the session's life; `Secure` when the
/// dashboard is reached over HTTPS (a browser drops a `Secure` cookie set over plain HTTP).
pub(crate) fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}")
}

/// The `Set-Cookie` value that removes the session.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn a_session_reads_back_until_it_expires() {
        let signer = UrlSigner::new(b"secret");
        let session = Session::new(HASH.into(), 1000);
        let value = session.cookie_value(&signer);
        assert_eq!(Session::parse(&value, &signer, 1001), Ok(session.clone()));
        assert_eq!(Session::parse(&value, &signer, 1000 + SESSION_SECONDS + 1), Err(SessionError::Expired));
    }

    #[test]
    fn an_altered_or_foreign_session_is_refused() {
        let signer = UrlSigner::new(b"secret");
        let value = Session::new(HASH.into(), 1000).cookie_value(&signer);
        let later = value.replacen(&(1000 + SESSION_SECONDS).to_string(), &(2000 + SESSION_SECONDS).to_string(), 1);
        let other_key = value.replacen("ab01", "ab02", 1);
        for bad in [later.as_str(), other_key.as_str(), "", "a.b.c", "x", &format!("{value}.x")] {
            assert_eq!(Session::parse(bad, &signer, 1001), Err(SessionError::Invalid), "{bad}");
        }
        assert_eq!(Session::parse(&value, &UrlSigner::new(b"other"), 1001), Err(SessionError::Invalid));
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let signer = UrlSigner::new(b"secret");
        let session = Session::new(HASH.into(), 1000);
        let token = session.csrf_token(&signer);
        assert!(session.csrf_matches(&signer, &token));
        assert!(!session.csrf_matches(&signer, ""));
        assert!(!Session::new(HASH.into(), 1001).csrf_matches(&signer, &token));
        // A URL signature or the session's own signature is not a CSRF token.
        let cookie = session.cookie_value(&signer);
        assert!(!session.csrf_matches(&signer, cookie.rsplit('.').next().unwrap()));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie("a=1; orchard_session=x.y.z; b=2", COOKIE), Some("x.y.z"));
        assert_eq!(cookie("orchard_session_old=1", COOKIE), None);
    }
}
