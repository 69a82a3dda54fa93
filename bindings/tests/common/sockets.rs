//! The listening sockets of processes, read from `/proc` the way `ss -lntup` does: the socket
//! inodes a process holds (`/proc/PID/fd`), matched against the kernel's socket tables
//! (`/proc/net/{tcp,tcp6,udp,udp6}`). A TCP socket listens in state `LISTEN`; a UDP socket
//! receives from anyone when it is not connected (state `CLOSE` in the table).

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// The address it is bound to.
    pub local: SocketAddr,
    /// The socket's inode.
    pub inode: u64,
}

/// `0100007F` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host byte order.
pub fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words: Vec<[u8; 4]> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).map(u32::to_ne_bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    match words.as_slice() {
        [w] => Some(IpAddr::V4(Ipv4Addr::from(*w))),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (k, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[k * 4..k * 4 + 4].copy_from_slice(w);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// The listening sockets in one of the kernel's tables (`/proc/net/tcp`, say).
fn table(path: &str, proto: &'static str) -> Vec<Listener> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            // TCP_LISTEN = 0x0A; an unconnected UDP socket is TCP_CLOSE = 0x07
            let listening = match proto {
                "tcp" => *state == "0A",
                _ => *state == "07",
            };
            if !listening {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            Some(Listener {
                proto,
                local: SocketAddr::new(parse_ip(ip)?, u16::from_str_radix(port, 16).ok()?),
                inode: inode.parse().ok()?,
            })
        })
        .collect()
}

/// Every listening socket in this network namespace.
pub fn all_listeners() -> Vec<Listener> {
    let mut v = Vec::new();
    for (file, proto) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        v.extend(table(&format!("/proc/net/{file}"), proto));
    }
    v
}

/// The socket inodes `pid` holds open.
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// `pid` and every process below it.
pub fn with_descendants(pid: u32) -> BTreeSet<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
                    Some((p, ppid.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = BTreeSet::from([pid]);
    loop {
        let before = out.len();
        for &(p, pp) in &parents {
            if out.contains(&pp) {
                out.insert(p);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// The listening sockets held by any of `pids`.
pub fn listeners_of(pids: impl IntoIterator<Item = u32>) -> Vec<(u32, Listener)> {
    let all = all_listeners();
    let mut out = Vec::new();
    for pid in pids {
        let inodes = socket_inodes(pid);
        out.extend(
            all.iter()
                .filter(|l| inodes.contains(&l.inode))
                .map(|l| (pid, l.clone())),
        );
    }
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    out
}

/// 127.0.0.0/8 or ::1 (or an IPv4-mapped loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
