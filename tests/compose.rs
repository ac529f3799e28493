//! docker-compose.yml agrees with the config defaults: topics, brokers, paths.

use std::path::Path;

use memberflow::config::MemberflowConfig;
use serde_yaml::Value;

fn flag<'a>(command: &'a [Value], name: &str) -> Option<&'a str> {
    let i = command.iter().position(|v| v.as_str() == Some(name))?;
    command.get(i + 1)?.as_str()
}

#[test]
fn compose_file_agrees_with_the_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compose: Value = serde_yaml::from_str(&std::fs::read_to_string(root.join("docker-compose.yml")).unwrap()).unwrap();
    let defaults = MemberflowConfig::default();
    let services = &compose["services"];
    let mf = &services["memberflow"];
    let command = mf["command"].as_sequence().expect("memberflow command is a list");
    assert_eq!(command[0].as_str(), Some("run"));
    assert_eq!(flag(command, "--topics"), Some(defaults.kafka.topics.join(",").as_str()));
    assert_eq!(flag(command, "--group-id"), Some(defaults.kafka.group_id.as_str()));
    let data_dir = flag(command, "--data-dir").expect("--data-dir");
    let volumes: Vec<&str> = mf["volumes"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(volumes.iter().any(|v| v.ends_with(&format!(":{data_dir}"))), "data dir {data_dir} is not a volume: {volumes:?}");
    let env = &mf["environment"];
    let brokers = env["MEMBERFLOW__KAFKA__BROKERS"].as_str().unwrap();
    let kafka_env = &services["kafka"]["environment"];
    let advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"].as_str().unwrap();
    assert!(advertised.ends_with(&format!("//{brokers}")), "{brokers} is not what kafka advertises ({advertised})");
    let dlq = env["MEMBERFLOW__KAFKA__DEAD_LETTER_TOPIC"].as_str().unwrap();
    assert_eq!(dlq, defaults.kafka.dead_letter_topic);
    let changes = env["MEMBERFLOW__KAFKA__SEGMENT_CHANGES_TOPIC"].as_str().unwrap();
    assert_eq!(changes, defaults.kafka.segment_changes_topic);
    let init = services["kafka-init"]["command"][0].as_str().unwrap();
    for topic in defaults.kafka.topics.iter().chain([&defaults.kafka.dead_letter_topic, &defaults.kafka.segment_changes_topic]) {
        assert!(init.contains(&format!("--topic {topic} ")), "kafka-init does not create {topic}");
    }
    assert_eq!(services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"].as_str(), Some("broker,controller"), "KRaft mode");
    // The Dockerfile builds the binary the service runs.
    assert_eq!(mf["build"].as_str(), Some("."));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("--bin memberflow"));
    // The job specs `run` fires are in the image where the environment says.
    let jobs = env["MEMBERFLOW__JOBS__DIR"].as_str().unwrap();
    assert!(dockerfile.contains(&format!("COPY jobs {jobs}")), "the Dockerfile does not copy jobs/ to {jobs}");
}
