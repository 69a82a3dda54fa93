//! The `docker-compose.yml` written to the run dir, rendered from
//! `assets/compose/docker-compose.yml.tera`.

use std::path::Path;

use super::docker::{LABEL_NODE, LABEL_RUN};
use super::provision::COMPOSE_CONFIG_FILE;
use super::{API_PORT, ComposeTestnet, NODE_DIR_IN_CONTAINER, P2P_PORT};

/// The template, compiled in.
pub const TEMPLATE: &str = include_str!("../../../../assets/compose/docker-compose.yml.tera");

#[derive(serde::Serialize)]
struct Node {
    index: usize,
    service: String,
    command: Vec<String>,
    volume: String,
}

/// Renders the compose file for `net` as it is now (every node so far).
pub(super) fn render(net: &ComposeTestnet) -> Result<String, String> {
    let config = Path::new(NODE_DIR_IN_CONTAINER).join(COMPOSE_CONFIG_FILE);
    let (_, command) = net
        .kind
        .command(&config)
        .map_err(|e| format!("compose file: {e}"))?;
    let nodes: Vec<Node> = net
        .lock_nodes()
        .iter()
        .map(|n| Node {
            index: n.index,
            service: format!("node-{}", n.index),
            command: command.clone(),
            volume: format!("./node-{}:{NODE_DIR_IN_CONTAINER}", n.index),
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("run_id", &net.run_id);
    // Distinct from the live run's id, so a hand-run stack is never mistaken for the live one,
    // yet `gc` still finds it by label.
    ctx.insert("hand_run_id", &format!("{}-by-hand", net.run_id));
    ctx.insert(
        "project",
        &format!("nomos-script-{}", net.run_id.replace('-', "")),
    );
    ctx.insert("image", &net.image.tag);
    ctx.insert("api_port", &API_PORT);
    ctx.insert("p2p_port", &P2P_PORT);
    ctx.insert("env", &net.env);
    ctx.insert("label_run", LABEL_RUN);
    ctx.insert("label_node", LABEL_NODE);
    ctx.insert("nodes", &nodes);
    tera::Tera::one_off(TEMPLATE, &ctx, false).map_err(|e| {
        let mut m = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            m = format!("{m}: {s}");
            src = s.source();
        }
        format!("failed to render the compose template: {m}")
    })
}

/// Writes `<run dir>/docker-compose.yml`.
pub(super) fn write_compose_file(net: &ComposeTestnet) -> Result<(), String> {
    let text = render(net)?;
    let path = net.run_dir.join("docker-compose.yml");
    std::fs::write(&path, text).map_err(|e| format!("failed to write {}: {e}", path.display()))
}
