//! Listening TCP sockets, for the status page and the NTS-KE server.

use std::net::SocketAddr;

/// Binds `addr` (an IPv6 address for IPv6 only, as the NTP sockets) and listens, non-blocking,
/// ready for tokio.
pub fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
