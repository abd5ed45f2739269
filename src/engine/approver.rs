//! The external approver, as the engine sees it: something that answers yes or no to one
//! block. The command-line adapter lives in `crate::approver`.

use std::future::Future;

use serde::Serialize;

/// What the approver is asked about one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRequest {
    pub(crate) session: String,
    pub(crate) block: String,
    pub(crate) index: usize,
    pub(crate) language: String,
    pub(crate) code: String,
    /// The model's whole message the block comes from.
    pub(crate) context: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverVerdict {
    pub(crate) approved: bool,
    pub(crate) reason: Option<String>,
}

pub trait Approver: Send + Sync {
    /// The verdict, or why there is none (the block then goes to the operator).
    fn review(
        &self,
        request: &ApprovalRequest,
    ) -> impl Future<Output = Result<ApproverVerdict, String>> + Send;
}
