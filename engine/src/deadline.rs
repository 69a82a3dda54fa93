//! Deadlines in protocol units: a bound given as wall time (`90s`), as slots (`20 slots`) or as
//! blocks (`5 blocks`), turned into time from the testnet's consensus parameters only once they
//! are known (a builder keeps the unit; the run resolves it against its topology).
//!
//! Why: a deadline written in seconds encodes one slot duration. The same scenario run with
//! longer slots (a loaded CI machine, `--set slot=2s`) then times out although the chain did
//! exactly what it should; "20 slots" keeps meaning 20 slots. A block is expected every 1/f
//! slots (f, the active slot coefficient), so `n blocks` is `n / f` slots.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::topology::ConsensusSettings;

/// A time bound in wall time or in protocol units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Wall time.
    Time(Duration),
    /// This many slots of the testnet's slot duration.
    Slots(u64),
    /// The expected time of this many blocks: `n / f` slots.
    Blocks(u64),
}

impl From<Duration> for Deadline {
    fn from(d: Duration) -> Self {
        Self::Time(d)
    }
}

impl Deadline {
    /// The wall time this bound stands for under these consensus parameters.
    pub fn resolve(&self, params: &ConsensusSettings) -> Duration {
        match *self {
            Self::Time(d) => d,
            Self::Slots(n) => params.slot_duration.saturating_mul(clamp_u32(n)),
            Self::Blocks(n) => {
                let f = params.active_slot_coeff.clamp(f64::MIN_POSITIVE, 1.0);
                Duration::try_from_secs_f64(params.slot_duration.as_secs_f64() * n as f64 / f)
                    .unwrap_or(Duration::MAX)
            }
        }
    }

    /// Whether the bound is zero whatever the parameters.
    pub fn is_zero(&self) -> bool {
        match *self {
            Self::Time(d) => d.is_zero(),
            Self::Slots(n) | Self::Blocks(n) => n == 0,
        }
    }

    /// The bound as written, with its time when given in protocol units:
    /// `20 slots (10s at 500ms slots)`, `5 blocks (6.25s at 1s slots, f = 0.8)`, `90s`.
    pub fn describe(&self, params: &ConsensusSettings) -> String {
        let time = humantime::format_duration(round_ms(self.resolve(params)));
        let slot = humantime::format_duration(params.slot_duration);
        match self {
            Self::Time(_) => time.to_string(),
            Self::Slots(_) => format!("{self} ({time} at {slot} slots)"),
            Self::Blocks(_) => format!(
                "{self} ({time} at {slot} slots, f = {})",
                params.active_slot_coeff
            ),
        }
    }
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Time(d) => write!(f, "{}", humantime::format_duration(*d)),
            Self::Slots(1) => write!(f, "1 slot"),
            Self::Slots(n) => write!(f, "{n} slots"),
            Self::Blocks(1) => write!(f, "1 block"),
            Self::Blocks(n) => write!(f, "{n} blocks"),
        }
    }
}

