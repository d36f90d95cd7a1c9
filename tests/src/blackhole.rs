//! An address that never answers: a listener whose accept queue is full, so that the
//! kernel drops every further SYN, as a blackholed address (a firewall that drops, a dead
//! route) behaves. Nothing is ever accepted.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A listening socket with a full accept queue, and the connections that fill it.
#[derive(Debug)]
pub struct Blackhole {
    _listener: Socket,
    _queued: Vec<TcpStream>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Blackhole {
    /// A blackhole on `addr` (port 0 for any); panics unless a connection to it then
    /// really goes unanswered.
    pub fn on(addr: SocketAddr) -> Self {
        let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
        listener.set_reuse_address(true).expect("SO_REUSEADDR");
        listener.bind(&addr.into()).expect("bind the blackhole");
        listener.listen(0).expect("listen");
        let addr = listener
            .local_addr()
            .expect("address")
            .as_socket()
            .expect("an IP address");
        let mut queued = Vec::new();
        // Fill the queue (one or two connections, by kernel) until a SYN goes unanswered.
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the blackhole's queue: {e}"),
            }
            assert!(queued.len() < 64, "the accept queue never filled");
        }
        Self {
            _listener: listener,
            _queued: queued,
            addr,
        }
    }
}
