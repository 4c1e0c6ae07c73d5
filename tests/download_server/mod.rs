//! A tiny HTTP/1.1 server on 127.0.0.1 for the download tests: it answers every request with one
//! fixed reply (a body, a body cut short, or an error status) and records the requested paths.
//! It stops accepting after 30 s, so a test can never hang on it.

#![allow(dead_code)] // each test file uses a different part

use std::io::{Cursor, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 OK` with this body and its true `Content-Length`.
    Body(Vec<u8>),
    /// `200 OK` declaring the whole body's length but closing after `send` bytes.
    Truncated { body: Vec<u8>, send: usize },
    /// This status with an empty body.
    Status(u16),
    /// `200 OK` with this body and no `Content-Length`: the end is when the connection closes.
    NoLength(Vec<u8>),
    /// `200 OK` with the true `Content-Length`, one byte of the body every `every`.
    Trickle { body: Vec<u8>, every: Duration },
}

/// A running server; `base_url` has no trailing slash.
pub struct Server {
    pub base_url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// The request paths seen so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

pub fn serve(reply: Reply) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => answer(stream, &reply, &seen),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => return,
            }
        }
    });
    Server { base_url, requests }
}

fn answer(mut stream: TcpStream, reply: &Reply, seen: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    seen.lock().unwrap().push(path);
    let head = |status: &str, length: usize| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/zip\r\nContent-Length: {length}\r\n\
             Connection: close\r\n\r\n"
        )
    };
    let _ = match reply {
        Reply::Body(body) => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|_| stream.write_all(body)),
        Reply::Truncated { body, send } => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|_| stream.write_all(&body[..*send])),
        Reply::Status(code) => stream.write_all(head(&format!("{code} Nope"), 0).as_bytes()),
        Reply::NoLength(body) => stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
            )
            .and_then(|_| stream.write_all(body)),
        Reply::Trickle { body, every } => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|_| {
                for byte in body {
                    stream.write_all(std::slice::from_ref(byte))?;
                    stream.flush()?;
                    std::thread::sleep(*every);
                }
                Ok(())
            }),
    };
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// A zip holding `files` (name, contents) under the folder `top` (none when empty).
pub fn zip_of(top: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    if !top.is_empty() {
        zip.add_directory(format!("{top}/"), options).unwrap();
    }
    for (name, contents) in files {
        let path = if top.is_empty() {
            name.to_string()
        } else {
            format!("{top}/{name}")
        };
        zip.start_file(path, options).unwrap();
        zip.write_all(contents).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every name in `dir`, hidden ones included, sorted.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|list| {
            list.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The ML-100K files of the test zips: two ratings and one latin-1 title.
pub const U_DATA: &[u8] = b"1\t1\t5\t874965758\n2\t1\t3\t888550871\n";
pub const U_ITEM: &[u8] =
    b"1|Caf\xe9 (1995)|01-Jan-1995||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n";
