//! A webhook receiver on the loopback: a tiny HTTP/1.1 server on a std `TcpListener`,
//! the real peer of the notifications' POSTs. It records each request's path and JSON
//! body and answers as told: 200, another status, or never (a hanging server).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers every request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `200 OK`, as Slack does.
    Ok,
    /// This status, with an empty body.
    Status(u16),
    /// Reads the request and never answers (the connection stays open a while).
    Hang,
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: serde_json::Value,
}

pub struct Webhook {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Webhook {
    /// Listens on `127.0.0.1:<free port>`, answering every request with `answer`.
    pub fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        // The accept loop lives as long as the test binary: a listener left behind
        // answers nobody once its test is over.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, answer, &log));
            }
        });
        Self { port, received }
    }

    /// The receiver's URL, with `secret` in its path as in a Slack webhook URL
    /// (`https://hooks.slack.com/services/T…/B…/<secret>`).
    pub fn url(&self, secret: &str) -> String {
        format!(
            "http://127.0.0.1:{}/services/T0TEST/B0TEST/{secret}",
            self.port
        )
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A URL nothing listens on: connecting is refused.
pub fn refused_url(secret: &str) -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/services/T0TEST/B0TEST/{secret}")
}

/// Reads requests off one connection (keep-alive) until it closes.
fn serve(stream: TcpStream, answer: Answer, log: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(Received {
            path,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        });
        let status = match answer {
            Answer::Ok => 200,
            Answer::Status(code) => code,
            Answer::Hang => {
                std::thread::sleep(Duration::from_secs(120));
                return;
            }
        };
        let response = format!(
            "HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The value of the attachment field `title` of a Slack-compatible message.
pub fn field<'a>(message: &'a serde_json::Value, title: &str) -> Option<&'a str> {
    message["attachments"][0]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["title"] == title)?["value"]
        .as_str()
}
