//! A fake model server on 127.0.0.1 for the real coding agents (std only: threads, a
//! `TcpListener`, HTTP/1.1 and server-sent events written by hand). It speaks the Anthropic
//! Messages API (Claude Code), the OpenAI Responses API (Codex) and OpenAI chat completions
//! (Aider), all streaming, and plays the model: a message holding `Task #N` is answered with a
//! shell tool call (Aider: an edit block and a ```bash block) that writes `work/task-N.txt`,
//! commits it and runs `batty task done N`; the tool's result is answered with a short final
//! text. Side requests (titles, commit messages, token counts, model lists, Claude Code's
//! auto-mode verdicts) get plain answers. Every request is recorded with its time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// How the fake model behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Waited before each model answer is sent ("the model thinks").
    pub delay: Duration,
    /// Make the tool call one that needs a person's permission whatever the agent's settings
    /// allow for git and batty (Codex: asks for escalated permissions; Claude Code: runs a
    /// command outside any allow-list).
    pub ask_permission: bool,
    /// Claude Code: before the shell call, ask the person a question with its
    /// `AskUserQuestion` tool (a menu on screen).
    pub ask_question: bool,
}

/// Which API a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/messages` (Claude Code).
    Messages,
    /// `POST /v1/responses` (Codex).
    Responses,
    /// `POST /v1/chat/completions` (Aider).
    Chat,
    /// Anything else: model lists, token counting, unknown paths.
    Other,
}

/// What the fake model made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// A `Task #N` message: answered with the tool call for task N.
    Task(u64),
    /// A tool's result came back: answered with the final text.
    ToolResult,
    /// A side request (title, commit message, verdict, summary) or chatter.
    Side,
    /// Not a model request.
    None,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    /// When it arrived, on the clock batty writes to boards and records with.
    pub wall: SystemTime,
    /// When its answer was sent in full (the last event of a stream); `None` while the
    /// model "thinks" or writes it. `answered - wall` is the model's own time.
    pub answered: Option<SystemTime>,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub api: Api,
    pub turn: Turn,
}

impl Recorded {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

struct Shared {
    options: Mutex<Options>,
    requests: Mutex<Vec<Recorded>>,
    stop: AtomicBool,
    ids: AtomicU64,
}

/// A running fake model; stops when dropped.
pub struct FakeModel {
    port: u16,
    shared: Arc<Shared>,
}

impl FakeModel {
    pub fn start(options: Options) -> FakeModel {
        Self::start_on(0, options)
    }

    /// On a given port (0: any free one).
    pub fn start_on(port: u16, options: Options) -> FakeModel {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("bound address").port();
        let shared = Arc::new(Shared {
            options: Mutex::new(options),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            ids: AtomicU64::new(1),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn = accept.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &conn);
                });
            }
        });
        FakeModel { port, shared }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The model requests that handed task `id` to the model.
    pub fn task_requests(&self, id: u64) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.turn == Turn::Task(id))
            .collect()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct HttpRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves requests on one connection until the client closes it or asks to.
fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(req) = read_request(&mut reader)? {
        let keep_alive = !req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let streamed = handle(&req, shared, &mut out)?;
        if streamed || !keep_alive {
            break;
        }
    }
    Ok(())
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<HttpRequest>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut req = HttpRequest {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            req.body.extend_from_slice(&chunk);
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(len) = req.header("content-length").and_then(|l| l.parse().ok()) {
        req.body = vec![0; len];
        reader.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

/// Answers one request; true when the answer was a stream (the connection is then closed).
fn handle(req: &HttpRequest, shared: &Shared, out: &mut TcpStream) -> std::io::Result<bool> {
    let path = req.path.split('?').next().unwrap_or("");
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let api = match (req.method.as_str(), path.trim_end_matches('/')) {
        ("POST", p) if p.ends_with("/messages") => Api::Messages,
        ("POST", p) if p.ends_with("/responses") => Api::Responses,
        ("POST", p) if p.ends_with("/chat/completions") => Api::Chat,
        _ => Api::Other,
    };
    let turn = match api {
        Api::Messages => messages_turn(&json),
        Api::Responses => responses_turn(&json),
        Api::Chat => chat_turn(&json),
        Api::Other => Turn::None,
    };
    let mut requests = shared.requests.lock().unwrap();
    let index = requests.len();
    requests.push(Recorded {
        at: Instant::now(),
        wall: SystemTime::now(),
        answered: None,
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        body,
        api,
        turn: turn.clone(),
    });
    drop(requests);
    let streamed = answer(req, path, &json, &turn, api, shared, out)?;
    shared.requests.lock().unwrap()[index].answered = Some(SystemTime::now());
    Ok(streamed)
}

/// Sends the answer to one request; true when it was a stream.
fn answer(
    req: &HttpRequest,
    path: &str,
    json: &Value,
    turn: &Turn,
    api: Api,
    shared: &Shared,
    out: &mut TcpStream,
) -> std::io::Result<bool> {
    let options = shared.options.lock().unwrap().clone();
    let id = shared.ids.fetch_add(1, Ordering::SeqCst);
    if api != Api::Other && !options.delay.is_zero() {
        std::thread::sleep(options.delay);
    }
    let stream = json["stream"].as_bool().unwrap_or(false);
    match api {
        Api::Messages => {
            let reply = messages_reply(json, turn, &options);
            if stream {
                send_sse(out, &messages_events(json, &reply, id))?;
            } else {
                send_json(out, 200, &messages_body(json, &reply, id))?;
            }
            Ok(stream)
        }
        Api::Responses => {
            let reply = responses_reply(json, turn, &options);
            send_sse(out, &responses_events(json, &reply, id))?;
            Ok(true)
        }
        Api::Chat => {
            let text = chat_reply(json, turn);
            if stream {
                send_sse(out, &chat_events(json, &text, id))?;
            } else {
                send_json(out, 200, &chat_body(json, &text, id))?;
            }
            Ok(stream)
        }
        Api::Other => {
            let (status, body) = other_reply(req, path);
            send_json(out, status, &body)?;
            Ok(false)
        }
    }
}

fn send_json(out: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    // Null: no body (HEAD, and plain pings).
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reason = if status == 200 { "OK" } else { "Not Found" };
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}

/// Server-sent events, `(event name, data)` each; the stream ends when the connection closes.
fn send_sse(out: &mut TcpStream, events: &[(String, Value)]) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )?;
    for (event, data) in events {
        if event.is_empty() {
            write!(out, "data: {data}\n\n")?;
        } else {
            write!(out, "event: {event}\ndata: {data}\n\n")?;
        }
        out.flush()?;
    }
    if events.iter().all(|(e, _)| e.is_empty()) {
        // Chat completions end with a sentinel.
        write!(out, "data: [DONE]\n\n")?;
    }
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}

/// The command the model runs for task `id`: idempotent, so a reminder for finished work
/// just reports it again.
pub fn task_command(id: u64) -> String {
    format!(
        "mkdir -p work && printf 'task {id}\\n' > work/task-{id}.txt && git add work/task-{id}.txt \
         && {{ git diff --cached --quiet || git commit -q -m 'work: task {id}'; }} \
         && batty task done {id}"
    )
}

/// The task a message's content hands over: the first `Task #N` in the last text block that
/// names one (agents put context such as `git status` and recent commits in earlier blocks).
fn content_task(content: &Value) -> Option<u64> {
    match content {
        Value::Array(items) => items
            .iter()
            .rev()
            .filter_map(|b| b["text"].as_str().or_else(|| b.as_str()))
            .find_map(task_id),
        other => task_id(&text_of(other)),
    }
}

/// The first `Task #N` in `text`.
pub fn task_id(text: &str) -> Option<u64> {
    let mut rest = text;
    while let Some(i) = rest.find("Task #") {
        rest = &rest[i + "Task #".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(id) = digits.parse() {
            return Some(id);
        }
    }
    None
}

/// All the text in a content value (a string, or an array of blocks with `text`).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|b| b["text"].as_str().or_else(|| b.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn system_text(json: &Value) -> String {
    text_of(&json["system"])
}