/// Wall time as integer milliseconds (as every duration of the reports), protocol units as
/// written (`"20 slots"`).
impl Serialize for Deadline {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Time(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// The forms [`parse`] accepts, for error messages.
pub const ACCEPTED_FORMS: &str =
    "a duration (\"90s\", \"500ms\", \"1m 30s\"), \"N slots\" or \"N blocks\" (N a whole number)";

/// Why a text is not a deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    /// A protocol unit with a count that is not a whole number.
    #[error("{count:?} is not a whole number of {unit}")]
    BadCount {
        /// The count as written.
        count: String,
        /// `slots` or `blocks`.
        unit: &'static str,
    },
    /// Neither a unit nor a duration.
    #[error("{0}")]
    NotADuration(String),
}

/// `"20 slots"`, `"1 slot"`, `"5 blocks"`, `"1 block"` (case-insensitive, with or without the
/// space), or anything `humantime` reads (`"90s"`, `"1m 30s"`).
pub fn parse(text: &str) -> Result<Deadline, DeadlineError> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    for (suffixes, unit, make) in [
        (
            &["slots", "slot"][..],
            "slots",
            Deadline::Slots as fn(u64) -> Deadline,
        ),
        (&["blocks", "block"][..], "blocks", Deadline::Blocks),
    ] {
        if let Some(count) = suffixes.iter().find_map(|s| lower.strip_suffix(s)) {
            let count = count.trim();
            return count
                .parse::<u64>()
                .map(make)
                .map_err(|_| DeadlineError::BadCount {
                    count: count.to_owned(),
                    unit,
                });
        }
    }
    humantime::parse_duration(t)
        .map(Deadline::Time)
        .map_err(|e| DeadlineError::NotADuration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(slot_ms: u64, f: f64) -> ConsensusSettings {
        ConsensusSettings {
            slot_duration: Duration::from_millis(slot_ms),
            active_slot_coeff: f,
            security_param: 10,
        }
    }

    #[test]
    fn units_parse_and_print_as_written() {
        assert_eq!(parse("20 slots"), Ok(Deadline::Slots(20)));
        assert_eq!(parse(" 1 slot "), Ok(Deadline::Slots(1)));
        assert_eq!(parse("5blocks"), Ok(Deadline::Blocks(5)));
        assert_eq!(parse("1 Block"), Ok(Deadline::Blocks(1)));
        assert_eq!(parse("0 slots"), Ok(Deadline::Slots(0)));
        assert_eq!(parse("1m 30s"), Ok(Deadline::Time(Duration::from_secs(90))));
        assert_eq!(Deadline::Slots(20).to_string(), "20 slots");
        assert_eq!(Deadline::Blocks(1).to_string(), "1 block");
        assert_eq!(
            Deadline::Time(Duration::from_millis(1500)).to_string(),
            "1s 500ms"
        );
    }

    #[test]
    fn bad_units_and_counts_are_named() {
        assert_eq!(
            parse("2.5 slots").unwrap_err().to_string(),
            "\"2.5\" is not a whole number of slots"
        );
        assert_eq!(
            parse("-3 blocks").unwrap_err().to_string(),
            "\"-3\" is not a whole number of blocks"
        );
        assert_eq!(
            parse("blocks").unwrap_err().to_string(),
            "\"\" is not a whole number of blocks"
        );
        let e = parse("5 epochs").unwrap_err();
        assert!(matches!(e, DeadlineError::NotADuration(_)), "{e:?}");
        assert!(e.to_string().contains("epochs"), "{e}");
    }

    #[test]
    fn slots_scale_with_the_slot_duration_and_blocks_with_f() {
        let fast = params(200, 0.5);
        let slow = params(2000, 0.5);
        assert_eq!(Deadline::Slots(20).resolve(&fast), Duration::from_secs(4));
        assert_eq!(Deadline::Slots(20).resolve(&slow), Duration::from_secs(40));
        // one block every 1/f = 2 slots
        assert_eq!(Deadline::Blocks(5).resolve(&fast), Duration::from_secs(2));
        assert_eq!(Deadline::Blocks(5).resolve(&slow), Duration::from_secs(20));
        assert_eq!(
            Deadline::Blocks(4).resolve(&params(1000, 0.8)),
            Duration::from_secs(5)
        );
        // wall time does not scale
        let t = Deadline::Time(Duration::from_secs(7));
        assert_eq!(t.resolve(&fast), t.resolve(&slow));
        assert_eq!(
            Deadline::Slots(20).describe(&params(500, 0.8)),
            "20 slots (10s at 500ms slots)"
        );
        assert_eq!(
            Deadline::Blocks(5).describe(&params(1000, 0.8)),
            "5 blocks (6s 250ms at 1s slots, f = 0.8)"
        );
        assert_eq!(t.describe(&fast), "7s");
        assert!(Deadline::Slots(0).is_zero() && !Deadline::Blocks(1).is_zero());
        // absurd counts saturate instead of overflowing
        assert_eq!(
            Deadline::Blocks(u64::MAX).resolve(&params(1000, 0.01)),
            Duration::MAX
        );
    }

    #[test]
    fn serialises_time_as_ms_and_units_as_written() {
        assert_eq!(
            serde_json::to_value(Deadline::Time(Duration::from_millis(1500))).unwrap(),
            serde_json::json!(1500)
        );
        assert_eq!(
            serde_json::to_value(Deadline::Slots(20)).unwrap(),
            serde_json::json!("20 slots")
        );
    }
}
