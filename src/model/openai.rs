//! The OpenAI-compatible client: chat completions streamed over SSE, through async-openai.
//!
//! Requests and chunks are plain JSON (async-openai's bring-your-own-types calls), so servers
//! that leave out fields OpenAI always sends still work. Retries are done here rather than in
//! the library, so each one is visible to the operator.

use std::sync::Arc;
use std::time::Duration;

use async_openai::Client;
use async_openai::error::OpenAIError;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::chunks::{Budget, Calls, clip, read_chunk};
use super::server_error::server_error;
use super::wire::{Wire, bounded_service, event_bound};
use super::{ChatMessage, CodeProtocol, Model, ModelError, ModelEvent, ModelSink, RUN_CODE, Reply};
use crate::config::{ModelConfig, TokenField};

/// The first retry waits this long; each next one twice as long, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(8);

/// The server's address, credentials and extra headers, as async-openai asks for them.
#[derive(Debug, Clone)]
struct Endpoint {
    base_url: String,
    api_key: SecretString,
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

impl async_openai::config::Config for Endpoint {
    fn headers(&self) -> HeaderMap {
        self.headers.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        self.query
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }

    fn api_base(&self) -> &str {
        &self.base_url
    }

    fn api_key(&self) -> &SecretString {
        &self.api_key
    }
}

pub struct OpenAiModel {
    client: Client<Endpoint>,
    model: String,
    temperature: Option<f64>,
    max_retries: u32,
    first_delay: Duration,
    idle_timeout: Duration,
    api_key_env: String,
    /// 0: none is sent.
    max_tokens: u32,
    token_field: TokenField,
    /// The server refused the configured name once already: no switching back and forth.
    token_field_switched: bool,
    /// Offer the `run_code` tool: in `tools` mode always, in `auto` until a server refuses
    /// tools (then the session goes on with fences).
    offer_tools: bool,
    protocol: CodeProtocol,
    /// Ask for the usage at the end of the stream (`stream_options.include_usage`); turned
    /// off for the session when a server refuses it.
    ask_usage: bool,
    /// `model.max_reply_bytes`: the most of a reply (text and calls) that is kept.
    max_reply_bytes: usize,
    /// Shared with the HTTP service, which bounds each event and keeps a streamed body from
    /// running ahead of the reply's reader.
    wire: Arc<Wire>,
}

impl OpenAiModel {
    /// Reads the API key from the environment variable the config names (none is fine for
    /// local servers).
    pub fn new(config: &ModelConfig) -> anyhow::Result<Self> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            anyhow::bail!(
                "model.base_url = {:?} is not an http(s) URL; write it like https://api.openai.com/v1",
                config.base_url
            );
        }
        let api_key = std::env::var(&config.api_key_env).unwrap_or_default();
        let headers = request_headers(config, &api_key)?;
        let endpoint = Endpoint {
            base_url,
            api_key: SecretString::from(api_key),
            headers,
            query: config
                .query
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        };
        let idle_timeout = Duration::from_secs(config.idle_timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
            .read_timeout(idle_timeout)
            .build()
            .map_err(|err| anyhow::anyhow!("cannot set up the HTTP client: {err}"))?;
        let max_reply_bytes = config.max_reply_bytes.as_usize();
        let wire = Arc::new(Wire::default());
        let service = bounded_service(http, event_bound(max_reply_bytes), Arc::clone(&wire));
        let client = Client::with_config(endpoint).with_http_service(service);
        Ok(Self {
            client,
            model: config.model.clone(),
            temperature: config.temperature,
            max_retries: config.max_retries,
            first_delay: FIRST_DELAY,
            idle_timeout,
            api_key_env: config.api_key_env.clone(),
            max_tokens: config.max_tokens,
            token_field: config.max_tokens_field,
            token_field_switched: false,
            offer_tools: config.protocol != CodeProtocol::Fences,
            protocol: config.protocol,
            ask_usage: true,
            max_reply_bytes,
            wire,
        })
    }

    /// Shortens the wait before the first retry (tests).
    pub fn with_first_retry_delay(mut self, delay: Duration) -> Self {
        self.first_delay = delay;
        self
    }

