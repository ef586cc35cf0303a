//! `oslo-nautobot replay`: many saved events in one process, in order, over
//! one kept-alive Nautobot connection, with the same decoding and handlers
//! as the one-shot command.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::error::{self, Error};
use crate::mirror::{Mirror, Report};

/// One event read from a source, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub source: String,
    /// The input document, or why it could not be read.
    pub input: Result<Vec<u8>, String>,
}

/// Reads every file (stdin for "-" or when none is given) and applies each
/// event in order (a dry-run mirror only plans them). Returns the most
/// urgent exit code seen.
pub fn run(mirror: &Mirror, files: &[PathBuf]) -> anyhow::Result<u8> {
    let sources: Vec<&Path> = if files.is_empty() {
        vec![Path::new("-")]
    } else {
        files.iter().map(PathBuf::as_path).collect()
    };
    let started = Instant::now();
    let (mut events, mut requests) = (0u32, 0u32);
    let mut codes = std::collections::BTreeMap::<u8, u32>::new();
    for source in sources {
        for item in read_source(source)? {
            events += 1;
            let (line, code, used) = handle(mirror, item);
            println!("{line}");
            requests += used;
            *codes.entry(code).or_default() += 1;
        }
    }
    let worst = error::worst(codes.keys().copied());
    let summary = json!({
        "summary": true,
        "events": events,
        "exit_codes": codes.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "requests": requests,
        "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "exit": worst,
    });
    println!("{summary}");
    Ok(worst)
}

/// Applies (or plans) one item; returns its result line (the event's
/// summary with its source), exit code and the requests it made.
fn handle(mirror: &Mirror, item: Item) -> (Value, u8, u32) {
    let started = Instant::now();
    let report = match item.input {
        Ok(input) => mirror.handle(&input),
        Err(problem) => Report {
            errors: vec![Error::input(problem).into()],
            ..Report::default()
        },
    };
    report.print_errors(&item.source);
    let code = report.code();
    let mut line = report.summary();
    line["source"] = json!(item.source);
    line["exit"] = json!(code);
    if report.plan.is_none() {
        line["ms"] = json!((started.elapsed().as_secs_f64() * 1e4).round() / 10.0);
    }
    (line, code, report.requests)
}

fn read_source(path: &Path) -> anyhow::Result<Vec<Item>> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    let read = if name == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| Error::input(format!("cannot read {name}: {e}")))?;
    Ok(split(&name, &bytes))
}

/// Splits a source into events: a `rabbitmqadmin get` dump (a JSON array of
/// messages whose `payload` is the body), any sequence of JSON documents
/// (JSON lines, or one pretty-printed document), or, when that does not
/// parse, one event per non-empty line so that a bad line spoils only itself.
pub fn split(name: &str, bytes: &[u8]) -> Vec<Item> {
    let stream: Result<Vec<Value>, _> = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .collect();
    match stream {
        Ok(values) => {
            let mut items = Vec::new();
            for value in values {
                match value {
                    Value::Array(messages) => {
                        items.extend(messages.into_iter().map(rabbitmq_payload));
                    }
                    other => items.push(Ok(other.to_string().into_bytes())),
                }
            }
            let many = items.len() > 1;
            items
                .into_iter()
                .enumerate()
                .map(|(i, input)| Item {
                    source: if many {
                        format!("{name}#{}", i + 1)
                    } else {
                        name.to_owned()
                    },
                    input,
                })
                .collect()
        }
        Err(_) => bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| Item {
                source: format!("{name}:{}", i + 1),
                input: Ok(line.to_vec()),
            })
            .collect(),
    }
}

/// The body of one message of a `rabbitmqadmin get` dump (`payload`, with
/// `payload_encoding` "string" or "base64"), or the element itself.
fn rabbitmq_payload(message: Value) -> Result<Vec<u8>, String> {
    let (Some(payload), Some(encoding)) = (message.get("payload"), message.get("payload_encoding"))
    else {
        return Ok(message.to_string().into_bytes());
    };
    match (payload.as_str(), encoding.as_str()) {
        (Some(text), Some("string")) => Ok(text.as_bytes().to_vec()),
        (Some(text), Some("base64")) => {
            base64(text).ok_or_else(|| "payload: invalid base64".to_owned())
        }
        _ => Err(format!("payload: unsupported payload_encoding {encoding}")),
    }
}

/// Standard base64 (RFC 4648, with padding), as rabbitmqadmin writes it.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match &i.input {
                Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Err(e) => format!("ERR {e}"),
            })
            .collect()
    }

    #[test]
    fn splits_json_lines_and_single_documents() {
        let items = split("e.jsonl", b"{\"a\":1}\n{\"b\":2}\n\n");
        assert_eq!(inputs(&items), [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(items[1].source, "e.jsonl#2");
        let pretty = split("one.json", b"{\n  \"a\": 1\n}\n");
        assert_eq!(inputs(&pretty), [r#"{"a":1}"#]);
        assert_eq!(pretty[0].source, "one.json");
    }

    #[test]
    fn a_bad_line_spoils_only_itself() {
        let items = split("e.jsonl", b"{\"a\":1}\n{oops\n{\"b\":2}\n");
        assert_eq!(inputs(&items), [r#"{"a":1}"#, "{oops", r#"{"b":2}"#]);
        assert_eq!(items[1].source, "e.jsonl:2");
    }

    #[test]
    fn reads_rabbitmqadmin_dumps() {
        let dump = json!([
            {"payload": "{\"oslo.version\":\"2.0\"}", "payload_encoding": "string", "routing_key": "notifications.info"},
            {"payload": "eyJhIjoxfQ==", "payload_encoding": "base64"},
            {"payload": "!!", "payload_encoding": "base64"},
        ]);
        let items = split("dump.json", dump.to_string().as_bytes());
        assert_eq!(
            inputs(&items),
            [
                r#"{"oslo.version":"2.0"}"#,
                r#"{"a":1}"#,
                "ERR payload: invalid base64"
            ]
        );
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64("aGk=").unwrap(), b"hi");
        assert_eq!(base64("YWJj").unwrap(), b"abc");
        assert!(base64("abc").is_none());
        assert!(base64("a===").is_none());
    }
}
