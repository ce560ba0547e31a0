//! A local HTTP endpoint that records what is POSTed to it and answers from a script: the stand-in for a
//! Slack, Teams, PagerDuty, … webhook (those live on the internet; the payloads are what is tested).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path (with query).
    pub path: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`null` when it is not).
    pub body: serde_json::Value,
}

impl Received {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// `status` at once.
    pub fn status(status: u16) -> Reply {
        Reply { status, delay: Duration::ZERO, headers: vec![] }
    }

    /// `status` after `delay`.
    pub fn slow(status: u16, delay: Duration) -> Reply {
        Reply { status, delay, headers: vec![] }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A recording HTTP endpoint on an ephemeral port. Requests are answered in turn from the script;
/// once it runs out, with `200`.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answered: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Starts an endpoint answering with `script`, then `200`.
    pub fn start(script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let receiver = Receiver { addr, received: Arc::default(), answered: Arc::default() };
        let script = Arc::new(Mutex::new(script.into_iter()));
        let this = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (this, script) = (this.clone(), script.clone());
                std::thread::spawn(move || {
                    let _ = this.serve(stream, &script);
                });
            }
        });
        receiver
    }

    fn serve(&self, stream: TcpStream, script: &Mutex<std::vec::IntoIter<Reply>>) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h)?;
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((n, v)) = h.split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            self.received.lock().push(Received { path, headers, body });
            let reply = script.lock().next().unwrap_or_else(|| Reply::status(200));
            std::thread::sleep(reply.delay);
            let mut head = format!("HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\n", reply.status);
            for (n, v) in &reply.headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n{}");
            (&stream).write_all(head.as_bytes())?;
            *self.answered.lock() += 1;
        }
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    /// Requests answered so far (a slow reply counts once it is sent).
    pub fn answered(&self) -> usize {
        *self.answered.lock()
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
