//! Cryptarchia-style consensus: the stake-weighted slot lottery, block
//! construction and verification, and the block tree with fork choice.

pub mod block;
pub mod chain;
pub mod lottery;
