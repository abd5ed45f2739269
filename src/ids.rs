//! Identifiers for sessions, blocks and runs: sortable by time, unique within a history.

use std::time::{SystemTime, UNIX_EPOCH};

/// `PREFIX-YYYYMMDD-HHMMSS-XXXXXX`, UTC, with 24 random bits.
pub fn new_id(prefix: &str) -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut random = [0u8; 3];
    // Without randomness the timestamp alone still identifies the session in practice.
    let _ = getrandom::fill(&mut random);
    format!("{prefix}-{}-{}", utc_stamp(seconds), hex(&random))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random hex of `n` bytes, for nonces.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        // Extremely unlikely; fall back to time and pid so the value still varies.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = nanos ^ u128::from(std::process::id());
        bytes
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (seed >> ((i % 16) * 8)) as u8);
    }
    hex(&bytes)
}

/// `YYYYMMDD-HHMMSS` for seconds since the Unix epoch (proleptic Gregorian, UTC).
pub(crate) fn utc_stamp(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// First 12 hex digits of the code's SHA-256.
pub(crate) fn short_hash(code: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(code.as_bytes());
    hex(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_calendar_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_795_000_000), "20261118-110640");
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let a = new_id("s");
        let b = new_id("s");
        assert!(
            a.starts_with("s-") && a.len() == "s-20261126-120000-abcdef".len(),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(random_hex(16).len(), 32);
    }
}
