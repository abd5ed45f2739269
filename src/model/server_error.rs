//! An error answer from a model server, whatever shape its body has. OpenAI wraps it as
//! `{"error": {"message", "param", "code": "…"}}`, which async-openai reads; llama.cpp sends
//! a number as the `code` and vLLM does not wrap it at all, which async-openai cannot read
//! and hands over as text. Both are read here, so a refused field, a key or a rate limit is
//! recognised on every server.

use async_openai::error::OpenAIError;
use serde_json::Value;

pub(super) struct ServerError {
    /// The HTTP status, when known (async-openai keeps it only for the bodies it reads; the
    /// others usually repeat it as their numeric `code`).
    pub(super) status: Option<u16>,
    pub(super) message: String,
    pub(super) param: Option<String>,
    pub(super) code: Option<String>,
}

pub(super) fn server_error(err: &OpenAIError) -> Option<ServerError> {
    match err {
        OpenAIError::ApiError(api) => Some(ServerError {
            status: Some(api.status_code.as_u16()),
            message: api.api_error.message.trim().to_string(),
            param: api.api_error.param.clone(),
            code: api.api_error.code.clone(),
        }),
        OpenAIError::JSONDeserialize(_, content) => from_body(content),
        _ => None,
    }
}

fn from_body(content: &str) -> Option<ServerError> {
    let body: Value = serde_json::from_str(content).ok()?;
    let error = body.get("error").filter(|e| e.is_object()).unwrap_or(&body);
    let message = error.get("message")?.as_str()?.trim().to_string();
    let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_string);
    let code = error.get("code");
    let status = code
        .and_then(Value::as_u64)
        .filter(|status| (400..600).contains(status))
        .map(|status| status as u16);
    Some(ServerError {
        status,
        message,
        param: text("param"),
        code: code.and_then(|code| match code {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unread(body: &str) -> OpenAIError {
        let err = serde_json::from_str::<u8>("x").unwrap_err();
        OpenAIError::JSONDeserialize(err, body.into())
    }

    #[test]
    fn llama_cpp_and_vllm_error_bodies_are_read() {
        let llama = server_error(&unread(
            r#"{"error":{"code":400,"message":"tools param requires --jinja flag","type":"invalid_request_error"}}"#,
        ))
        .expect("read");
        assert_eq!(llama.status, Some(400));
        assert!(llama.message.contains("tools param"));
        let vllm = server_error(&unread(
            r#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":"max_tokens","code":400}"#,
        ))
        .expect("read");
        assert_eq!(
            (vllm.status, vllm.param.as_deref()),
            (Some(400), Some("max_tokens"))
        );
        assert!(server_error(&unread("<html>bad gateway</html>")).is_none());
    }
}
