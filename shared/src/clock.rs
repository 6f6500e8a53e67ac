//! Timestamps as the API shows them: RFC 3339 in UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .expect("an OffsetDateTime always formats as RFC 3339")
}
