//! `memberflow.toml`: one documented file, defaults in one place, environment overrides.
//!
//! Layering (later wins): built-in defaults < the TOML file (`--config`, or `memberflow.toml`
//! in the working directory when present) < environment variables `MEMBERFLOW__SECTION__KEY`
//! (e.g. `MEMBERFLOW__KAFKA__BROKERS=kafka:9092`) < command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::scoring::ScoringConfig;

/// The whole configuration. Every field has a default; see `memberflow.toml` for the docs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemberflowConfig {
    pub data_dir: PathBuf,
    pub kafka: KafkaConfig,
    pub state: StateConfig,
    pub input: InputConfig,
    pub checkpoint: CheckpointConfig,
    pub tables: TablesConfig,
    pub scoring: ScoringConfig,
    pub jobs: JobsConfig,
    pub reports: ReportsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Directory of report `*.sql` files; they add to (and override) the built-in reports.
    pub dir: PathBuf,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("queries") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Directory of scheduled job specs (`*.toml`) that `run` fires itself.
    pub dir: PathBuf,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("jobs") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Topics the consumer subscribes to.
    pub topics: Vec<String>,
    pub group_id: String,
    /// Topic that receives dead letters (raw bytes + reason in headers); empty disables it.
    pub dead_letter_topic: String,
    /// Topic that receives every segment and tag change (JSON, key = member_id); empty disables it.
    pub segment_changes_topic: String,
    /// Any librdkafka property, passed through unchanged to consumer and producer
    /// (e.g. `"security.protocol" = "SASL_SSL"`, `"sasl.mechanism" = "PLAIN"`).
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Rolling window for `frequency`, `monetary` and `stores_in_window`, in calendar days.
    pub window_days: u32,
    /// Business time zone (IANA name): calendar days, the `dt=` partition and the as-of day.
    pub time_zone: String,
    /// How far back from a member's newest applied event a duplicate is still recognised.
    pub dedup_horizon_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Messages larger than this are dead-lettered unread.
    pub max_message_bytes: usize,
    /// Events before this instant are dead-lettered as absurd (RFC 3339).
    pub min_event_time: String,
    /// Events more than this far in the future of the ingest clock are dead-lettered.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Currency of the deployment, used when an event omits `currency`.
    pub default_currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Checkpoint at least this often while events flow.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// ... or after this many consumed messages, whichever comes first.
    pub max_events: u64,
    /// Rewrite the members table at most this often in `run` (always at the end of a run).
    #[serde(with = "humantime_serde")]
    pub members_interval: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TablesConfig {
    /// Parquet compression: `zstd` or `snappy`.
    pub compression: Compression,
    /// Merge the files of a table partition once it holds more than this many small files.
    pub compact_after_files: usize,
    /// Files at least this large are left alone by compaction.
    pub small_file_bytes: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Snappy,
}

impl Default for MemberflowConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            kafka: KafkaConfig::default(),
            state: StateConfig::default(),
            input: InputConfig::default(),
            checkpoint: CheckpointConfig::default(),
            tables: TablesConfig::default(),
            scoring: ScoringConfig::default(),
            jobs: JobsConfig::default(),
            reports: ReportsConfig::default(),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topics: vec!["member-events".into()],
            group_id: "memberflow".into(),
            dead_letter_topic: "member-events-dead-letters".into(),
            segment_changes_topic: "member-segment-changes".into(),
            properties: BTreeMap::new(),
        }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { window_days: 365, time_zone: "UTC".into(), dedup_horizon_days: 400 }
    }
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            min_event_time: "2000-01-01T00:00:00Z".into(),
            max_future: Duration::from_secs(24 * 3600),
            default_currency: "CNY".into(),
        }
    }
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            max_events: 2_000_000,
            members_interval: Duration::from_secs(300),
        }
    }
}

impl Default for TablesConfig {
    fn default() -> Self {
        Self { compression: Compression::Zstd, compact_after_files: 16, small_file_bytes: 32 << 20 }
    }
}

/// A configuration that cannot be used, with what and where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("config: state.time_zone {0:?} is not an IANA time zone (e.g. \"Asia/Shanghai\")")]
    TimeZone(String),
    #[error("config: input.min_event_time {0:?} is not an RFC 3339 timestamp")]
    MinEventTime(String),
    #[error("config: {0}")]
    Invalid(String),
    #[error(transparent)]
    Rules(#[from] crate::scoring::RuleError),
}

impl MemberflowConfig {
    /// Defaults, then `file` (or `./memberflow.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(MemberflowConfig::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_path_buf())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("memberflow.toml").exists() => {
                figment = figment.merge(Toml::file_exact("memberflow.toml"))
            }
            None => {}
        }
        let config: MemberflowConfig = figment
            .merge(Env::prefixed("MEMBERFLOW__").split("__").lowercase(true))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.time_zone()?;
        self.min_event_time()?;
        if self.state.window_days == 0 {
            return Err(ConfigError::Invalid("state.window_days must be at least 1".into()));
        }
        if self.state.dedup_horizon_days < self.state.window_days {
            return Err(ConfigError::Invalid(format!(
                "state.dedup_horizon_days ({}) must cover state.window_days ({})",
                self.state.dedup_horizon_days, self.state.window_days
            )));
        }
        if self.kafka.topics.is_empty() {
            return Err(ConfigError::Invalid("kafka.topics must name at least one topic".into()));
        }
        crate::scoring::RuleSet::compile(&self.scoring)?;
        Ok(())
    }

    pub fn time_zone(&self) -> Result<Tz, ConfigError> {
        self.state.time_zone.parse().map_err(|_| ConfigError::TimeZone(self.state.time_zone.clone()))
    }

    /// `input.min_event_time` as microseconds since the Unix epoch.
    pub fn min_event_time(&self) -> Result<i64, ConfigError> {
        chrono::DateTime::parse_from_rfc3339(&self.input.min_event_time)
            .map(|t| t.timestamp_micros())
            .map_err(|_| ConfigError::MinEventTime(self.input.min_event_time.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_example_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../memberflow.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let parsed: MemberflowConfig = toml_from_str(&text);
        assert_eq!(parsed, MemberflowConfig::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Figment::from(Serialized::defaults(MemberflowConfig::default()))
            .merge(Toml::string("[state]\nwindow_dayz = 3\n"))
            .extract::<MemberflowConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("window_dayz"), "{err}");
    }

    #[test]
    fn bad_time_zone_is_named() {
        let mut config = MemberflowConfig::default();
        config.state.time_zone = "Mars/Olympus".into();
        assert!(config.validate().unwrap_err().to_string().contains("Mars/Olympus"));
    }

    fn toml_from_str(text: &str) -> MemberflowConfig {
        Figment::from(Serialized::defaults(MemberflowConfig::default()))
            .merge(Toml::string(text))
            .extract()
            .unwrap()
    }
}
