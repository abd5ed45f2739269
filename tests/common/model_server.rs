//! A hand-written HTTP server speaking the OpenAI chat-completions streaming wire format
//! (SSE chunks ending in `data: [DONE]`), with the faults a canned-response mock cannot
//! produce: a stream cut mid-body, a trickle, a stall, malformed data. Like a real server it
//! stops a reply at the request's `max_tokens` (one word is a token here) with finish_reason
//! `length`, and sends the usage in a last chunk when `stream_options.include_usage` asks.
//! It can also stream without end, as fast as the client reads, and tells when the client
//! went away.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server does with one request, in order of arrival.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Streams the text word by word and finishes properly.
    Reply(String),
    /// Answers with this status and an OpenAI-style error body.
    Status(u16, String),
    /// Streams the text, then closes the connection in the middle of the body.
    Cut(String),
    /// Streams the text word by word with this pause before each piece.
    Trickle(String, Duration),
    /// Streams the text, then sends nothing more while keeping the connection open.
    Stall(String),
    /// Streams the text, then a data line that is not JSON.
    Garbage(String),
    /// Streams the text and `[DONE]` but never a finish_reason.
    NoFinish(String),
    /// Calls tools: (id, function name, arguments), each call's arguments split over three
    /// chunks and the calls interleaved, as servers stream them; finish_reason `tool_calls`.
    Calls(Vec<(&'static str, &'static str, String)>),
    /// Answers 400 to a request that carries this field, as servers that do not know it
    /// do, and replies with the text to one without it.
    Refuse(&'static str, String),
    /// Streams `head`, then `tail` again and again, as fast as the client reads, until the
    /// client goes away (or [`ENDLESS_CAP`] bytes, so a test that fails does not hang).
    Endless { head: String, tail: String },
    /// One `run_code` call whose arguments are `head` and then `tail` again and again, like
    /// [`Behaviour::Endless`].
    EndlessCall { head: String, tail: String },
    /// Streams `head`, then one event whose `data:` line never ends.
    EndlessEvent { head: String },
    /// Opens call after call, each with nothing in it but its index (64 past the last, as
    /// far apart as a client gives room for), until the client goes away (or
    /// [`EMPTY_CALLS_CAP`] bytes).
    EndlessEmptyCalls,
    /// Streams this many bytes of chunks that carry nothing, as fast as the client reads,
    /// then replies with the text.
    Flood(u64, String),
}

/// Where a stream of empty calls gives up: far enough for millions of calls.
pub const EMPTY_CALLS_CAP: u64 = 4 << 20;

