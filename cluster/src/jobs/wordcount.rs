//! `wordcount`: counts the words of text files.
//!
//! Lines are split into words at every character that is not a letter or a
//! digit (and, with `lowercase`, lowercased); words are
//! keyed by themselves; a keyed process function keeps each word's count in
//! value state and emits it when event time ends (a timer at the end of time),
//! so a bounded input gives exactly one final count per word.

use serde::{Deserialize, Serialize};
use sluice_engine::connectors::{FileSource, RecordFormat};
use sluice_engine::keyed_state::ValueState;
use sluice_engine::operators::{KeyedProcess, ProcessContext, TimeDomain};
use sluice_engine::{StreamEnv, WatermarkStrategy};
use sluice_state::StateBackend;

use crate::job_file::{JobFileError, RegisteredJob, SourceSpec};
use crate::kafka::{KafkaSource, PayloadFormat};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    lowercase: bool,
}

/// One line of output.
#[derive(Debug, Clone, Serialize)]
pub struct WordCount {
    pub word: String,
    pub count: u64,
}

struct CountWords {
    counts: ValueState<String, u64>,
}

impl KeyedProcess<String, String, WordCount> for CountWords {
    fn process_element(&mut self, _word: String, ctx: &mut ProcessContext<'_, String, WordCount>) {
        let count = self.counts.value(ctx).unwrap_or(0);
        if count == 0 {
            ctx.register_event_timer(i64::MAX);
        }
        self.counts.update(ctx, count + 1);
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, String, WordCount>,
    ) {
        if let Some(count) = self.counts.value(ctx) {
            let word = ctx.key().clone();
            ctx.collect(WordCount { word, count });
            self.counts.clear(ctx);
        }
    }
}

pub fn build(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let params: Params = file.params()?;
    let text_expected = || {
        file.invalid(
            "source.format",
            "job `wordcount` reads lines of text: expected \"text\"",
        )
    };
    let lines = match &file.source {
        SourceSpec::File {
            paths,
            format,
            split_bytes,
            bad_records,
            ..
        } => {
            if *format != RecordFormat::Text {
                return Err(text_expected());
            }
            let source = FileSource::<String>::new(paths, RecordFormat::Text, *split_bytes)
                .map_err(|e| file.invalid("source.paths", e.to_string()))?
                .with_bad_records(bad_records.clone());
            env.source(source, WatermarkStrategy::no_watermarks())
        }
        SourceSpec::Kafka(spec) => {
            if !matches!(
                spec.config.format,
                PayloadFormat::Text(RecordFormat::Text) | PayloadFormat::Raw
            ) {
                return Err(text_expected());
            }
            let source = KafkaSource::<String>::new(spec.config.clone())
                .map_err(|e| file.invalid("source", e.to_string()))?;
            env.source(source, WatermarkStrategy::no_watermarks())
        }
        _ => {
            return Err(file.invalid(
                "source.connector",
                "job `wordcount` reads text: expected \"file\" or \"kafka\"",
            ))
        }
    };
    let lowercase = params.lowercase;
    let counts = lines
        .flat_map(move |line: String| {
            let words: Vec<String> = line
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| {
                    if lowercase {
                        w.to_lowercase()
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            words
        })
        .key_by(|word: &String| word.clone())
        .process(|state: &mut StateBackend| CountWords {
            counts: ValueState::new(state, "wordcount/counts"),
        });
    super::attach_sink(file, &counts);
    Ok(())
}