// ---------------------------------------------------------------------------------------
// Anthropic Messages API

/// What a Messages answer holds.
enum MessagesReply {
    /// Text, ended by a stop sequence when one is given.
    Text(String, Option<String>),
    Tool {
        name: String,
        input: Value,
    },
}

fn messages_turn(json: &Value) -> Turn {
    // Claude Code 2.1 ends its main requests with a `system` message (the environment).
    let Some(last) = json["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] != "system"))
    else {
        return Turn::Side;
    };
    let has_bash = has_tool(json, "Bash");
    if last["role"] == "user"
        && last["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
    {
        return if has_bash {
            Turn::ToolResult
        } else {
            Turn::Side
        };
    }
    match content_task(&last["content"]) {
        Some(id) if has_bash => Turn::Task(id),
        _ => Turn::Side,
    }
}

/// The name of the tool the model called last in the conversation.
fn last_tool_use(json: &Value) -> Option<&str> {
    json["messages"]
        .as_array()?
        .iter()
        .rev()
        .filter(|m| m["role"] == "assistant")
        .find_map(|m| {
            m["content"]
                .as_array()?
                .iter()
                .rev()
                .find(|b| b["type"] == "tool_use")?["name"]
                .as_str()
        })
}

/// The task the latest user message naming one handed over.
fn conversation_task(json: &Value) -> Option<u64> {
    json["messages"]
        .as_array()?
        .iter()
        .rev()
        .filter(|m| m["role"] == "user")
        .find_map(|m| content_task(&m["content"]))
}

fn has_tool(json: &Value, name: &str) -> bool {
    json["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == name))
}

fn messages_reply(json: &Value, turn: &Turn, options: &Options) -> MessagesReply {
    let asked = matches!(turn, Turn::ToolResult) && last_tool_use(json) == Some("AskUserQuestion");
    let turn = match (turn, asked) {
        (Turn::Task(_), _) if options.ask_question => {
            return MessagesReply::Tool {
                name: "AskUserQuestion".into(),
                input: json!({ "questions": [{
                    "question": "Which name should the new file have?",
                    "header": "File name",
                    "multiSelect": false,
                    "options": [
                        { "label": "task-N.txt", "description": "One file per task under work/" },
                        { "label": "notes.txt", "description": "One shared file" }
                    ]
                }]}),
            };
        }
        // The person answered: now the shell call for the task the conversation is about.
        (_, true) => match conversation_task(json) {
            Some(id) => Turn::Task(id),
            None => turn.clone(),
        },
        _ => turn.clone(),
    };
    match &turn {
        Turn::Task(id) => {
            let mut command = task_command(*id);
            if options.ask_permission {
                command = format!("touch /tmp/batty-fake-model-{id} && {command}");
            }
            MessagesReply::Tool {
                name: "Bash".into(),
                input: json!({
                    "command": command,
                    "description": format!("Commit task {id} and report it done"),
                }),
            }
        }
        Turn::ToolResult => MessagesReply::Text(
            "Done: the work is committed and the task reported.".into(),
            None,
        ),
        _ => verdict(json, options)
            .unwrap_or_else(|| MessagesReply::Text(side_text(&system_text(json)), None)),
    }
}

/// Claude Code's auto mode asks a "security monitor" whether to block each tool call, and
/// stops its answer at `</block>`: allow, or (to provoke a person's decision) block.
fn verdict(json: &Value, options: &Options) -> Option<MessagesReply> {
    let system = system_text(json);
    if !(system.contains("security monitor") && system.contains("<block>")) {
        return None;
    }
    let stop = json["stop_sequences"]
        .as_array()
        .and_then(|s| s.iter().find(|s| *s == "</block>"))
        .map(|_| "</block>".to_owned());
    let answer = if options.ask_permission {
        "<block>yes</block><category>Unverified Action</category><reason>[Unverified Action] the fake model asks a person</reason>"
    } else {
        "<block>no</block>"
    };
    let text = match &stop {
        Some(s) => answer.split(s.as_str()).next().unwrap_or(answer).to_owned(),
        None => answer.to_owned(),
    };
    Some(MessagesReply::Text(text, stop))
}

/// Short answers for side requests, chosen by what the system prompt asks for.
fn side_text(system: &str) -> String {
    let s = system.to_lowercase();
    if s.contains("title") {
        "Task work".into()
    } else if s.contains("commit message") {
        "Add task file".into()
    } else {
        "OK.".into()
    }
}

fn model_of(json: &Value) -> String {
    json["model"].as_str().unwrap_or("fake-model").to_owned()
}

fn messages_body(json: &Value, reply: &MessagesReply, id: u64) -> Value {
    let (content, stop, sequence) = match reply {
        MessagesReply::Text(t, seq) => (
            json!([{ "type": "text", "text": t }]),
            if seq.is_some() {
                "stop_sequence"
            } else {
                "end_turn"
            },
            seq.clone(),
        ),
        MessagesReply::Tool { name, input } => (
            json!([{ "type": "tool_use", "id": format!("toolu_{id:08}"), "name": name, "input": input }]),
            "tool_use",
            None,
        ),
    };
    json!({
        "id": format!("msg_{id:08}"),
        "type": "message",
        "role": "assistant",
        "model": model_of(json),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": sequence,
        "usage": { "input_tokens": 10, "output_tokens": 10 },
    })
}

fn messages_events(json: &Value, reply: &MessagesReply, id: u64) -> Vec<(String, Value)> {
    let ev = |name: &str, data: Value| (name.to_owned(), data);
    let mut out = vec![ev(
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_{id:08}"),
                "type": "message",
                "role": "assistant",
                "model": model_of(json),
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": { "input_tokens": 10, "output_tokens": 1 },
            }
        }),
    )];
    let (stop, sequence) = match reply {
        MessagesReply::Text(text, seq) => {
            out.push(ev(
                "content_block_start",
                json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
            ));
            for piece in split_in_two(text) {
                out.push(ev(
                    "content_block_delta",
                    json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": piece } }),
                ));
            }
            match seq {
                Some(s) => ("stop_sequence", Some(s.clone())),
                None => ("end_turn", None),
            }
        }
        MessagesReply::Tool { name, input } => {
            out.push(ev(
                "content_block_start",
                json!({
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": { "type": "tool_use", "id": format!("toolu_{id:08}"), "name": name, "input": {} }
                }),
            ));
            for piece in split_in_two(&input.to_string()) {
                out.push(ev(
                    "content_block_delta",
                    json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": piece } }),
                ));
            }
            ("tool_use", None)
        }
    };
    out.push(ev(
        "content_block_stop",
        json!({ "type": "content_block_stop", "index": 0 }),
    ));
    out.push(ev(
        "message_delta",
        json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": sequence }, "usage": { "output_tokens": 10 } }),
    ));
    out.push(ev("message_stop", json!({ "type": "message_stop" })));
    out
}

