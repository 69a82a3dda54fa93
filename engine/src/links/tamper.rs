//! Message tampering: faults on one kind of the reference node's p2p messages (blocks,
//! transactions, sync), read from each frame's `type` tag. A frame of another shape (another
//! node kind's protocol) is never tampered with.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LinkError;

/// A kind of the reference node's p2p messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// New blocks (`block`).
    Block,
    /// New transactions (`tx`).
    Tx,
    /// Chain sync: tips, chain requests and their answers (`tip`, `get_chain`, `chain`).
    Sync,
}

impl MessageKind {
    /// Every kind, in index order.
    pub const ALL: [MessageKind; 3] = [MessageKind::Block, MessageKind::Tx, MessageKind::Sync];

    /// The kind's slot in per-kind tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The kind named `name` (`block`, `tx`, `sync`).
    pub fn parse(name: &str) -> Result<Self, LinkError> {
        match name.trim() {
            "block" | "blocks" => Ok(MessageKind::Block),
            "tx" | "txs" | "transaction" | "transactions" => Ok(MessageKind::Tx),
            "sync" => Ok(MessageKind::Sync),
            other => Err(LinkError::InvalidValue {
                field: "message kind",
                value: format!("{other:?}"),
                reason: "expected \"block\", \"tx\" or \"sync\"".into(),
            }),
        }
    }

    /// The kind of a whole frame (4-byte length, then the JSON message whose first field is
    /// its `type`); None for a handshake or anything else.
    pub(crate) fn of_frame(frame: &[u8]) -> Option<Self> {
        let rest = frame.get(4..)?.strip_prefix(br#"{"type":""#)?;
        let end = rest.iter().take(16).position(|&b| b == b'"')?;
        match &rest[..end] {
            b"block" => Some(MessageKind::Block),
            b"tx" => Some(MessageKind::Tx),
            b"tip" | b"get_chain" | b"chain" => Some(MessageKind::Sync),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Block => "block",
            MessageKind::Tx => "tx",
            MessageKind::Sync => "sync",
        })
    }
}

/// What a tampering fault does to the messages of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tamper {
    /// Drops each message with this probability.
    Drop(f64),
    /// Sends each message twice with this probability.
    Duplicate(f64),
    /// Holds each message this long; messages of other kinds overtake it.
    Delay(Duration),
    /// Holds each message a uniform random time up to this window, so messages of the kind
    /// arrive out of order.
    Reorder(Duration),
}

impl Tamper {
    pub(crate) fn check(&self) -> Result<(), LinkError> {
        match self {
            Tamper::Drop(p) | Tamper::Duplicate(p) if !(0.0..=1.0).contains(p) => {
                Err(LinkError::InvalidValue {
                    field: "message probability",
                    value: p.to_string(),
                    reason: "must be between 0.0 and 1.0".into(),
                })
            }
            Tamper::Delay(d) | Tamper::Reorder(d) if d.is_zero() => Err(LinkError::InvalidValue {
                field: "message delay",
                value: "0s".into(),
                reason: "must be above zero".into(),
            }),
            _ => Ok(()),
        }
    }

    /// `drop`, `duplicate`, `delay`, `reorder`.
    pub fn verb(&self) -> &'static str {
        match self {
            Tamper::Drop(_) => "drop",
            Tamper::Duplicate(_) => "duplicate",
            Tamper::Delay(_) => "delay",
            Tamper::Reorder(_) => "reorder",
        }
    }
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tamper::Drop(p) => write!(f, "drop (p {p})"),
            Tamper::Duplicate(p) => write!(f, "duplicate (p {p})"),
            Tamper::Delay(d) => write!(f, "delay {d:?}"),
            Tamper::Reorder(w) => write!(f, "reorder within {w:?}"),
        }
    }
}

/// The tampering in force on one directed link for one message kind (every fault folded: the
/// later of two of the same action wins).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct KindTamper {
    pub drop: Option<f64>,
    pub duplicate: Option<f64>,
    pub delay: Option<Duration>,
    pub reorder: Option<Duration>,
}

impl KindTamper {
    pub(crate) fn stack(&mut self, t: Tamper) {
        match t {
            Tamper::Drop(p) => self.drop = Some(p),
            Tamper::Duplicate(p) => self.duplicate = Some(p),
            Tamper::Delay(d) => self.delay = Some(d),
            Tamper::Reorder(w) => self.reorder = Some(w),
        }
    }

    pub(crate) fn any(&self) -> bool {
        *self != KindTamper::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(json: &str) -> Vec<u8> {
        let mut f = (json.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(json.as_bytes());
        f
    }

    #[test]
    fn frames_are_classified_by_their_type_tag() {
        assert_eq!(
            MessageKind::of_frame(&frame(r#"{"type":"block","block":{}}"#)),
            Some(MessageKind::Block)
        );
        assert_eq!(
            MessageKind::of_frame(&frame(r#"{"type":"tx","tx":{}}"#)),
            Some(MessageKind::Tx)
        );
        for sync in ["tip", "get_chain", "chain"] {
            assert_eq!(
                MessageKind::of_frame(&frame(&format!(r#"{{"type":"{sync}"}}"#))),
                Some(MessageKind::Sync)
            );
        }
        assert_eq!(
            MessageKind::of_frame(&frame(r#"{"type":"handshake"}"#)),
            None
        );
        assert_eq!(MessageKind::of_frame(&frame("\x00\x01binary")), None);
        assert_eq!(MessageKind::of_frame(b"ab"), None);
    }

    #[test]
    fn kinds_and_values_are_checked() {
        assert_eq!(MessageKind::parse("tx").unwrap(), MessageKind::Tx);
        let e = MessageKind::parse("blob").unwrap_err().to_string();
        assert!(e.contains("\"blob\"") && e.contains("\"sync\""), "{e}");
        assert!(Tamper::Drop(1.5).check().is_err());
        assert!(Tamper::Delay(Duration::ZERO).check().is_err());
        assert!(Tamper::Reorder(Duration::from_millis(50)).check().is_ok());
    }
}
