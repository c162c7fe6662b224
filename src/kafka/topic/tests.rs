//! Unit tests of waiting for a topic, against a scripted cluster.

use std::cell::RefCell;

use super::*;

fn led(leader: i32) -> PartitionAnswer {
    PartitionAnswer {
        leader,
        error: None,
    }
}

#[test]
fn answers_are_classified() {
    use RDKafkaErrorCode as E;
    assert_eq!(
        TopicAnswer::classify(None, &[led(1), led(1), led(2)]),
        TopicAnswer::Ready { partitions: 3 }
    );
    assert_eq!(
        TopicAnswer::classify(Some(E::UnknownTopicOrPartition), &[]),
        TopicAnswer::Unknown
    );
    assert_eq!(
        TopicAnswer::classify(Some(E::InvalidTopic), &[]),
        TopicAnswer::InvalidName
    );
    assert_eq!(
        TopicAnswer::classify(Some(E::TopicAuthorizationFailed), &[]),
        TopicAnswer::NotAuthorized
    );
    assert!(matches!(
        TopicAnswer::classify(Some(E::LeaderNotAvailable), &[]),
        TopicAnswer::Settling { partitions: 0, .. }
    ));
    assert_eq!(
        TopicAnswer::classify(None, &[led(1), led(-1), led(1)]),
        TopicAnswer::Settling {
            partitions: 3,
            reason: "1 of its 3 partitions have no leader".into()
        }
    );
    assert!(matches!(
        TopicAnswer::classify(None, &[]),
        TopicAnswer::Settling { partitions: 0, .. }
    ));
}

/// A cluster that gives scripted answers, one per question, then repeats the last.
struct Scripted {
    answers: RefCell<Vec<Option<TopicAnswer>>>,
    asked: RefCell<u32>,
    names: Vec<String>,
}

impl Scripted {
    fn new(answers: Vec<Option<TopicAnswer>>) -> Scripted {
        Scripted {
            answers: RefCell::new(answers),
            asked: RefCell::new(0),
            names: Vec::new(),
        }
    }
}

impl TopicMetadata for Scripted {
    fn describe_topic(&self, _: &str, timeout: Duration) -> Option<TopicAnswer> {
        *self.asked.borrow_mut() += 1;
        let mut answers = self.answers.borrow_mut();
        let answer = if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        };
        if answer.is_none() {
            std::thread::sleep(timeout);
        }
        answer
    }

    fn topic_names(&self, _: Duration) -> Option<Vec<String>> {
        Some(self.names.clone())
    }
}

const QUICK: Patience = Patience {
    reach: Duration::from_millis(300),
    appear: Duration::from_millis(700),
};

fn wait(cluster: &Scripted, user: TopicUser) -> Result<ReadyTopic, TopicWaitError> {
    let (_keep, health) = watch::channel(Connection::Ok);
    wait_for_topic(cluster, "order-events", "b:9092", user, &health, QUICK)
}

#[test]
fn a_topic_created_by_the_first_question_is_used() {
    // Kafka's answer with auto-create on: unknown, then no leaders, then ready.
    let cluster = Scripted::new(vec![
        Some(TopicAnswer::Unknown),
        Some(TopicAnswer::classify(None, &[led(-1), led(1), led(1)])),
        Some(TopicAnswer::Ready { partitions: 3 }),
    ]);
    assert_eq!(
        wait(&cluster, TopicUser::Producer),
        Ok(ReadyTopic {
            partitions: 3,
            created_on_first_use: true
        })
    );
    assert_eq!(*cluster.asked.borrow(), 3);
}

#[test]
fn a_topic_that_stays_unknown_is_missing_and_the_message_says_how_long() {
    let cluster = Scripted::new(vec![Some(TopicAnswer::Unknown)]);
    let started = Instant::now();
    let Err(TopicWaitError::Topic(error)) = wait(&cluster, TopicUser::Producer) else {
        panic!("expected a missing topic");
    };
    assert!(
        started.elapsed() >= QUICK.appear,
        "asked again before giving up"
    );
    assert!(
        *cluster.asked.borrow() >= 3,
        "asked {}",
        cluster.asked.borrow()
    );
    assert!(matches!(error, TopicError::MissingForProducer { .. }));

    let cluster = Scripted::new(vec![Some(TopicAnswer::Unknown)]);
    let Err(TopicWaitError::Topic(error)) = wait(&cluster, TopicUser::Consumer) else {
        panic!("expected a missing topic");
    };
    assert!(matches!(error, TopicError::MissingForConsumer { .. }));
}

#[test]
fn refused_names_and_credentials_are_reported_at_once() {
    for (answer, expected) in [
        (TopicAnswer::InvalidName, "refuses the topic name"),
        (
            TopicAnswer::NotAuthorized,
            "does not allow these credentials",
        ),
    ] {
        let cluster = Scripted::new(vec![Some(answer)]);
        let Err(TopicWaitError::Topic(error)) = wait(&cluster, TopicUser::Producer) else {
            panic!("expected an error");
        };
        assert!(error.to_string().contains(expected), "{error}");
        assert_eq!(*cluster.asked.borrow(), 1);
    }
}