/// Where an endless stream gives up on a client that never goes away.
pub const ENDLESS_CAP: u64 = 1 << 30;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The content of the request's last message.
    pub fn last_message(&self) -> String {
        self.messages()
            .last()
            .map(|(_, content)| content.clone())
            .unwrap_or_default()
    }

    /// (role, content) of every message.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|message| {
                (
                    message["role"].as_str().unwrap_or("").to_string(),
                    message["content"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

pub struct ModelServer {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// For each endless stream that ended: the bytes it sent, and whether it ended because
    /// the client went away (rather than at the cap).
    endless: Arc<Mutex<Vec<(u64, bool)>>>,
}

impl ModelServer {
    /// Serves `script` one behaviour per request; past its end every request gets a 500.
    pub fn start(script: Vec<Behaviour>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let endless = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let ended = endless.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let recorded = recorded.clone();
                let script = script.clone();
                let ended = ended.clone();
                std::thread::spawn(move || serve(stream, &recorded, &script, &ended));
            }
        });
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            requests,
            endless,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The bytes the first endless stream sent before its client went away, waiting up to
    /// `within` for that; `None` when it did not go away.
    pub fn client_went_away(&self, within: Duration) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(&(sent, gone)) = self.endless.lock().unwrap().first() {
                return gone.then_some(sent);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(
    stream: TcpStream,
    recorded: &Mutex<Vec<Recorded>>,
    script: &Mutex<VecDeque<Behaviour>>,
    endless: &Mutex<Vec<(u64, bool)>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    recorded.lock().unwrap().push(Recorded {
        path,
        headers,
        body: body.clone(),
    });
    let mut script = script.lock().unwrap();
    let behaviour = match script.pop_front() {
        Some(Behaviour::Refuse(field, text)) if body.get(field).is_some() => {
            // The refusal stays for the next request, which should come without the field.
            script.push_front(Behaviour::Refuse(field, text));
            Behaviour::Status(
                400,
                format!("Unrecognized request argument supplied: {field}"),
            )
        }
        Some(Behaviour::Refuse(_, text)) => Behaviour::Reply(text),
        Some(behaviour) => behaviour,
        None => Behaviour::Status(500, "the test server's script is exhausted".into()),
    };
    drop(script);
    let delta = |text: &str| sse(&chunk(serde_json::json!({"content": text}), None));
    let ended = match behaviour {
        Behaviour::Endless { head, tail } => stream_endlessly(stream, &delta(&head), &delta(&tail)),
        Behaviour::EndlessCall { head, tail } => {
            let first = serde_json::json!({"index": 0, "id": "call_endless", "type": "function",
                "function": {"name": "run_code", "arguments": head}});
            let more = serde_json::json!({"index": 0, "function": {"arguments": tail}});
            let call = |part| sse(&chunk(serde_json::json!({"tool_calls": [part]}), None));
            stream_endlessly(stream, &call(first), &call(more))
        }
        Behaviour::EndlessEvent { head } => {
            let mut start = delta(&head);
            start.extend(http_chunk(
                "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"",
            ));
            stream_endlessly(stream, &start, &http_chunk(&"A".repeat(4096)))
        }
        Behaviour::EndlessEmptyCalls => {
            let mut next = 0u64;
            let events = move || {
                // Some 200 KB a batch: the first alone is more than a reply may keep.
                let mut batch = Vec::new();
                for _ in 0..1024 {
                    let part = serde_json::json!({"tool_calls": [{"index": next}]});
                    batch.extend(sse(&chunk(part, None)));
                    next += 64;
                }
                batch
            };
            stream_batches(stream, &[], EMPTY_CALLS_CAP, events)
        }
        Behaviour::Flood(bytes, text) => return flood(stream, bytes, &text),
        behaviour => return respond(stream, behaviour, &body),
    };
    endless.lock().unwrap().push(ended);
}

/// `text` as one HTTP chunk.
fn http_chunk(text: &str) -> Vec<u8> {
    format!("{:x}\r\n{text}\r\n", text.len()).into_bytes()
}

/// One SSE event in one HTTP chunk.
fn sse(data: &str) -> Vec<u8> {
    http_chunk(&format!("data: {data}\n\n"))
}

/// Sends `head`, then `tail` until a write fails (the client went away) or [`ENDLESS_CAP`]
/// bytes went: the bytes sent, and whether the client went away.
fn stream_endlessly(stream: TcpStream, head: &[u8], tail: &[u8]) -> (u64, bool) {
    // Many pieces per write: as fast as a fast server on loopback.
    let batch: Vec<u8> = tail.repeat((64 << 10) / tail.len() + 1);
    stream_batches(stream, head, ENDLESS_CAP, || batch.clone())
}

/// Sends `head`, then what `batch` makes, again and again, until a write fails or `cap`
/// bytes went: the bytes sent, and whether the client went away.
fn stream_batches(
    mut stream: TcpStream,
    head: &[u8],
    cap: u64,
    mut batch: impl FnMut() -> Vec<u8>,
) -> (u64, bool) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut sent = 0u64;
    if stream.write_all(head).is_err() {
        return (sent, true);
    }
    sent += head.len() as u64;
    while sent < cap {
        let batch = batch();
        if stream.write_all(&batch).is_err() {
            return (sent, true);
        }
        sent += batch.len() as u64;
    }
    (sent, false)
}

/// [`Behaviour::Flood`]: `bytes` of the smallest chunks there are, then `text` as the reply.
fn flood(stream: TcpStream, bytes: u64, text: &str) {
    let nothing = b"data: {\"choices\": []}\n\n".repeat(4096);
    let batch = http_chunk(std::str::from_utf8(&nothing).unwrap());
    let (_, gone) = stream_batches(stream.try_clone().unwrap(), &[], bytes, || batch.clone());
    if !gone {
        let mut stream = stream;
        let end = serde_json::json!({"content": text});
        let _ = stream.write_all(&sse(&chunk(end, Some("stop"))));
        let _ = stream.write_all(&sse("[DONE]"));
        let _ = stream.write_all(b"0\r\n\r\n");
    }
}

/// The request's token limit, under either name, and whether it asks for the usage.
fn limits(request: &serde_json::Value) -> (Option<usize>, bool) {
    let max_tokens = ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|field| request.get(field).and_then(serde_json::Value::as_u64))
        .map(|n| n as usize);
    let usage = request.pointer("/stream_options/include_usage") == Some(&serde_json::json!(true));
    (max_tokens, usage)
}

