//! Loopback endpoints for tests: a port that refuses every connection for as long as the
//! test holds it ([`ClosedPort`]), and a health endpoint ([`health_server`]).
//!
//! Binding port 0 and closing the listener gives a port that is free *now*: another test
//! running in parallel (a Prometheus, a Redis, an sshd) may take it before the test under
//! way connects, and then "nothing listens there" is suddenly a live server. A socket that is
//! bound but never listens keeps the port: the kernel refuses connections to it (RST, so
//! "connection refused" at once), and without SO_REUSEADDR nobody else can bind it.

use socket2::{Domain, Socket, Type};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct ClosedPort {
    _socket: Socket,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("a port on 127.0.0.1");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("the bound port");
        ClosedPort {
            _socket: socket,
            port,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A health endpoint on loopback that answers 503 while `down` is set.
pub fn health_server(down: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let down = down.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let (status, body) = if down.load(Ordering::SeqCst) {
                    ("503 Service Unavailable", r#"{"status":"unhealthy"}"#)
                } else {
                    ("200 OK", r#"{"status":"healthy"}"#)
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{addr}/health")
}

#[test]
fn a_closed_port_refuses_and_cannot_be_taken() {
    let closed = ClosedPort::new();
    let err = std::net::TcpStream::connect(closed.addr()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(TcpListener::bind(closed.addr()).is_err());
}
