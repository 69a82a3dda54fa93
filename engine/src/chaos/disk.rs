//! Disk fault streams of the chaos workload: `c.disk_full()` (a random node's disk full for a
//! while, then with room again) and `c.lose_unflushed()` (a random node's last writes held back,
//! then the node killed so they are lost, started again and its writes made durable). Planned
//! from the run seed like every stream ([`super::plan`]).

use std::time::Duration;

use serde::Serialize;

use super::spec::{
    ChaosBuilder, ChaosError, ChaosStream, Delay, Targets, delay_setters, duration_setters,
    targets_setters,
};

/// What a disk stream does to its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DiskMode {
    /// The disk full for the hold, then with room again.
    Full,
    /// The last `blocks` writes held back for the hold, then the node killed (losing them),
    /// started again, and its writes durable again.
    LoseUnflushed { blocks: u64 },
}

/// Random disk faults: `c.disk_full()`, `c.lose_unflushed()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskSpec {
    pub delay: Delay,
    pub duration: Delay,
    pub targets: Targets,
    pub mode: DiskMode,
}

impl DiskSpec {
    /// The stream's name in messages.
    pub fn kind(&self) -> &'static str {
        match self.mode {
            DiskMode::Full => "disk_full",
            DiskMode::LoseUnflushed { .. } => "lose_unflushed",
        }
    }

    /// Refuses bounds that cannot be planned, naming the setting.
    pub(super) fn check(&self) -> Result<(), ChaosError> {
        let kind = self.kind();
        super::spec::check_delay(kind, "min_delay", "max_delay", self.delay)?;
        super::spec::check_delay(kind, "min_duration", "max_duration", self.duration)?;
        super::spec::check_targets(kind, &self.targets)?;
        if let DiskMode::LoseUnflushed { blocks } = self.mode
            && !(1..=10_000).contains(&blocks)
        {
            return Err(ChaosError::new(
                "blocks",
                format!("lose_unflushed blocks = {blocks}: between 1 and 10000"),
            ));
        }
        Ok(())
    }
}

impl ChaosBuilder {
    fn disk(self, mode: DiskMode) -> DiskBuilder {
        DiskBuilder {
            parent: self,
            spec: DiskSpec {
                delay: Delay::secs(5, 10),
                duration: Delay::secs(2, 5),
                targets: Targets::All,
                mode,
            },
        }
    }

    /// Random full disks (defaults: every 5-10 s, lasting 2-5 s, all nodes).
    pub fn disk_full(self) -> DiskBuilder {
        self.disk(DiskMode::Full)
    }

    /// Random crashes that lose the last writes (defaults: every 5-10 s, 3 blocks held back
    /// for 2-5 s before the kill, all nodes).
    pub fn lose_unflushed(self) -> DiskBuilder {
        self.disk(DiskMode::LoseUnflushed { blocks: 3 })
    }
}

/// `c.disk_full()...apply()`, `c.lose_unflushed()...apply()`.
#[derive(Debug, Clone)]
pub struct DiskBuilder {
    parent: ChaosBuilder,
    pub spec: DiskSpec,
}
delay_setters!(DiskBuilder);
duration_setters!(DiskBuilder);

targets_setters!(
    DiskBuilder,
    "Only these nodes' disks fail.",
    "These nodes' disks never fail."
);

impl DiskBuilder {
    /// How many block writes are held back before the kill (`lose_unflushed` only).
    pub fn blocks(mut self, n: u64) -> Self {
        if let DiskMode::LoseUnflushed { blocks } = &mut self.spec.mode {
            *blocks = n;
        }
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Disk(self.spec))
    }
}
