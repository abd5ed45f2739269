//! The built-in system prompt: how airlock runs the model's code, so the model writes blocks
//! that can run and knows what comes back.

/// What the prompt says about the sandbox.
#[derive(Debug, Clone)]
pub(crate) struct PromptFacts<'a> {
    pub(crate) languages: &'a [&'a str],
    /// Docker's network mode; "none" means no network.
    pub(crate) network: &'a str,
    pub(crate) timeout_secs: u64,
    pub(crate) workspace_read_only: bool,
    /// The model is offered the `run_code` tool (it may still write fenced blocks where the
    /// server refuses tools).
    pub(crate) tools: bool,
}

pub(crate) fn default_system_prompt(facts: &PromptFacts<'_>) -> String {
    let tags: Vec<String> = facts
        .languages
        .iter()
        .map(|name| format!("`{name}`"))
        .collect();
    let network = if facts.network == "none" {
        "There is no network access: nothing can be downloaded or installed from the internet."
            .to_string()
    } else {
        format!(
            "The network is available (Docker network mode `{}`).",
            facts.network
        )
    };
    let workspace = if facts.workspace_read_only {
        "/workspace is the working directory and is read-only; write scratch files to /tmp."
    } else {
        // There is no display, and the operator sees the workspace's pictures in airlock.
        "/workspace is the working directory; files written there persist from block to block. \
         Save figures and pictures as PNG files in /workspace instead of trying to show them \
         (with matplotlib, use the Agg backend and `plt.savefig(\"/workspace/NAME.png\")`): \
         the operator sees the workspace's pictures in airlock."
    };
    let how = if facts.tools {
        format!(
            "To run code, call the function `run_code` with its `language` and its `code`; each \
             call is a block. If tools are not available, write the code in a fenced markdown \
             code block that starts with a language tag, for example ```python. Languages \
             airlock can run: {}.",
            tags.join(", ")
        )
    } else {
        format!(
            "To run code, write it in a fenced markdown code block that starts with a language \
             tag, for example ```python. Blocks airlock can run: {}. Blocks without a tag or in \
             another language are shown but never run.",
            tags.join(", ")
        )
    };
    format!(
        "You are working on a task in a supervised coding session run by airlock.\n\
         \n\
         {how}\n\
         \n\
         A human operator reviews every block before it runs. They may approve it, edit it, \
         skip it or reject it with a reason, which you will be told. Approved blocks run one at \
         a time, in the order you wrote them, each as a fresh process in a sandboxed Linux \
         container, as a non-root user, with a {} second time limit. If a block fails, the \
         blocks after it in the same message are not run.\n\
         \n\
         {workspace} The rest of the filesystem is read-only apart from /tmp. {network} Use what is \
         already installed in the image.\n\
         \n\
         After every block of your message has been handled you receive one message with each \
         block's exit status and output (long output is shortened to its beginning and end), \
         or why it did not run. Read it, fix what failed, and continue. Keep each block small \
         and focused. When the task is done, reply with a short summary and no code blocks.",
        facts.timeout_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_states_the_facts_it_is_given() {
        let facts = PromptFacts {
            languages: &["python", "bash", "sh"],
            network: "none",
            timeout_secs: 60,
            workspace_read_only: false,
            tools: false,
        };
        let prompt = default_system_prompt(&facts);
        for needle in [
            "`python`, `bash`, `sh`",
            "no network",
            "/workspace",
            "60 second",
            "exit status",
        ] {
            assert!(prompt.contains(needle), "{needle} missing from:\n{prompt}");
        }
        let online = default_system_prompt(&PromptFacts {
            network: "bridge",
            workspace_read_only: true,
            ..facts
        });
        assert!(
            online.contains("network mode `bridge`") && online.contains("read-only; write scratch")
        );
        let pictures = "Save figures and pictures as PNG files in /workspace instead of trying to \
                        show them (with matplotlib, use the Agg backend and \
                        `plt.savefig(\"/workspace/NAME.png\")`): the operator sees the \
                        workspace's pictures in airlock.";
        assert!(prompt.contains(pictures), "{prompt}");
        // A read-only workspace cannot take them.
        assert!(!online.contains("savefig"), "{online}");
        let tools = default_system_prompt(&PromptFacts {
            tools: true,
            ..facts
        });
        assert!(tools.contains("call the function `run_code`") && tools.contains("`python`"));
    }
}
