//! Newtypes for identifiers that must never be mixed up: tenants, jobs, personas, content hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a string newtype with the conversions every identifier needs.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string without validation; use `parse` for input from outside.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A tenant, e.g. `thj`. Lower-case letters, digits and `-`, 1 to 63 characters, so it is safe
    /// inside Redis keys, URLs and Drive folder names.
    TenantId
);
string_id!(
    /// A job, as the queue hands it out (a UUIDv7: time-ordered, unique without coordination).
    JobId
);
string_id!(
    /// An audience a document is written for: `leadership`, `product`, `marketing`, `devrel`, ...
    Persona
);
string_id!(
    /// The first 16 hex characters of the SHA-256 of normalized content (see `cache::hash`).
    ContentHash
);

/// Why an identifier from outside was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidId {
    /// Which identifier (tenant, persona, ...).
    pub kind: &'static str,
    /// The refused text (identifiers are never secrets).
    pub value: String,
    /// What rule it broke.
    pub reason: &'static str,
}

fn check_slug(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let fail = |reason| {
        Err(InvalidId {
            kind,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() || value.len() > 63 {
        return fail("must be 1 to 63 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return fail("only lower-case letters, digits, '-' and '_' are allowed");
    }
    Ok(())
}

impl TenantId {
    /// Parses a tenant id from untrusted input.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        check_slug("tenant id", value)?;
        Ok(Self(value.to_owned()))
    }
}

impl Persona {
    /// Parses a persona name from untrusted input.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        check_slug("persona", value)?;
        Ok(Self(value.to_owned()))
    }
}

impl JobId {
    /// A fresh, time-ordered job id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Parses a job id from untrusted input (a UUID).
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        uuid::Uuid::parse_str(value)
            .map(|u| Self(u.to_string()))
            .map_err(|_| InvalidId {
                kind: "job id",
                value: value.chars().take(64).collect(),
                reason: "not a UUID",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_slugs() {
        assert!(TenantId::parse("thj").is_ok());
        assert!(TenantId::parse("acme-corp").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a:b").is_err());
        assert!(TenantId::parse("{x}").is_err());
        assert!(TenantId::parse("Upper").is_err());
    }

    #[test]
    fn job_ids_round_trip() {
        let id = JobId::generate();
        assert_eq!(JobId::parse(id.as_str()).unwrap(), id);
        assert!(JobId::parse("nope").is_err());
    }
}
