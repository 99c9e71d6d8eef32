//! `--metrics-addr`: a minimal HTTP endpoint serving `GET /metrics` in Prometheus' text
//! format for as long as the process runs. One thread, one request per connection; anything
//! but `GET /metrics` gets a 404. (A scrape endpoint needs nothing more, and no HTTP crate
//! would earn its build time here.)

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use prometheus::{Encoder, Registry, TextEncoder};

/// Binds `addr` now (so a bad address fails before any work) and serves `registry` from a
/// background thread. Returns the bound address (useful with port 0).
pub fn serve(addr: SocketAddr, registry: Registry) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("--metrics-addr {addr}: cannot bind: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("spillway-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // A broken client must not stop the endpoint.
                let _ = answer(stream, &registry);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(bound)
}

fn answer(stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Drain the headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut stream = reader.into_inner();
    let path = request.split_whitespace().nth(1).unwrap_or("");
    if request.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        encoder
            .encode(&registry.gather(), &mut body)
            .map_err(std::io::Error::other)?;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            encoder.format_type(),
            body.len()
        )?;
        stream.write_all(&body)
    } else {
        let body = "not found: try /metrics\n";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}
