//! The real proxy servers (Debian's microsocks, dante-server, tinyproxy, squid), each
//! started on a free loopback port with its config, pid and log in a temporary directory,
//! and stopped when dropped. A server that cannot be started fails the test with a message
//! saying how to install it: these tests never skip.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// microsocks (SOCKS5).
    Microsocks,
    /// dante-server (SOCKS4 and SOCKS5).
    Dante,
    /// tinyproxy (HTTP CONNECT).
    Tinyproxy,
    /// squid (HTTP CONNECT).
    Squid,
}

impl Server {
    fn binary(self) -> &'static str {
        match self {
            Server::Microsocks => "microsocks",
            Server::Dante => "danted",
            Server::Tinyproxy => "tinyproxy",
            Server::Squid => "squid",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Server::Microsocks => "microsocks",
            Server::Dante => "dante-server",
            Server::Tinyproxy => "tinyproxy",
            Server::Squid => "squid apache2-utils",
        }
    }
}

/// A running proxy server.
#[derive(Debug)]
pub struct RealProxy {
    server: Server,
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
    /// How it was started, to start it again.
    args: Vec<String>,
    output: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
}

/// How a server is started beyond its kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// User and password authentication ([`USER`], [`PASSWORD`]; microsocks, tinyproxy
    /// and squid).
    pub auth: bool,
    /// The loopback address its outgoing connections come from (127.0.0.N), so that a
    /// target can tell which proxy a connection came through.
    pub outbound: Option<std::net::Ipv4Addr>,
    /// squid: a request header whose value each access log line ends with (in quotes,
    /// after the client's address, the method and the URL).
    pub log_header: Option<&'static str>,
}

/// The user and password the servers with authentication accept.
pub const USER: &str = "trader";
/// The password the servers with authentication accept (tinyproxy's config syntax does not
/// allow `@`; percent-encoded credentials are checked byte for byte against fake proxies).
pub const PASSWORD: &str = "s3cret-pass.42";

impl RealProxy {
    /// microsocks, with or without user/password authentication.
    pub fn microsocks(auth: bool) -> Self {
        Self::microsocks_with(Options {
            auth,
            ..Options::default()
        })
    }

    /// microsocks without authentication, its outgoing connections from `outbound` (a
    /// loopback address), so that a target can tell them from another proxy's.
    pub fn microsocks_from(outbound: std::net::Ipv4Addr) -> Self {
        Self::microsocks_with(Options {
            outbound: Some(outbound),
            ..Options::default()
        })
    }

    /// microsocks with `options`.
    pub fn microsocks_with(options: Options) -> Self {
        let (dir, port) = workspace(Server::Microsocks);
        let log = dir.join("microsocks.log");
        let mut args = vec![
            "-i".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        if options.auth {
            args.extend(["-u", USER, "-P", PASSWORD].map(str::to_owned));
        }
        if let Some(ip) = options.outbound {
            args.extend(["-b".to_owned(), ip.to_string()]);
        }
        Self::start(Server::Microsocks, args, log.clone(), dir, log, port)
    }

    /// dante, SOCKS4 and SOCKS5 without authentication, logging every connection.
    pub fn dante() -> Self {
        Self::dante_with(Options::default())
    }

    /// dante with `options` (no authentication: its methods check system accounts).
    pub fn dante_with(options: Options) -> Self {
        let (dir, port) = workspace(Server::Dante);
        let log = dir.join("danted.log");
        let conf = dir.join("danted.conf");
        let external = options
            .outbound
            .map_or_else(|| "lo".to_owned(), |ip| ip.to_string());
        fs::write(
            &conf,
            format!(
                "logoutput: {log}\ninternal: 127.0.0.1 port = {port}\nexternal: {external}\n\
                 clientmethod: none\nsocksmethod: none\n\
                 client pass {{\n  from: 0/0 to: 0/0\n  log: connect disconnect error\n}}\n\
                 socks pass {{\n  from: 0/0 to: 0/0\n  command: connect\n  log: connect disconnect error\n}}\n",
                log = log.display()
            ),
        )
        .expect("write danted.conf");
        let pid = dir.join("danted.pid");
        let args = ["-f", path(&conf), "-p", path(&pid), "-N", "1"]
            .map(str::to_owned)
            .to_vec();
        let output = dir.join("danted.stderr");
        Self::start(Server::Dante, args, output, dir, log, port)
    }

    /// tinyproxy, with or without Basic authentication.
    pub fn tinyproxy(auth: bool) -> Self {
        Self::tinyproxy_with(Options {
            auth,
            ..Options::default()
        })
    }

    /// tinyproxy with `options`.
    pub fn tinyproxy_with(options: Options) -> Self {
        let (dir, port) = workspace(Server::Tinyproxy);
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        let mut text = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 2048\nLogFile \"{}\"\nLogLevel Connect\nPidFile \"{}\"\nAllow 127.0.0.1\n",
            log.display(),
            dir.join("tinyproxy.pid").display()
        );
        if options.auth {
            text.push_str(&format!("BasicAuth {USER} {PASSWORD}\n"));
        }
        if let Some(ip) = options.outbound {
            text.push_str(&format!("Bind {ip}\n"));
        }
        fs::write(&conf, text).expect("write tinyproxy.conf");
        let args = ["-d", "-c", path(&conf)].map(str::to_owned).to_vec();
        let output = dir.join("tinyproxy.stderr");
        Self::start(Server::Tinyproxy, args, output, dir, log, port)
    }