#[test]
fn a_name_that_collides_is_named() {
    let mut cluster = Scripted::new(vec![Some(TopicAnswer::Unknown)]);
    cluster.names = vec!["other".into(), "dot.name".into()];
    let (_keep, health) = watch::channel(Connection::Ok);
    let answer = wait_for_topic(
        &cluster,
        "dot_name",
        "b:1",
        TopicUser::Producer,
        &health,
        QUICK,
    );
    assert_eq!(
        answer,
        Err(TopicWaitError::Topic(TopicError::Collides {
            topic: "dot_name".into(),
            existing: "dot.name".into(),
            brokers: "b:1".into()
        }))
    );
    // '-' is not folded: order-events does not collide with order_events.
    cluster.names = vec!["order_events".into()];
    assert!(matches!(
        wait(&cluster, TopicUser::Producer),
        Err(TopicWaitError::Topic(TopicError::MissingForProducer { .. }))
    ));
}

#[test]
fn leaders_missing_for_long_do_not_stop_the_client() {
    let cluster = Scripted::new(vec![Some(TopicAnswer::classify(
        None,
        &[led(1), led(-1), led(1)],
    ))]);
    assert_eq!(
        wait(&cluster, TopicUser::Consumer),
        Ok(ReadyTopic {
            partitions: 3,
            created_on_first_use: false
        })
    );
}

#[test]
fn no_answer_is_an_unreachable_cluster() {
    let cluster = Scripted::new(vec![None]);
    assert!(matches!(
        wait(&cluster, TopicUser::Producer),
        Err(TopicWaitError::Connection(Connection::Unreachable { .. }))
    ));
    let cluster = Scripted::new(vec![Some(TopicAnswer::Unknown)]);
    let (_keep, health) = watch::channel(Connection::Refused {
        reason: "SASL".into(),
    });
    assert_eq!(
        wait_for_topic(&cluster, "t", "b:1", TopicUser::Producer, &health, QUICK),
        Err(TopicWaitError::Connection(Connection::Refused {
            reason: "SASL".into()
        }))
    );
}

#[test]
fn messages_give_the_exact_command() {
    let error = TopicError::MissingForProducer {
        topic: "order-events".into(),
        brokers: "127.0.0.1:22092".into(),
        waited: Duration::from_secs(5),
    };
    let text = error.to_string();
    assert!(text.contains("did not appear within 5 s"), "{text}");
    assert!(
        text.contains(
            "kafka-topics --bootstrap-server 127.0.0.1:22092 --create --topic order-events --partitions 3"
        ),
        "{text}"
    );
    let consumer = TopicError::MissingForConsumer {
        topic: "t".into(),
        brokers: "b:1".into(),
        waited: Duration::from_secs(5),
    }
    .to_string();
    assert!(
        consumer.contains("A consumer does not create topics"),
        "{consumer}"
    );
    assert!(consumer.contains("--create --topic t"), "{consumer}");
}

/// A cluster that lists its topics, or (None) never answers.
struct Listing(Option<Vec<String>>);

impl TopicMetadata for Listing {
    fn describe_topic(&self, _: &str, _: Duration) -> Option<TopicAnswer> {
        panic!("whether a topic existed is asked without naming it");
    }

    fn topic_names(&self, timeout: Duration) -> Option<Vec<String>> {
        if self.0.is_none() {
            std::thread::sleep(timeout);
        }
        self.0.clone()
    }
}

#[test]
fn whether_a_topic_existed_is_read_from_the_list_of_every_topic() {
    let (_keep, health) = watch::channel(Connection::Ok);
    let cluster = Listing(Some(vec!["order_events".into(), "payments".into()]));
    let wait = Duration::from_secs(1);
    assert_eq!(
        existed_before(&cluster, "payments", &health, wait),
        Some(true)
    );
    // Only the exact name counts ('.' and '_' collide in Kafka, but are different topics).
    assert_eq!(
        existed_before(&cluster, "order.events", &health, wait),
        Some(false)
    );
    assert_eq!(
        existed_before(&Listing(Some(Vec::new())), "payments", &health, wait),
        Some(false)
    );
}

#[test]
fn whether_a_topic_existed_is_not_known_without_an_answer_and_not_waited_for_once_unreachable() {
    let (report, health) = watch::channel(Connection::Ok);
    let silent = Listing(None);
    let started = Instant::now();
    assert_eq!(
        existed_before(&silent, "payments", &health, Duration::from_millis(300)),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    report.send_replace(Connection::Refused {
        reason: "Connection refused".into(),
    });
    let started = Instant::now();
    assert_eq!(
        existed_before(&silent, "payments", &health, Duration::from_secs(10)),
        None
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "asked on for {:?} after the cluster was found unreachable",
        started.elapsed()
    );
}
