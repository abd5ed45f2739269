//! The OpenAI-compatible adapter against a real HTTP server in this process: what it sends,
//! how it streams, and every fault it must turn into a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use airlock::config::{ByteSize, CodeProtocol, ModelConfig};
use airlock::model::openai::OpenAiModel;
use airlock::model::{ChatMessage, Model, ModelError, ModelEvent, Reply, Role};
use common::model_server::{Behaviour, ModelServer};

fn config(server: &ModelServer) -> ModelConfig {
    ModelConfig {
        base_url: server.base_url.clone(),
        model: "test-model".into(),
        // Not set in the test environment: no key is sent.
        api_key_env: "AIRLOCK_TEST_UNSET_KEY".into(),
        idle_timeout_secs: 1,
        max_retries: 2,
        ..ModelConfig::default()
    }
}

fn model(config: &ModelConfig) -> OpenAiModel {
    OpenAiModel::new(config)
        .expect("valid config")
        .with_first_retry_delay(Duration::from_millis(50))
}

fn conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, "system prompt"),
        ChatMessage::new(Role::User, "print hello"),
    ]
}

/// The reply (or error) and every event on the way.
async fn complete(model: &mut OpenAiModel) -> (Result<Reply, ModelError>, Vec<ModelEvent>) {
    let mut events = Vec::new();
    let mut sink = |event: ModelEvent| events.push(event);
    let reply = model.complete(&conversation(), &mut sink).await;
    (reply, events)
}

fn deltas(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::Delta(text) => Some(text.as_str()),
            ModelEvent::Retry { .. } => None,
        })
        .collect()
}

