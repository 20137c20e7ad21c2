//! The subjects calls travel on (section 10 of `docs/PROTOCOL.md`).

use std::fmt;

/// The default first token of every subject.
pub(super) const DEFAULT_PREFIX: &str = "rpc";

/// How subjects are named under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (checked: tokens of a subject).
    pub(super) fn new(prefix: &str) -> Result<Self, String> {
        check("prefix", prefix)?;
        Ok(Subjects {
            prefix: prefix.to_owned(),
        })
    }

    /// Subjects under the default prefix, `rpc`.
    pub(super) fn standard() -> Self {
        Subjects {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Where calls to `service` go, in its queue group: one server of the
    /// group takes each.
    pub(super) fn call(&self, service: &str) -> String {
        format!("{}.call.{service}", self.prefix)
    }

    /// Where calls for every server of `service` go (no queue group).
    pub(super) fn fanout(&self, service: &str) -> String {
        format!("{}.fanout.{service}", self.prefix)
    }

    /// One server's own subject: calls to it by name, and every later
    /// message of a call it took.
    pub(super) fn instance(&self, instance: &str) -> String {
        format!("{}.instance.{instance}", self.prefix)
    }
}

/// Where a server sends the messages of call `id` of a caller whose
/// inbox is `inbox`; id 0 for messages of no call (a goodbye).
pub(super) fn reply_to(inbox: &str, id: u64) -> String {
    format!("{inbox}.{id}")
}

/// A reply subject split into the caller's inbox and the call's id: the
/// last token is the id.
pub(super) fn split_reply(reply: &str) -> Option<(&str, u64)> {
    let (inbox, id) = reply.rsplit_once('.')?;
    if inbox.is_empty() {
        return None;
    }
    Some((inbox, id.parse().ok()?))
}

/// The caller's inbox a reply subject names: all but its last token (a
/// subject of one token is an inbox of its own).
pub(super) fn inbox_of(reply: &str) -> &str {
    reply.rsplit_once('.').map_or(reply, |(inbox, _)| inbox)
}

/// Checks that `name` is one or more subject tokens: no empty token, no
/// whitespace, no wildcard.
pub(super) fn check(what: impl fmt::Display, name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.split('.').any(|token| {
            token.is_empty()
                || token == "*"
                || token == ">"
                || token.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if bad {
        Err(format!(
            "{what} `{name}` cannot be part of a NATS subject: it must be tokens separated by `.`, none empty, without whitespace or the wildcards `*` and `>`"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{check, inbox_of, reply_to, split_reply, Subjects};

    #[test]
    fn subjects_name_the_service_and_the_instance() {
        let s = Subjects::new("rpc").unwrap();
        assert_eq!(s.call("example.KeyValue"), "rpc.call.example.KeyValue");
        assert_eq!(s.fanout("example.KeyValue"), "rpc.fanout.example.KeyValue");
        assert_eq!(s.instance("a1"), "rpc.instance.a1");
    }

    #[test]
    fn a_reply_subject_splits_into_inbox_and_id() {
        let reply = reply_to("_INBOX.abc", 17);
        assert_eq!(split_reply(&reply), Some(("_INBOX.abc", 17)));
        assert_eq!(split_reply("_INBOX.abc.x"), None);
        assert_eq!(split_reply("17"), None);
        assert_eq!(split_reply(".17"), None);
        assert_eq!(inbox_of("_INBOX.abc.xyz"), "_INBOX.abc");
        assert_eq!(inbox_of("single"), "single");
    }

    #[test]
    fn names_that_are_not_subject_tokens_are_refused() {
        assert!(check("service", "example.KeyValue").is_ok());
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a", "a."] {
            assert!(check("service", bad).is_err(), "{bad:?}");
        }
    }
}
