//! What real models need, end to end: tool calls through `airlock run` against the project's
//! SSE server (which can split calls over chunks, send several at once and malformed
//! arguments), and a real model server, llama.cpp's `llama-server` with SmolLM2 at
//! temperature 0 (`scripts/llama-server start` runs it; `scripts/test` does that first and
//! sets AIRLOCK_LLAMA_URL): a reply streams, usage arrives, max_tokens cuts a reply and the
//! cut is reported, a stopped reply is kept, and a request offering tools is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use airlock::config::ModelConfig;
use airlock::model::openai::OpenAiModel;
use airlock::model::{ChatMessage, CodeProtocol, Model, ModelEvent, Role};
use common::model_server::{Behaviour, ModelServer};
use common::tmux::Tmux;
use common::{Home, of_type, test_image};
use serde_json::Value;

/// `airlock run --json` with these arguments, its events and how it ended.
fn run_json(home: &Home, args: &[&str]) -> (Vec<Value>, Output) {
    let output = home.run_json(args).output().expect("airlock runs");
    (common::json_events(&output), output)
}

#[test]
fn tool_calls_run_as_blocks_and_each_result_answers_its_call() {
    let server = ModelServer::start(vec![
        Behaviour::Calls(vec![
            (
                "call_ok",
                "run_code",
                r#"{"language": "bash", "code": "echo from-a-call"}"#.into(),
            ),
            ("call_bad", "run_code", r#"{"language": "bash", "co"#.into()),
            (
                "call_two",
                "run_code",
                r#"{"language": "python", "code": "print(6 * 7)"}"#.into(),
            ),
        ]),
        Behaviour::Reply("Both ran; done.".into()),
    ]);
    let home = Home::new();
    let (events, output) = run_json(
        &home,
        &[
            "-c",
            "model.protocol=tools",
            "--base-url",
            &server.base_url,
            "--approve",
            "all",
            "--prompt",
            "print something",
        ],
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    let proposed: Vec<&str> = of_type(&events, "block_proposed")
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(proposed, ["echo from-a-call", "print(6 * 7)"], "in order");
    let outputs: Vec<&str> = of_type(&events, "exec_finished")
        .iter()
        .map(|e| e["output"].as_str().unwrap())
        .collect();
    assert_eq!(
        outputs,
        ["from-a-call\n", "42\n"],
        "both ran in the sandbox"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let tools = &requests[0].body["tools"];
    assert_eq!(tools[0]["function"]["name"], "run_code", "{tools}");
    let messages = requests[1].body["messages"].as_array().unwrap().clone();
    let reply = &messages[messages.len() - 4];
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["tool_calls"].as_array().unwrap().len(), 3);
    let answer = |id: &str| -> String {
        messages
            .iter()
            .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
            .and_then(|m| m["content"].as_str())
            .unwrap_or_else(|| panic!("no answer to {id}: {messages:#?}"))
            .to_string()
    };
    assert!(answer("call_ok").contains("from-a-call"));
    assert!(answer("call_two").contains("42"));
    assert!(
        answer("call_bad").contains("not a JSON object"),
        "{}",
        answer("call_bad")
    );
}

#[test]
fn auto_asks_for_fences_where_a_server_refuses_tools() {
    let server = ModelServer::start(vec![
        Behaviour::Refuse("tools", "```bash\necho fenced\n```\n".into()),
        Behaviour::Reply("It printed fenced.".into()),
    ]);
    let home = Home::new();
    let (events, output) = run_json(
        &home,
        &[
            "-c",
            "model.protocol=auto",
            "--base-url",
            &server.base_url,
            "--approve",
            "all",
            "--prompt",
            "go",
        ],
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    let finished = of_type(&events, "exec_finished");
    assert_eq!(finished[0]["output"], "fenced\n");
    let requests = server.requests();
    assert!(requests[0].body.get("tools").is_some());
    assert!(
        requests[1].body.get("tools").is_none(),
        "asked again without"
    );
}

/// The real server's `/v1` URL; the tests below need it (scripts/test starts the server).
fn llama_url() -> String {
    let url = std::env::var("AIRLOCK_LLAMA_URL").expect(
        "AIRLOCK_LLAMA_URL is not set: run the tests with scripts/test, which starts \
         llama-server (or run `eval \"$(scripts/llama-server start)\"` first)",
    );
    format!("{}/v1", url.trim_end_matches('/'))
}

fn llama_config() -> ModelConfig {
    ModelConfig {
        base_url: llama_url(),
        model: "smollm2-135m-instruct".into(),
        api_key_env: "AIRLOCK_TEST_UNSET_KEY".into(),
        temperature: Some(0.0),
        max_tokens: 48,
        ..ModelConfig::default()
    }
}

async fn ask(config: &ModelConfig, question: &str) -> (airlock::model::Reply, usize) {
    let mut model = OpenAiModel::new(config).expect("valid config");
    let mut deltas = 0;
    let mut sink = |event: ModelEvent| {
        if matches!(event, ModelEvent::Delta(_)) {
            deltas += 1;
        }
    };
    let messages = [
        ChatMessage::new(Role::System, "You are a helpful assistant."),
        ChatMessage::new(Role::User, question),
    ];
    let reply = model
        .complete(&messages, &mut sink)
        .await
        .expect("the real server replies");
    (reply, deltas)
}

#[tokio::test]
async fn a_real_server_streams_a_reply_and_counts_its_tokens() {
    let (reply, deltas) = ask(&llama_config(), "What is 2 + 2? Answer in one short line.").await;
    assert!(!reply.text.trim().is_empty());
    assert!(deltas > 1, "it streamed in pieces");
    let usage = reply.usage.expect("llama-server sends usage when asked");
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert!(!reply.cut || usage.completion_tokens == 48);
}

#[tokio::test]
async fn max_tokens_cuts_a_real_reply_and_says_so() {
    let config = ModelConfig {
        max_tokens: 8,
        ..llama_config()
    };
    let (reply, _) = ask(&config, "Write a long story about a lighthouse keeper.").await;
    assert!(reply.cut, "finish_reason length: {reply:?}");
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(8));
    // Under the other name too.
    let config = ModelConfig {
        max_tokens_field: airlock::config::TokenField::MaxCompletionTokens,
        ..config
    };
    let (reply, _) = ask(&config, "Write a long story about a lighthouse keeper.").await;
    assert!(reply.cut && reply.usage.map(|u| u.completion_tokens) == Some(8));
}

#[tokio::test]
async fn a_request_offering_tools_is_accepted() {
    let config = ModelConfig {
        protocol: CodeProtocol::Tools,
        ..llama_config()
    };
    // This small model's template ignores tools: it answers in text, and that is fine.
    let (reply, _) = ask(&config, "Print hello in Python.").await;
    assert!(!reply.text.is_empty() || !reply.tool_calls.is_empty());
}

#[test]
fn stopping_a_real_reply_keeps_what_arrived_on_screen_and_in_the_history() {
    let home = Home::new();
    let command = format!(
        "env XDG_DATA_HOME={data} XDG_CONFIG_HOME={config} {bin} -c sandbox.image={image} \
         -c model.max_tokens=300 -c model.temperature=0 --base-url {url}",
        data = home.dir.path().join("data").display(),
        config = home.dir.path().join("config").display(),
        bin = env!("CARGO_BIN_EXE_airlock"),
        image = test_image(),
        url = llama_url(),
    );
    let tmux = Tmux::run(home.dir.path(), &command);
    tmux.wait_for("Message the model");
    tmux.keys(&[
        "Write a very long story about a lighthouse keeper and the sea.",
        "Enter",
    ]);
    // The reply's first words are on screen (its label comes with them); a little more
    // arrives, then the operator stops it, long before 300 tokens.
    tmux.wait_for("model · ");
    std::thread::sleep(std::time::Duration::from_millis(300));
    tmux.keys(&["C-c"]);
    tmux.wait_for("stopped by the operator");
    let screen = tmux.screen();
    assert!(screen.contains("model ·"), "the reply stays: {screen}");
    let session = screen
        .split_whitespace()
        .find(|word| word.starts_with("s-2"))
        .unwrap_or_else(|| panic!("no session id on the screen:\n{screen}"))
        .to_string();
    tmux.escape();
    tmux.keys(&["q"]);
    tmux.wait_exit();
    let show = home
        .airlock()
        .args(["history", "show", &session])
        .output()
        .expect("history show");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("- the reply was stopped by the operator"),
        "{text}"
    );
}