fn failure(reply: Result<Reply, ModelError>) -> String {
    match reply {
        Err(ModelError::Failed(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_streamed_reply_arrives_in_pieces_and_the_request_is_what_the_api_expects() {
    // A pause between pieces: text that is already waiting when airlock reads is shown as
    // one piece.
    let server = ModelServer::start(vec![Behaviour::Trickle(
        "Sure:\n```python\nprint('hello')\n```\n".into(),
        Duration::from_millis(10),
    )]);
    let mut config = config(&server);
    config.temperature = Some(0.25);
    config.headers.insert("X-Team".into(), "infra".into());
    config
        .query
        .insert("api-version".into(), "2024-10-21".into());
    let (reply, events) = complete(&mut model(&config)).await;
    let reply = reply.expect("a reply");
    assert_eq!(reply.text, "Sure:\n```python\nprint('hello')\n```\n");
    assert!(!reply.cut);
    assert!(events.len() > 2, "streamed in pieces: {events:?}");
    assert_eq!(deltas(&events), "Sure:\n```python\nprint('hello')\n```\n");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1/chat/completions?api-version=2024-10-21");
    assert_eq!(request.body["model"], "test-model");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["temperature"], 0.25);
    assert_eq!(
        request.body["max_tokens"], 4096,
        "the default limit is sent"
    );
    assert_eq!(request.body["stream_options"]["include_usage"], true);
    let usage = reply.usage.expect("the server's usage is kept");
    assert_eq!(
        usage.prompt_tokens, 4,
        "the test server counts the messages' words"
    );
    assert_eq!(usage.completion_tokens, 4);
    assert_eq!(usage.total_tokens, 8);
    assert_eq!(
        request.messages(),
        [
            ("system".to_string(), "system prompt".to_string()),
            ("user".into(), "print hello".into())
        ]
    );
    assert_eq!(request.header("x-team"), Some("infra"));
    assert_eq!(request.header("authorization"), None, "no key, no header");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_visibly_then_succeed() {
    let server = ModelServer::start(vec![
        Behaviour::Status(429, "Rate limit reached".into()),
        Behaviour::Status(503, "overloaded".into()),
        Behaviour::Reply("ok".into()),
    ]);
    let (reply, events) = complete(&mut model(&config(&server))).await;
    assert_eq!(reply.map(|reply| reply.text).as_deref(), Ok("ok"));
    let retries: Vec<(u32, u32, String)> = events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::Retry {
                attempt,
                max_attempts,
                reason,
                ..
            } => Some((*attempt, *max_attempts, reason.clone())),
            ModelEvent::Delta(_) => None,
        })
        .collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert_eq!((retries[0].0, retries[0].1), (1, 3));
    assert!(
        retries[0].2.contains("429") && retries[0].2.contains("Rate limit"),
        "{retries:?}"
    );
    assert!(retries[1].2.contains("503"), "{retries:?}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = ModelServer::start(vec![
        Behaviour::Status(500, "boom".into()),
        Behaviour::Status(500, "boom".into()),
        Behaviour::Status(500, "boom".into()),
        Behaviour::Reply("never reached".into()),
    ]);
    let (reply, _) = complete(&mut model(&config(&server))).await;
    let message = failure(reply);
    assert!(
        message.contains("HTTP 500") && message.contains("after 3 attempts"),
        "{message}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_refused_key_is_not_retried_and_names_the_variable() {
    let server = ModelServer::start(vec![Behaviour::Status(
        401,
        "Incorrect API key provided".into(),
    )]);
    let (reply, events) = complete(&mut model(&config(&server))).await;
    let message = failure(reply);
    assert!(
        message.contains("AIRLOCK_TEST_UNSET_KEY") && message.contains("401"),
        "{message}"
    );
    assert!(events.is_empty());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_cut_mid_body_is_an_error_and_keeps_nothing() {
    let server = ModelServer::start(vec![Behaviour::Cut("partial answer here".into())]);
    let (reply, events) = complete(&mut model(&config(&server))).await;
    let message = failure(reply);
    assert!(
        message.contains("cut off") && message.contains("Retry"),
        "{message}"
    );
    assert_eq!(
        deltas(&events),
        "partial answer here",
        "what came was shown"
    );
}

#[tokio::test]
async fn a_trickling_stream_is_fine_even_when_it_takes_longer_than_the_idle_timeout() {
    let text = "one two three four five six seven eight ";
    let server = ModelServer::start(vec![Behaviour::Trickle(
        text.into(),
        Duration::from_millis(200),
    )]);
    let started = Instant::now();
    let (reply, _) = complete(&mut model(&config(&server))).await;
    assert_eq!(reply.map(|reply| reply.text).as_deref(), Ok(text));
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "the whole reply outlasted the 1 s idle timeout"
    );
}

#[tokio::test]
async fn a_stalled_stream_ends_after_the_idle_timeout() {
    let server = ModelServer::start(vec![Behaviour::Stall("thinking ".into())]);
    let started = Instant::now();
    let (reply, events) = complete(&mut model(&config(&server))).await;
    let message = failure(reply);
    assert!(
        message.contains("sent nothing for 1 s") || message.contains("did not answer"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(deltas(&events), "thinking ");
}

#[tokio::test]
async fn malformed_data_and_a_missing_finish_are_errors() {
    let server = ModelServer::start(vec![
        Behaviour::Garbage("hi ".into()),
        Behaviour::NoFinish("hi ".into()),
    ]);
    let mut model = model(&config(&server));
    let message = failure(complete(&mut model).await.0);
    assert!(message.contains("malformed"), "{message}");
    let message = failure(complete(&mut model).await.0);
    assert!(
        message.contains("before the reply was complete"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_named() {
    // A port nothing listens on: bind, learn it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = ModelConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key_env: "AIRLOCK_TEST_UNSET_KEY".into(),
        max_retries: 1,
        ..ModelConfig::default()
    };
    let (reply, events) = complete(&mut model(&config)).await;
    let message = failure(reply);
    assert!(
        message.contains("cannot connect") && message.contains(&port.to_string()),
        "{message}"
    );
    assert_eq!(events.len(), 1, "one visible retry: {events:?}");
}

#[tokio::test]
async fn max_tokens_cuts_a_reply_and_the_cut_is_reported() {
    let server = ModelServer::start(vec![Behaviour::Reply("one two three four five six".into())]);
    let mut config = config(&server);
    config.max_tokens = 3;
    let (reply, _) = complete(&mut model(&config)).await;
    let reply = reply.expect("a cut reply is still a reply");
    assert_eq!(reply.text, "one two three ");
    assert!(reply.cut, "finish_reason length marks it cut");
    assert_eq!(reply.usage.map(|usage| usage.completion_tokens), Some(3));
}

/// The attack: a server that ignores max_tokens and streams as fast as it can, forever.
// Several threads, as airlock runs: the task that reads the stream goes on while the test
// waits for the server to see it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_streamed_without_end_is_cut_at_max_reply_bytes_and_the_connection_closed() {
    let server = ModelServer::start(vec![Behaviour::Endless {
        head: "Here:\n```python\n".into(),
        // Two- and three-byte characters, so the bound falls inside one now and then.
        tail: "print('é€')\n".into(),
    }]);
    let mut config = config(&server);
    config.max_reply_bytes = ByteSize(64 << 10);
    let (reply, events) = complete(&mut model(&config)).await;
    let reply = reply.expect("a cut reply is still a reply");
    let bound = 64 << 10;
    assert!(reply.cut, "it ends as at the token limit");
    assert_eq!(reply.cut_at_bytes, Some(bound));
    assert!(reply.text.len() <= bound, "{} bytes kept", reply.text.len());
    assert!(reply.text.len() > bound - 16, "kept up to the bound");
    assert!(reply.text.starts_with("Here:\n```python\nprint('é€')\n"));
    assert_eq!(
        deltas(&events),
        reply.text,
        "nothing past the bound was shown"
    );
    let sent = server
        .client_went_away(Duration::from_secs(10))
        .expect("the client closed the connection");
    assert!(sent > bound as u64, "the server had sent {sent} bytes");
}

/// One event that never ends never reaches the reply's bound (the SSE parser keeps an event
/// whole): it is cut off below that, by its size alone.
// Several threads, as airlock runs: the task that reads the stream goes on while the test
// waits for the server to see it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_without_end_is_cut_off_and_the_reply_ends_with_what_came_before() {
    let server = ModelServer::start(vec![Behaviour::EndlessEvent {
        head: "Here it comes: ".into(),
    }]);
    let mut config = config(&server);
    config.max_reply_bytes = ByteSize(16 << 10);
    let (reply, events) = complete(&mut model(&config)).await;
    let reply = reply.expect("a cut reply is still a reply");
    assert!(reply.cut);
    assert_eq!(reply.cut_at_bytes, Some(16 << 10));
    assert_eq!(reply.text, "Here it comes: ");
    assert_eq!(deltas(&events), reply.text);
    let sent = server
        .client_went_away(Duration::from_secs(10))
        .expect("the client closed the connection");
    assert!(sent < 64 << 20, "the client read {sent} bytes of one event");
}

// Several threads, as airlock runs: the task that reads the stream goes on while the test
// waits for the server to see it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_arguments_streamed_without_end_are_cut_at_the_same_bound() {
    let server = ModelServer::start(vec![Behaviour::EndlessCall {
        head: "{\"language\": \"python\", \"code\": \"".into(),
        tail: "print(1)\\n".into(),
    }]);
    let mut config = config(&server);
    config.protocol = CodeProtocol::Tools;
    config.max_reply_bytes = ByteSize(16 << 10);
    let (reply, _) = complete(&mut model(&config)).await;
    let reply = reply.expect("a cut reply is still a reply");
    assert!(reply.cut);
    assert_eq!(reply.cut_at_bytes, Some(16 << 10));
    let [call] = reply.tool_calls.as_slice() else {
        panic!("one call: {:?}", reply.tool_calls);
    };
    let arguments = &call.function.arguments;
    assert!(
        arguments.len() <= 16 << 10,
        "{} bytes kept",
        arguments.len()
    );
    assert!(arguments.starts_with("{\"language\": \"python\", \"code\": \"print(1)\\n"));
    assert!(server.client_went_away(Duration::from_secs(10)).is_some());
}

#[tokio::test]
async fn the_limit_goes_under_the_name_the_server_takes_and_none_is_sent_for_zero() {
    let server = ModelServer::start(vec![
        Behaviour::Refuse("max_tokens", "fine".into()),
        Behaviour::Reply("unlimited".into()),
    ]);
    let mut config = config(&server);
    let mut model = model(&config);
    let (reply, events) = complete(&mut model).await;
    assert_eq!(reply.map(|reply| reply.text).as_deref(), Ok("fine"));
    assert!(
        events.iter().all(|e| matches!(e, ModelEvent::Delta(_))),
        "a refused field is not a retry: {events:?}"
    );
    let requests = server.requests();
    assert!(requests[0].body.get("max_tokens").is_some());
    assert_eq!(requests[1].body["max_completion_tokens"], 4096);
    assert!(requests[1].body.get("max_tokens").is_none());

    config.max_tokens = 0;
    let (reply, _) = complete(&mut self::model(&config)).await;
    assert!(!reply.expect("a reply").cut);
    let last = server.requests().pop().expect("a request");
    assert!(
        last.body.get("max_tokens").is_none() && last.body.get("max_completion_tokens").is_none()
    );
}

#[tokio::test]
async fn a_server_that_refuses_stream_options_is_asked_without_them_for_the_session() {
    let server = ModelServer::start(vec![
        Behaviour::Refuse("stream_options", "first".into()),
        Behaviour::Reply("second".into()),
    ]);
    let mut model = model(&config(&server));
    let (reply, _) = complete(&mut model).await;
    let reply = reply.expect("a reply without usage");
    assert_eq!((reply.text.as_str(), reply.usage), ("first", None));
    let (reply, _) = complete(&mut model).await;
    assert_eq!(reply.expect("a reply").text, "second");
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        3,
        "refused once, then asked without: {requests:?}"
    );
    assert!(requests[0].body.get("stream_options").is_some());
    assert!(requests[1].body.get("stream_options").is_none());
    assert!(
        requests[2].body.get("stream_options").is_none(),
        "remembered"
    );
}
