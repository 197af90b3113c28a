//! docs/commands.md documents every command the module registers: a section
//! headed `## NAME` per command, whose code block starts with the command's
//! syntax as COMMAND DOCS describes it.
//!
//! The commands come from the server (`COMMAND LIST FILTERBY MODULE`), so a
//! new command without a section fails here, and so does a section whose
//! syntax line differs from the argument metadata.
//!
//! The syntax is rendered from COMMAND DOCS's `arguments` as redis.io
//! renders a command's syntax:
//!
//! - the command name, then each argument, separated by single spaces;
//! - an argument is its `display_text`, else its `name`; a `pure-token`
//!   argument is its token alone;
//! - a `token` comes before the argument, followed by a space;
//! - a `block` is its sub-arguments separated by spaces, a `oneof` its
//!   sub-arguments separated by ` | `;
//! - `multiple`: the argument, then `[` the argument ` ...]` (with the token
//!   again inside the brackets when it is `multiple_token`);
//! - `optional`: the whole argument, token included, in `[` `]`; a `oneof`
//!   that is not optional, or that has a token, in `<` `>`.
//!
//! (redis.io joins a token to its value with a non-breaking space; here it is
//! a plain space.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{module_path, Server};
use redis::{Connection, Value};

/// One argument as COMMAND DOCS describes it.
#[derive(Debug, Default)]
struct Arg {
    name: String,
    kind: String,
    token: Option<String>,
    display_text: Option<String>,
    optional: bool,
    multiple: bool,
    multiple_token: bool,
    subargs: Vec<Arg>,
}

impl Arg {
    /// The argument in a syntax line.
    fn render(&self) -> String {
        let body = match self.kind.as_str() {
            "block" => join(&self.subargs, " "),
            "oneof" => join(&self.subargs, " | "),
            "pure-token" => String::new(),
            _ => self
                .display_text
                .clone()
                .unwrap_or_else(|| self.name.clone()),
        };
        // An empty token is shown as "", as redis.io shows it.
        let token = self.token.as_deref().map(|t| match t {
            "" => "\"\"".to_owned(),
            t => t.to_owned(),
        });
        let angled = self.kind == "oneof" && (!self.optional || token.is_some());
        let mut out = String::new();
        if self.optional {
            out.push('[');
        }
        if let Some(token) = &token {
            out.push_str(token);
            if self.kind != "pure-token" {
                out.push(' ');
            }
        }
        if angled {
            out.push('<');
        }
        out.push_str(&body);
        if self.multiple {
            let unit = match (&token, self.multiple_token) {
                (Some(token), true) if body.is_empty() => token.clone(),
                (Some(token), true) => format!("{token} {body}"),
                _ => body.clone(),
            };
            if !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str(&format!("[{unit} ...]"));
        }
        if angled {
            out.truncate(out.trim_end().len());
            out.push('>');
        }
        if self.optional {
            out.truncate(out.trim_end().len());
            out.push(']');
        }
        out
    }
}

fn join(args: &[Arg], separator: &str) -> String {
    args.iter()
        .map(Arg::render)
        .collect::<Vec<_>>()
        .join(separator)
}

/// The command's syntax line: its name, then its arguments.
fn syntax(name: &str, args: &[Arg]) -> String {
    std::iter::once(name.to_owned())
        .chain(args.iter().map(Arg::render))
        .collect::<Vec<_>>()
        .join(" ")
}

fn text(value: &Value) -> String {
    redis::from_redis_value(value).unwrap_or_else(|e| panic!("not a string: {value:?}: {e}"))
}

/// The field-value pairs of a map, as a RESP3 map or a RESP2 flat array.
fn pairs(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), v)).collect(),
        Value::Array(flat) => flat
            .chunks(2)
            .map(|pair| match pair {
                [k, v] => (text(k), v),
                _ => panic!("a map with an odd number of items: {value:?}"),
            })
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        other => panic!("not a list: {other:?}"),
    }
}

fn parse_arg(value: &Value) -> Arg {
    let mut arg = Arg::default();
    for (field, value) in pairs(value) {
        match field.as_str() {
            "name" => arg.name = text(value),
            "type" => arg.kind = text(value),
            "token" => arg.token = Some(text(value)),
            "display_text" => arg.display_text = Some(text(value)),
            "flags" => {
                for flag in items(value).iter().map(text) {
                    match flag.as_str() {
                        "optional" => arg.optional = true,
                        "multiple" => arg.multiple = true,
                        "multiple_token" => arg.multiple_token = true,
                        _ => {}
                    }
                }
            }
            "arguments" => arg.subargs = items(value).iter().map(parse_arg).collect(),
            _ => {}
        }
    }
    arg
}

/// The arguments COMMAND DOCS gives for one command (none when it has none).
fn documented_args(con: &mut Connection, command: &str) -> Vec<Arg> {
    let reply: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg(command)
        .query(con)
        .unwrap();
    let entries = pairs(&reply);
    let [(_, docs)] = entries.as_slice() else {
        panic!("COMMAND DOCS {command} gave {reply:?}");
    };
    pairs(docs)
        .into_iter()
        .find(|(field, _)| field == "arguments")
        .map(|(_, args)| items(args).iter().map(parse_arg).collect())
        .unwrap_or_default()
}