    fn request_body(&self, messages: &[ChatMessage]) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
        });
        if let Some(temperature) = self.temperature {
            body["temperature"] = json!(temperature);
        }
        if self.max_tokens > 0 {
            body[self.token_field.name()] = json!(self.max_tokens);
        }
        if self.ask_usage {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if self.offer_tools {
            body["tools"] = json!([run_code_tool()]);
        }
        body
    }

    /// A 400 that refuses a field this client chose (the usage option, or the token
    /// limit's name): the field is changed for the session, and the request can go again.
    fn adapt_to_refusal(&mut self, err: &OpenAIError) -> bool {
        let Some(error) = server_error(err) else {
            return false;
        };
        if error.status.is_some_and(|status| status != 400) {
            return false;
        }
        let message = error.message.to_lowercase();
        let refused = |field: &str| {
            message.contains(field) || error.param.as_deref().is_some_and(|p| p.contains(field))
        };
        if self.protocol == CodeProtocol::Auto && self.offer_tools && refused("tool") {
            tracing::info!("the model server refused tools; asking for fenced blocks");
            self.offer_tools = false;
            return true;
        }
        if self.ask_usage && refused("stream_options") {
            tracing::info!("the model server refused stream_options; asking without it");
            self.ask_usage = false;
            return true;
        }
        let sent = self.token_field.name();
        if self.max_tokens > 0 && !self.token_field_switched && refused(sent) {
            tracing::info!("the model server refused {sent}; sending the other name");
            self.token_field = self.token_field.other();
            self.token_field_switched = true;
            return true;
        }
        false
    }

    fn delay_before(&self, attempt: u32) -> Duration {
        self.first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(MAX_DELAY.max(self.first_delay))
    }

    fn describe(&self, err: &OpenAIError) -> String {
        if let Some(error) = server_error(err) {
            let message = &error.message;
            let Some(status) = error.status else {
                return format!("the model server refused the request: {message}");
            };
            return match status {
                401 | 403 => format!(
                    "the model server refused the request (HTTP {status}): {message}. Check \
                         that {} holds a valid API key",
                    self.api_key_env
                ),
                404 => format!(
                    "the model server answered HTTP 404: {message}. Check model.base_url (it \
                         must end in /v1) and model.model"
                ),
                _ => format!("the model server answered HTTP {status}: {message}"),
            };
        }
        match err {
            OpenAIError::Reqwest(err) if err.is_connect() => format!(
                "cannot connect to the model server at {}: {}. Is it running? Check \
                 model.base_url",
                self.client.config().base_url,
                source_chain(err)
            ),
            OpenAIError::Reqwest(err) if err.is_timeout() => format!(
                "the model server did not answer within {} s",
                self.idle_timeout.as_secs()
            ),
            OpenAIError::Reqwest(err) => {
                format!(
                    "the request to the model server failed: {}",
                    source_chain(err)
                )
            }
            OpenAIError::JSONDeserialize(err, content) => format!(
                "the model server sent malformed data ({err}): {}",
                clip(content)
            ),
            OpenAIError::StreamError(err) => format!("the reply stream broke: {err}"),
            other => other.to_string(),
        }
    }

    /// Opens the reply stream, retrying what is worth retrying.
    async fn open_stream(
        &mut self,
        messages: &[ChatMessage],
        sink: ModelSink<'_>,
    ) -> Result<async_openai::types::stream::StreamResponse<Value>, ModelError> {
        let max_attempts = self.max_retries + 1;
        let mut attempt = 1;
        // Each refused field is changed once (see adapt_to_refusal); the request then goes
        // again at once.
        loop {
            let body = self.request_body(messages);
            let opened = self
                .client
                .chat()
                .create_stream_byot::<&Value, Value>(&body)
                .await;
            match opened {
                Ok(stream) => return Ok(stream),
                Err(err) if self.adapt_to_refusal(&err) => {}
                Err(err) if attempt < max_attempts && retryable(&err) => {
                    let delay = self.delay_before(attempt);
                    sink(ModelEvent::Retry {
                        attempt,
                        max_attempts,
                        delay_ms: delay.as_millis() as u64,
                        reason: self.describe(&err),
                    });
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => {
                    let tries = if attempt > 1 {
                        format!(" (after {attempt} attempts)")
                    } else {
                        String::new()
                    };
                    return Err(ModelError::Failed(format!(
                        "{}{tries}",
                        self.describe(&err)
                    )));
                }
            }
        }
    }
}

