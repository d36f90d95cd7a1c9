//! A program that trusts the operating system's roots (`TlsRoots::native()`) and GETs a
//! URL directly, printing the status or the error: the tests run it with
//! `SSL_CERT_FILE` naming their test CA, and without.
//!
//! Usage: `native_roots_client URL`.

use proxy_runtime::{ProxyInjector, ProxySettings, TlsRoots};

fn main() -> std::process::ExitCode {
    let url = std::env::args().nth(1).unwrap_or_default();
    let roots = match TlsRoots::native() {
        Ok(roots) => roots,
        Err(e) => {
            println!("roots: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let injector = ProxyInjector::builder(ProxySettings::new(false))
        .tls_roots(roots)
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(injector.http_client("okx").get(&url).send()) {
        Ok(response) => println!("status: {}", response.status().as_u16()),
        Err(e) => println!("error: {e}"),
    }
    std::process::ExitCode::SUCCESS
}
