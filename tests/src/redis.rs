//! A real `redis-server` (Debian's package), started on a free loopback port with no
//! persistence, its log in a temporary directory, and stopped when dropped; optionally
//! with a password. It can be killed and started again on the same port, as an outage
//! would. A server that cannot be started fails the test with a message saying how to
//! install it: these tests never skip.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<String>,
    password: Option<String>,
    /// The loopback port it listens on.
    pub port: u16,
}

impl RedisServer {
    /// A server without a password.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that requires `password` (as `requirepass`: any user name, or none).
    pub fn start_with(password: Option<&str>) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "proxy-tests-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create server directory");
        let mut server = Self {
            child: None,
            dir,
            args: Vec::new(),
            password: password.map(str::to_owned),
            port: 0,
        };
        // A port free when it was looked at may be taken before the server binds it (by
        // another test's server, or a client's outgoing connection): another is tried.
        for _ in 0..20 {
            server.port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            server.args = Self::args(&server.dir, server.port, password);
            if server.start_on_port() {
                return server;
            }
        }
        panic!(
            "redis-server found no free port in 20 tries\n{}",
            server.log()
        );
    }

    fn args(dir: &std::path::Path, port: u16, password: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().expect("UTF-8 path"),
            "--logfile",
            dir.join("redis.log").to_str().expect("UTF-8 path"),
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(password) = password {
            args.extend(["--requirepass".to_owned(), password.to_owned()]);
        }
        args
    }

    /// `redis://127.0.0.1:PORT/0`, with `:PASSWORD@` when given.
    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Stops the server as a crash would (SIGKILL): its port refuses connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, empty, on the same port.
    pub fn restart(&mut self) {
        assert!(
            self.start_on_port(),
            "redis-server could not listen on port {} again\n{}",
            self.port,
            self.log()
        );
    }

    /// Starts the server on its port; false when it exits at once or another server
    /// answers there (the port was taken).
    fn start_on_port(&mut self) -> bool {
        self.kill();
        let binary = ["/usr/bin/redis-server", "/usr/sbin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or_else(|| missing("not found in /usr/bin or /usr/sbin"));
        let child = Command::new(binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| missing(&e.to_string()));
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            // Ours, not a server another test started on the same port.
            if let Ok(info) = self.command(&["INFO", "server"]) {
                return info
                    .concat()
                    .lines()
                    .any(|line| line.trim() == format!("process_id:{pid}"));
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {} within 20 s\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// A client of the server, to read what it holds from any thread.
    pub fn client(&self) -> RedisClient {
        RedisClient {
            port: self.port,
            password: self.password.clone(),
        }
    }

    /// Runs one command: see [`RedisClient::command`].
    pub fn command(&self, args: &[&str]) -> Result<Vec<String>, String> {
        self.client().command(args)
    }
}

/// A client of a [`RedisServer`]: a connection per command.
#[derive(Debug, Clone)]
pub struct RedisClient {
    port: u16,
    password: Option<String>,
}

impl RedisClient {
    /// Runs one command (after `AUTH` when the server has a password) and returns its
    /// reply as lines of text: a simple or bulk string is one line, an integer its
    /// digits, an array its items in order. An error reply is `Err`.
    pub fn command(&self, args: &[&str]) -> Result<Vec<String>, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut writer = stream;
        if let Some(password) = &self.password {
            writer
                .write_all(&encode(&["AUTH", password]))
                .map_err(|e| e.to_string())?;
            read_reply(&mut reader)?;
        }
        writer.write_all(&encode(args)).map_err(|e| e.to_string())?;
        read_reply(&mut reader)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn missing(why: &str) -> ! {
    panic!(
        "cannot start redis-server: {why}\ninstall it with: apt-get install -y --no-install-recommends redis-server \
         (the README's test command, `bash tests/run`, installs it when missing)"
    )
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n{arg}\r\n", arg.len()).bytes());
    }
    out
}

fn read_reply(reader: &mut impl BufRead) -> Result<Vec<String>, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" | ":" => Ok(vec![rest.to_owned()]),
        "-" => Err(rest.to_owned()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| format!("bad length {rest}"))?;
            if len < 0 {
                return Ok(Vec::new());
            }
            let mut data = vec![0; usize::try_from(len).unwrap_or(0) + 2];
            std::io::Read::read_exact(reader, &mut data).map_err(|e| e.to_string())?;
            data.truncate(data.len() - 2);
            Ok(vec![String::from_utf8_lossy(&data).into_owned()])
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| format!("bad count {rest}"))?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.extend(read_reply(reader)?);
            }
            Ok(items)
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}