/// Two deltas, so clients exercise joining them (split on a char boundary).
fn split_in_two(text: &str) -> Vec<String> {
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    [&text[..mid], &text[mid..]]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// OpenAI Responses API

enum ResponsesReply {
    Text(String),
    Call { name: String, arguments: String },
}

fn responses_turn(json: &Value) -> Turn {
    let Some(items) = json["input"].as_array() else {
        return Turn::Side;
    };
    let shell = shell_tool(json).is_some();
    let Some(last) = items.last() else {
        return Turn::Side;
    };
    let kind = last["type"].as_str().unwrap_or("message");
    if kind.ends_with("_output") {
        return if shell { Turn::ToolResult } else { Turn::Side };
    }
    let last_user = items
        .iter()
        .rev()
        .find(|i| i["role"] == "user")
        .and_then(|i| content_task(&i["content"]));
    match last_user {
        Some(id) if shell && last["role"] == "user" => Turn::Task(id),
        _ => Turn::Side,
    }
}

/// The tool Codex offers for running commands, and its parameter schema.
fn shell_tool(json: &Value) -> Option<(String, Value)> {
    let tools = json["tools"].as_array()?;
    ["exec_command", "shell_command", "shell", "local_shell"]
        .iter()
        .find_map(|want| {
            tools
                .iter()
                .find(|t| t["name"] == *want)
                .map(|t| ((*want).to_owned(), t["parameters"]["properties"].clone()))
        })
}

fn responses_reply(json: &Value, turn: &Turn, options: &Options) -> ResponsesReply {
    let Turn::Task(id) = turn else {
        return match turn {
            Turn::ToolResult => {
                ResponsesReply::Text("Done: the work is committed and the task reported.".into())
            }
            _ => ResponsesReply::Text("OK.".into()),
        };
    };
    let Some((name, props)) = shell_tool(json) else {
        return ResponsesReply::Text("OK.".into());
    };
    let command = task_command(*id);
    let mut args = serde_json::Map::new();
    let key = if props.get("cmd").is_some() {
        "cmd"
    } else {
        "command"
    };
    if props[key]["type"] == "array" {
        args.insert(key.into(), json!(["bash", "-lc", command]));
    } else {
        args.insert(key.into(), json!(command));
    }
    if options.ask_permission {
        if props.get("sandbox_permissions").is_some() {
            args.insert("sandbox_permissions".into(), json!("require_escalated"));
        }
        if props.get("with_escalated_permissions").is_some() {
            args.insert("with_escalated_permissions".into(), json!(true));
        }
        if props.get("justification").is_some() {
            args.insert(
                "justification".into(),
                json!("Commit the work and report the task done"),
            );
        }
    }
    ResponsesReply::Call {
        name,
        arguments: Value::Object(args).to_string(),
    }
}

fn responses_events(json: &Value, reply: &ResponsesReply, id: u64) -> Vec<(String, Value)> {
    let resp_id = format!("resp_{id:08}");
    let response = |status: &str, output: Value| {
        json!({
            "id": resp_id,
            "object": "response",
            "created_at": 0,
            "status": status,
            "model": model_of(json),
            "output": output,
            "usage": {
                "input_tokens": 10,
                "input_tokens_details": { "cached_tokens": 0 },
                "output_tokens": 10,
                "output_tokens_details": { "reasoning_tokens": 0 },
                "total_tokens": 20
            }
        })
    };
    let ev = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        (name.to_owned(), data)
    };
    let mut out = vec![
        ev(
            "response.created",
            json!({ "response": response("in_progress", json!([])) }),
        ),
        ev(
            "response.in_progress",
            json!({ "response": response("in_progress", json!([])) }),
        ),
    ];
    let item = match reply {
        ResponsesReply::Text(text) => {
            let item_id = format!("msg_{id:08}");
            let added = json!({ "type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": [] });
            out.push(ev(
                "response.output_item.added",
                json!({ "output_index": 0, "item": added }),
            ));
            out.push(ev(
                "response.content_part.added",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": { "type": "output_text", "text": "", "annotations": [] } }),
            ));
            for piece in split_in_two(text) {
                out.push(ev(
                    "response.output_text.delta",
                    json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece }),
                ));
            }
            out.push(ev(
                "response.output_text.done",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "text": text }),
            ));
            out.push(ev(
                "response.content_part.done",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": { "type": "output_text", "text": text, "annotations": [] } }),
            ));
            json!({
                "type": "message", "id": item_id, "role": "assistant", "status": "completed",
                "content": [{ "type": "output_text", "text": text, "annotations": [] }]
            })
        }
        ResponsesReply::Call { name, arguments } => {
            let item_id = format!("fc_{id:08}");
            let call_id = format!("call_{id:08}");
            out.push(ev(
                "response.output_item.added",
                json!({ "output_index": 0, "item": { "type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": "", "status": "in_progress" } }),
            ));
            for piece in split_in_two(arguments) {
                out.push(ev(
                    "response.function_call_arguments.delta",
                    json!({ "item_id": item_id, "output_index": 0, "delta": piece }),
                ));
            }
            out.push(ev(
                "response.function_call_arguments.done",
                json!({ "item_id": item_id, "output_index": 0, "arguments": arguments }),
            ));
            json!({ "type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments, "status": "completed" })
        }
    };
    out.push(ev(
        "response.output_item.done",
        json!({ "output_index": 0, "item": item.clone() }),
    ));
    out.push(ev(
        "response.completed",
        json!({ "response": response("completed", json!([item])) }),
    ));
    out
}