    /// squid, with or without Basic authentication (basic_ncsa_auth and an htpasswd file).
    pub fn squid(auth: bool) -> Self {
        Self::squid_with(Options {
            auth,
            ..Options::default()
        })
    }

    /// squid with `options`.
    pub fn squid_with(options: Options) -> Self {
        let auth = options.auth;
        let (dir, port) = workspace(Server::Squid);
        let log = dir.join("access.log");
        let conf = dir.join("squid.conf");
        let format = match options.log_header {
            Some(header) => {
                format!("logformat with_header %ts %>a %rm %ru \"%{{{header}}}>h\"\n")
            }
            None => String::new(),
        };
        let with_format = if options.log_header.is_some() {
            " with_header"
        } else {
            ""
        };
        let mut text = format!(
            "http_port 127.0.0.1:{port}\npid_filename {d}/squid.pid\ncache_log {d}/cache.log\n\
             {format}access_log stdio:{log}{with_format}\ncache_store_log none\nnetdb_filename none\ncoredump_dir {d}\n\
             logfile_rotate 0\ncache deny all\ncache_mem 8 MB\nshutdown_lifetime 0 seconds\npinger_enable off\n\
             max_filedescriptors 8192\n\
             acl SSL_ports port 1-65535\nacl Safe_ports port 1-65535\nacl loopback src 127.0.0.0/8\n\
             http_access deny !Safe_ports\nhttp_access deny CONNECT !SSL_ports\n",
            d = dir.display(),
            log = log.display()
        );
        if auth {
            let htpasswd = dir.join("htpasswd");
            let status = Command::new("htpasswd")
                .args(["-c", "-b", path(&htpasswd), USER, PASSWORD])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap_or_else(|e| missing(Server::Squid, &format!("htpasswd: {e}")));
            assert!(status.success(), "htpasswd failed");
            text.push_str(&format!(
                "auth_param basic program /usr/lib/squid/basic_ncsa_auth {}\n\
                 auth_param basic children 2 startup=1 idle=1\nauth_param basic realm proxy-test\n\
                 auth_param basic credentialsttl 1 second\nacl authed proxy_auth REQUIRED\n\
                 http_access allow loopback authed\n",
                htpasswd.display()
            ));
        } else {
            // Clients may come from any loopback address (a member's source address).
            text.push_str("http_access allow loopback\n");
        }
        text.push_str("http_access deny all\n");
        if let Some(ip) = options.outbound {
            text.push_str(&format!("tcp_outgoing_address {ip}\n"));
        }
        fs::write(&conf, text).expect("write squid.conf");
        give_to_proxy_user(&dir);
        let name = format!("t{port}");
        let args = ["-N", "-n", &name, "-f", path(&conf)]
            .map(str::to_owned)
            .to_vec();
        let output = dir.join("squid.stderr");
        let mut proxy = Self::start(Server::Squid, args, output, dir, log, port);
        // squid answers on its port before its auth helpers are up; give them a moment
        // and make sure it did not die.
        std::thread::sleep(Duration::from_millis(200));
        proxy.assert_alive();
        proxy
    }

