//! A headless Chromium driven through the DevTools protocol, for the report's browser test: a
//! minimal WebSocket client (RFC 6455, client side, text frames) over a `TcpStream`, and the few
//! protocol calls the test needs. No dependency beyond `serde_json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The browser to use: `$QC_BROWSER` if it names a file, else `chromium`, `chromium-browser`
/// or `google-chrome` on the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QC_BROWSER").map(PathBuf::from)
        && p.is_file()
    {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A running headless Chromium and a DevTools connection to its page.
pub struct Browser {
    child: Child,
    ws: WebSocket,
    next_id: u64,
    /// Events received while waiting for replies.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and connects to its page.
    pub fn start(chromium: &Path) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1100,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
        // Chromium writes its port to DevToolsActivePort in the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break p;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("Chromium did not open its DevTools port within 30 s".into());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("Chromium exited at start: {status}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let targets: Value =
            serde_json::from_str(&http_get(port, "/json/list")?).map_err(|e| e.to_string())?;
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .ok_or_else(|| format!("no page target in {targets}"))?
            .to_string();
        let path = page.split_once(&format!(":{port}")).map(|(_, p)| p.to_string()).ok_or("bad ws url")?;
        let ws = WebSocket::connect(port, &path)?;
        Ok(Browser { child, ws, next_id: 0, events: Vec::new(), _profile: profile })
    }

    /// Sends a command and waits for its reply (collecting the events meanwhile).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.ws.send(&json!({"id": id, "method": method, "params": params}).to_string())?;
        loop {
            let msg: Value = serde_json::from_str(&self.ws.recv()?).map_err(|e| e.to_string())?;
            if msg["id"] == id {
                if let Some(e) = msg.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(msg["result"].clone());
            }
            if msg.get("method").is_some() {
                self.events.push(msg);
            }
        }
    }

    /// Waits for an event named `method` (or one already received).
    pub fn wait_event(&mut self, method: &str) -> Result<Value, String> {
        if let Some(e) = self.events.iter().find(|e| e["method"] == method) {
            return Ok(e.clone());
        }
        loop {
            let msg: Value = serde_json::from_str(&self.ws.recv()?).map_err(|e| e.to_string())?;
            if msg.get("method").is_some() {
                self.events.push(msg.clone());
                if msg["method"] == method {
                    return Ok(msg);
                }
            }
        }
    }

    /// Evaluates a JavaScript expression in the page; returns its value.
    pub fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true}))?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("`{expr}` threw {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// The console errors, uncaught exceptions and error log entries seen so far.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.consoleAPICalled"
                    if matches!(e["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    Some(format!("console.{}: {}", e["params"]["type"], e["params"]["args"]))
                }
                "Runtime.exceptionThrown" => Some(format!("exception: {}", e["params"]["exceptionDetails"])),
                "Log.entryAdded" if e["params"]["entry"]["level"] == "error" => {
                    Some(format!("log: {}", e["params"]["entry"]))
                }
                _ => None,
            })
            .collect()
    }
}

/// `GET path` on the DevTools HTTP endpoint (which keeps the connection open: the body is read
/// by its `Content-Length`).
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    write!(w, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut length = None;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| format!("DevTools HTTP: {e}"))?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; length.ok_or("DevTools HTTP: no Content-Length")?];
    r.read_exact(&mut body).map_err(|e| format!("DevTools HTTP: {e}"))?;
    String::from_utf8(body).map_err(|e| e.to_string())
}

/// A client WebSocket (text messages only).
struct WebSocket {
    stream: BufReader<TcpStream>,
}

impl WebSocket {
    fn connect(port: u16, path: &str) -> Result<WebSocket, String> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        write!(
            w,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: cWMtcmVwb3J0LXRlc3QtMQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut stream = BufReader::new(s);
        let mut status = String::new();
        stream.read_line(&mut status).map_err(|e| e.to_string())?;
        if !status.contains(" 101 ") {
            return Err(format!("WebSocket upgrade refused: {status}"));
        }
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).map_err(|e| e.to_string())?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Ok(WebSocket { stream })
    }

    fn write_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), String> {
        let mut frame = vec![0x80 | opcode];
        let n = payload.len();
        if n < 126 {
            frame.push(0x80 | n as u8);
        } else if n <= u16::MAX as usize {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mask = [0x51, 0x43, 0x2d, 0x71];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.get_mut().write_all(&frame).map_err(|e| e.to_string())
    }

    fn send(&mut self, text: &str) -> Result<(), String> {
        self.write_frame(0x1, text.as_bytes())
    }

    /// The next text message (control frames answered or skipped, fragments joined).
    fn recv(&mut self) -> Result<String, String> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).map_err(|e| format!("DevTools connection: {e}"))?;
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let masked = head[1] & 0x80 != 0;
            let mut len = (head[1] & 0x7f) as u64;
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).map_err(|e| e.to_string())?;
                len = u16::from_be_bytes(b) as u64;
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).map_err(|e| e.to_string())?;
                len = u64::from_be_bytes(b);
            }
            let mut mask = [0u8; 4];
            if masked {
                self.stream.read_exact(&mut mask).map_err(|e| e.to_string())?;
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).map_err(|e| e.to_string())?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).map_err(|e| e.to_string());
                    }
                }
                0x8 => return Err("DevTools closed the connection".into()),
                0x9 => self.write_frame(0xA, &payload)?,
                _ => {}
            }
        }
    }
}

/// Decodes standard base64 (the screenshot).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 byte {c}")),
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|&&b| b == b'=').count();
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= if c == b'=' { 0 } else { val(c)? } << (18 - 6 * i);
        }
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&got[..(chunk.len() - pad).saturating_sub(1)]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(super::base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(super::base64_decode("aGk=").unwrap(), b"hi");
        assert!(super::base64_decode("a$==").is_err());
    }
}
