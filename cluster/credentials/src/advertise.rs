//! The address a server tells its peers to dial: what it is bound to, unless that is every
//! interface (then this host's name), or what the operator says (`--advertise-address`).

use std::net::{IpAddr, SocketAddr};

/// This host's name, as the kernel has it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `HOST:PORT` for peers to dial a server bound to `bound`: the bound address itself, or this
/// host's name when bound to every interface (0.0.0.0 or ::).
pub fn advertised_address(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("{}:{}", hostname(), bound.port())
    } else {
        bound.to_string()
    }
}

/// The local address this host would use to reach `peer` (the interface its route goes
/// through), found without sending anything: a session binds it so that the hosts of its
/// cluster can reach it.
pub fn local_address_towards(peer: &str) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    let target = peer.to_socket_addrs().ok()?.next()?;
    let any: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    // A UDP connect only picks the route; no packet leaves.
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_advertised_as_bound_and_any_as_the_host_name() {
        let bound: SocketAddr = "127.0.0.1:5050".parse().unwrap();
        assert_eq!(advertised_address(bound), "127.0.0.1:5050");
        let any: SocketAddr = "0.0.0.0:5050".parse().unwrap();
        assert_eq!(advertised_address(any), format!("{}:5050", hostname()));
    }

    #[test]
    fn the_route_to_loopback_leaves_from_loopback() {
        assert_eq!(
            local_address_towards("127.0.0.1:5050"),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
