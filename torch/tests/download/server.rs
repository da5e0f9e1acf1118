//! A minimal HTTP/1.1 server on 127.0.0.1 that replays scripted replies and
//! records every request path, so tests can count requests per path.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// 302 to this `Location`.
    Redirect(String),
    /// A `Content-Length` of `declared`, then only `sent`, then the connection
    /// closes.
    Truncated { declared: usize, sent: Vec<u8> },
    /// No reply until the connection has been open for this long.
    Stall(Duration),
    /// 200 with this body and no `Content-Length`: the body ends when the
    /// connection closes, so its size is known only while reading it.
    Unsized(Vec<u8>),
}

pub struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

type Routes = HashMap<String, Vec<Reply>>;

impl Server {
    /// Serves `routes`: the n-th request to a path gets the n-th reply of its
    /// script, or the last one once the script runs out. Other paths get 404.
    pub fn start(routes: &[(&str, Vec<Reply>)]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener
            .local_addr()
            .expect("read the bound address")
            .port();
        let routes: Arc<Routes> = Arc::new(
            routes
                .iter()
                .map(|(path, replies)| (path.to_string(), replies.clone()))
                .collect(),
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        // The accept loop ends with the test process.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let routes = Arc::clone(&routes);
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || serve(stream, &routes, &recorded));
            }
        });
        Server { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Returns every request path received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log lock").clone()
    }

    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|p| *p == path).count()
    }
}

fn serve(mut stream: TcpStream, routes: &Routes, recorded: &Mutex<Vec<String>>) {
    let Some(path) = read_request_path(&mut stream) else {
        return;
    };
    let seen = {
        let mut requests = recorded.lock().expect("request log lock");
        let seen = requests.iter().filter(|p| **p == path).count();
        requests.push(path.clone());
        seen
    };
    let reply = match routes.get(&path) {
        Some(script) => script[seen.min(script.len() - 1)].clone(),
        None => Reply::Status(404),
    };
    // The client may already have given up (timeouts, redirect limits), so
    // write errors are expected and ignored.
    let _ = write_reply(&mut stream, reply);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads the request head and returns the path of its request line.
fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.lines()
        .next()?
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

fn write_reply(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Body(body) => {
            write_head(stream, "200 OK", body.len(), "")?;
            stream.write_all(&body)
        }
        Reply::Status(code) => write_head(stream, &format!("{code} {}", reason(code)), 0, ""),
        Reply::Redirect(location) => {
            write_head(stream, "302 Found", 0, &format!("Location: {location}\r\n"))
        }
        Reply::Truncated { declared, sent } => {
            write_head(stream, "200 OK", declared, "")?;
            stream.write_all(&sent)
        }
        Reply::Stall(time) => {
            thread::sleep(time);
            Ok(())
        }
        Reply::Unsized(body) => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            stream.write_all(&body)
        }
    }
}

fn write_head(
    stream: &mut TcpStream,
    status: &str,
    length: usize,
    extra: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n{extra}\r\n"
    );
    stream.write_all(head.as_bytes())
}

fn reason(code: u16) -> &'static str {
    match code {
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
