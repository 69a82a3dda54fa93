//! The node's clock: wall time plus an offset and a drift the framework can set at run time
//! (testing surface `POST /test/clock`) or at start (`testing.clock_offset_ms`,
//! `testing.clock_drift_ppm`). Slots, block production and the "block from the future" rule
//! read it, so a skewed node lives in another slot than its peers.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Milliseconds since the Unix epoch, by the machine's clock.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Setting {
    /// Offset in force at `since`, in ms.
    offset_ms: i64,
    /// Parts per million the clock gains (or, negative, loses) from `since` on.
    drift_ppm: i64,
    /// Wall time (ms) the setting was made.
    since_ms: i64,
}

/// What the clock reads now, for the testing surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockReading {
    /// The node's time, ms since the Unix epoch.
    pub now_ms: i64,
    /// How far it is from wall time now (offset plus the drift accumulated), ms.
    pub skew_ms: i64,
    /// The drift in force, parts per million.
    pub drift_ppm: i64,
}

/// A wall clock with a settable offset and drift.
#[derive(Debug, Default)]
pub struct Clock {
    setting: Mutex<Setting>,
}

impl Clock {
    /// A clock `offset_ms` off wall time, drifting by `drift_ppm` from now on.
    pub fn new(offset_ms: i64, drift_ppm: i64) -> Self {
        let c = Self::default();
        c.set(offset_ms, drift_ppm);
        c
    }

    fn skew_at(s: &Setting, wall: i64) -> i64 {
        let elapsed = wall.saturating_sub(s.since_ms) as i128;
        s.offset_ms + (elapsed * s.drift_ppm as i128 / 1_000_000) as i64
    }

    /// Sets the offset from wall time and the drift from now on.
    pub fn set(&self, offset_ms: i64, drift_ppm: i64) {
        *self.setting.lock().unwrap_or_else(|e| e.into_inner()) = Setting {
            offset_ms,
            drift_ppm,
            since_ms: wall_ms(),
        };
    }

    /// The node's time in ms since the Unix epoch (never before it).
    pub fn now_ms(&self) -> u64 {
        self.read().now_ms.max(0) as u64
    }

    /// The node's time and how it differs from wall time.
    pub fn read(&self) -> ClockReading {
        let s = *self.setting.lock().unwrap_or_else(|e| e.into_inner());
        let wall = wall_ms();
        let skew = Self::skew_at(&s, wall);
        ClockReading {
            now_ms: wall + skew,
            skew_ms: skew,
            drift_ppm: s.drift_ppm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_drift_add_to_wall_time() {
        let c = Clock::new(2_000, 0);
        let r = c.read();
        assert_eq!(r.skew_ms, 2_000);
        assert!((r.now_ms - wall_ms() - 2_000).abs() < 50);
        // drift accumulates from when it was set
        let s = Setting {
            offset_ms: -500,
            drift_ppm: 100_000,
            since_ms: 1_000_000,
        };
        assert_eq!(Clock::skew_at(&s, 1_000_000), -500);
        assert_eq!(Clock::skew_at(&s, 1_010_000), -500 + 1_000);
        c.set(0, 0);
        assert_eq!(c.read().skew_ms, 0);
    }
}
