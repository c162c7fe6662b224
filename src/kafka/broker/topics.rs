//! Kafka's topic-name rules (`org.apache.kafka.common.internals.Topic.validate`), with Kafka's
//! own messages: the mock accepts any name, and a name Kafka refuses must be refused here too.

/// The longest topic name Kafka accepts.
pub(crate) const MAX_NAME_LENGTH: usize = 249;

/// Why Kafka refuses a topic name; the text is Kafka's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidTopic {
    #[error("Topic name is invalid: the empty string is not allowed")]
    Empty,
    #[error("Topic name is invalid: '{0}' is not allowed")]
    Dots(&'static str),
    #[error(
        "Topic name is invalid: \"{0}\" is longer than the max allowed length {MAX_NAME_LENGTH}"
    )]
    TooLong(String),
    #[error(
        "Topic name is invalid: \"{0}\" contains one or more characters other than ASCII \
         alphanumerics, '.', '_' and '-'"
    )]
    Characters(String),
}

/// Checks a name as Kafka does before creating or auto-creating a topic.
pub(crate) fn validate(name: &str) -> Result<(), InvalidTopic> {
    if name.is_empty() {
        return Err(InvalidTopic::Empty);
    }
    if name == "." {
        return Err(InvalidTopic::Dots("."));
    }
    if name == ".." {
        return Err(InvalidTopic::Dots(".."));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(InvalidTopic::TooLong(name.to_owned()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(InvalidTopic::Characters(name.to_owned()));
    }
    Ok(())
}

/// Kafka's internal topics, which clients may not produce to.
pub(crate) fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

/// Kafka treats '.' and '_' alike in metric names, so two topics differing only there collide.
pub(crate) fn collides(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_kafka_refuses_are_refused_with_its_messages() {
        assert_eq!(validate(""), Err(InvalidTopic::Empty));
        assert_eq!(validate("."), Err(InvalidTopic::Dots(".")));
        assert_eq!(validate(".."), Err(InvalidTopic::Dots("..")));
        for bad in ["bad topic", "x/y", "ü-topic", "tab\t"] {
            assert!(
                matches!(validate(bad), Err(InvalidTopic::Characters(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            validate(&"a".repeat(250)),
            Err(InvalidTopic::TooLong(_))
        ));
        assert_eq!(
            validate("").unwrap_err().to_string(),
            "Topic name is invalid: the empty string is not allowed"
        );
        assert_eq!(
            validate("..").unwrap_err().to_string(),
            "Topic name is invalid: '..' is not allowed"
        );
    }

    #[test]
    fn names_kafka_accepts_are_accepted() {
        for good in ["-", "order-events", "a.b_c-9", "...", &"a".repeat(249)] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn dots_and_underscores_collide() {
        assert!(collides("dot.name", "dot_name"));
        assert!(!collides("dot.name", "dot.name"));
        assert!(!collides("a", "b"));
    }
}