    fn start(
        server: Server,
        args: Vec<String>,
        output: PathBuf,
        dir: PathBuf,
        log: PathBuf,
        port: u16,
    ) -> Self {
        let child = spawn(server, &args, Some(&output));
        let mut proxy = Self {
            server,
            child: Some(child),
            dir,
            log,
            args,
            output,
            port,
        };
        proxy.wait_ready();
        proxy
    }

    /// The server's program name (`microsocks`, `danted`, `tinyproxy`, `squid`).
    pub fn name(&self) -> &'static str {
        self.server.binary()
    }

    /// Stops the server (as a crash would: SIGKILL), leaving its port and files. (squid
    /// runs with `-N`, as one process.)
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, as it was, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn(self.server, &self.args, Some(&self.output)));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let port = self.port;
        let server = self.server;
        let proxy = self;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            proxy.assert_alive();
            if Instant::now() > deadline {
                let details = proxy.diagnostics();
                panic!(
                    "{} did not listen on port {port} within 20 s\n{details}",
                    server.binary()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let details = self.diagnostics();
            panic!(
                "{} exited ({status}) instead of serving\n{details}",
                self.server.binary()
            );
        }
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let p = entry.path();
                if let Ok(text) = fs::read_to_string(&p) {
                    out.push_str(&format!("--- {}\n{text}\n", p.display()));
                }
            }
        }
        out
    }

    /// squid with authentication: replaces the users it accepts with `users` (user,
    /// password). The new file is written beside the old and renamed over it, so the
    /// helper never reads half of one; it reads the file again when its time changes, and
    /// squid asks it again once a credential's second (`credentialsttl`) is over.
    pub fn set_users(&self, users: &[(&str, &str)]) {
        assert!(
            matches!(self.server, Server::Squid),
            "users are set on squid only"
        );
        let next = self.dir.join("htpasswd.next");
        for (i, (user, password)) in users.iter().enumerate() {
            let create = if i == 0 { "-c" } else { "" };
            let args: Vec<&str> = [create, "-b", path(&next), user, password]
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect();
            let status = Command::new("htpasswd")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd");
            assert!(status.success(), "htpasswd failed");
        }
        // The helper reads the file again only when its time (in whole seconds) changes:
        // the new one is dated a second past the old one at least.
        let current = self.dir.join("htpasswd");
        if let Ok(old) = fs::metadata(&current).and_then(|m| m.modified()) {
            let new = fs::metadata(&next)
                .and_then(|m| m.modified())
                .expect("mtime");
            if new < old + Duration::from_secs(1) {
                fs::File::options()
                    .write(true)
                    .open(&next)
                    .and_then(|f| f.set_modified(old + Duration::from_secs(1)))
                    .expect("date htpasswd");
            }
        }
        give_to_proxy_user(&self.dir);
        fs::rename(&next, current).expect("replace htpasswd");
    }

    /// Everything the server logged so far (its log file; microsocks logs to stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log mentions `needle` (servers may write after the client is done;
    /// squid writes a tunnel's line when it closes). Yields to the runtime meanwhile, so
    /// that connections being dropped can close.
    pub async fn log_mentions(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `SCHEME://[USER:PASSWORD@]127.0.0.1:PORT` (credentials must need no encoding).
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("{scheme}://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for RealProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A fresh directory and a free loopback port.
fn workspace(server: Server) -> (PathBuf, u16) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "proxy-tests-{}-{}-{}",
        server.binary(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create server directory");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    (dir, port)
}

/// squid drops to the `proxy` user when started as root: its directory must be theirs.
fn give_to_proxy_user(dir: &Path) {
    let _ = Command::new("chown")
        .args(["-R", "proxy:proxy", path(dir)])
        .status();
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn missing(server: Server, why: &str) -> ! {
    panic!(
        "cannot start {}: {why}\ninstall it with: apt-get install -y --no-install-recommends {} \
         (the README's test command, `bash tests/run`, installs it when missing)",
        server.binary(),
        server.package()
    )
}

fn spawn(server: Server, args: &[String], output: Option<&Path>) -> Child {
    let Some(binary) = find_binary(server.binary()) else {
        missing(server, "not found on PATH or in /usr/sbin")
    };
    let mut cmd = Command::new(binary);
    cmd.args(args).stdin(Stdio::null());
    match output {
        Some(file) => {
            let out = fs::File::create(file).expect("create output file");
            let err = out.try_clone().expect("clone output file");
            cmd.stdout(out).stderr(err);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    cmd.spawn()
        .unwrap_or_else(|e| missing(server, &e.to_string()))
}
