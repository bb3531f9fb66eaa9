//! The real coding agents (Claude Code, Codex, Aider, as `scripts/install-agents` installs
//! them) driven by the `batty` binary against the fake model server on 127.0.0.1.

use std::time::Duration;

use crate::common::fake_model::{FakeModel, Options};

/// Not a test: serves the fake model for trying an agent by hand, on `FAKE_MODEL_PORT`,
/// writing every request to `FAKE_MODEL_LOG` (JSON lines) for `FAKE_MODEL_SECS` seconds.
/// `FAKE_MODEL_DELAY_MS` and `FAKE_MODEL_ASK=1` set its options.
#[test]
#[ignore = "a tool: serves the fake model for trying an agent by hand"]
fn serve_fake_model_by_hand() {
    let env = |k: &str| std::env::var(k).ok();
    let port = env("FAKE_MODEL_PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let secs = env("FAKE_MODEL_SECS")
        .and_then(|p| p.parse().ok())
        .unwrap_or(600);
    let delay = env("FAKE_MODEL_DELAY_MS")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let model = FakeModel::start_on(
        port,
        Options {
            delay: Duration::from_millis(delay),
            ask_permission: env("FAKE_MODEL_ASK").as_deref() == Some("1"),
            ask_question: env("FAKE_MODEL_QUESTION").as_deref() == Some("1"),
        },
    );
    eprintln!("fake model on {}", model.url());
    let log = env("FAKE_MODEL_LOG").unwrap_or_else(|| "/tmp/fake-model.jsonl".into());
    let mut written = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        let requests = model.requests();
        let mut text = String::new();
        for r in &requests[written..] {
            let line = serde_json::json!({
                "ms": r.at.duration_since(start).as_millis() as u64,
                "method": r.method,
                "path": r.path,
                "api": format!("{:?}", r.api),
                "turn": format!("{:?}", r.turn),
                "headers": r.headers,
                "body": r.json().unwrap_or(serde_json::Value::String(r.body.clone())),
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        written = requests.len();
        if !text.is_empty() {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
