//! No one else gets in: a live testnet's control API refuses every call that does not carry the
//! testnet's secret (kept only in the 0600 state file) and such a call changes nothing; every
//! socket a testnet listens on (supervisor, link proxies and relays, nodes) is on loopback, or,
//! for containers, on the run's own Docker network. Real processes throughout: `up` starts the
//! supervisor, requests are written on a plain TCP socket, sockets are read from `/proc`, and the
//! Docker side is read with the docker CLI.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

mod common;

use common::docker::{LABEL_RUN, docker_lines, no_docker};
use common::live::{TOPOLOGY, alive};
use common::sockets::{Listener, is_loopback, listeners_of, parse_ip, with_descendants};

/// The shared temp-dir harness with a state dir of its own; whatever a test leaves up is
/// brought down when it ends.
struct Env {
    base: common::Env,
    names: std::cell::RefCell<Vec<String>>,
}

impl Env {
    fn new() -> Self {
        let base = common::Env::new("live-trust-test-")
            .removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE", "RUST_BACKTRACE"]);
        std::fs::create_dir_all(base.path("state")).unwrap();
        std::fs::write(base.path("topology.rhai"), TOPOLOGY).unwrap();
        Self {
            base,
            names: Default::default(),
        }
    }

    fn run(&self, args: &[&str]) -> common::Run {
        let state = self.base.path("state");
        self.base
            .run_with(&[("NOMOS_SCRIPT_STATE_DIR", state.to_str().unwrap())], args)
    }

    fn up(&self, name: &str, deployer: &str) -> (common::Run, Live) {
        self.names.borrow_mut().push(name.to_owned());
        let topo = self.base.path("topology.rhai");
        let run = self.run(&[
            "up",
            topo.to_str().unwrap(),
            "--name",
            name,
            "--deployer",
            deployer,
        ]);
        assert_eq!(run.code, 0, "up failed: {run:?}");
        (run, self.live(name))
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.base.path(&format!("state/testnets/{name}.json"))
    }

    fn live(&self, name: &str) -> Live {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.state_path(name)).expect("state file"),
        )
        .unwrap();
        let url = v["control_url"].as_str().expect("control url");
        Live {
            control: url
                .strip_prefix("http://")
                .unwrap()
                .parse()
                .expect("control address"),
            secret: v["control_secret"]
                .as_str()
                .expect("control secret")
                .to_owned(),
            supervisor: v["supervisor_pid"].as_u64().unwrap() as u32,
            pids: v["pids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as u32)
                .collect(),
            node_urls: v["node_urls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_owned())
                .collect(),
            run_id: v["run_id"].as_str().unwrap_or_default().to_owned(),
        }
    }

    fn down(&self, name: &str) {
        let run = self.run(&["down", name]);
        assert_eq!(run.code, 0, "down failed: {run:?}");
        self.names.borrow_mut().retain(|n| n != name);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in self.names.borrow().clone() {
            let _ = self.run(&["down", &name]);
        }
    }
}

/// What a live testnet's state file says.
struct Live {
    control: SocketAddr,
    secret: String,
    supervisor: u32,
    pids: Vec<u32>,
    node_urls: Vec<String>,
    run_id: String,
}

/// One HTTP/1.1 request on a fresh socket, with `auth` as the whole `Authorization` value;
/// returns the status and the body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = auth.map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read answer");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

const PARTITION: &str = r#"{"fault":{"kind":"partition","groups":[[0],[1,2]]},"note":null}"#;

