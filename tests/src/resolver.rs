//! Resolvers that record what they are asked, to prove which names are resolved locally.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use proxy_runtime::{Resolve, Resolving};

/// Answers from a fixed table, records every name asked, and fails names it does not know.
#[derive(Debug, Clone, Default)]
pub struct RecordingResolver {
    table: Arc<HashMap<String, Vec<std::net::IpAddr>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl RecordingResolver {
    /// A resolver that knows `names` (name, address).
    pub fn new(names: &[(&str, std::net::IpAddr)]) -> Self {
        let mut table: HashMap<String, Vec<std::net::IpAddr>> = HashMap::new();
        for (name, ip) in names {
            table.entry((*name).to_owned()).or_default().push(*ip);
        }
        Self {
            table: Arc::new(table),
            asked: Arc::default(),
        }
    }

    /// A resolver that knows no name: any lookup fails (and is recorded).
    pub fn failing() -> Self {
        Self::default()
    }

    /// Every name asked so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("lock").clone()
    }
}

impl Resolve for RecordingResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        self.asked.lock().expect("lock").push(host.to_owned());
        let found = self.table.get(host).cloned();
        Box::pin(async move {
            match found {
                Some(ips) => Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect()),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("test resolver: unknown name {host}"),
                )),
            }
        })
    }
}