/// The name the module registered under, from MODULE LIST.
fn module_name(con: &mut Connection) -> String {
    let reply: Value = redis::cmd("MODULE").arg("LIST").query(con).unwrap();
    let loaded = module_path();
    items(&reply)
        .iter()
        .map(|module| pairs(module).into_iter().collect::<BTreeMap<_, _>>())
        .find(|fields| {
            fields
                .get("path")
                .is_some_and(|p| Path::new(&text(p)) == loaded)
        })
        .map(|fields| text(fields["name"]))
        .unwrap_or_else(|| panic!("{} not in MODULE LIST: {reply:?}", loaded.display()))
}

/// A heading that names a command: `## RL.TOKENBUCKET`, `## CL.THROTTLE`.
fn command_heading(line: &str) -> Option<&str> {
    let name = line.strip_prefix("## ")?.trim();
    let is_name = name.contains('.')
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "._-".contains(c));
    is_name.then_some(name)
}

/// Each command section of the reference: its heading's name, and the first
/// line of the code block that must follow the heading (None when the first
/// line after the heading that is not blank does not open a code block).
fn sections(doc: &str) -> Vec<(String, Option<String>)> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(name) = command_heading(line) else {
            continue;
        };
        let mut rest = lines[n + 1..].iter().skip_while(|l| l.trim().is_empty());
        let syntax = match rest.next() {
            Some(fence) if fence.starts_with("```") => rest.next().map(|l| l.to_string()),
            _ => None,
        };
        found.push((name.to_owned(), syntax));
    }
    found
}

#[test]
fn every_command_has_a_section_with_the_syntax_command_docs_gives() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut documented: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, syntax) in sections(&doc) {
        if documented.insert(name.clone(), syntax).is_some() {
            problems.push(format!("{name}: more than one `## {name}` section"));
        }
    }

    let server = Server::start();
    let mut con = server.connect();
    let module = module_name(&mut con);
    let mut commands: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("MODULE")
        .arg(&module)
        .query(&mut con)
        .unwrap();
    commands.sort();
    assert!(!commands.is_empty(), "module {module} lists no command");

    for command in &commands {
        let expected = syntax(command, &documented_args(&mut con, command));
        match documented.get(command) {
            None => problems.push(format!(
                "{command}: no `## {command}` section; add one whose code block starts with:\n    {expected}"
            )),
            Some(None) => problems.push(format!(
                "{command}: the section does not start with a code block; its first line should be:\n    {expected}"
            )),
            Some(Some(line)) if *line != expected => problems.push(format!(
                "{command}: the section's syntax line differs from COMMAND DOCS\n    docs:         {line}\n    COMMAND DOCS: {expected}"
            )),
            Some(Some(_)) => {}
        }
    }
    for name in documented.keys() {
        if !commands.contains(name) {
            problems.push(format!(
                "{name}: documented, but the module registers no such command"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} does not match the server ({} commands of module {module}):\n{}",
        path.display(),
        commands.len(),
        problems.join("\n")
    );
}

/// The renderer on arguments of every kind, as COMMAND DOCS gives them for
/// two of Redis's own commands, against their syntax on redis.io.
#[test]
fn syntax_renders_blocks_oneofs_and_repeated_tokens_as_redis_io_does() {
    let server = Server::start();
    let mut con = server.connect();
    for (command, expected) in [
        (
            "SORT",
            "SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] \
             [ASC | DESC] [ALPHA] [STORE destination]",
        ),
        (
            "LMOVE",
            "LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>",
        ),
    ] {
        assert_eq!(
            syntax(command, &documented_args(&mut con, command)),
            expected
        );
    }
}

#[test]
fn syntax_renders_display_text_multiple_and_tokened_oneofs() {
    let plain = |name: &str| Arg {
        name: name.to_owned(),
        kind: "string".to_owned(),
        ..Arg::default()
    };
    let token = |token: &str| Arg {
        name: token.to_lowercase(),
        kind: "pure-token".to_owned(),
        token: Some(token.to_owned()),
        ..Arg::default()
    };
    let args = [
        Arg {
            display_text: Some("ip:port".to_owned()),
            ..plain("addr")
        },
        Arg {
            multiple: true,
            ..plain("field")
        },
        Arg {
            kind: "oneof".to_owned(),
            token: Some("MODE".to_owned()),
            optional: true,
            subargs: vec![token("A"), token("B")],
            ..plain("mode")
        },
        Arg {
            kind: "block".to_owned(),
            optional: true,
            multiple: true,
            subargs: vec![plain("score"), plain("member")],
            ..plain("data")
        },
    ];
    assert_eq!(
        syntax("X.CMD", &args),
        "X.CMD ip:port field [field ...] [MODE <A | B>] [score member [score member ...]]"
    );
}