#[test]
fn control_calls_without_the_secret_are_refused_and_change_nothing() {
    let env = Env::new();
    let (up, live) = env.up("trust", "local");
    let state = env.state_path("trust");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o600, "state file mode");
    assert_eq!(mode(state.parent().unwrap()), 0o700, "testnets dir mode");
    assert_eq!(live.secret.len(), 64, "32 bytes in hex: {}", live.secret);
    assert!(live.secret.bytes().all(|b| b.is_ascii_hexdigit()));
    // the secret is in the state file only: not printed by `up`, not in the supervisor's log
    let log = std::fs::read_to_string(env.base.path("state/testnets/trust.log")).unwrap();
    assert!(
        !up.stdout.contains(&live.secret) && !up.stderr.contains(&live.secret),
        "{up:?}"
    );
    assert!(!log.contains(&live.secret), "{log}");

    let addr = live.control;
    let wrong_same_length: String = live
        .secret
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let refused: Vec<Option<String>> = vec![
        None,
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some("Bearer wrong".into()),
        Some(format!("Bearer {wrong_same_length}")),
        Some(format!("Bearer {}", &live.secret[..63])),
        Some(format!("Bearer {}0", live.secret)),
        Some(format!("Basic {}", live.secret)),
        Some(live.secret.clone()),
    ];
    for auth in &refused {
        for (method, path, body) in [
            ("POST", "/shutdown", ""),
            ("POST", "/faults", PARTITION),
            ("POST", "/nodes/1/kill", ""),
            ("POST", "/nodes", r#"{"peers":null,"stake":null}"#),
            ("POST", "/heal", ""),
            ("GET", "/state", ""),
            ("GET", "/nodes/0/logs?lines=5", ""),
            ("GET", "/faults/log", ""),
            ("GET", "/no/such/path", ""),
        ] {
            let (status, answer) = request(addr, method, path, auth.as_deref(), body);
            assert_eq!(
                status, 401,
                "{method} {path} with Authorization {auth:?}: {answer}"
            );
            assert!(answer.contains("secret"), "{answer}");
            assert!(!answer.contains(&live.secret), "{answer}");
        }
    }

    // nothing changed: the supervisor and every node run, no fault was applied, no node added
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(live.supervisor));
    assert_eq!(live.pids.len(), 3);
    assert!(live.pids.iter().all(|&p| alive(p)), "{:?}", live.pids);
    assert!(state.exists());
    let bearer = format!("Bearer {}", live.secret);
    let (status, faults) = request(addr, "GET", "/faults", Some(&bearer), "");
    assert_eq!((status, faults.trim()), (200, "[]"));
    let (status, log) = request(addr, "GET", "/faults/log", Some(&bearer), "");
    assert_eq!((status, log.trim()), (200, "[]"));
    let (status, snapshot) = request(addr, "GET", "/state", Some(&bearer), "");
    assert_eq!(status, 200, "{snapshot}");
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
    let nodes = snapshot["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{snapshot}");
    assert!(nodes.iter().all(|n| n["state"] == "running"), "{snapshot}");

    // the very same partition with the secret is applied: the refusals were about the secret
    let (status, applied) = request(addr, "POST", "/faults", Some(&bearer), PARTITION);
    assert_eq!(status, 200, "{applied}");
    let (_, faults) = request(addr, "GET", "/faults", Some(&bearer), "");
    assert!(faults.contains("partition"), "{faults}");
    let (status, _) = request(addr, "POST", "/heal", Some(&bearer), "");
    assert_eq!(status, 200);

    // the CLI carries the secret: an attached REPL and `down` work
    let repl = {
        let state_dir = env.base.path("state");
        let mut c = env.base.cmd();
        c.env("NOMOS_SCRIPT_STATE_DIR", state_dir)
            .args(["repl", "--attach", "trust"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"net.isolate(2)\n:faults\nnet.heal()\nprint(`nodes ${net.node_count}`)\n")
            .unwrap();
        common::Run::new(child.wait_with_output().unwrap(), Duration::ZERO)
    };
    assert_eq!(repl.code, 0, "{repl:?}");
    assert!(repl.stdout.contains("isolate node 2"), "{repl:?}");
    assert!(repl.stdout.contains("nodes 3"), "{repl:?}");
    env.down("trust");
    assert!(!alive(live.supervisor));
    assert!(!state.exists());
}

/// A listening socket and the pid holding it.
type Owned = (u32, Listener);

/// Listening sockets of the supervisor and everything below it (the local node processes),
/// with the ones bound beyond `allowed`.
fn supervisor_listeners(live: &Live, allowed: impl Fn(IpAddr) -> bool) -> (Vec<Owned>, Vec<Owned>) {
    let pids = with_descendants(live.supervisor);
    let all = listeners_of(pids);
    let beyond = all
        .iter()
        .filter(|(_, l)| !allowed(l.local.ip()))
        .cloned()
        .collect();
    (all, beyond)
}

