//! Scripted fake proxies: tokio tasks on 127.0.0.1:0 that read and write exact bytes, for
//! the faults real proxy servers cannot produce on demand.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fake proxy: each accepted connection is handed to the script.
#[derive(Debug, Clone)]
pub struct FakeProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

/// What a script gets: the client connection, and a log of the bytes it read.
#[derive(Debug)]
pub struct Session {
    /// The connection from the client under test.
    pub stream: TcpStream,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    /// Reads exactly `n` bytes (recorded), or fewer if the client closes.
    pub async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.stream.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        buf.truncate(got);
        self.received.lock().expect("lock").extend_from_slice(&buf);
        buf
    }

    /// Reads up to the end of an HTTP request head (recorded).
    pub async fn read_head(&mut self) -> String {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match self.stream.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => buf.push(byte[0]),
            }
        }
        self.received.lock().expect("lock").extend_from_slice(&buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Reads a SOCKS5 greeting (version, methods) and returns the methods offered.
    pub async fn read_socks5_greeting(&mut self) -> Vec<u8> {
        let head = self.read_exact(2).await;
        let n = head.get(1).copied().unwrap_or(0) as usize;
        self.read_exact(n).await
    }

    /// Reads a SOCKS5 request and returns it whole.
    pub async fn read_socks5_request(&mut self) -> Vec<u8> {
        let mut req = self.read_exact(4).await;
        let rest = match req.get(3) {
            Some(1) => 6,
            Some(4) => 18,
            Some(3) => {
                let len = self.read_exact(1).await;
                req.extend_from_slice(&len);
                len.first().copied().unwrap_or(0) as usize + 2
            }
            _ => 0,
        };
        req.extend(self.read_exact(rest).await);
        req
    }

    /// Reads a SOCKS4 or SOCKS4a request and returns it whole: the 8-byte head, the user id
    /// and its NUL, and for SOCKS4a (address 0.0.0.x) the host name and its NUL.
    pub async fn read_socks4_request(&mut self) -> Vec<u8> {
        let mut req = self.read_exact(8).await;
        let socks4a = req.len() == 8 && req[4..7] == [0, 0, 0] && req[7] != 0;
        let strings = if socks4a { 2 } else { 1 };
        let mut nuls = 0;
        while nuls < strings {
            let byte = self.read_exact(1).await;
            let Some(&b) = byte.first() else { break };
            nuls += usize::from(b == 0);
            req.push(b);
        }
        req
    }

    /// Writes bytes, ignoring a client that went away.
    pub async fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// Writes bytes one at a time, flushing after each.
    pub async fn write_split(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write(&[*b]).await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Connects to `target` and pipes both ways until either side closes.
    pub async fn pipe_to(self, target: SocketAddr) {
        if let Ok(mut upstream) = TcpStream::connect(target).await {
            let mut stream = self.stream;
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        }
    }

    /// Connects to `target` and pipes both ways until `freeze` is notified: from then on
    /// it relays nothing and keeps both connections open (a stalled tunnel), until the
    /// test's runtime ends.
    pub async fn pipe_until(self, target: SocketAddr, freeze: Arc<tokio::sync::Notify>) {
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            return;
        };
        let mut stream = self.stream;
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream) => {}
            () = freeze.notified() => std::future::pending::<()>().await,
        }
    }

    /// Keeps the connection open without answering, until the client closes it.
    pub async fn hang(mut self) {
        let mut buf = [0u8; 1024];
        while let Ok(n) = self.stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

impl FakeProxy {
    /// Starts a fake proxy on 127.0.0.1 running `script` for every connection.
    pub async fn start<F, Fut>(script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_on("127.0.0.1", script).await
    }

    /// Starts a fake proxy on `bind` (an address of the loopback interface).
    pub async fn start_on<F, Fut>(bind: &str, script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((bind, 0)).await.expect("bind fake proxy");
        let addr = listener.local_addr().expect("fake proxy address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (count, log, seen) = (accepted.clone(), received.clone(), peers.clone());
        let script = Arc::new(script);
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                seen.lock().expect("lock").push(peer);
                count.fetch_add(1, Ordering::SeqCst);
                let session = Session {
                    stream,
                    received: log.clone(),
                };
                tokio::spawn(script(session));
            }
        });
        Self {
            addr,
            accepted,
            received,
            peers,
        }
    }

    /// Where each connection came from, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().expect("lock").clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every byte the scripts read, in order.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().expect("lock").clone()
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
}

/// A port with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("address").port();
    drop(l);
    port
}

/// An HTTPS CONNECT proxy: TLS with `acceptor`, then any CONNECT is answered `200` and
/// piped to `upstream`. Records the ALPN protocol each client negotiated with it.
pub async fn https_connect_proxy(
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
) -> (FakeProxy, Arc<Mutex<Vec<Option<Vec<u8>>>>>) {
    let alpn = Arc::new(Mutex::new(Vec::new()));
    let seen = alpn.clone();
    let proxy = FakeProxy::start(move |s: Session| {
        let acceptor = acceptor.clone();
        let seen = seen.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(s.stream).await else {
                return;
            };
            let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            seen.lock().expect("lock").push(negotiated);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            if !head.starts_with(b"CONNECT ")
                || tls.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_err()
            {
                return;
            }
            if let Ok(mut to) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut to).await;
            }
        }
    })
    .await;
    (proxy, alpn)
}

/// A SOCKS5 proxy that takes no authentication, records every request it is sent (the
/// bytes after the greeting: version, command, address type, address, port) and answers
/// success with an IPv4 bound address, tunnelling nowhere. Returns the proxy and its
/// record, in the order requests came.
pub async fn recording_socks5() -> (FakeProxy, Arc<Mutex<Vec<Vec<u8>>>>) {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let proxy = FakeProxy::start(move |mut s: Session| {
        let log = log.clone();
        async move {
            s.read_socks5_greeting().await;
            s.write(&[5, 0]).await;
            let request = s.read_socks5_request().await;
            log.lock().expect("lock").push(request);
            s.write(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 80]).await;
        }
    })
    .await;
    (proxy, requests)
}
