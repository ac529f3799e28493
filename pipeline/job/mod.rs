//! Scheduled jobs: specs in `jobs/*.toml` (cron expression, time zone, what to run) that the
//! long-running `run` fires itself — no external cron. When a job last fired is part of
//! the checkpoint, so a restart neither repeats a run nor forgets one that came due while
//! the process was down (it fires once on start).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;

/// What a job does.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Re-score every member (see `memberflow refresh`).
    Refresh,
}

/// One `jobs/*.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Defaults to the file name without `.toml`.
    #[serde(default)]
    pub name: Option<String>,
    pub run: JobKind,
    /// Cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first.
    pub schedule: String,
    /// IANA time zone the schedule is read in.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

/// A job ready to schedule.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub kind: JobKind,
    pub file: PathBuf,
    cron: Cron,
    tz: Tz,
}

#[derive(Debug, thiserror::Error)]
#[error("job spec {}: {problem}", file.display())]
pub struct JobError {
    pub file: PathBuf,
    pub problem: String,
}

impl Job {
    pub fn from_spec(spec: JobSpec, file: &Path) -> Result<Self, JobError> {
        let fail = |problem: String| JobError { file: file.to_path_buf(), problem };
        let name = spec
            .name
            .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .ok_or_else(|| fail("no name".into()))?;
        let cron = Cron::from_str(&spec.schedule).map_err(|e| fail(format!("schedule {:?}: {e}", spec.schedule)))?;
        let tz: Tz = spec.time_zone.parse().map_err(|_| fail(format!("time_zone {:?} is not an IANA time zone", spec.time_zone)))?;
        Ok(Self { name, kind: spec.run, file: file.to_path_buf(), cron, tz })
    }

    /// The latest scheduled time at or before `now` (microseconds), if any.
    pub fn latest_at_or_before(&self, now: i64) -> Option<i64> {
        let now = self.tz.from_utc_datetime(&Utc.timestamp_micros(now).single()?.naive_utc());
        self.cron.find_previous_occurrence(&now, true).ok().map(|t| t.timestamp_micros())
    }

    /// The first scheduled time after `t` (microseconds).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let t = self.tz.from_utc_datetime(&Utc.timestamp_micros(t).single()?.naive_utc());
        self.cron.find_next_occurrence(&t, false).ok().map(|t| t.timestamp_micros())
    }

    /// Whether the job is due at `now` given when it last fired: a scheduled time passed
    /// since then (or it never fired). Returns that scheduled time.
    pub fn due(&self, now: i64, last_fired: Option<i64>) -> Option<i64> {
        match last_fired {
            None => Some(self.latest_at_or_before(now).unwrap_or(now)),
            Some(last) => self.latest_at_or_before(now).filter(|&t| t > last),
        }
    }
}

/// Every `*.toml` in `dir`, by file name; an absent directory means no jobs.
pub fn load_dir(dir: &Path) -> Result<Vec<Job>, JobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(JobError { file: dir.to_path_buf(), problem: e.to_string() }),
    };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    let mut jobs: Vec<Job> = Vec::new();
    for file in files {
        let fail = |problem: String| JobError { file: file.clone(), problem };
        let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
        let spec: JobSpec = toml_from_str(&text).map_err(fail)?;
        let job = Job::from_spec(spec, &file)?;
        if jobs.iter().any(|j| j.name == job.name) {
            return Err(fail(format!("job name {:?} is used twice", job.name)));
        }
        jobs.push(job);
    }
    Ok(jobs)
}

fn toml_from_str(text: &str) -> Result<JobSpec, String> {
    use figment::providers::{Format, Toml};
    figment::Figment::from(Toml::string(text)).extract().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(schedule: &str, tz: &str) -> Job {
        let spec = JobSpec { name: Some("t".into()), run: JobKind::Refresh, schedule: schedule.into(), time_zone: tz.into() };
        Job::from_spec(spec, Path::new("t.toml")).unwrap()
    }

    fn micros(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn daily_job_in_a_time_zone_is_due_once_per_day() {
        // 03:30 in Shanghai = 19:30 UTC the day before.
        let j = job("30 3 * * *", "Asia/Shanghai");
        let fired = micros("2026-11-20T19:30:00Z");
        assert_eq!(j.due(micros("2026-11-21T19:29:59Z"), Some(fired)), None);
        assert_eq!(j.due(micros("2026-11-21T19:30:00Z"), Some(fired)), Some(micros("2026-11-21T19:30:00Z")));
        // Down for three days: fires once, for the latest time.
        assert_eq!(j.due(micros("2026-11-24T20:00:00Z"), Some(fired)), Some(micros("2026-11-24T19:30:00Z")));
        // Never fired: due at once.
        assert_eq!(j.due(micros("2026-11-21T12:00:00Z"), None), Some(micros("2026-11-20T19:30:00Z")));
        assert_eq!(j.next_after(fired), Some(micros("2026-11-21T19:30:00Z")));
    }

    #[test]
    fn bad_specs_name_the_file_and_problem() {
        let spec = JobSpec { name: None, run: JobKind::Refresh, schedule: "61 * * * *".into(), time_zone: "UTC".into() };
        let e = Job::from_spec(spec, Path::new("jobs/nightly.toml")).unwrap_err().to_string();
        assert!(e.contains("jobs/nightly.toml") && e.contains("61 * * * *"), "{e}");
        let spec = JobSpec { name: None, run: JobKind::Refresh, schedule: "0 3 * * *".into(), time_zone: "Moon/Base".into() };
        assert!(Job::from_spec(spec, Path::new("x.toml")).unwrap_err().to_string().contains("Moon/Base"));
        assert!(toml_from_str("run = \"refresh\"\nschedule = \"0 3 * * *\"\ncolour = 1\n").unwrap_err().contains("colour"));
    }

    #[test]
    fn checked_in_jobs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs");
        let jobs = load_dir(&dir).unwrap();
        assert!(jobs.iter().any(|j| j.kind == JobKind::Refresh), "{jobs:?}");
    }
}