#[test]
fn a_local_testnet_listens_on_loopback_only() {
    let env = Env::new();
    let (_, live) = env.up("loopback", "local");
    let pids = with_descendants(live.supervisor);
    for p in &live.pids {
        assert!(pids.contains(p), "node {p} is not below the supervisor");
    }
    let (all, beyond) = supervisor_listeners(&live, is_loopback);
    assert!(
        beyond.is_empty(),
        "listening beyond loopback: {beyond:#?}\nall: {all:#?}"
    );
    // what was checked is the whole testnet: the control API, the link proxies in the
    // supervisor (a star of 3: a proxy on each of its 2 dialled links) and each node's API,
    // testing and p2p ports
    let of = |pid: u32| all.iter().filter(move |(p, _)| *p == pid);
    assert!(
        of(live.supervisor).any(|(_, l)| l.local == live.control),
        "control API not found: {all:#?}"
    );
    assert!(
        of(live.supervisor).count() >= 3,
        "link proxies not found: {all:#?}"
    );
    for (i, &pid) in live.pids.iter().enumerate() {
        let ports: BTreeSet<u16> = of(pid).map(|(_, l)| l.local.port()).collect();
        assert!(ports.len() >= 3, "node {i} (pid {pid}): {all:#?}");
        let api: u16 = live.node_urls[i]
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(ports.contains(&api), "node {i}'s API port {api}: {all:#?}");
    }
    env.down("loopback");
}

#[test]
fn a_compose_testnet_publishes_on_loopback_and_relays_on_its_network() {
    if let Some(reason) = no_docker() {
        eprintln!("skipped: no Docker engine ({reason})");
        return;
    }
    let env = Env::new();
    let (_, live) = env.up("compose-loopback", "compose");
    assert!(!live.run_id.is_empty());
    let network = format!("nomos-script-{}", live.run_id);
    let gateway: IpAddr = docker_lines(&[
        "network",
        "inspect",
        &network,
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
    ])
    .concat()
    .split_whitespace()
    .find_map(|g| g.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4))
    .expect("the run network's gateway");

    // host side: the supervisor's sockets are on loopback (control API, link proxies) or on the
    // run network's gateway (the relays containers dial)
    let (all, beyond) = supervisor_listeners(&live, |ip| is_loopback(ip) || ip == gateway);
    assert!(
        beyond.is_empty(),
        "listening beyond loopback and {gateway}: {beyond:#?}\nall: {all:#?}"
    );
    assert!(
        all.iter().any(|(_, l)| l.local == live.control),
        "control API not found: {all:#?}"
    );
    assert!(
        all.iter().any(|(_, l)| l.local.ip() == gateway),
        "no relay on the gateway: {all:#?}"
    );

    // containers: each on the run network only, every published port on 127.0.0.1
    let containers = docker_lines(&[
        "ps",
        "--filter",
        &format!("label={LABEL_RUN}={}", live.run_id),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(containers.len(), 3, "{containers:?}");
    let mut published = Vec::new();
    for c in &containers {
        let nets = docker_lines(&[
            "inspect",
            c,
            "--format",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        ])
        .concat();
        assert_eq!(
            nets.split_whitespace().collect::<Vec<_>>(),
            [&network],
            "{c}"
        );
        let ports = docker_lines(&["port", c]);
        assert!(!ports.is_empty(), "{c} publishes nothing");
        for line in ports {
            // `8080/tcp -> 127.0.0.1:32768`
            let host = line.rsplit_once(" -> ").map(|(_, h)| h).unwrap_or(&line);
            let addr: SocketAddr = host
                .parse()
                .unwrap_or_else(|e| panic!("{c}: `{line}`: {e}"));
            assert!(is_loopback(addr.ip()), "{c} publishes on {addr}: `{line}`");
            published.push(addr.port());
        }
    }
    for url in &live.node_urls {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert!(published.contains(&port), "{url} is not a published port");
    }
    // whoever holds the published ports on the host (Docker's proxy, if it runs one) holds
    // them on loopback
    for l in common::sockets::all_listeners() {
        if published.contains(&l.local.port()) && l.proto == "tcp" {
            assert!(is_loopback(l.local.ip()), "published port on {}", l.local);
        }
    }
    env.down("compose-loopback");
}

#[test]
fn the_kernels_socket_tables_are_read_right() {
    assert_eq!(
        parse_ip("0100007F"),
        Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    );
    assert_eq!(
        parse_ip("00000000000000000000000001000000"),
        Some(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))
    );
    // sockets of this process are found, with their addresses and protocol
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let mine = listeners_of([std::process::id()]);
    let has = |proto: &str, addr: SocketAddr| {
        mine.iter()
            .any(|(_, l)| l.proto == proto && l.local == addr)
    };
    assert!(has("tcp", tcp.local_addr().unwrap()), "{mine:?}");
    assert!(has("udp", udp.local_addr().unwrap()), "{mine:?}");
    assert!(!is_loopback(udp.local_addr().unwrap().ip()));
}
