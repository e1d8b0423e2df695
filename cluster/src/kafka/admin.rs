//! Topics: created with a number of partitions, grown, and read back whole
//! (for tests, benchmarks and `sluice nexmark generate --kafka`). Every call
//! waits for the brokers at most the connection's request timeout.

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaConnection, KafkaError};

fn admin(connection: &KafkaConnection) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    connection
        .client_config(&[])
        .create()
        .map_err(|e| connection.error("creating an admin client", e))
}

fn options(connection: &KafkaConnection) -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(connection.request_timeout))
        .operation_timeout(Some(connection.request_timeout))
}

/// Creates `topic` with `partitions` partitions; one that exists already
/// is left as it is.
pub fn create_topic(
    connection: &KafkaConnection,
    topic: &str,
    partitions: i32,
) -> Result<(), KafkaError> {
    let what = format!("creating topic `{topic}` with {partitions} partitions");
    let admin = admin(connection)?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_lite::future::block_on(admin.create_topics([&new], &options(connection)))
        .map_err(|e| connection.error(&what, e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(connection.error(&what, code)),
        }
    }
    Ok(())
}

/// Grows `topic` to `partitions` partitions.
pub fn add_partitions(
    connection: &KafkaConnection,
    topic: &str,
    partitions: usize,
) -> Result<(), KafkaError> {
    let what = format!("growing topic `{topic}` to {partitions} partitions");
    let admin = admin(connection)?;
    let grow = NewPartitions::new(topic, partitions);
    let results =
        futures_lite::future::block_on(admin.create_partitions([&grow], &options(connection)))
            .map_err(|e| connection.error(&what, e))?;
    for result in results {
        if let Err((_, code)) = result {
            return Err(connection.error(&what, code));
        }
    }
    Ok(())
}

/// The number of partitions of `topic`.
pub fn partition_count(connection: &KafkaConnection, topic: &str) -> Result<usize, KafkaError> {
    let what = format!("describing topic `{topic}`");
    let consumer: BaseConsumer = connection
        .client_config(&[])
        .create()
        .map_err(|e| connection.error(&what, e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), connection.request_timeout)
        .map_err(|e| connection.error(&what, e))?;
    let entry = (metadata.topics().iter())
        .find(|t| t.name() == topic)
        .ok_or_else(|| connection.error(&what, "not described"))?;
    if let Some(error) = entry.error() {
        return Err(connection.error(&what, RDKafkaErrorCode::from(error)));
    }
    Ok(entry.partitions().len())
}
