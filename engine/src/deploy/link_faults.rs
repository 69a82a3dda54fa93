//! Network faults for the deployers whose peer traffic runs through the engine's [`LinkLayer`]
//! (local and compose). They share one implementation so a fault is checked, applied and reported
//! (as a control event) the same way whichever of them runs the nodes.

use super::node_control::NodeProcesses;
use super::{Capability, ControlError, ControlFuture, NetworkFaults};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkError, LinkLayer, LinkSel};
use crate::report::ControlAction;

/// What a deployer hands the shared fault functions: its link layer (if it runs with links);
/// whether it is torn down and where control events go come from its control core.
pub(crate) trait LinkBacked: NodeProcesses {
    /// How the deployer is named when it is asked for faults without links, e.g. "local (without links)".
    const WITHOUT_LINKS: &'static str;

    /// The run's link layer; `None` when the deployer was built without links.
    fn link_layer(&self) -> Option<&LinkLayer>;

    /// True once teardown has begun: faults are refused from then on.
    fn is_torn_down(&self) -> bool {
        self.core().is_torn_down()
    }

    /// Records a control action in the run's event stream.
    fn emit_control(&self, action: crate::report::ControlAction) {
        self.core().emit(action);
    }
}

/// The network faults of every backend whose links run through the engine's link layer: the
/// layer changes at once, so each call is ready when polled.
impl<T: LinkBacked> NetworkFaults for T {
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> ControlFuture<'_, FaultId> {
        Box::pin(std::future::ready(apply(self, fault, note)))
    }
    fn revert_fault(&self, id: FaultId) -> ControlFuture<'_, ()> {
        Box::pin(std::future::ready(revert(self, id)))
    }
    fn clear_links(&self, links: LinkSel) -> ControlFuture<'_, usize> {
        Box::pin(std::future::ready(clear(self, links)))
    }
    fn heal(&self) -> ControlFuture<'_, usize> {
        Box::pin(std::future::ready(heal(self)))
    }
    fn active_faults(&self) -> Vec<ActiveFault> {
        active(self)
    }
    fn fault_log(&self) -> Vec<FaultRecord> {
        log(self)
    }
}

/// The link layer, or why faults cannot be applied now.
fn layer<T: LinkBacked>(net: &T) -> Result<&LinkLayer, ControlError> {
    if net.is_torn_down() {
        return Err(ControlError::TornDown);
    }
    net.link_layer().ok_or_else(|| ControlError::Unsupported {
        capability: Capability::NetworkFaults,
        deployer: T::WITHOUT_LINKS.to_owned(),
    })
}

fn link_err(e: LinkError) -> ControlError {
    ControlError::caused("the link layer refused", e)
}

pub(crate) fn apply<T: LinkBacked>(
    net: &T,
    fault: Fault,
    note: Option<String>,
) -> Result<FaultId, ControlError> {
    let layer = layer(net)?;
    let id = layer.apply(fault.clone(), note).map_err(link_err)?;
    net.emit_control(ControlAction::Fault {
        fault,
        via: None,
        active: layer.active_faults().len(),
    });
    Ok(id)
}

pub(crate) fn revert<T: LinkBacked>(net: &T, id: FaultId) -> Result<(), ControlError> {
    let layer = layer(net)?;
    layer.revert(id).map_err(link_err)?;
    net.emit_control(ControlAction::Revert {
        id,
        active: layer.active_faults().len(),
    });
    Ok(())
}

pub(crate) fn clear<T: LinkBacked>(net: &T, links: LinkSel) -> Result<usize, ControlError> {
    let layer = layer(net)?;
    let n = layer.clear(links.clone()).map_err(link_err)?;
    net.emit_control(ControlAction::Clear {
        links,
        touched: n,
        active: layer.active_faults().len(),
    });
    Ok(n)
}

pub(crate) fn heal<T: LinkBacked>(net: &T) -> Result<usize, ControlError> {
    let n = layer(net)?.heal();
    net.emit_control(ControlAction::Heal { reverted: n });
    Ok(n)
}

pub(crate) fn active<T: LinkBacked>(net: &T) -> Vec<ActiveFault> {
    net.link_layer()
        .map(|l| l.active_faults())
        .unwrap_or_default()
}

pub(crate) fn log<T: LinkBacked>(net: &T) -> Vec<FaultRecord> {
    net.link_layer().map(|l| l.log()).unwrap_or_default()
}

/// Node control always; network faults only with links.
pub(crate) fn supports<T: LinkBacked>(net: &T) -> Vec<super::FaultKind> {
    super::node_and_link_kinds(net.link_layer().is_some())
}
