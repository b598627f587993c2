//! The keys of the personal feed links: the server's secret and each person's generation, and
//! the tokens made of them.
//!
//! A person's token is HMAC-SHA256(secret, person id, generation), cut to 160 bits and written
//! in lowercase base32 (32 characters): unguessable without the secret, the same in every
//! process that has it (so a link survives restarts and works on every replica), and changed
//! by bumping the person's generation ([`Store::revoke_feed`]), which is how a link that went
//! to the wrong hands is revoked. The secret is generated from the OS's random bytes on first
//! use and kept in the database, unless the environment gives one (`NGAYLE_FEED_SECRET`, for
//! replicas that do not share a database). Only people who were revoked have a generation row.
//!
//! Not here: which feed a token opens (`feeds`, `http`) and the URL around it (`feeds`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::Row;

use super::{BEGIN_WRITE, Store, StoreError};
use crate::schedule::Secret;

/// How many bytes of the MAC a token keeps: 160 bits, far beyond guessing.
const TOKEN_BYTES: usize = 20;
/// The length of a token: its 20 bytes in base32.
pub const TOKEN_LEN: usize = TOKEN_BYTES * 8 / 5;
/// Bytes of a generated secret.
const SECRET_BYTES: usize = 32;

/// What the personal tokens are made of, as read from the store at one moment. Two readings
/// are equal when every token they make is.
#[derive(Clone, PartialEq, Eq)]
pub struct FeedKeys {
    secret: Vec<u8>,
    /// Person id → generation, for the people whose link was revoked (the others: 0).
    generations: BTreeMap<String, i64>,
}

impl std::fmt::Debug for FeedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedKeys")
            .field("secret", &"[redacted]")
            .field("generations", &self.generations)
            .finish()
    }
}

impl FeedKeys {
    /// Keys from a secret and generations (for tests and one-shot tools).
    pub fn new(secret: &[u8], generations: BTreeMap<String, i64>) -> FeedKeys {
        FeedKeys {
            secret: secret.to_vec(),
            generations,
        }
    }

    /// The person's generation: how many times their link was revoked.
    pub fn generation(&self, person_id: &str) -> i64 {
        self.generations.get(person_id).copied().unwrap_or(0)
    }

    /// The person's token (see the module's docs).
    pub fn token(&self, person_id: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.secret);
        let mut ctx = hmac::Context::with_key(&key);
        // Length-prefixed, so that no id and generation can be read as another pair.
        ctx.update(b"ngayle personal feed v1\0");
        ctx.update(&(person_id.len() as u64).to_be_bytes());
        ctx.update(person_id.as_bytes());
        ctx.update(&self.generation(person_id).to_be_bytes());
        let tag = ctx.sign();
        base32(&tag.as_ref()[..TOKEN_BYTES])
    }
}

impl FeedKeys {
    /// The first 20 bytes of an HMAC-SHA256 under the secret of `label` and `fields` (each
    /// length-prefixed, so that no fields can be read as others), in base32: the tag of a
    /// signed link ([`crate::ack`]).
    pub fn tag(&self, label: &[u8], fields: &[&str]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.secret);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(b"\0");
        for f in fields {
            ctx.update(&(f.len() as u64).to_be_bytes());
            ctx.update(f.as_bytes());
        }
        base32(&ctx.sign().as_ref()[..TOKEN_BYTES])
    }
}

/// Lowercase RFC 4648 base32 without padding (`bytes.len()` a multiple of 5 here).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// True when `a` and `b` are equal, compared in constant time (`subtle`), so that timing does
/// not tell how much of a guess was right. A wrong length fails at once: the length is not the
/// secret.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

impl Store {
    /// The keys of the personal feed links now: the secret from `given` (the environment's)
    /// or else the database's — generated and kept on first use, unless `create` is false (a
    /// dry run records nothing: it gets a secret of its own, for this run only) — and every
    /// person's generation. Two processes creating the secret at once agree on one (the first
    /// row written wins).
    pub async fn feed_keys(
        &self,
        given: Option<&Secret>,
        create: bool,
    ) -> Result<FeedKeys, StoreError> {
        let r = self.feed_keys_inner(given, create).await;
        self.note_read(r)
    }