// ---------------------------------------------------------------------------------------
// OpenAI chat completions (Aider)

fn chat_turn(json: &Value) -> Turn {
    let Some(messages) = json["messages"].as_array() else {
        return Turn::Side;
    };
    // The first system message says what the request is for (Aider's commit messages and
    // summaries come from its weak model); Aider ends main requests with a system reminder.
    let system = messages
        .first()
        .filter(|m| m["role"] == "system")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    if system.to_lowercase().contains("commit message") {
        return Turn::Side;
    }
    let Some(last) = messages.iter().rev().find(|m| m["role"] != "system") else {
        return Turn::Side;
    };
    if last["role"] != "user" {
        return Turn::Side;
    }
    match content_task(&last["content"]) {
        Some(id) => Turn::Task(id),
        None if !messages.iter().any(|m| m["role"] == "assistant") => Turn::Side,
        None => Turn::ToolResult,
    }
}

fn chat_reply(json: &Value, turn: &Turn) -> String {
    match turn {
        Turn::Task(id) => {
            let fence = "```";
            format!(
                "I will add the file, commit it and report the task.\n\n\
                 work/task-{id}.txt\n{fence}\n<<<<<<< SEARCH\n=======\ntask {id}\n>>>>>>> REPLACE\n{fence}\n\n\
                 {fence}bash\ngit add -A work && {{ git diff --cached --quiet || git commit -q -m 'work: task {id}'; }} && batty task done {id}\n{fence}\n"
            )
        }
        Turn::ToolResult => "Done: the work is committed and the task reported.".into(),
        _ => {
            let messages = json["messages"].as_array().cloned().unwrap_or_default();
            let system = messages
                .first()
                .map(|m| text_of(&m["content"]))
                .unwrap_or_default();
            side_text(&system)
        }
    }
}