impl OpenAiModel {
    /// The stream's next chunk; `None` where the reply ends (its end, or an event too large
    /// for the bound). Text read but not yet shown is shown before waiting for more.
    async fn next_chunk(
        &self,
        stream: &mut async_openai::types::stream::StreamResponse<Value>,
        reply: &str,
        shown: &mut Shown,
        sink: ModelSink<'_>,
    ) -> Result<Option<Value>, ModelError> {
        let broken = |why: String| {
            ModelError::Failed(format!(
                "{why}; the reply was cut off after {} characters and is not kept. Retry to ask again",
                reply.chars().count()
            ))
        };
        let silent = || {
            format!(
                "the model server sent nothing for {} s (model.idle_timeout_secs)",
                self.idle_timeout.as_secs()
            )
        };
        let next = match self.wire.ready(stream) {
            Some(next) => Some(next),
            None => self.wait_showing(stream, reply, shown, sink).await,
        };
        match next {
            Some(None) => Ok(None),
            // The body ended at an event too large for the bound: the reply stops there.
            Some(Some(Err(_))) if self.wire.oversized() => Ok(None),
            Some(Some(Ok(chunk))) => Ok(Some(chunk)),
            // Silent past the idle timeout, by airlock's clock or the HTTP client's read
            // timeout (the same length), whichever ran out first.
            None => Err(broken(silent())),
            Some(Some(Err(_))) if self.wire.timed_out() => Err(broken(silent())),
            Some(Some(Err(err))) => Err(broken(self.describe(&err))),
        }
    }

    /// Waits for the next item (nothing is waiting); text not yet shown is shown when a
    /// frame has passed since the last was, whether or not more came meanwhile.
    async fn wait_showing(
        &self,
        stream: &mut async_openai::types::stream::StreamResponse<Value>,
        reply: &str,
        shown: &mut Shown,
        sink: ModelSink<'_>,
    ) -> Option<Option<Result<Value, OpenAIError>>> {
        if shown.pending(reply) {
            let due = shown.at + FRAME;
            let next = tokio::time::timeout_at(due, self.wire.wait(stream, self.idle_timeout));
            if let Ok(next) = next.await {
                return next;
            }
            shown.show(reply, sink);
        }
        self.wire.wait(stream, self.idle_timeout).await
    }
}

/// How often text is shown while it streams. A server sending a character per chunk as fast
/// as airlock reads would otherwise queue an event per character, some hundred bytes each,
/// for a frontend that may be slower (a full pipe on stdout): many times the reply's bound.
const FRAME: std::time::Duration = std::time::Duration::from_millis(16);

/// Of a reply, the text handed to the sink so far, and when.
struct Shown {
    bytes: usize,
    at: tokio::time::Instant,
}

impl Shown {
    fn new() -> Self {
        Self {
            bytes: 0,
            at: tokio::time::Instant::now(),
        }
    }

    fn pending(&self, reply: &str) -> bool {
        reply.len() > self.bytes
    }

    /// Hands the sink the text of `reply` read since it was last shown.
    fn show(&mut self, reply: &str, sink: ModelSink<'_>) {
        if self.pending(reply) {
            sink(ModelEvent::Delta(reply[self.bytes..].to_string()));
            self.bytes = reply.len();
            self.at = tokio::time::Instant::now();
        }
    }
}

