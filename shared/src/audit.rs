//! Who did an operator's or admin's action: what the audit trail names.

use crate::ids::UserId;

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in admin, over the API.
    Admin(UserId),
    /// Someone with the machine or the AWS credentials, through the `giftify` command line.
    Operator,
    /// The reconciler, on its own schedule.
    Reconciler,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin(user) => write!(f, "{user}"),
            Actor::Operator => f.write_str("cli"),
            Actor::Reconciler => f.write_str("reconciler"),
        }
    }
}
