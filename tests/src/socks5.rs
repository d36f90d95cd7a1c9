//! A working SOCKS5 proxy in a tokio task (no authentication, CONNECT only, names resolved
//! by the system) that counts the connections it carried: for programs that need a proxy
//! on loopback without the Debian servers, such as the quickstart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A SOCKS5 proxy (no authentication, CONNECT only) that counts the connections it carried.
#[derive(Debug, Clone)]
pub struct Socks5Server {
    /// Where it listens.
    pub addr: SocketAddr,
    carried: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Socks5Server {
    /// Starts the proxy on `addr` (port 0: any free port).
    pub async fn start(addr: SocketAddr) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let carried = Arc::new(AtomicUsize::new(0));
        let count = carried.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut listening = stopped.clone();
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                    _ = listening.changed() => return,
                };
                let count = count.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = handshake(client).await {
                        count.fetch_add(1, Ordering::SeqCst);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut upstream.0, &mut upstream.1) => {}
                            _ = stopped.changed() => {}
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            carried,
            stop,
        })
    }

    /// Stops it as a crash would: the port is released and every tunnel it carries is cut.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Connections carried so far.
    pub fn carried(&self) -> usize {
        self.carried.load(Ordering::SeqCst)
    }
}

/// The server side of a SOCKS5 CONNECT: returns (client, upstream).
async fn handshake(mut client: TcpStream) -> Result<(TcpStream, TcpStream), Error> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff]).await?;
        return Err("no acceptable method".into());
    }
    client.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            std::net::Ipv6Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8(name)?
        }
        _ => return Err("address type".into()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    match TcpStream::connect((host.as_str(), u16::from_be_bytes(port))).await {
        Ok(upstream) => {
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Ok((client, upstream))
        }
        Err(e) => {
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Err(e.into())
        }
    }
}