impl Model for OpenAiModel {
    async fn complete(
        &mut self,
        messages: &[ChatMessage],
        sink: ModelSink<'_>,
    ) -> Result<Reply, ModelError> {
        self.wire.start_reply();
        let mut stream = self.open_stream(messages, sink).await?;
        let mut reply = String::new();
        let mut shown = Shown::new();
        let mut finished = false;
        let mut cut = false;
        let mut usage = None;
        let mut calls = Calls::default();
        let mut budget = Budget::new(self.max_reply_bytes);
        loop {
            let chunk = match self.next_chunk(&mut stream, &reply, &mut shown, sink).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => {
                    // What came is shown, though not kept.
                    shown.show(&reply, sink);
                    return Err(err);
                }
            };
            match read_chunk(&chunk, &mut calls, &mut budget) {
                Ok(piece) => {
                    finished |= piece.finished;
                    cut |= piece.cut;
                    usage = piece.usage.or(usage);
                    reply.push_str(&piece.text);
                    if tokio::time::Instant::now() >= shown.at + FRAME {
                        shown.show(&reply, sink);
                    }
                    if piece.over {
                        break;
                    }
                }
                Err(why) => {
                    shown.show(&reply, sink);
                    return Err(ModelError::Failed(format!(
                        "{why}; the reply was cut off after {} characters and is not kept. \
                         Retry to ask again",
                        reply.chars().count()
                    )));
                }
            }
        }
        shown.show(&reply, sink);
        // Past the bound nothing more is read: dropping the stream closes the connection.
        drop(stream);
        let over = budget.spent() || self.wire.oversized();
        if !finished && !over {
            return Err(ModelError::Failed(format!(
                "the reply stream ended before the reply was complete (no finish_reason) after \
                 {} characters; it is not kept. Retry to ask again",
                reply.chars().count()
            )));
        }
        Ok(Reply {
            text: reply,
            tool_calls: calls.finish(),
            cut: cut || over,
            cut_at_bytes: over.then_some(self.max_reply_bytes),
            usage,
        })
    }
}

/// The one function offered: run code, in a language, once the operator approves it.
fn run_code_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": RUN_CODE,
            "description": "Run code in the sandbox once the operator approves it; the result \
                            (exit status and output) comes back as this call's answer.",
            "parameters": {
                "type": "object",
                "properties": {
                    "language": {
                        "type": "string",
                        "description": "The language of the code, e.g. python, bash or sh"
                    },
                    "code": {"type": "string", "description": "The program to run"}
                },
                "required": ["language", "code"]
            }
        }
    })
}

fn request_headers(config: &ModelConfig, api_key: &str) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| anyhow::anyhow!("model.headers: `{name}` is not a valid header name"))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            anyhow::anyhow!("model.headers: the value of `{name}` is not a valid header value")
        })?;
        headers.insert(header, value);
    }
    if api_key.is_empty() {
        return Ok(headers);
    }
    let invalid_key = || {
        anyhow::anyhow!(
            "the API key in {} contains characters a header cannot carry",
            config.api_key_env
        )
    };
    let (name, value) = if config.api_key_header.eq_ignore_ascii_case("authorization") {
        (AUTHORIZATION, format!("Bearer {api_key}"))
    } else {
        let name = HeaderName::from_bytes(config.api_key_header.as_bytes()).map_err(|_| {
            anyhow::anyhow!(
                "model.api_key_header = {:?} is not a valid header name",
                config.api_key_header
            )
        })?;
        (name, api_key.to_string())
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| invalid_key())?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(headers)
}

/// 429 (except an exhausted quota, which waiting does not fix), 5xx, and failures to connect.
fn retryable(err: &OpenAIError) -> bool {
    if let Some(error) = server_error(err) {
        let quota = error.code.as_deref() == Some("insufficient_quota");
        return error
            .status
            .is_some_and(|status| (status == 429 && !quota) || (500..600).contains(&status));
    }
    match err {
        OpenAIError::Reqwest(err) => err.is_connect() || err.is_timeout(),
        _ => false,
    }
}

/// reqwest's own message is often just "error sending request"; the cause is in its sources.
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_goes_in_the_named_header_and_never_in_plain_debug_output() {
        let mut config = ModelConfig::default();
        let headers = request_headers(&config, "sk-test").expect("valid");
        assert_eq!(headers[AUTHORIZATION], "Bearer sk-test");
        assert!(!format!("{headers:?}").contains("sk-test"));
        config.api_key_header = "api-key".into();
        config.headers.insert("X-Team".into(), "infra".into());
        let headers = request_headers(&config, "k").expect("valid");
        assert_eq!(headers["api-key"], "k");
        assert_eq!(headers["x-team"], "infra");
        assert!(!headers.contains_key(AUTHORIZATION));
        let headers = request_headers(&config, "").expect("valid");
        assert!(!headers.contains_key("api-key"));
        config.headers.insert("bad header".into(), "x".into());
        assert!(request_headers(&config, "").is_err());
    }
}
