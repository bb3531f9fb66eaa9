//! Agent kind -> the shell command that starts it. A stand-in until `crate::agent::resolve`
//! lands; `batty work` only needs the command string.

use crate::config::Config;
use crate::proc::shell_word;

const BUILT_IN: &[&str] = &["claude", "codex", "aider", "demo"];

#[derive(Debug, thiserror::Error)]
#[error("unknown agent `{kind}`: use one of {known}")]
pub struct UnknownAgent {
    pub kind: String,
    pub known: String,
}

/// The shell command for agent `kind`: config `agents.<kind>.command` (plus `args`) when set,
/// else the built-in one. `exe` is this batty binary (for `demo`).
pub fn agent_command(kind: &str, config: &Config, exe: &str) -> Result<String, UnknownAgent> {
    let configured = config.agents.get(kind);
    let base = match configured.and_then(|a| a.command.clone()) {
        Some(command) => command,
        None => match kind {
            "claude" | "codex" | "aider" => kind.to_owned(),
            "demo" => format!("{} demo-agent", shell_word(exe)),
            _ => {
                let mut known: Vec<String> = BUILT_IN.iter().map(|s| (*s).to_owned()).collect();
                known.extend(config.agents.keys().cloned());
                known.sort();
                known.dedup();
                let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                return Err(UnknownAgent {
                    kind: kind.to_owned(),
                    known: known.join(", "),
                });
            }
        },
    };
    let mut command = base;
    for arg in configured.map(|a| a.args.as_slice()).unwrap_or_default() {
        command.push(' ');
        command.push_str(&shell_word(arg));
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn kinds() {
        let config = Config::parse(
            Path::new("c.yml"),
            "agents:\n  shell: { command: sh }\n  claude: { args: ['--model', 'x y'] }\n",
        )
        .unwrap();
        assert_eq!(agent_command("shell", &config, "/b").unwrap(), "sh");
        assert_eq!(
            agent_command("claude", &config, "/b").unwrap(),
            "claude --model 'x y'"
        );
        assert_eq!(
            agent_command("demo", &config, "/x y/batty").unwrap(),
            "'/x y/batty' demo-agent"
        );
        let err = agent_command("nope", &config, "/b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown agent `nope`: use one of `aider`, `claude`, `codex`, `demo`, `shell`"
        );
    }
}