fn chat_body(json: &Value, text: &str, id: u64) -> Value {
    json!({
        "id": format!("chatcmpl-{id:08}"),
        "object": "chat.completion",
        "created": 0,
        "model": model_of(json),
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20 }
    })
}

fn chat_events(json: &Value, text: &str, id: u64) -> Vec<(String, Value)> {
    let chunk = |delta: Value, finish: Value| {
        (
            String::new(),
            json!({
                "id": format!("chatcmpl-{id:08}"),
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model_of(json),
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
            }),
        )
    };
    let mut out = vec![chunk(
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
    )];
    for piece in split_in_two(text) {
        out.push(chunk(json!({ "content": piece }), Value::Null));
    }
    out.push(chunk(json!({}), json!("stop")));
    out
}

// ---------------------------------------------------------------------------------------
// Everything else

fn other_reply(req: &HttpRequest, path: &str) -> (u16, Value) {
    let path = path.trim_end_matches('/');
    if req.method == "HEAD" || path.ends_with("/api/hello") {
        return (200, Value::Null);
    }
    if req.method == "POST" && path.ends_with("/count_tokens") {
        return (200, json!({ "input_tokens": 10 }));
    }
    if req.method == "GET" && path.ends_with("/models") {
        let models: Vec<Value> = [
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "gpt-5",
            "gpt-4o",
        ]
        .iter()
        .map(|m| json!({ "id": m, "type": "model", "object": "model", "display_name": m, "created_at": "2025-01-01T00:00:00Z", "owned_by": "fake" }))
        .collect();
        return (
            200,
            json!({ "data": models, "object": "list", "has_more": false, "models": [] }),
        );
    }
    (
        404,
        json!({ "error": { "type": "not_found_error", "message": format!("fake model: no {} {}", req.method, req.path) } }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids() {
        assert_eq!(task_id("x Task #12: y"), Some(12));
        assert_eq!(task_id("Task #: no, Task #3: yes"), Some(3));
        assert_eq!(task_id("none"), None);
    }
}
