//! Kernel TCP statistics (TCP_INFO) of a connected socket, on Linux.
//!
//! Elsewhere [`tcp_info`] returns `None`: the counters are a bonus for the diagnosis (a lossy path
//! shows as retransmits), never something a probe depends on.

/// The counters lbprobe reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// The kernel's round-trip time variance estimate (mean deviation), microseconds.
    pub rttvar_us: u32,
    /// Total retransmitted segments over the connection's life.
    pub retransmits: u32,
}

/// TCP_INFO of a connected TCP socket; `None` when the kernel refuses (not a TCP socket, closed).
#[cfg(target_os = "linux")]
pub fn tcp_info(socket: &impl std::os::fd::AsFd) -> Option<TcpInfo> {
    use std::os::fd::AsRawFd;

    let fd = socket.as_fd().as_raw_fd();
    let info = getsockopt_tcp_info(fd)?;
    Some(TcpInfo {
        rtt_us: info.tcpi_rtt,
        rttvar_us: info.tcpi_rttvar,
        // tcpi_retransmits only counts the current unrecovered timeout; the total is what
        // tells a lossy path.
        retransmits: info.tcpi_total_retrans,
    })
}

#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "TCP_INFO is read with getsockopt(2), which std does not wrap"
)]
fn getsockopt_tcp_info(fd: std::os::fd::RawFd) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is a plain C struct for which all-zero bytes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is borrowed from a live socket for the duration of the call; `info` and `len`
    // are valid for writes and `len` holds the size of `info`, which the kernel never exceeds.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info)
}

/// TCP_INFO is Linux-only here: always `None`.
#[cfg(not(target_os = "linux"))]
pub fn tcp_info<S>(_socket: &S) -> Option<TcpInfo> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_of_a_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let info = tcp_info(&client).expect("TCP_INFO on a connected socket");
        assert_eq!(info.retransmits, 0);
        // A UDP socket is not TCP: the kernel refuses and we say so with None.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(tcp_info(&udp).is_none());
    }
}
