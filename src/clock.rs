//! Times as people read them. The history keeps seconds since the epoch (UTC); they are
//! shown in the local time zone (`TZ`, else the system's `/etc/localtime`, read with the
//! tz database), always with the zone, so no time is ambiguous.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The zone times are shown in, found once per process.
struct LocalZone {
    // Unit tests show a zone of their choosing instead.
    #[cfg_attr(test, allow(dead_code))]
    zone: TimeZone,
    /// Why it is UTC instead of what `TZ` says.
    problem: Option<String>,
}

fn local() -> &'static LocalZone {
    static LOCAL: OnceLock<LocalZone> = OnceLock::new();
    LOCAL.get_or_init(|| match TimeZone::try_system() {
        Ok(zone) => LocalZone {
            zone,
            problem: None,
        },
        Err(err) => LocalZone {
            zone: TimeZone::UTC,
            problem: Some(format!(
                "the local time zone is unknown ({err}); times are shown in UTC. Set TZ to a zone such as Europe/Berlin"
            )),
        },
    })
}

/// When `TZ` names no zone airlock can read: what to tell the user (times are then UTC).
pub(crate) fn local_zone_problem() -> Option<&'static str> {
    local().problem.as_deref()
}

#[cfg(not(test))]
fn shown_zone() -> TimeZone {
    local().zone.clone()
}

// Unit tests see one fixed zone (UTC unless a test picks another), so what they render does
// not depend on the machine's; the binary's tests cover TZ and the system zone.
#[cfg(test)]
thread_local! {
    static TEST_ZONE: std::cell::RefCell<TimeZone> = const { std::cell::RefCell::new(TimeZone::UTC) };
}

#[cfg(test)]
fn shown_zone() -> TimeZone {
    TEST_ZONE.with(|zone| zone.borrow().clone())
}

/// Shows times in `name` (an IANA zone) on this thread, for tests.
#[cfg(test)]
pub(crate) fn use_zone_in_tests(name: &str) {
    let zone = TimeZone::get(name).unwrap_or(TimeZone::UTC);
    TEST_ZONE.with(|shown| *shown.borrow_mut() = zone);
}

/// `2026-12-01 18:05:32 +09:00 JST`, in the local zone.
pub(crate) fn local_date_time(seconds: i64) -> String {
    date_time_in(seconds, &shown_zone())
}

/// `18:05:32 JST`, in the local zone: for narrow columns.
pub(crate) fn local_clock(seconds: i64) -> String {
    clock_in(seconds, &shown_zone())
}

/// `2026-12-01 18:05:32 +09:00 JST`; the abbreviation is left out where the zone has none
/// but its offset (`+04`).
pub(crate) fn date_time_in(seconds: i64, zone: &TimeZone) -> String {
    let Ok(at) = Timestamp::from_second(seconds) else {
        return format!("{seconds} s after 1970-01-01 UTC");
    };
    let zoned = at.to_zoned(zone.clone());
    let mut text = zoned.strftime("%Y-%m-%d %H:%M:%S %:z").to_string();
    let abbreviation = zoned.strftime("%Z").to_string();
    if abbreviation.chars().any(|c| c.is_ascii_alphabetic()) {
        text.push(' ');
        text.push_str(&abbreviation);
    }
    text
}

/// `18:05:32 JST` (or `18:05:32 +04` where the zone has no abbreviation).
pub(crate) fn clock_in(seconds: i64, zone: &TimeZone) -> String {
    match Timestamp::from_second(seconds) {
        Ok(at) => at
            .to_zoned(zone.clone())
            .strftime("%H:%M:%S %Z")
            .to_string(),
        Err(_) => "--:--:--".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-07-01 12:00:00 UTC.
    const JULY: i64 = 1_782_907_200;
    /// 2026-01-15 12:00:00 UTC.
    const JANUARY: i64 = 1_768_478_400;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap_or_else(|err| panic!("{name}: {err}"))
    }

    #[test]
    fn a_time_shows_the_local_wall_clock_with_offset_and_abbreviation() {
        assert_eq!(
            date_time_in(JULY, &zone("Asia/Tokyo")),
            "2026-07-01 21:00:00 +09:00 JST"
        );
        assert_eq!(
            date_time_in(JULY, &TimeZone::UTC),
            "2026-07-01 12:00:00 +00:00 UTC"
        );
        assert_eq!(
            date_time_in(JULY, &zone("Asia/Kolkata")),
            "2026-07-01 17:30:00 +05:30 IST"
        );
        assert_eq!(clock_in(JULY, &zone("Asia/Tokyo")), "21:00:00 JST");
    }

    #[test]
    fn daylight_saving_time_changes_offset_and_abbreviation() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            date_time_in(JULY, &berlin),
            "2026-07-01 14:00:00 +02:00 CEST"
        );
        assert_eq!(
            date_time_in(JANUARY, &berlin),
            "2026-01-15 13:00:00 +01:00 CET"
        );
        let new_york = zone("America/New_York");
        assert_eq!(clock_in(JANUARY, &new_york), "07:00:00 EST");
        assert_eq!(clock_in(JULY, &new_york), "08:00:00 EDT");
    }

    #[test]
    fn a_zone_without_an_abbreviation_shows_its_offset_once() {
        assert_eq!(
            date_time_in(JULY, &zone("Asia/Dubai")),
            "2026-07-01 16:00:00 +04:00"
        );
        assert_eq!(clock_in(JULY, &zone("Asia/Dubai")), "16:00:00 +04");
    }

    #[test]
    fn the_shown_zone_is_the_one_picked_and_utc_otherwise() {
        assert_eq!(local_clock(JULY), "12:00:00 UTC");
        use_zone_in_tests("Asia/Tokyo");
        assert_eq!(local_date_time(JULY), "2026-07-01 21:00:00 +09:00 JST");
    }
}
