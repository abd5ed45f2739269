//! Memory and output sizes written the way people write them: `"512MiB"`, `"64k"`, `"1GB"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes, read from and written as a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("KB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
];

impl ByteSize {
    pub(crate) const fn kib(n: u64) -> Self {
        Self(n << 10)
    }

    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    pub(crate) fn bytes(self) -> u64 {
        self.0
    }

    /// The size as a usize, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits.parse().map_err(|_| {
            format!("`{text}` is not a size; write a whole number and a unit, like \"512MiB\"")
        })?;
        let unit = unit.trim();
        let multiplier = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit))
                .map(|(_, factor)| *factor)
                .ok_or_else(|| {
                    format!("`{text}` has an unknown unit `{unit}`; use B, KiB, MiB or GiB")
                })?
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, factor) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= factor && n.is_multiple_of(factor) {
                return write!(f, "{}{unit}", n / factor);
            }
        }
        write!(f, "{n}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!("512MiB".parse::<ByteSize>(), Ok(ByteSize(512 << 20)));
        assert_eq!("64k".parse::<ByteSize>(), Ok(ByteSize(64 << 10)));
        assert_eq!("2GB".parse::<ByteSize>(), Ok(ByteSize(2_000_000_000)));
        assert_eq!("17".parse::<ByteSize>(), Ok(ByteSize(17)));
        assert_eq!(" 1 GiB ".parse::<ByteSize>(), Ok(ByteSize(1 << 30)));
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        let err = "lots".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("512MiB"), "{err}");
        let err = "5 parsecs".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("unknown unit"), "{err}");
        assert!("99999999999999GiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::mib(512).to_string(), "512MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize::kib(3).to_string(), "3KiB");
    }
}
