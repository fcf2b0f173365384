//! The configuration's parsing and checks.

use super::*;

#[test]
fn patterns() {
    assert!(pattern_matches("images/*", "images/resize"));
    assert!(!pattern_matches("images/*", "images/a/b"));
    assert!(pattern_matches("images/**", "images/a/b"));
    assert!(pattern_matches("*", "hello"));
    assert!(!pattern_matches("*", "a/b"));
    assert!(pattern_matches("**", "a/b"));
    assert!(pattern_matches("fib", "fib"));
    assert!(!pattern_matches("fib", "fibo"));
    assert!(pattern_matches("report-*", "report-daily"));
}

#[test]
fn the_documented_file_parses() {
    let doc = include_str!("../config.rs");
    let toml_text: String = doc
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n");
    let file: FileConfig = toml::from_str(&toml_text).unwrap();
    assert_eq!(file.pools.len(), 1);
    assert_eq!(file.crons[0].missed, "run_once");
    assert_eq!(file.crons[0].pause_after_failures, Some(5));
    assert_eq!(file.crons[0].timezone.as_deref(), Some("Europe/Berlin"));
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/offload.toml");
    let file = FileConfig::load(&path).unwrap();
    let mut cfg = ServeConfig::new("jobs", ".offload");
    cfg.apply_file(file).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.pools.len(), 2);
    assert_eq!(cfg.crons.len(), 1);
}

#[test]
fn bad_cron_policies_are_refused_naming_the_schedule_and_the_field() {
    for (line, field) in [
        ("timezone = \"Europe/Nowhere\"", "timezone"),
        ("pause_after_failures = 0", "pause_after_failures"),
        ("pause_after_failures = 5000", "pause_after_failures"),
        ("overlap = \"sometimes\"", "overlap"),
    ] {
        let text = format!("[[cron]]\nname = \"n\"\ncron = \"0 3 * * *\"\njob = \"j\"\n{line}\n");
        let file: FileConfig = toml::from_str(&text).unwrap();
        let mut c = ServeConfig::new("jobs", ".offload");
        c.apply_file(file).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("[[cron]] \"n\"") && e.contains(field),
            "{line}: {e}"
        );
    }
}

#[test]
fn the_line_protocol_needs_the_opt_in_beyond_loopback_or_beside_a_token() {
    let mut c = ServeConfig::new("jobs", ".offload");
    c.tcp = Some("127.0.0.1:1".parse().unwrap());
    assert!(c.validate().is_ok());
    c.udp = Some("192.168.0.1:1".parse().unwrap());
    let e = c.validate().unwrap_err();
    assert!(matches!(e, ConfigError::LinesNeedAllow { .. }), "{e}");
    assert!(e.to_string().contains("--lines-allow"), "{e}");
    c.udp = None;
    c.token = Some("t".into());
    assert!(matches!(
        c.validate(),
        Err(ConfigError::LinesNeedAllow { .. })
    ));
    let file = FileConfig {
        lines: Some(LinesSection {
            allow: Some(vec!["127.0.0.1".into()]),
            ..LinesSection::default()
        }),
        ..FileConfig::default()
    };
    c.apply_file(file).unwrap();
    assert!(c.validate().is_ok());
    let file = FileConfig {
        lines: Some(LinesSection {
            allow: Some(vec!["10.0.0.0/99".into()]),
            ..LinesSection::default()
        }),
        ..FileConfig::default()
    };
    let e = c.apply_file(file).unwrap_err().to_string();
    assert!(e.contains("[lines] allow"), "{e}");
}

#[test]
fn a_public_address_needs_a_token() {
    let mut c = ServeConfig::new("jobs", ".offload");
    c.listen = "0.0.0.0:7070".parse().unwrap();
    assert!(c.validate().is_err());
    c.token = Some("t".into());
    assert!(c.validate().is_ok());
}
