//! [`Family`]: one metric family as a collector writes it when scraped —
//! its name, help and type, and its samples, each with its labels. Shared
//! by the job figures and the coordinator's.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// A sample's value, written as the family's type says.
pub(crate) trait SampleValue: Copy {
    fn encode_as(self, kind: MetricType, encoder: MetricEncoder<'_>) -> fmt::Result;
}

impl SampleValue for u64 {
    fn encode_as(self, kind: MetricType, encoder: MetricEncoder<'_>) -> fmt::Result {
        match kind {
            MetricType::Counter => ConstCounter::new(self).encode(encoder),
            _ => ConstGauge::new(self).encode(encoder),
        }
    }
}

impl SampleValue for f64 {
    fn encode_as(self, kind: MetricType, encoder: MetricEncoder<'_>) -> fmt::Result {
        match kind {
            // Counters count whole things here.
            MetricType::Counter => ConstCounter::new(self as u64).encode(encoder),
            _ => ConstGauge::new(self).encode(encoder),
        }
    }
}

/// One family being written (see the module docs).
pub(crate) struct Family<L, V> {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    pub samples: Vec<(L, V)>,
}

impl<L: EncodeLabelSet, V: SampleValue> Family<L, V> {
    pub fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Writes the family (nothing when it has no samples).
    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, value) in &self.samples {
            value.encode_as(self.kind, metric.encode_family(labels)?)?;
        }
        Ok(())
    }
}
