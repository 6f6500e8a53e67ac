//! Lists are pages of at most `limit` items with an opaque `cursor`.
//!
//! A cursor carries DynamoDB's position (the last key read) and is sealed with
//! an HMAC over that position, the caller and the query it belongs to. A cursor
//! that was altered, forged, or taken from another user or another query is
//! refused with 400 before any read happens.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

pub fn key_to_attributes(key: &StringKey) -> HashMap<String, AttributeValue> {
    key.iter()
        .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
        .collect()
}

/// Extracts `names` from an item (or a LastEvaluatedKey). `None` when one is
/// missing or not a string, which would mean the index design was broken.
pub fn attributes_to_key(
    item: &HashMap<String, AttributeValue>,
    names: &[&str],
) -> Option<StringKey> {
    names
        .iter()
        .map(|name| match item.get(*name) {
            Some(AttributeValue::S(v)) => Some(((*name).to_owned(), v.clone())),
            _ => None,
        })
        .collect()
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// The position: the last key of the previous page.
    k: StringKey,
}

/// The secret that seals cursors. Cloning is cheap enough (32–64 bytes).
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    pub const MIN_LEN: usize = 32;

    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, String> {
        let secret = secret.into();
        if secret.len() < Self::MIN_LEN {
            return Err(format!(
                "cursor secret must be at least {} bytes",
                Self::MIN_LEN
            ));
        }
        Ok(Self(secret))
    }

    fn mac(&self, owner: &str, scope: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Length-prefix each part so ("ab","c") and ("a","bc") sign differently.
        for part in [owner.as_bytes(), scope.as_bytes(), body] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// Seals `position` for `owner` and the query described by `scope`.
    pub fn seal(&self, owner: &str, scope: &str, position: &StringKey) -> String {
        let body = serde_json::to_vec(&CursorBody {
            k: position.clone(),
        })
        .expect("a string map always serialises");
        let tag = self.mac(owner, scope, &body).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Opens a cursor sealed by [`seal`](Self::seal) for the same owner and scope.
    pub fn open(&self, owner: &str, scope: &str, cursor: &str) -> Result<StringKey, ApiError> {
        let invalid = || ApiError::field("cursor", "is not a cursor issued for this list");
        let (body_b64, tag_b64) = cursor.split_once('.').ok_or_else(invalid)?;
        let body = URL_SAFE_NO_PAD.decode(body_b64).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| invalid())?;
        self.mac(owner, scope, &body)
            .verify_slice(&tag)
            .map_err(|_| invalid())?;
        let body: CursorBody = serde_json::from_slice(&body).map_err(|_| invalid())?;
        Ok(body.k)
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
        let (body, tag) = cursor.split_once('.').unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(body).unwrap();
        let at = forged.iter().position(|b| *b == b'0').unwrap();
        forged[at] = b'1';
        let forged = format!("{}.{}", URL_SAFE_NO_PAD.encode(forged), tag);
        let err = key().open("alice", "projects", &forged).unwrap_err();
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(err.fields.contains_key("cursor"));
        for junk in ["", ".", "abc", "a.b", "!!!.???"] {
            assert!(key().open("alice", "projects", junk).is_err(), "{junk:?}");
        }
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
    fn attribute_round_trip() {
        let attrs = key_to_attributes(&position());
        assert_eq!(
            attributes_to_key(&attrs, &["pk", "sk"]).unwrap(),
            position()
        );
        assert!(attributes_to_key(&attrs, &["pk", "gsi1pk"]).is_none());
    }
}