    async fn feed_keys_inner(
        &self,
        given: Option<&Secret>,
        create: bool,
    ) -> Result<FeedKeys, StoreError> {
        let pool = self.pool().await?;
        let secret = match given {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => {
                let stored: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT secret FROM feed_secret WHERE id = 1")
                        .fetch_optional(&pool)
                        .await?;
                match stored {
                    Some(s) => s,
                    None => {
                        let fresh = random_secret()?;
                        if !create {
                            fresh
                        } else {
                            self.note(self.keep_secret(&pool, &fresh).await)?
                        }
                    }
                }
            }
        };
        let rows = sqlx::query("SELECT person_id, generation FROM feed_generations")
            .fetch_all(&pool)
            .await?;
        let mut generations = BTreeMap::new();
        for row in rows {
            generations.insert(row.try_get("person_id")?, row.try_get("generation")?);
        }
        Ok(FeedKeys {
            secret,
            generations,
        })
    }

    /// Writes `fresh` as the secret unless another process wrote one first; returns the one
    /// kept.
    async fn keep_secret(
        &self,
        pool: &sqlx::SqlitePool,
        fresh: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let mut tx = pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO feed_secret (id, secret, created_at) VALUES (1, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(fresh)
        .bind(Utc::now().timestamp())
        .execute(&mut *tx)
        .await?;
        let kept: Vec<u8> = sqlx::query_scalar("SELECT secret FROM feed_secret WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(kept)
    }

    /// Revokes the person's feed link: bumps their generation, so their token changes (the
    /// old link answers 404 from the next request on, in every process). Returns the new
    /// generation.
    pub async fn revoke_feed(
        &self,
        person_id: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let generation: i64 = sqlx::query_scalar(
                "INSERT INTO feed_generations (person_id, generation, revoked_at) VALUES (?, 1, ?)
                 ON CONFLICT (person_id) DO UPDATE SET generation = generation + 1,
                     revoked_at = excluded.revoked_at
                 RETURNING generation",
            )
            .bind(person_id)
            .bind(now.timestamp())
            .fetch_one(&pool)
            .await?;
            Ok(generation)
        }
        .await;
        self.note(r)
    }
}

/// A new secret from the OS's random source.
fn random_secret() -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![0u8; SECRET_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| {
        StoreError::Db(sqlx::Error::Protocol(
            "hệ điều hành không cho số ngẫu nhiên để tạo khoá lịch riêng".into(),
        ))
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc_4648() {
        // RFC 4648 §10, lowercased and unpadded.
        assert_eq!(base32(b"fooba"), "mzxw6ytb");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(&[0xff; 5]), "77777777");
    }

    #[test]
    fn a_token_depends_on_secret_person_and_generation() {
        let keys = FeedKeys::new(b"secret one", BTreeMap::new());
        let t = keys.token("co-lan");
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(
            t,
            FeedKeys::new(b"secret one", BTreeMap::new()).token("co-lan")
        );
        assert_ne!(t, keys.token("co-lan2"));
        assert_ne!(
            t,
            FeedKeys::new(b"secret two", BTreeMap::new()).token("co-lan")
        );
        let revoked = FeedKeys::new(b"secret one", BTreeMap::from([("co-lan".into(), 1)]));
        assert_ne!(t, revoked.token("co-lan"));
        assert_eq!(keys.token("thay-an"), revoked.token("thay-an"));
    }

    #[tokio::test]
    async fn the_secret_is_made_once_and_revoking_bumps_one_person() {
        let store = Store::in_memory().await.unwrap_or_else(|e| panic!("{e}"));
        let dry = store
            .feed_keys(None, false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let first = store
            .feed_keys(None, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let again = store
            .feed_keys(None, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, again);
        assert_ne!(dry.token("a"), first.token("a"), "a dry run keeps nothing");
        let now = Utc::now();
        assert_eq!(store.revoke_feed("a", now).await.ok(), Some(1));
        assert_eq!(store.revoke_feed("a", now).await.ok(), Some(2));
        let after = store
            .feed_keys(None, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((after.generation("a"), after.generation("b")), (2, 0));
        assert_ne!(after.token("a"), first.token("a"));
        assert_eq!(after.token("b"), first.token("b"));
        let given = Secret::new("x".repeat(40));
        let env = store
            .feed_keys(Some(&given), true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            env.token("b"),
            FeedKeys::new(&[b'x'; 40], BTreeMap::new()).token("b")
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
