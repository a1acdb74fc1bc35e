//! Time: unix seconds UTC inside, RFC 3339 on the wire; a timestamp without offset is UTC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Why a wire timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {0:?}")]
pub struct TimeParseError(pub String);

/// Seconds since the unix epoch, now.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the unix epoch, now.
pub fn now_unix_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-22T01:02:03Z`).
pub fn format_rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// Now as RFC 3339 UTC with nanoseconds, for signed requests: two identical requests made in
/// the same second still carry different timestamps (and so different signatures).
pub fn now_rfc3339_precise() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| format_rfc3339(now_unix()))
}

/// Parses RFC 3339; a timestamp written without an offset is taken as UTC.
pub fn parse_rfc3339(s: &str) -> Result<i64, TimeParseError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let no_offset = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let no_offset_frac =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    PrimitiveDateTime::parse(s, no_offset)
        .or_else(|_| PrimitiveDateTime::parse(s, no_offset_frac))
        .map(|t| t.assume_utc().unix_timestamp())
        .map_err(|_| TimeParseError(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_offsetless_is_utc() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2026-11-22T01:02:03Z").unwrap(),
            1_795_309_323
        );
        assert_eq!(parse_rfc3339("2026-11-22T01:02:03").unwrap(), 1_795_309_323);
        assert_eq!(
            parse_rfc3339("2026-11-22T02:02:03+01:00").unwrap(),
            1_795_309_323
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T01:02:03.5").unwrap(),
            1_795_309_323
        );
        assert!(parse_rfc3339("yesterday").is_err());
        let now = now_unix();
        assert_eq!(parse_rfc3339(&format_rfc3339(now)).unwrap(), now);
        let precise = now_rfc3339_precise();
        assert!(
            (parse_rfc3339(&precise).unwrap() - now).abs() <= 1,
            "{precise}"
        );
    }
}