fn respond(mut stream: TcpStream, behaviour: Behaviour, request: &serde_json::Value) {
    if let Behaviour::Calls(calls) = &behaviour {
        return stream_calls(stream, calls);
    }
    let (text, pause) = match &behaviour {
        Behaviour::Status(code, message) => {
            // llama.cpp's shape: the status again as a number in `code`.
            let body = serde_json::json!({
                "error": {"message": message, "type": "test_error", "code": code}
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {code} Test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        Behaviour::Trickle(text, pause) => (text.clone(), *pause),
        Behaviour::Reply(text)
        | Behaviour::Cut(text)
        | Behaviour::Stall(text)
        | Behaviour::Garbage(text)
        | Behaviour::NoFinish(text)
        | Behaviour::Refuse(_, text) => (text.clone(), Duration::ZERO),
        Behaviour::Calls(_)
        | Behaviour::Endless { .. }
        | Behaviour::EndlessCall { .. }
        | Behaviour::EndlessEvent { .. }
        | Behaviour::EndlessEmptyCalls
        | Behaviour::Flood(..) => unreachable!("streamed elsewhere"),
    };
    let (max_tokens, with_usage) = limits(request);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    send_event(
        &mut stream,
        &chunk(
            serde_json::json!({"role": "assistant", "content": ""}),
            None,
        ),
    );
    let pieces: Vec<&str> = text.split_inclusive([' ', '\n']).collect();
    let sent = max_tokens.map_or(pieces.len(), |limit| limit.min(pieces.len()));
    for piece in &pieces[..sent] {
        std::thread::sleep(pause);
        send_event(
            &mut stream,
            &chunk(serde_json::json!({"content": piece}), None),
        );
    }
    let finish = if sent < pieces.len() {
        "length"
    } else {
        "stop"
    };
    match behaviour {
        Behaviour::Cut(_) => {
            // Half of an HTTP chunk, then the connection goes away.
            let _ = stream.write_all(b"40\r\ndata: {\"id\"");
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        Behaviour::Stall(_) => {
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        Behaviour::Garbage(_) => send_event(&mut stream, "{\"choices\": [{\"delta\": "),
        Behaviour::NoFinish(_) => {}
        _ => send_event(&mut stream, &chunk(serde_json::json!({}), Some(finish))),
    }
    if with_usage {
        send_event(&mut stream, &usage_chunk(request, sent));
    }
    send_event(&mut stream, "[DONE]");
    let _ = stream.write_all(b"0\r\n\r\n");
}

fn chunk(delta: serde_json::Value, finish_reason: Option<&str>) -> String {
    serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    })
    .to_string()
}

fn stream_calls(mut stream: TcpStream, calls: &[(&str, &str, String)]) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let part = |index: usize, value: serde_json::Value| {
        let mut value = value;
        value["index"] = serde_json::json!(index);
        chunk(serde_json::json!({"tool_calls": [value]}), None)
    };
    for (index, (id, name, _)) in calls.iter().enumerate() {
        let first = serde_json::json!({"id": id, "type": "function", "function": {"name": name, "arguments": ""}});
        send_event(&mut stream, &part(index, first));
    }
    for third in 0..3 {
        for (index, (_, _, arguments)) in calls.iter().enumerate() {
            let chars: Vec<char> = arguments.chars().collect();
            let size = chars.len().div_ceil(3);
            let piece: String = chars.iter().skip(third * size).take(size).collect();
            let value = serde_json::json!({"function": {"arguments": piece}});
            send_event(&mut stream, &part(index, value));
        }
    }
    send_event(
        &mut stream,
        &chunk(serde_json::json!({}), Some("tool_calls")),
    );
    send_event(&mut stream, "[DONE]");
    let _ = stream.write_all(b"0\r\n\r\n");
}

/// The last chunk a server sends when asked for the usage: no choices, the counts (a word
/// of the messages is a prompt token here).
fn usage_chunk(request: &serde_json::Value, completion_tokens: usize) -> String {
    let prompt_tokens: usize = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|message| message["content"].as_str())
        .map(|content| content.split_whitespace().count())
        .sum();
    serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": "test-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
    .to_string()
}

/// One SSE event in one HTTP chunk.
fn send_event(stream: &mut TcpStream, data: &str) {
    let event = format!("data: {data}\n\n");
    let _ = write!(stream, "{:x}\r\n{event}\r\n", event.len());
    let _ = stream.flush();
}
