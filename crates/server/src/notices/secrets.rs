//! Webhook secrets, sealed: the server must sign with them, but a dump of the database alone
//! should not hand every tenant's secret out in clear.
//!
//! A secret is 32 random bytes (shown as `whsec_` and 64 hex digits). It is stored XORed with
//! a keystream, HMAC-SHA256 of the server's secrets key over the webhook's id and a fresh
//! nonce (a new one at every rotation, so no keystream is used twice). The secrets key lives
//! outside the database: `--secrets-key`/`ORCHARD_SECRETS_KEY`, or `{data}/secrets.key`,
//! made on first start. The database keeps only a check value of it, so that a server started
//! with another key refuses to start instead of signing with garbage.

use std::path::Path;

use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use orchard_store::Store;
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

/// What a secret looks like to people: this prefix and 64 hex digits.
pub(crate) const SECRET_PREFIX: &str = "whsec_";

/// The server's secrets key.
pub(crate) struct SecretsKey([u8; 32]);

impl SecretsKey {
    /// The key given (64 hex digits), or the data directory's (made when missing); checked
    /// against the database's check value (recorded by the first server).
    pub(crate) async fn load(given: Option<&str>, data_dir: &Path, store: &dyn Store) -> anyhow::Result<SecretsKey> {
        let hex_key = match given {
            Some(key) => key.trim().to_string(),
            None => {
                let path = data_dir.join("secrets.key");
                match std::fs::read_to_string(&path) {
                    Ok(text) => text.trim().to_string(),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        let mut fresh = [0u8; 32];
                        rand::rng().fill_bytes(&mut fresh);
                        let text = hex::encode(fresh);
                        write_private(&path, &text).with_context(|| format!("writing {}", path.display()))?;
                        text
                    }
                    Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
                }
            }
        };
        let bytes = hex::decode(&hex_key).ok().and_then(|it| <[u8; 32]>::try_from(it).ok());
        let key = SecretsKey(bytes.context("the secrets key must be 64 hex digits")?);
        let check = hex::encode(key.mac(&[b"orchard secrets key check"]));
        let recorded = store.setting_or_insert("secrets_key_check", check.clone()).await?;
        if recorded != check {
            anyhow::bail!(
                "this server's secrets key is not the one the database's webhook secrets were sealed with: \
                 servers sharing a database must share the key (copy {}/secrets.key, or set ORCHARD_SECRETS_KEY)",
                data_dir.display()
            );
        }
        Ok(key)
    }

    /// A new secret for webhook `id`: (what to show once, nonce, sealed), the last two in hex.
    pub(crate) fn new_secret(&self, id: Uuid) -> (String, String, String) {
        let mut secret = [0u8; 32];
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        rand::rng().fill_bytes(&mut nonce);
        let stream = self.mac(&[id.as_bytes(), &nonce]);
        let sealed: Vec<u8> = secret.iter().zip(stream).map(|(a, b)| a ^ b).collect();
        (format!("{SECRET_PREFIX}{}", hex::encode(secret)), hex::encode(nonce), hex::encode(sealed))
    }

    /// The secret of webhook `id`, as shown when it was made.
    pub(crate) fn open(&self, id: Uuid, nonce: &str, sealed: &str) -> Option<String> {
        let nonce = hex::decode(nonce).ok()?;
        let sealed = hex::decode(sealed).ok()?;
        if sealed.len() != 32 {
            return None;
        }
        let stream = self.mac(&[id.as_bytes(), &nonce]);
        let secret: Vec<u8> = sealed.iter().zip(stream).map(|(a, b)| a ^ b).collect();
        Some(format!("{SECRET_PREFIX}{}", hex::encode(secret)))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// The lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`: Renderjuice's
/// `X-Renderjuice-Signature`.
pub(crate) fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_id_only() {
        let key = SecretsKey([7; 32]);
        let id = Uuid::new_v4();
        let (shown, nonce, sealed) = key.new_secret(id);
        assert!(shown.starts_with(SECRET_PREFIX) && shown.len() == SECRET_PREFIX.len() + 64);
        assert!(!sealed.contains(&shown[SECRET_PREFIX.len()..]), "not stored in clear");
        assert_eq!(key.open(id, &nonce, &sealed).as_deref(), Some(shown.as_str()));
        assert_ne!(SecretsKey([8; 32]).open(id, &nonce, &sealed).as_deref(), Some(shown.as_str()));
        assert_ne!(key.open(Uuid::new_v4(), &nonce, &sealed).as_deref(), Some(shown.as_str()));
        let (_, again, _) = key.new_secret(id);
        assert_ne!(nonce, again, "a fresh nonce each time");
    }

    #[test]
    fn the_signature_is_renderjuices() {
        // Python: hmac.new(b"whsec_x", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_x", 1_700_000_000, b"{}"),
            "be8cb8325f2202445260a855532f967e30ad2a9394ce28da66ee02880ddcb661"
        );
    }
}
