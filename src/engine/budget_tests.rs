use super::*;

fn system() -> ChatMessage {
    ChatMessage::new(Role::System, "You run code for the operator.")
}

/// A conversation of `turns` exchanges: a message, a reply, a long result.
fn conversation(turns: usize, result_bytes: usize) -> (Vec<ChatMessage>, Vec<bool>) {
    let mut messages = vec![ChatMessage::new(Role::User, "count the words")];
    let mut results = vec![false];
    for turn in 0..turns {
        messages.push(ChatMessage::new(
            Role::Assistant,
            format!("Step {turn}:\n```python\nprint({turn})\n```"),
        ));
        results.push(false);
        messages.push(ChatMessage::new(
            Role::User,
            format!("## Block 1\nexit 0\n{}", "x".repeat(result_bytes)),
        ));
        results.push(true);
    }
    (messages, results)
}

fn budget(window: u64) -> Budgeter {
    Budgeter::new(ContextBudget { window, reply: 100 })
}

#[test]
fn a_request_that_fits_goes_as_it_is() {
    let (messages, results) = conversation(2, 100);
    let fitted = budget(10_000).fit(&system(), &messages, &results);
    assert_eq!(fitted.messages[0], system());
    assert_eq!(fitted.messages[1..], messages[..]);
    assert_eq!(
        (fitted.shortened, fitted.left_out, fitted.over),
        (0, 0, false)
    );
}

#[test]
fn older_results_are_shortened_first_and_the_newest_stay_whole() {
    let (messages, results) = conversation(4, 4000);
    // Four results of about 1000 tokens: shortening older ones makes it fit.
    let fitted = budget(2600).fit(&system(), &messages, &results);
    assert!(!fitted.over && fitted.left_out == 0, "{fitted:?}");
    assert!(fitted.shortened >= 1, "{fitted:?}");
    assert!(fitted.tokens <= 2500);
    let sent = &fitted.messages[1..];
    assert_eq!(sent.len(), messages.len());
    let newest = &sent[sent.len() - 1];
    assert_eq!(
        newest,
        messages.last().expect("a message"),
        "the newest is whole"
    );
    let shortened = sent
        .iter()
        .find(|m| m.content.contains("bytes of these results were left out"))
        .expect("a shortened result");
    assert!(
        shortened.content.starts_with("## Block 1\nexit 0\n"),
        "its start is kept"
    );
    // The operator's messages and the model's replies are never shortened.
    for (sent, original) in sent.iter().zip(&messages) {
        if sent.role == Role::Assistant || sent.content.starts_with("count") {
            assert_eq!(sent, original);
        }
    }
}

#[test]
fn then_the_oldest_messages_are_left_out_with_a_note_in_their_place() {
    let (messages, results) = conversation(20, 1000);
    let fitted = budget(800).fit(&system(), &messages, &results);
    assert!(!fitted.over, "{fitted:?}");
    assert!(fitted.left_out > 0);
    assert!(fitted.tokens <= 700);
    assert_eq!(
        fitted.messages[0],
        system(),
        "the system prompt always goes"
    );
    let first = &fitted.messages[1];
    assert_eq!(first.role, Role::User);
    assert!(
        first.content.starts_with(&format!(
            "[airlock: the {} earliest messages",
            fitted.left_out
        )),
        "{}",
        first.content
    );
    let sent = &fitted.messages[1..];
    assert_eq!(sent.last(), messages.last(), "the newest message goes");
    assert_eq!(sent[sent.len() - 2], messages[messages.len() - 2]);
    // Roles still alternate: the note joined the first message left.
    assert!(sent.windows(2).all(|pair| pair[0].role != pair[1].role));
}

#[test]
fn newest_messages_too_big_for_the_window_are_sent_and_said_to_be_over() {
    let (messages, results) = conversation(1, 8000);
    let fitted = budget(500).fit(&system(), &messages, &results);
    assert!(fitted.over);
    assert_eq!(fitted.messages.last(), messages.last());
}

#[test]
fn the_servers_count_corrects_the_estimate() {
    let (messages, results) = conversation(6, 1000);
    let mut budgeter = budget(100_000);
    let first = budgeter.fit(&system(), &messages, &results);
    // This server's tokenizer counts twice as many tokens as the estimate.
    budgeter.learn(Usage {
        prompt_tokens: first.tokens * 2,
        completion_tokens: 10,
        total_tokens: first.tokens * 2 + 10,
    });
    let again = budgeter.fit(&system(), &messages, &results);
    assert_eq!(again.tokens, first.tokens * 2);
    // A window that fits the old estimate but not the corrected one now leaves some out.
    let mut tight = Budgeter {
        budget: ContextBudget {
            window: first.tokens + 100 + 50,
            reply: 100,
        },
        ..budgeter
    };
    let fitted = tight.fit(&system(), &messages, &results);
    assert!(fitted.left_out > 0 && !fitted.over, "{fitted:?}");
}

#[test]
fn a_tool_calls_answers_are_never_sent_without_the_reply_that_made_it() {
    let call = |id: &str| crate::model::ToolCall {
        id: id.into(),
        kind: "function".into(),
        function: crate::model::FunctionCall {
            name: "run_code".into(),
            arguments: "{}".into(),
        },
    };
    let mut messages = vec![ChatMessage::new(Role::User, "go")];
    let mut results = vec![false];
    for turn in 0..8 {
        messages.push(ChatMessage {
            tool_calls: vec![call(&format!("a{turn}")), call(&format!("b{turn}"))],
            ..ChatMessage::new(Role::Assistant, "")
        });
        results.push(false);
        for id in ["a", "b"] {
            messages.push(ChatMessage::tool(&format!("{id}{turn}"), "y".repeat(800)));
            results.push(true);
        }
    }
    let fitted = budget(900).fit(&system(), &messages, &results);
    assert!(fitted.left_out > 0 && !fitted.over, "{fitted:?}");
    let sent = &fitted.messages[1..];
    // Every answer follows the reply whose call it answers.
    let mut open: Vec<String> = Vec::new();
    for message in sent {
        match message.role {
            Role::Assistant => open = message.tool_calls.iter().map(|c| c.id.clone()).collect(),
            Role::Tool => {
                let id = message.tool_call_id.clone().expect("an id");
                assert!(open.contains(&id), "{id} answers no call sent: {sent:?}");
            }
            _ => {}
        }
    }
    // The newest reply and both its answers went.
    assert_eq!(sent[sent.len() - 3], messages[messages.len() - 3]);
}

#[test]
fn the_cost_of_a_request_with_a_note_is_what_building_it_would_count() {
    let (mut messages, _) = conversation(3, 500);
    messages.insert(1, ChatMessage::new(Role::Assistant, "a reply first"));
    let costs: Vec<u64> = messages.iter().map(raw_cost).collect();
    // Left out up to a user message (the note joins it) and up to a reply (it comes first).
    for left_out in 0..messages.len() - 1 {
        let built: u64 = with_note(&messages, left_out).iter().map(raw_cost).sum();
        assert_eq!(
            cost_with_note(&messages, &costs, left_out),
            built,
            "{left_out}"
        );
    }
}
