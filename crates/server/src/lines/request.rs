//! Parsing a request: `module:data`, `queue:add:module:data`, `queue:get:id:<id>`,
//! `queue:check:id:<id>`.
//!
//! ```text
//! "less:a { b: c }\n"       → Call { module: "less", data: "a { b: c }" }
//! "te$st"                   → Call { module: "test", data: "" }
//! "queue:add:less:x"        → Add(Call { module: "less", data: "x" })
//! "queue:get:id:0193…"      → Get(0193…)
//! ```
//!
//! The module name is everything before the first colon (the whole request when there is
//! none), cleaned to `[A-Za-z0-9_-]`; the data is the rest, colons and newlines included. One
//! final `\n` (or `\r\n`) is not part of the request (it is how line clients end it).

use offload_store::JobId;

use super::reply::LineError;

/// One module call: what the job receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The cleaned module name: the job's name.
    pub(crate) module: String,
    /// Everything after the first colon.
    pub(crate) data: String,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// `module:data`: run the job, answer its result.
    Call(Call),
    /// `queue:add:module:data`: submit, answer `id:<id>`.
    Add(Call),
    /// `queue:get:id:<id>`: wait for the job's end, answer as a call would have.
    Get(JobId),
    /// `queue:check:id:<id>`: `0` not started, `1` started, `2` done.
    Check(JobId),
}

/// Keeps `A-Z a-z 0-9 - _` of a module name, as the seed does.
pub(crate) fn clean_module(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Parses a whole request (the bytes of a TCP request or of a datagram).
///
/// # Errors
///
/// `400:` for text that is not UTF-8, an empty module name and malformed queue commands;
/// `404:` for a queue id that cannot be a job's id.
pub(crate) fn parse(bytes: &[u8]) -> Result<Request, LineError> {
    let bytes = strip_final_newline(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        LineError::bad_request(format!(
            "the request is not UTF-8 text (invalid byte at {})",
            e.valid_up_to()
        ))
    })?;
    let call = parse_call(text)?;
    if call.module != "queue" {
        return Ok(Request::Call(call));
    }
    let (action, arg) = call.data.split_once(':').unwrap_or((&call.data, ""));
    match action.trim() {
        "add" => {
            let inner = parse_call(arg)?;
            if inner.module == "queue" {
                return Err(LineError::bad_request(
                    "queue:add takes module:data, not another queue command",
                ));
            }
            Ok(Request::Add(inner))
        }
        "get" => Ok(Request::Get(parse_id(action, arg)?)),
        "check" => Ok(Request::Check(parse_id(action, arg)?)),
        other => Err(LineError::bad_request(format!(
            "unknown queue action {other:?}: use queue:add:<module>:<data>, queue:get:id:<id> \
             or queue:check:id:<id>"
        ))),
    }
}

fn strip_final_newline(bytes: &[u8]) -> &[u8] {
    match bytes.strip_suffix(b"\n") {
        Some(b) => b.strip_suffix(b"\r").unwrap_or(b),
        None => bytes,
    }
}

fn parse_call(text: &str) -> Result<Call, LineError> {
    let (head, data) = text.split_once(':').unwrap_or((text, ""));
    let module = clean_module(head);
    if module.is_empty() {
        return Err(if text.is_empty() {
            LineError::bad_request("empty request: send <module>:<data>")
        } else {
            LineError::bad_request(format!(
                "no module name in {:?} (names keep only A-Z a-z 0-9 - _): send <module>:<data>",
                head.chars().take(64).collect::<String>()
            ))
        });
    }
    Ok(Call {
        module,
        data: data.to_owned(),
    })
}

fn parse_id(action: &str, arg: &str) -> Result<JobId, LineError> {
    let id = arg
        .trim()
        .strip_prefix("id:")
        .ok_or_else(|| LineError::bad_request(format!("expected queue:{action}:id:<id>")))?;
    let id = id.trim();
    id.parse()
        .map_err(|_| LineError::not_found(format!("no job {id:?} (ids are UUIDs)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(module: &str, data: &str) -> Call {
        Call {
            module: module.into(),
            data: data.into(),
        }
    }

    #[test]
    fn module_is_before_the_first_colon_and_data_keeps_colons_and_newlines() {
        assert_eq!(
            parse(b"less:a:b\nc: d\n").unwrap(),
            Request::Call(call("less", "a:b\nc: d"))
        );
        assert_eq!(parse(b"test").unwrap(), Request::Call(call("test", "")));
        assert_eq!(parse(b"test:").unwrap(), Request::Call(call("test", "")));
        assert_eq!(parse(b"t:x\r\n").unwrap(), Request::Call(call("t", "x")));
        // Only one final newline goes.
        assert_eq!(parse(b"t:x\n\n").unwrap(), Request::Call(call("t", "x\n")));
    }

    #[test]
    fn names_are_cleaned_like_the_seed() {
        assert_eq!(clean_module(" my-ech@o_2 !"), "my-echo_2");
        assert_eq!(clean_module("../etc/passwd"), "etcpasswd");
        assert_eq!(clean_module("ünï"), "n");
        assert_eq!(
            parse(b"  re$gister.session :abc").unwrap(),
            Request::Call(call("registersession", "abc"))
        );
    }

    #[test]
    fn bad_requests_are_400() {
        for bad in [
            &b""[..],
            b"\n",
            b":data",
            b"!!!:x",
            b"\xff\xfe:x",
            b"queue:nope:x",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, 400, "{bad:?}: {e:?}");
        }
        assert_eq!(parse(b"queue:get:0193").unwrap_err().code, 400);
        assert_eq!(parse(b"queue:add:queue:get:id:x").unwrap_err().code, 400);
        assert_eq!(parse(b"queue:add::x").unwrap_err().code, 400);
    }

    #[test]
    fn queue_commands() {
        assert_eq!(
            parse(b"queue:add:less:a:b").unwrap(),
            Request::Add(call("less", "a:b"))
        );
        let id: JobId = "0193d4b2-0000-7000-8000-000000000000".parse().unwrap();
        assert_eq!(
            parse(format!("queue:get:id:{id}\n").as_bytes()).unwrap(),
            Request::Get(id)
        );
        assert_eq!(
            parse(format!("queue:check:id: {id} ").as_bytes()).unwrap(),
            Request::Check(id)
        );
        assert_eq!(parse(b"queue:get:id:nope").unwrap_err().code, 404);
    }
}
