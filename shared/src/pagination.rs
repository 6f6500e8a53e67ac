//! Lists are pages of at most `limit` items with an opaque `cursor`.
//!
//! A cursor carries DynamoDB's position (the last key read), which names
//! owners and items, so it is encrypted and authenticated
//! (XChaCha20-Poly1305) with the caller and the query it belongs to as
//! associated data: a client reads nothing in it, and a cursor that was
//! altered, forged, or taken from another user or another query is refused
//! with 400 before any read happens.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The reply shape of every list route.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page's items, at most `limit` of them.
    pub results: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=` as sent. Both are strings so that a bad value becomes a
/// field error of ours rather than a generic rejection; the document shows
/// what a client may send.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page, as it was. A cursor of
    /// another list, another filter or another user is refused with 400.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit.as_deref() {
            None | Some("") => Ok(DEFAULT_LIMIT),
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::field(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }
}

/// A DynamoDB key as our cursors carry it. Every key attribute of the table
/// and its indexes is a string, which keeps cursors small and typed.
pub type StringKey = BTreeMap<String, String>;

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// The position: the last key of the previous page.
    k: StringKey,
}

/// The key that seals cursors, derived from the configured secret.
#[derive(Clone)]
pub struct CursorKey(XChaCha20Poly1305);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

/// XChaCha20's nonce: random per cursor (24 bytes make collisions moot).
const NONCE_LEN: usize = 24;

/// A page of a list kept whole in one item (a project's box order).
pub struct OffsetPage<'a> {
    pub ids: &'a [String],
    pub next_cursor: Option<String>,
}

impl CursorKey {
    pub const MIN_LEN: usize = 32;

    /// The page of `all` that `cursor` (an offset sealed for `reader` and
    /// `scope`) starts, at most `limit` long, and the next page's cursor.
    pub fn offset_page<'a>(
        &self,
        reader: &str,
        scope: &str,
        cursor: Option<&str>,
        all: &'a [String],
        limit: usize,
    ) -> Result<OffsetPage<'a>, ApiError> {
        let offset = match cursor {
            None => 0,
            Some(c) => self
                .open(reader, scope, c)?
                .get("offset")
                .and_then(|o| o.parse::<usize>().ok())
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor issued for this list"))?,
        };
        let start = offset.min(all.len());
        let end = start.saturating_add(limit).min(all.len());
        let next_cursor = (end < all.len()).then(|| {
            self.seal(
                reader,
                scope,
                &StringKey::from([("offset".to_owned(), end.to_string())]),
            )
        });
        Ok(OffsetPage {
            ids: &all[start..end],
            next_cursor,
        })
    }

    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, String> {
        let secret = secret.into();
        if secret.len() < Self::MIN_LEN {
            return Err(format!(
                "cursor secret must be at least {} bytes",
                Self::MIN_LEN
            ));
        }
        // A key of exactly 32 bytes whatever the secret's length, bound to
        // this use (the secret may sign other things one day).
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("HMAC takes any key length");
        derive.update(b"assetbox cursor encryption v1");
        let key = derive.finalize().into_bytes();
        Ok(Self(XChaCha20Poly1305::new(&key)))
    }

    /// Owner and scope, length-prefixed so ("ab","c") and ("a","bc") differ.
    fn associated(owner: &str, scope: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(16 + owner.len() + scope.len());
        for part in [owner.as_bytes(), scope.as_bytes()] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }

    /// Seals `position` for `owner` and the query described by `scope`.
    pub fn seal(&self, owner: &str, scope: &str, position: &StringKey) -> String {
        let body = serde_json::to_vec(&CursorBody {
            k: position.clone(),
        })
        .expect("a string map always serialises");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Self::associated(owner, scope);
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: &body,
                    aad: &aad,
                },
            )
            .expect("encrypting a small buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a cursor sealed by [`seal`](Self::seal) for the same owner and scope.
    pub fn open(&self, owner: &str, scope: &str, cursor: &str) -> Result<StringKey, ApiError> {
        let invalid = || ApiError::field("cursor", "is not a cursor issued for this list");
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if raw.len() <= NONCE_LEN {
            return Err(invalid());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| invalid())?;
        let aad = Self::associated(owner, scope);
        let body = self
            .0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| invalid())?;
        let body: CursorBody = serde_json::from_slice(&body).map_err(|_| invalid())?;
        Ok(body.k)
    }
}

/// One list request's paging, bound to its caller and the list it reads:
/// the limit, the position its cursor named, and the sealing of where the
/// page stopped. Every list route goes through it, so a cursor is always
/// checked against the same owner and scope it is issued for.
pub struct Paging<'a> {
    key: &'a CursorKey,
    owner: &'a str,
    scope: String,
    pub limit: u32,
    /// Where to read from: `None` for the first page.
    pub after: Option<StringKey>,
}

impl CursorKey {
    /// The paging of `query` for `owner`'s list `scope` (a list and its
    /// filters); 400 for a bad limit or a cursor of another list or user.
    pub fn paging<'a>(
        &'a self,
        owner: &'a str,
        scope: impl Into<String>,
        query: &PageQuery,
    ) -> Result<Paging<'a>, ApiError> {
        let scope = scope.into();
        let limit = query.limit()?;
        let after = query
            .cursor
            .as_deref()
            .map(|cursor| self.open(owner, &scope, cursor))
            .transpose()?;
        Ok(Paging {
            key: self,
            owner,
            scope,
            limit,
            after,
        })
    }
}

impl Paging<'_> {
    /// The page of `results` with a cursor for `next`, if the list goes on.
    pub fn page<T>(&self, results: Vec<T>, next: Option<StringKey>) -> Page<T> {
        Page {
            results,
            next_cursor: next.map(|position| self.key.seal(self.owner, &self.scope, &position)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(vec![7u8; 32]).unwrap()
    }

    fn position() -> StringKey {
        StringKey::from([
            ("pk".to_owned(), "USER#alice".to_owned()),
            ("sk".to_owned(), "PROJECT#01J".to_owned()),
        ])
    }

    #[test]
    fn round_trip() {
        let cursor = key().seal("alice", "projects", &position());
        assert_eq!(
            key().open("alice", "projects", &cursor).unwrap(),
            position()
        );
    }

    #[test]
    fn refuses_other_owner_other_query_and_other_key() {
        let cursor = key().seal("alice", "projects", &position());
        assert!(key().open("bob", "projects", &cursor).is_err());
        assert!(key().open("alice", "boxes?project=1", &cursor).is_err());
        let other = CursorKey::new(vec![8u8; 32]).unwrap();
        assert!(other.open("alice", "projects", &cursor).is_err());
    }

    #[test]
    fn refuses_any_altered_byte() {
        let cursor = key().seal("alice", "projects", &position());
        let raw = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for at in 0..raw.len() {
            let mut forged = raw.clone();
            forged[at] ^= 1;
            let err = key()
                .open("alice", "projects", &URL_SAFE_NO_PAD.encode(forged))
                .unwrap_err();
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
            assert!(err.fields.contains_key("cursor"));
        }
        for junk in ["", ".", "abc", "a.b", "!!!.???"] {
            assert!(key().open("alice", "projects", junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn a_cursor_shows_nothing_of_the_key_it_carries() {
        let cursor = key().seal("alice", "projects", &position());
        let raw = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let text = String::from_utf8_lossy(&raw);
        for secret in ["USER#", "alice", "PROJECT#", "01J", "\"pk\""] {
            assert!(
                !text.contains(secret) && !cursor.contains(secret),
                "{secret}"
            );
        }
        // Two cursors of the same position differ (random nonce).
        assert_ne!(cursor, key().seal("alice", "projects", &position()));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(CursorKey::new(vec![1u8; 31]).is_err());
    }

    #[test]
    fn limit_bounds() {
        let q = |l: &str| PageQuery {
            limit: Some(l.to_owned()),
            cursor: None,
        };
        assert_eq!(PageQuery::default().limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(q("1").limit().unwrap(), 1);
        assert_eq!(q("200").limit().unwrap(), 200);
        for bad in ["0", "201", "-1", "ten", "1.5"] {
            assert!(q(bad).limit().is_err(), "{bad}");
        }
    }

    #[test]
    fn paging_seals_and_opens_for_its_own_list_only() {
        let key = key();
        let first = key
            .paging("alice", "projects", &PageQuery::default())
            .unwrap();
        assert_eq!((first.limit, first.after.clone()), (DEFAULT_LIMIT, None));
        let page = first.page(vec![1, 2], Some(position()));
        let query = PageQuery {
            limit: Some("2".to_owned()),
            cursor: page.next_cursor.clone(),
        };
        let next = key.paging("alice", "projects", &query).unwrap();
        assert_eq!((next.limit, next.after.clone()), (2, Some(position())));
        assert!(next.page(Vec::<u8>::new(), None).next_cursor.is_none());
        assert!(key.paging("bob", "projects", &query).is_err());
        assert!(key.paging("alice", "boxes", &query).is_err());
    }
}
